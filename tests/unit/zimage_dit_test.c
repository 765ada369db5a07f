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

#define PY "/usr/bin/python3 tools/zimage_reference.py"
#define TOL 1e-4 /* max abs error on outputs of magnitude ~1..5 (fp32 throughout) */

/* The reference's tiny configuration (TINY in tools/zimage_reference.py). */
static void tiny(zi_dit_config *d, zi_qwen3_config *q)
{
    *d = (zi_dit_config){.in_channels = 16, .patch = 2, .dim = 64, .n_heads = 2, .n_layers = 2,
                         .n_refiner_layers = 1, .ffn_hidden = 170, .cap_feat_dim = 32,
                         .t_dim = 64, .t_hidden = 1024, .t_freq = 256, .norm_eps = 1e-5f,
                         .rope_theta = 256.0f, .t_scale = 1000.0f, .axes_dims = {8, 12, 12},
                         .axes_lens = {1024, 512, 512}};
    *q = (zi_qwen3_config){.vocab_size = 151936, .hidden = 32, .n_layers = 3, .n_heads = 4,
                           .n_kv_heads = 2, .head_dim = 16, .intermediate = 96, .rms_eps = 1e-6f,
                           .rope_theta = 1e6f, .max_positions = 40960};
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

TEST(t_reference)
{
    char dir[512], cmd[2048], path[600], err[512] = "";
    snprintf(dir, sizeof dir, "%s/m", px_test_tmpdir());
    snprintf(cmd, sizeof cmd,
             PY " make %s --config tiny --layouts hf,single --seed 3 && " PY
                " run %s/hf --ids 151644,872,198,9707,1879,151645,198 --width 64 --height 48 "
                "--steps 2 --seed 1 --dump-encoder --out %s/st.safetensors",
             dir, dir, dir);
    sh(cmd);
    snprintf(path, sizeof path, "%s/st.safetensors", dir);
    px_st *st = NULL;
    T_EQ_INT(px_st_open(path, &st, err, sizeof err), 0);
    zi_dit_config dc;
    zi_qwen3_config qc;
    tiny(&dc, &qc);
    zi_ctx *c = NULL;
    T_EQ_INT(zi_ctx_create(px_pool_default(), &c, err, sizeof err), 0);

    /* the encoder, layer by layer: a model of k+1 layers ends with layer k-1's output */
    snprintf(path, sizeof path, "%s/hf/text_encoder", dir);
    zi_weights *tw = open_part(path, ZI_PART_TEXT, 0);
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

    /* the DiT's first forward (σ = 1) on the reference's own features */
    snprintf(path, sizeof path, "%s/hf/transformer", dir);
    zi_weights *dw = open_part(path, ZI_PART_DIT, 0);
    zi_dit *d = NULL;
    if (zi_dit_bind(dw, &dc, &d, err, sizeof err)) px_tfail(__FILE__, __LINE__, "bind: %s", err);
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

    /* the second forward: out1 = (x1 - x2) / (σ2 - σ1) · ... = (x2 - x1) / (σ1 - σ2) */
    float *x1 = stage(st, "step.1.latent", NULL), *x2 = stage(st, "step.2.latent", NULL);
    in = (zi_dit_input){.latent = x1, .t_in = zi_dit_t_in(&dc, sg[1]), .text = text, .text_len = NIDS};
    T_CMP_DBL(in.t_in, >, 100);
    T_EQ_INT(zi_dit_forward(d, c, &in, 1, 6, 8, out1, NULL, err, sizeof err), 0);
    for (size_t i = 0; i < nl; i++) ref[i] = (x2[i] - x1[i]) / (sg[1] - sg[2]);
    T_CMP_DBL(compare("dit.out1 (t = 250, via the step)", out1, ref, nl), <=, TOL);

    /* the single-file layout: the same tensors, qkv fused in the file */
    snprintf(path, sizeof path, "%s/single/z_image_turbo.safetensors", dir);
    zi_weights *sw = open_part(path, ZI_PART_DIT, 0);
    zi_dit *d2 = NULL;
    T_EQ_INT(zi_dit_bind(sw, &dc, &d2, err, sizeof err), 0);
    T_EQ_INT(zi_dit_forward(d2, c, &in, 1, 6, 8, ref, NULL, err, sizeof err), 0);
    T_EQ_MEM(ref, out1, nl * sizeof *ref);

    free(lat), free(text), free(t0), free(sg), free(out), free(out1), free(ref), free(x1), free(x2);
    zi_dit_free(d), zi_dit_free(d2);
    zi_weights_close(dw), zi_weights_close(sw), zi_weights_close(tw);
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

/* A bf16 model: BF16 weights as stored = widened at load; batches = items
 * alone; cancel; shape errors. */
TEST(t_bf16_batch_cancel_errors)
{
    char dir[512], cmd[1024], path[600], err[512] = "";
    snprintf(dir, sizeof dir, "%s/m", px_test_tmpdir());
    snprintf(cmd, sizeof cmd, PY " make %s --config tiny --layouts hf --dtype bf16 --seed 5", dir);
    sh(cmd);
    snprintf(path, sizeof path, "%s/hf/transformer", dir);
    zi_weights *wb = open_part(path, ZI_PART_DIT, 1), *wf = open_part(path, ZI_PART_DIT, 0);
    T_EQ_INT(zi_weights_find(wb, "layers.0.attention.qkv.weight")->dtype, ZI_BF16);
    T_EQ_INT(zi_weights_find(wf, "layers.0.attention.qkv.weight")->dtype, ZI_F32);
    zi_dit_config dc;
    zi_qwen3_config qc;
    tiny(&dc, &qc);
    zi_dit *db = NULL, *df = NULL;
    T_EQ_INT(zi_dit_bind(wb, &dc, &db, err, sizeof err), 0);
    T_EQ_INT(zi_dit_bind(wf, &dc, &df, err, sizeof err), 0);
    zi_ctx *c = NULL;
    T_EQ_INT(zi_ctx_create(px_pool_default(), &c, err, sizeof err), 0);

    /* three items: 5, 40 and 33 tokens (pads of 27, 24 and 31), different t */
    enum { H = 8, W = 12, N = 16 * H * W };
    static float lat[3][N], text[3][40 * 32], alone[3][N], batch[3 * N], wide[N];
    int lens[3] = {5, 40, 33};
    float ts[3] = {0.0f, 512.5f, 875.0f};
    zi_dit_input in[3];
    for (int b = 0; b < 3; b++) {
        fill(lat[b], N, 11u + b);
        fill(text[b], (size_t)lens[b] * 32, 77u + b);
        in[b] = (zi_dit_input){.latent = lat[b], .t_in = ts[b], .text = text[b], .text_len = lens[b]};
        T_EQ_INT(zi_dit_forward(db, c, &in[b], 1, H, W, alone[b], NULL, err, sizeof err), 0);
    }
    T_EQ_INT(zi_dit_forward(df, c, &in[1], 1, H, W, wide, NULL, err, sizeof err), 0);
    T_CMP_DBL(compare("bf16 as stored vs widened at load", alone[1], wide, N), <=, 1e-5);
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
    snprintf(path, sizeof path, "%s/hf/text_encoder", dir);
    zi_weights *tw = open_part(path, ZI_PART_TEXT, 1);
    zi_qwen3 *q = NULL;
    zi_qwen3_config bq = qc;
    bq.n_kv_heads = 4;
    T_EQ_INT(zi_qwen3_bind(tw, &bq, &q, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "k_proj");
    T_EQ_INT(zi_qwen3_bind(tw, &qc, &q, err, sizeof err), 0);
    int32_t ids[2] = {5, 151936};
    float f[2 * 32];
    T_EQ_INT(zi_qwen3_encode(q, c, ids, 2, f, NULL, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "151936");
    T_EQ_INT(zi_qwen3_encode(q, c, ids, 1, f, &cancel, err, sizeof err), PX_ECANCELED);
    zi_qwen3_free(q);
    zi_weights_close(tw);
    zi_dit_free(db), zi_dit_free(df);
    zi_weights_close(wb), zi_weights_close(wf);
    zi_ctx_destroy(c);
}

TEST_MAIN(t_reference, t_bf16_batch_cancel_errors)
