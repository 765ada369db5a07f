/*
 * zimage_dit_test.c — the Z-Image transformers on the CPU (qwen3.c, dit.c)
 * against the PyTorch reference (tools/zimage_reference.py, run at test time
 * on a tiny random model): every encoder layer and the features, the DiT's
 * first forward (t = 0) and its second (t > 0, recovered from the sampler's
 * two latents), the single-file layout (fused qkv in the file) giving the
 * same output as the diffusers layout; then, on a bf16 model, BF16 weights
 * used as stored against the same weights widened at load, batches of items
 * with different prompt lengths and timesteps against each item alone,
 * cancel, and the binders' shape errors.
 */
#include "core/err.h"
#include "core/pool.h"
#include "engine/safetensors.h"
#include "engine/zimage/dit.h"
#include "engine/zimage/qwen3.h"
#include "engine/zimage/zops.h"
#include "engine/zimage/zweights.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4 /* max abs error on outputs of magnitude ~1..5 (fp32 throughout) */

/* A small configuration like the reference's tiny one (TINY in
 * tools/zimage_reference.py), for the weights this test writes itself. */
static void tiny(zi_dit_config *d, zi_qwen3_config *q)
{
    zi_dit_config_default(d);
    d->dim = 64, d->n_heads = 2, d->n_layers = 2, d->n_refiner_layers = 1, d->ffn_hidden = 170;
    d->cap_feat_dim = 32, d->t_dim = 64, d->axes_dims[0] = 8, d->axes_dims[1] = 12;
    d->axes_dims[2] = 12;
    zi_qwen3_config_default(q);
    q->vocab_size = 1000, q->hidden = 32, q->n_layers = 3, q->n_heads = 4, q->n_kv_heads = 2;
    q->head_dim = 16, q->intermediate = 96;
}

/* A component's config.json parsed, then checked against its tensors. */
static void config_of(const char *dir, zi_weights *w, zi_dit_config *d, zi_qwen3_config *q)
{
    char path[600], err[512] = "";
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) px_tfail(__FILE__, __LINE__, "cannot open %s", path);
    static char json[1 << 16];
    size_t n = fread(json, 1, sizeof json, f);
    fclose(f);
    /* the parsers leave keys the file lacks as they were: start from the
     * full-size model's values */
    if (d) zi_dit_config_default(d);
    if (q) zi_qwen3_config_default(q);
    int rc = d ? zi_dit_config_parse(json, n, d, err, sizeof err)
               : zi_qwen3_config_parse(json, n, q, err, sizeof err);
    if (!rc)
        rc = d ? zi_dit_config_from_weights(w, d, err, sizeof err)
               : zi_qwen3_config_from_weights(w, q, err, sizeof err);
    if (rc) px_tfail(__FILE__, __LINE__, "%s: %s", path, err);
}

static void sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0) px_tfail(__FILE__, __LINE__, "command failed (%d): %s", rc, cmd);
}

static zi_weights *open_part(const char *path, zi_part part, int keep_bf16)
{
    char err[512] = "";
    zi_weights *w = NULL;
    zi_load_opts o = {.convert_to = ZI_F32, .keep_bf16 = keep_bf16};
    if (zi_weights_open(path, part, &o, &w, err, sizeof err))
        px_tfail(__FILE__, __LINE__, "zi_weights_open %s: %s", path, err);
    return w;
}

/* A stage tensor of the reference as floats (malloc'd), with its count. */
static float *stage(const px_st *st, const char *name, size_t *n)
{
    const px_st_tensor *t = px_st_find(st, name);
    if (!t) px_tfail(__FILE__, __LINE__, "reference output lacks %s", name);
    float *p = malloc(t->nelem * sizeof *p);
    T_EQ_INT(px_st_to_f32(t, p), 0);
    if (n) *n = t->nelem;
    return p;
}

/* Prints and returns max |a - b|; the relative figure is against max |b|. */
static double compare(const char *what, const float *a, const float *b, size_t n)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;
        r = fabs(b[i]) > r ? fabs(b[i]) : r;
    }
    printf("  %-34s max abs err %.3g, relative to max |ref| %.3g: %.3g\n", what, m, r,
           r > 0 ? m / r : m);
    return m;
}

static const int32_t IDS[] = {151644, 872, 198, 9707, 1879, 151645, 198};
#define NIDS 7

/* Writes the tiny bf16 reference model into dir and its stages: st (7
 * tokens, 64x48, two steps, every encoder layer) and cfg (40 prompt tokens
 * and a 5-token negative with cfg 2.5, 96x64, one step). make and run in one
 * interpreter: torch's import is most of the time. */
static void make_reference(const char *dir)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import sys; sys.path.insert(0, 'tools'); "
             "import zimage_reference as z; "
             "sys.argv = ['z', 'make', '%s', '--config', 'tiny', '--layouts', 'hf,single', "
             "'--dtype', 'bf16', '--seed', '3']; z.main(); "
             "sys.argv = ['z', 'run', '%s/hf', '--ids', '151644,872,198,9707,1879,151645,198', "
             "'--width', '64', '--height', '48', '--steps', '2', '--seed', '1', '--dump-encoder', "
             "'--out', '%s/st.safetensors']; z.main(); "
             "sys.argv = ['z', 'run', '%s/hf', '--ids', ','.join(str(i * 3779 %% 151936) for i in range(40)), "
             "'--neg-ids', '151644,872,198,151645,198', '--cfg', '2.5', '--width', '96', '--height', '64', "
             "'--steps', '1', '--seed', '2', '--out', '%s/cfg.safetensors']; z.main()\"",
             dir, dir, dir, dir, dir);
    sh(cmd);
}

/* Every encoder layer (a model of k+1 layers ends with layer k-1's output)
 * and the features. */
static void check_encoder(zi_weights *tw, const zi_qwen3_config *qcp, const px_st *st, zi_ctx *c)
{
    char err[512] = "";
    zi_qwen3_config qc = *qcp;
    float feats[NIDS * 32];
    for (int k = 1; k <= qc.n_layers; k++) {
        zi_qwen3_config q = qc;
        q.n_layers = k + 1; /* runs layers 0..k-1 */
        zi_qwen3 *m = NULL;
        if (zi_qwen3_bind(tw, &q, &m, err, sizeof err)) px_tfail(__FILE__, __LINE__, "bind: %s", err);
        T_EQ_INT(zi_qwen3_encode(m, c, IDS, NIDS, feats, NULL, err, sizeof err), 0);
        char name[64];
        snprintf(name, sizeof name, "text.layer.%d", k - 1);
        float *ref = stage(st, name, NULL);
        T_CMP_DBL(compare(name, feats, ref, NIDS * 32), <=, TOL);
        free(ref);
        zi_qwen3_free(m);
    }
    zi_qwen3 *m = NULL;
    T_EQ_INT(zi_qwen3_bind(tw, &qc, &m, err, sizeof err), 0);
    T_EQ_INT(zi_qwen3_encode(m, c, IDS, NIDS, feats, NULL, err, sizeof err), 0);
    float *fref = stage(st, "text.features", NULL);
    T_CMP_DBL(compare("text.features", feats, fref, NIDS * 32), <=, TOL);
    free(fref);
    zi_qwen3_free(m);
}

/* The first forward (σ = 1) and the second (t = 250), on the reference's
 * own features; the same from the single-file layout and from the weights
 * widened to F32 at load. */
static void check_dit(const char *dir, const zi_dit *d, const zi_dit_config *dcp, const px_st *st,
                      zi_ctx *c)
{
    char path[600], err[512] = "";
    zi_dit_config dc = *dcp;
    size_t nl;
    float *lat = stage(st, "init.latent", &nl), *text = stage(st, "text.features", NULL);
    float *t0 = stage(st, "dit.t0", NULL), *sg = stage(st, "sigmas", NULL);
    T_NEAR(zi_dit_t_in(&dc, sg[0]), t0[0], 0);
    zi_dit_input in = {.latent = lat, .t_in = zi_dit_t_in(&dc, sg[0]), .text = text,
                       .text_len = NIDS};
    float *out = malloc(nl * sizeof *out), *out1 = malloc(nl * sizeof *out1);
    if (zi_dit_forward(d, c, &in, 1, 6, 8, out, NULL, err, sizeof err))
        px_tfail(__FILE__, __LINE__, "forward: %s", err);
    float *ref = stage(st, "dit.out0", NULL);
    T_CMP_DBL(compare("dit.out0 (t = 0)", out, ref, nl), <=, TOL);

    /* the second forward, at t = 250, on the latent after the first step */
    float *x1 = stage(st, "step.1.latent", NULL), *t1 = stage(st, "dit.t1", NULL);
    in = (zi_dit_input){.latent = x1, .t_in = zi_dit_t_in(&dc, sg[1]), .text = text, .text_len = NIDS};
    T_NEAR(in.t_in, t1[0], 0);
    T_CMP_DBL(in.t_in, >, 100);
    T_EQ_INT(zi_dit_forward(d, c, &in, 1, 6, 8, out1, NULL, err, sizeof err), 0);
    free(ref);
    ref = stage(st, "dit.out1", NULL);
    T_CMP_DBL(compare("dit.out1 (t = 250)", out1, ref, nl), <=, TOL);

    /* the single-file layout: the same tensors, qkv fused in the file */
    snprintf(path, sizeof path, "%s/single/z_image_turbo.safetensors", dir);
    zi_weights *sw = open_part(path, ZI_PART_DIT, 1);
    zi_dit *d2 = NULL;
    T_EQ_INT(zi_dit_bind(sw, &dc, &d2, err, sizeof err), 0);
    T_EQ_INT(zi_dit_forward(d2, c, &in, 1, 6, 8, ref, NULL, err, sizeof err), 0);
    T_EQ_MEM(ref, out1, nl * sizeof *ref);
    zi_dit_free(d2);
    zi_weights_close(sw);
    /* the same bf16 weights widened to F32 at load: the products see equal
     * numbers, so equal results up to summation order */
    snprintf(path, sizeof path, "%s/hf/transformer", dir);
    sw = open_part(path, ZI_PART_DIT, 0);
    T_EQ_INT(zi_weights_find(sw, "layers.0.attention.qkv.weight")->dtype, ZI_F32);
    T_EQ_INT(zi_dit_bind(sw, &dc, &d2, err, sizeof err), 0);
    T_EQ_INT(zi_dit_forward(d2, c, &in, 1, 6, 8, ref, NULL, err, sizeof err), 0);
    T_CMP_DBL(compare("bf16 as stored vs widened at load", out1, ref, nl), <=, 1e-5);
    free(lat), free(text), free(t0), free(sg), free(out), free(out1), free(x1), free(t1), free(ref);
    zi_dit_free(d2);
    zi_weights_close(sw);
}

/* The CFG batch: 40 prompt tokens (padded to 64) and a 5-token negative
 * prompt as one batch of 2 with different lengths, 12 x 8 latents. */
static void check_cfg(const char *dir, zi_weights *tw, const zi_qwen3_config *qc, const zi_dit *d,
                      zi_ctx *c)
{
    char path[600], err[512] = "";
    px_st *cs = NULL;
    snprintf(path, sizeof path, "%s/cfg.safetensors", dir);
    T_EQ_INT(px_st_open(path, &cs, err, sizeof err), 0);
    int32_t ids[40], neg[5] = {151644, 872, 198, 151645, 198};
    for (int i = 0; i < 40; i++) ids[i] = (int32_t)((i * 3779) % 151936);
    zi_qwen3 *q = NULL;
    T_EQ_INT(zi_qwen3_bind(tw, qc, &q, err, sizeof err), 0);
    static float pf[40 * 32], nf[5 * 32], cout[2][16 * 8 * 12];
    T_EQ_INT(zi_qwen3_encode(q, c, ids, 40, pf, NULL, err, sizeof err), 0);
    T_EQ_INT(zi_qwen3_encode(q, c, neg, 5, nf, NULL, err, sizeof err), 0);
    zi_qwen3_free(q);
    float *rp = stage(cs, "text.features", NULL), *rn = stage(cs, "text.neg_features", NULL);
    T_CMP_DBL(compare("text.features (40 tokens)", pf, rp, 40 * 32), <=, TOL);
    T_CMP_DBL(compare("text.neg_features (5 tokens)", nf, rn, 5 * 32), <=, TOL);
    float *lat2 = stage(cs, "init.latent", NULL);
    zi_dit_input two[2] = {{.latent = lat2, .t_in = 0, .text = rp, .text_len = 40},
                           {.latent = lat2, .t_in = 0, .text = rn, .text_len = 5}};
    T_EQ_INT(zi_dit_forward(d, c, two, 2, 8, 12, cout[0], NULL, err, sizeof err), 0);
    float *ro = stage(cs, "dit.out0", NULL), *rno = stage(cs, "dit.neg_out0", NULL);
    T_CMP_DBL(compare("dit.out0, batch of 2", cout[0], ro, 16 * 8 * 12), <=, TOL);
    T_CMP_DBL(compare("dit.neg_out0, batch of 2", cout[1], rno, 16 * 8 * 12), <=, TOL);
    free(rp), free(rn), free(lat2), free(ro), free(rno);
    px_st_close(cs);
}

TEST(t_reference)
{
    char dir[400], path[600], err[512] = "";
    snprintf(dir, sizeof dir, "%s/m", px_test_tmpdir());
    make_reference(dir);
    snprintf(path, sizeof path, "%s/st.safetensors", dir);
    px_st *st = NULL;
    T_EQ_INT(px_st_open(path, &st, err, sizeof err), 0);
    zi_ctx *c = NULL;
    T_EQ_INT(zi_ctx_create(NULL, &c, err, sizeof err), 0);
    zi_qwen3_config qc;
    snprintf(path, sizeof path, "%s/hf/text_encoder", dir);
    zi_weights *tw = open_part(path, ZI_PART_TEXT, 1);
    config_of(path, tw, NULL, &qc);
    T_EQ_INT(qc.n_layers, 3);
    T_EQ_INT(zi_weights_find(tw, "layers.0.mlp.up_proj.weight")->dtype, ZI_BF16);
    check_encoder(tw, &qc, st, c);
    zi_dit_config dc;
    snprintf(path, sizeof path, "%s/hf/transformer", dir);
    zi_weights *dw = open_part(path, ZI_PART_DIT, 1);
    config_of(path, dw, &dc, NULL);
    T_EQ_INT(dc.dim, 64);
    T_EQ_INT(zi_weights_find(dw, "layers.0.attention.qkv.weight")->dtype, ZI_BF16);
    zi_dit *d = NULL;
    if (zi_dit_bind(dw, &dc, &d, err, sizeof err)) px_tfail(__FILE__, __LINE__, "bind: %s", err);
    check_dit(dir, d, &dc, st, c);
    check_cfg(dir, tw, &qc, d, c);
    zi_dit_free(d);
    zi_weights_close(dw), zi_weights_close(tw);
    zi_ctx_destroy(c);
    px_st_close(st);
}

static void fill(float *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) * (1.0 / (1u << 24)) * 4.0 - 2.0);
    }
}

/* --- random weights written by the test (no Python needed) ----------------------- */

enum { K_LIN, K_ADA, K_BIAS, K_NORM, K_PAD };

typedef struct {
    char name[128];
    int64_t a, b; /* b = 0: 1-D */
    int kind;
} wspec;

typedef struct {
    wspec *s;
    int n;
} wlist;

static void add(wlist *l, int kind, int64_t a, int64_t b, const char *fmt, const char *p)
{
    l->s = realloc(l->s, (size_t)(l->n + 1) * sizeof *l->s);
    wspec *w = &l->s[l->n++];
    snprintf(w->name, sizeof w->name, fmt, p);
    w->a = a, w->b = b, w->kind = kind;
}

static void dit_block_specs(wlist *l, const zi_dit_config *c, const char *p, int mod)
{
    int64_t D = c->dim, F = c->ffn_hidden, hd = c->dim / c->n_heads;
    add(l, K_LIN, 3 * D, D, "%s.attention.qkv.weight", p);
    add(l, K_LIN, D, D, "%s.attention.out.weight", p);
    add(l, K_NORM, hd, 0, "%s.attention.q_norm.weight", p);
    add(l, K_NORM, hd, 0, "%s.attention.k_norm.weight", p);
    add(l, K_LIN, F, D, "%s.feed_forward.w1.weight", p);
    add(l, K_LIN, D, F, "%s.feed_forward.w2.weight", p);
    add(l, K_LIN, F, D, "%s.feed_forward.w3.weight", p);
    const char *norms[4] = {"attention_norm1", "attention_norm2", "ffn_norm1", "ffn_norm2"};
    for (int i = 0; i < 4; i++) {
        char f[96];
        snprintf(f, sizeof f, "%%s.%s.weight", norms[i]);
        add(l, K_NORM, D, 0, f, p);
    }
    if (mod) {
        add(l, K_ADA, 4 * D, c->t_dim, "%s.adaLN_modulation.0.weight", p);
        add(l, K_BIAS, 4 * D, 0, "%s.adaLN_modulation.0.bias", p);
    }
}

static wlist dit_specs(const zi_dit_config *c)
{
    wlist l = {0};
    int64_t D = c->dim, P = (int64_t)c->patch * c->patch * c->in_channels;
    add(&l, K_LIN, D, P, "x_embedder.weight%s", "");
    add(&l, K_BIAS, D, 0, "x_embedder.bias%s", "");
    add(&l, K_NORM, c->cap_feat_dim, 0, "cap_embedder.0.weight%s", "");
    add(&l, K_LIN, D, c->cap_feat_dim, "cap_embedder.1.weight%s", "");
    add(&l, K_BIAS, D, 0, "cap_embedder.1.bias%s", "");
    add(&l, K_LIN, c->t_hidden, c->t_freq, "t_embedder.mlp.0.weight%s", "");
    add(&l, K_BIAS, c->t_hidden, 0, "t_embedder.mlp.0.bias%s", "");
    add(&l, K_LIN, c->t_dim, c->t_hidden, "t_embedder.mlp.2.weight%s", "");
    add(&l, K_BIAS, c->t_dim, 0, "t_embedder.mlp.2.bias%s", "");
    add(&l, K_PAD, 1, D, "x_pad_token%s", "");
    add(&l, K_PAD, 1, D, "cap_pad_token%s", "");
    add(&l, K_LIN, P, D, "final_layer.linear.weight%s", "");
    add(&l, K_BIAS, P, 0, "final_layer.linear.bias%s", "");
    add(&l, K_ADA, D, c->t_dim, "final_layer.adaLN_modulation.1.weight%s", "");
    add(&l, K_BIAS, D, 0, "final_layer.adaLN_modulation.1.bias%s", "");
    char p[64];
    for (int i = 0; i < c->n_refiner_layers; i++) {
        snprintf(p, sizeof p, "noise_refiner.%d", i);
        dit_block_specs(&l, c, p, 1);
        snprintf(p, sizeof p, "context_refiner.%d", i);
        dit_block_specs(&l, c, p, 0);
    }
    for (int i = 0; i < c->n_layers; i++) {
        snprintf(p, sizeof p, "layers.%d", i);
        dit_block_specs(&l, c, p, 1);
    }
    return l;
}

static wlist qwen3_specs(const zi_qwen3_config *c)
{
    wlist l = {0};
    int64_t H = c->hidden, qd = (int64_t)c->n_heads * c->head_dim;
    int64_t kvd = (int64_t)c->n_kv_heads * c->head_dim, I = c->intermediate;
    add(&l, K_PAD, c->vocab_size, H, "model.embed_tokens.weight%s", "");
    add(&l, K_NORM, H, 0, "model.norm.weight%s", "");
    char p[64];
    for (int i = 0; i < c->n_layers; i++) {
        snprintf(p, sizeof p, "model.layers.%d", i);
        add(&l, K_NORM, H, 0, "%s.input_layernorm.weight", p);
        add(&l, K_NORM, H, 0, "%s.post_attention_layernorm.weight", p);
        add(&l, K_LIN, qd, H, "%s.self_attn.q_proj.weight", p);
        add(&l, K_LIN, kvd, H, "%s.self_attn.k_proj.weight", p);
        add(&l, K_LIN, kvd, H, "%s.self_attn.v_proj.weight", p);
        add(&l, K_LIN, H, qd, "%s.self_attn.o_proj.weight", p);
        add(&l, K_NORM, c->head_dim, 0, "%s.self_attn.q_norm.weight", p);
        add(&l, K_NORM, c->head_dim, 0, "%s.self_attn.k_norm.weight", p);
        add(&l, K_LIN, I, H, "%s.mlp.gate_proj.weight", p);
        add(&l, K_LIN, I, H, "%s.mlp.up_proj.weight", p);
        add(&l, K_LIN, H, I, "%s.mlp.down_proj.weight", p);
    }
    return l;
}

/* Writes the tensors of l with random values (scaled like the reference's) as
 * one F32 or BF16 safetensors file; frees l. */
static void write_random(const char *path, wlist l, int bf16, unsigned seed)
{
    size_t cap = 1 << 16, at = 0, off = 0, es = bf16 ? 2 : 4;
    char *h = malloc(cap);
    at += (size_t)snprintf(h, cap, "{");
    for (int i = 0; i < l.n; i++) {
        const wspec *w = &l.s[i];
        size_t n = (size_t)w->a * (size_t)(w->b ? w->b : 1) * es;
        if (at + 512 > cap) h = realloc(h, cap *= 2);
        at += (size_t)snprintf(h + at, cap - at, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld", i ? "," : "",
                               w->name, bf16 ? "BF16" : "F32", (long long)w->a);
        if (w->b) at += (size_t)snprintf(h + at, cap - at, ",%lld", (long long)w->b);
        at += (size_t)snprintf(h + at, cap - at, "],\"data_offsets\":[%zu,%zu]}", off, off + n);
        off += n;
    }
    at += (size_t)snprintf(h + at, cap - at, "}");
    while (at % 8) h[at++] = ' ';
    FILE *f = fopen(path, "wb");
    T_TRUE(f != NULL);
    uint64_t hl = at;
    fwrite(&hl, 8, 1, f);
    fwrite(h, 1, at, f);
    for (int i = 0; i < l.n; i++) {
        const wspec *w = &l.s[i];
        size_t n = (size_t)w->a * (size_t)(w->b ? w->b : 1);
        float *v = malloc(n * sizeof *v);
        fill(v, n, seed + 7919u * (unsigned)i);
        double fan = w->b ? (double)w->b : 1.0;
        for (size_t k = 0; k < n; k++) {
            double u = v[k] * 0.5; /* about uniform in [-1, 1) */
            v[k] = (float)(w->kind == K_LIN ? u * sqrt(3.0 / fan)
                           : w->kind == K_ADA ? u * 0.5 * sqrt(3.0 / fan)
                           : w->kind == K_BIAS ? u * 0.1
                           : w->kind == K_NORM ? 1.0 + 0.1 * u : u);
            if (bf16) {
                uint16_t b = zi_f32_to_bf16(v[k]);
                fwrite(&b, 2, 1, f);
            }
        }
        if (!bf16) fwrite(v, sizeof *v, n, f);
        free(v);
    }
    fclose(f);
    free(h);
    free(l.s);
}

/* BF16 weights (kept as stored); batches = items alone; cancel; errors. */
TEST(t_batch_cancel_errors)
{
    char path[600], err[512] = "";
    zi_dit_config dc;
    zi_qwen3_config qc;
    tiny(&dc, &qc);
    dc.n_refiner_layers = 2; /* blocks of each kind, a wider head */
    dc.n_heads = 1;
    dc.axes_dims[0] = 16, dc.axes_dims[1] = 24, dc.axes_dims[2] = 24;
    dc.cap_feat_dim = 48, dc.t_dim = 32;
    qc.vocab_size = 1000;
    snprintf(path, sizeof path, "%s/dit.safetensors", px_test_tmpdir());
    write_random(path, dit_specs(&dc), 1, 17u);
    zi_weights *wb = open_part(path, ZI_PART_DIT, 1);
    T_EQ_INT(zi_weights_find(wb, "layers.0.attention.qkv.weight")->dtype, ZI_BF16);
    zi_dit *db = NULL;
    if (zi_dit_bind(wb, &dc, &db, err, sizeof err)) px_tfail(__FILE__, __LINE__, "bind: %s", err);
    zi_ctx *c = NULL;
    T_EQ_INT(zi_ctx_create(NULL, &c, err, sizeof err), 0);

    /* three items: 5, 40 and 33 tokens (pads of 27, 24 and 31), different t */
    enum { H = 8, W = 12, N = 16 * H * W };
    static float lat[3][N], text[3][40 * 48], alone[3][N], batch[3 * N];
    int lens[3] = {5, 40, 33};
    float ts[3] = {0.0f, 512.5f, 875.0f};
    zi_dit_input in[3];
    for (int b = 0; b < 3; b++) {
        fill(lat[b], N, 11u + b);
        fill(text[b], (size_t)lens[b] * 48, 77u + b);
        in[b] = (zi_dit_input){.latent = lat[b], .t_in = ts[b], .text = text[b], .text_len = lens[b]};
        T_EQ_INT(zi_dit_forward(db, c, &in[b], 1, H, W, alone[b], NULL, err, sizeof err), 0);
    }
    T_EQ_INT(zi_dit_forward(db, c, in, 3, H, W, batch, NULL, err, sizeof err), 0);
    double worst = 0;
    for (int b = 0; b < 3; b++) {
        char what[64];
        snprintf(what, sizeof what, "batch of 3, item %d vs alone", b);
        double e = compare(what, batch + (size_t)b * N, alone[b], N);
        worst = e > worst ? e : worst;
    }
    T_CMP_DBL(worst, <=, 1e-5);
    /* the first and last items differ from each other, so the batch is not trivially equal */
    T_CMP_DBL(compare("item 0 vs item 2 (must differ)", alone[0], alone[2], N), >, 0.01);

    atomic_int cancel = 1;
    T_EQ_INT(zi_dit_forward(db, c, in, 2, H, W, batch, &cancel, err, sizeof err), PX_ECANCELED);
    T_EQ_INT(zi_dit_forward(db, c, in, 1, H + 1, W, batch, NULL, err, sizeof err), PX_EINVAL);
    zi_dit_input bad = in[0];
    bad.text_len = 0;
    T_EQ_INT(zi_dit_forward(db, c, &bad, 1, H, W, batch, NULL, err, sizeof err), PX_EINVAL);

    /* shape errors name the tensor */
    zi_dit *dx = NULL;
    zi_dit_config bc = dc;
    bc.ffn_hidden = 171;
    T_EQ_INT(zi_dit_bind(wb, &bc, &dx, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "feed_forward.w1.weight");
    bc = dc;
    bc.axes_dims[0] = 10;
    T_EQ_INT(zi_dit_bind(wb, &bc, &dx, err, sizeof err), PX_EINVAL);
    T_TRUE(dx == NULL);
    snprintf(path, sizeof path, "%s/text.safetensors", px_test_tmpdir());
    write_random(path, qwen3_specs(&qc), 0, 23u);
    zi_weights *tw = open_part(path, ZI_PART_TEXT, 1);
    zi_qwen3 *q = NULL;
    zi_qwen3_config bq = qc;
    bq.n_kv_heads = 4;
    T_EQ_INT(zi_qwen3_bind(tw, &bq, &q, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "k_proj");
    T_EQ_INT(zi_qwen3_bind(tw, &qc, &q, err, sizeof err), 0);
    int32_t ids[2] = {5, 1000};
    float f[2 * 32];
    T_EQ_INT(zi_qwen3_encode(q, c, ids, 2, f, NULL, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "1000");
    T_EQ_INT(zi_qwen3_encode(q, c, ids, 1, f, &cancel, err, sizeof err), PX_ECANCELED);
    zi_qwen3_free(q);
    zi_weights_close(tw);
    zi_dit_free(db);
    zi_weights_close(wb);
    zi_ctx_destroy(c);
}

TEST_MAIN(t_reference, t_batch_cancel_errors)
