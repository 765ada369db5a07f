/*
 * zimage_lora_test.c — LoRA files for the Z-Image DiT (lora.c, lora_apply.c,
 * the DiT's per-item application): the same random LoRA written by
 * tools/zimage_lora.py in every key spelling loads the same deltas (the
 * fused-qkv spelling the same merged weights); files that do not fit are
 * refused whole with what did not match named; a DiT forward with LoRAs
 * applied at run time equals the forward on weights the tool merged
 * (W + m·(α/r)·B·A, fp32); an item of a batch mixing LoRAs and scales (one
 * without) equals its solo run; zi_lora_merge and the index.
 */
#include "core/err.h"
#include "engine/zimage/dit.h"
#include "engine/zimage/lora.h"
#include "engine/zimage/lora_apply.h"
#include "engine/zimage/zconfig.h"
#include "engine/zimage/zops.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0) px_tfail(__FILE__, __LINE__, "command failed (%d): %s", rc, cmd);
}

/* The tiny model of tools/zimage_reference.py (TINY): D 64, F 170, t_dim 64,
 * 1 + 1 refiner blocks and 2 joint layers. */
static void tiny(zi_dit_config *c)
{
    zi_dit_config_default(c);
    c->dim = 64, c->n_heads = 2, c->n_layers = 2, c->n_refiner_layers = 1, c->ffn_hidden = 170;
    c->cap_feat_dim = 32, c->t_dim = 64, c->axes_dims[0] = 8, c->axes_dims[1] = 12;
    c->axes_dims[2] = 12;
}

static zi_lora *open_ok(const char *dir, const char *file, const zi_dit_config *c)
{
    char path[600], err[1024] = "";
    snprintf(path, sizeof path, "%s/%s", dir, file);
    zi_lora *l = NULL;
    if (zi_lora_open(path, c, &l, err, sizeof err))
        px_tfail(__FILE__, __LINE__, "zi_lora_open %s: %s", path, err);
    return l;
}

/* --- refusals, from files built here -------------------------------------------------- */

typedef struct ent {
    const char *name, *dtype;
    int64_t a, b; /* b < 0: 1-D [a]; a < 0: a scalar */
} ent;

/* A safetensors image of the entries, values 0.01·i (or, at value nan_at,
 * NaN when it is odd and -Inf when even). */
static unsigned char *build(const ent *e, int n, size_t *len, int nan_at)
{
    char h[8192];
    size_t at = 0, off = 0;
    at += (size_t)snprintf(h, sizeof h, "{");
    for (int i = 0; i < n; i++) {
        size_t es = !strcmp(e[i].dtype, "F32") ? 4 : !strcmp(e[i].dtype, "I64") ? 8 : 2;
        size_t ne = e[i].a < 0 ? 1 : (size_t)e[i].a * (size_t)(e[i].b < 0 ? 1 : e[i].b);
        at += (size_t)snprintf(h + at, sizeof h - at, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                               i ? "," : "", e[i].name, e[i].dtype);
        if (e[i].a >= 0) at += (size_t)snprintf(h + at, sizeof h - at, "%lld", (long long)e[i].a);
        if (e[i].b >= 0) at += (size_t)snprintf(h + at, sizeof h - at, ",%lld", (long long)e[i].b);
        at += (size_t)snprintf(h + at, sizeof h - at, "],\"data_offsets\":[%zu,%zu]}", off,
                               off + ne * es);
        off += ne * es;
    }
    at += (size_t)snprintf(h + at, sizeof h - at, "}");
    while (at % 8) h[at++] = ' ';
    unsigned char *buf = calloc(8 + at + off + 1, 1);
    uint64_t hl = at;
    memcpy(buf, &hl, 8);
    memcpy(buf + 8, h, at);
    /* values when the first entry is F32 or BF16 (then all are: index i
     * counts elements from the data's start) */
    int bf = !strcmp(e[0].dtype, "BF16");
    size_t nv = !strcmp(e[0].dtype, "F32") ? off / 4 : bf ? off / 2 : 0;
    for (size_t i = 0; i < nv; i++) {
        float v = i != (size_t)nan_at ? 0.01f * (float)(i % 97) : nan_at % 2 ? NAN : -INFINITY;
        uint16_t hb = zi_f32_to_bf16(v);
        memcpy(buf + 8 + at + i * (bf ? 2 : 4), bf ? (void *)&hb : (void *)&v, bf ? 2 : 4);
    }
    *len = 8 + at + off;
    return buf;
}

/* Opens the entries; expects rc and a message holding each of want[]. */
static void refused(const ent *e, int n, int rc, const char *const *want, int nan_at)
{
    zi_dit_config c;
    tiny(&c);
    size_t len;
    unsigned char *b = build(e, n, &len, nan_at);
    zi_lora *l = NULL;
    char err[1024] = "";
    T_EQ_INT(zi_lora_open_mem(b, len, "x.safetensors", &c, &l, err, sizeof err), rc);
    T_TRUE(l == NULL);
    printf("  refused: %s\n", err);
    for (; *want; want++) T_CONTAINS(err, *want);
    free(b);
}

#define Q "transformer.layers.0.attention.to_q."
TEST(t_refusals)
{
    const ent unknown[] = {{Q "lora_A.weight", "F32", 4, 64}, {Q "lora_B.weight", "F32", 64, 4},
                           {"transformer.layers.0.attention.to_z.lora_A.weight", "F32", 4, 64}};
    refused(unknown, 3, PX_ECORRUPT,
            (const char *const[]){"x.safetensors: does not fit the model (1 problem)",
                                  "unknown key transformer.layers.0.attention.to_z.lora_A.weight",
                                  NULL}, -1);
    const ent no_b[] = {{Q "alpha", "F32", -1, -1}, {Q "lora_A.weight", "F32", 4, 64}};
    refused(no_b, 2, PX_ECORRUPT,
            (const char *const[]){"layers.0.attention.to_q: " Q "lora_A.weight without its up "
                                  "half (lora_B / lora_up)", NULL}, -1);
    const ent shape[] = {{Q "lora_A.weight", "F32", 4, 32}, {Q "lora_B.weight", "F32", 64, 4}};
    refused(shape, 2, PX_ECORRUPT,
            (const char *const[]){"layers.0.attention.to_q: down [4, 32] and up [64, 4], "
                                  "expected [r, 64] and [64, r]", NULL}, -1);
    const ent ffn[] = {{"lora_unet_layers_1_feed_forward_w2.lora_down.weight", "F32", 4, 64},
                       {"lora_unet_layers_1_feed_forward_w2.lora_up.weight", "F32", 64, 4}};
    refused(ffn, 2, PX_ECORRUPT,
            (const char *const[]){"layers.1.feed_forward.w2: down [4, 64] and up [64, 4], "
                                  "expected [r, 170] and [64, r]", NULL}, -1);
    const ent ada[] = {
        {"diffusion_model.context_refiner.0.adaLN_modulation.0.lora_A.weight", "F32", 2, 64},
        {"diffusion_model.context_refiner.0.adaLN_modulation.0.lora_B.weight", "F32", 256, 2}};
    refused(ada, 2, PX_ECORRUPT,
            (const char *const[]){"context_refiner.0.adaLN_modulation.0 has no adaLN modulation",
                                  "(2 problems)", NULL}, -1);
    const ent rank0[] = {{Q "lora_A.weight", "F32", 0, 64}, {Q "lora_B.weight", "F32", 64, 0}};
    refused(rank0, 2, PX_ECORRUPT,
            (const char *const[]){"layers.0.attention.to_q: rank 0 (1..64 for this linear)",
                                  NULL}, -1);
    const ent rank65[] = {{Q "lora_A.weight", "F32", 65, 64}, {Q "lora_B.weight", "F32", 64, 65}};
    refused(rank65, 2, PX_ECORRUPT, (const char *const[]){"rank 65 (1..64", NULL}, -1);
    const ent dup[] = {{Q "lora_A.weight", "F32", 4, 64}, {Q "lora_B.weight", "F32", 64, 4},
                       {"layers.0.attention.to_q.lora_A.weight", "F32", 4, 64}};
    refused(dup, 3, PX_ECORRUPT,
            (const char *const[]){"are the same lora_A of layers.0.attention.to_q", NULL}, -1);
    const ent alpha2[] = {{Q "alpha", "F32", 2, -1}, {Q "lora_A.weight", "F32", 4, 64},
                          {Q "lora_B.weight", "F32", 64, 4}};
    refused(alpha2, 3, PX_ECORRUPT, (const char *const[]){"alpha holds 2 values", NULL}, -1);
    refused(unknown, 0, PX_ECORRUPT, (const char *const[]){"holds no LoRA weights", NULL}, -1);
    const ent ints[] = {{Q "lora_A.weight", "I64", 4, 64}, {Q "lora_B.weight", "I64", 64, 4}};
    refused(ints, 2, PX_EUNSUP, (const char *const[]){"is I64 (F32, F16 or BF16 read)", NULL}, -1);
    refused(shape + 1, 1, PX_ECORRUPT, (const char *const[]){"without its down half", NULL}, -1);
    refused(unknown, 2, PX_ECORRUPT, (const char *const[]){"lora_A.weight holds nan", NULL}, 71);
    refused(unknown, 2, PX_ECORRUPT, (const char *const[]){"lora_B.weight holds -inf", NULL}, 300);
    /* BF16 kept as BF16: the finiteness check on its bit patterns, in the
     * vector part and in the tail (170 values: 10 after the blocks of 16) */
    const ent bq[] = {{Q "lora_A.weight", "BF16", 4, 64}, {Q "lora_B.weight", "BF16", 64, 4}};
    refused(bq, 2, PX_ECORRUPT, (const char *const[]){"lora_A.weight holds nan", NULL}, 71);
    refused(bq, 2, PX_ECORRUPT, (const char *const[]){"lora_B.weight holds -inf", NULL}, 300);
    const ent bw2[] = {{"transformer.layers.0.feed_forward.w2.lora_A.weight", "BF16", 1, 170},
                       {"transformer.layers.0.feed_forward.w2.lora_B.weight", "BF16", 64, 1}};
    refused(bw2, 2, PX_ECORRUPT, (const char *const[]){"w2.lora_A.weight holds nan", NULL}, 165);
    refused(bw2, 2, PX_ECORRUPT, (const char *const[]){"w2.lora_A.weight holds -inf", NULL}, 168);
    refused(bw2, 2, PX_ECORRUPT, (const char *const[]){"w2.lora_B.weight holds nan", NULL}, 233);
    /* many problems: the first six named, then a count */
    ent many[12];
    char names[12][80];
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof names[i], "transformer.layers.%d.attention.to_q.lora_A.weight",
                 i + 5);
        many[i] = (ent){names[i], "F32", 1, 64};
    }
    refused(many, 12, PX_ECORRUPT,
            (const char *const[]){"(12 problems)", "unknown key transformer.layers.10.attention",
                                  "; and 6 more", NULL}, -1);
    /* truncated: the reader's error, with the name */
    zi_dit_config c;
    tiny(&c);
    size_t len;
    unsigned char *b = build(unknown, 2, &len, -1);
    zi_lora *l = NULL;
    char err[1024] = "";
    T_NE_INT(zi_lora_open_mem(b, len - 10, "cut.safetensors", &c, &l, err, sizeof err), 0);
    T_TRUE(l == NULL);
    T_CONTAINS(err, "cut.safetensors: ");
    printf("  truncated: %s\n", err);
    /* a file that does not exist */
    T_EQ_INT(zi_lora_open("/nonexistent/x.safetensors", &c, &l, err, sizeof err), PX_EIO);
    T_CONTAINS(err, "/nonexistent/x.safetensors");
    /* the same bytes load on a model they fit (D 32 rows would not) */
    T_EQ_INT(zi_lora_open_mem(b, len, "ok", &c, &l, err, sizeof err), 0);
    T_EQ_INT(zi_lora_count(l), 1);
    zi_dit_config other = c;
    other.dim = 32;
    zi_lora_use u = {l, 1.0f};
    T_EQ_INT(zi_lora_check_uses(&u, 1, &other, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "opened for another model");
    T_EQ_INT(zi_lora_check_uses(&u, 1, &c, err, sizeof err), 0);
    u.scale = NAN;
    T_EQ_INT(zi_lora_check_uses(&u, 1, &c, err, sizeof err), PX_EINVAL);
    T_EQ_INT(zi_lora_check_uses(&u, ZI_MAX_LORAS + 1, &c, err, sizeof err), PX_EINVAL);
    zi_lora_free(l);
    free(b);
}

/* zi_lora_merge against the sum written out, and its size check. */
TEST(t_merge_api)
{
    zi_dit_config c;
    tiny(&c);
    const ent e[] = {{"lora_unet_layers_0_attention_to_k.alpha", "F32", -1, -1},
                     {"lora_unet_layers_0_attention_to_k.lora_down.weight", "F32", 3, 64},
                     {"lora_unet_layers_0_attention_to_k.lora_up.weight", "F32", 64, 3}};
    size_t len;
    unsigned char *b = build(e, 3, &len, -1);
    zi_lora *l = NULL;
    char err[512];
    T_EQ_INT(zi_lora_open_mem(b, len, "m", &c, &l, err, sizeof err), 0);
    T_EQ_INT(zi_lora_spelling_of(l), ZI_LORA_KOHYA);
    int n;
    const zi_lora_delta *d = zi_lora_find(l, 2, ZI_LORA_QKV, &n); /* layers.0 = block 2 */
    T_EQ_INT(n, 1);
    T_EQ_INT(d->row0, 64);
    T_EQ_INT(d->rows, 64);
    T_NEAR(d->alpha_over_rank, 0.0f / 3, 0); /* alpha stored as 0.00 */
    T_TRUE(zi_lora_find(l, 2, ZI_LORA_OUT, &n) == NULL && n == 0);
    T_TRUE(zi_lora_find(l, 99, ZI_LORA_QKV, &n) == NULL && n == 0);
    free(b);
    zi_lora_free(l);
    /* without alpha: α = r */
    b = build(e + 1, 2, &len, -1);
    T_EQ_INT(zi_lora_open_mem(b, len, "m", &c, &l, err, sizeof err), 0);
    d = zi_lora_find(l, 2, ZI_LORA_QKV, &n);
    T_NEAR(d->alpha_over_rank, 1.0f, 0);
    static float w[192 * 64], want[192 * 64];
    for (int i = 0; i < 192 * 64; i++) w[i] = want[i] = (float)(i % 13) * 0.1f;
    zi_lora_use u[2] = {{l, 0.5f}, {l, -2.0f}};
    T_EQ_INT(zi_lora_merge(u, 2, 2, ZI_LORA_QKV, w, 192, 64), 0);
    double m = 0;
    for (int r = 0; r < 64; r++)
        for (int i = 0; i < 64; i++) {
            double s = 0;
            for (int q = 0; q < 3; q++)
                s += (double)zi_lora_value(d->dtype, d->B, (size_t)r * 3 + q) *
                     zi_lora_value(d->dtype, d->A, (size_t)q * 64 + i);
            want[(64 + r) * 64 + i] += (float)(-1.5 * s);
        }
    for (int i = 0; i < 192 * 64; i++) m = fmax(m, fabs((double)w[i] - want[i]));
    T_CMP_DBL(m, <, 1e-5);
    T_CMP_DBL(fabs((double)want[100 * 64 + 5] - (double)(((100 * 64 + 5) % 13) * 0.1f)), >, 1e-3);
    T_EQ_INT(zi_lora_merge(u, 2, 2, ZI_LORA_QKV, w, 100, 64), PX_EINVAL);
    T_EQ_INT(zi_lora_merge(u, 2, 2, ZI_LORA_QKV, w, 192, 32), PX_EINVAL);
    free(b);
    zi_lora_free(l);
}

/* The rarer spellings: dotted names with lora_down / lora_up, kohya's
 * lora_transformer_ prefix, the original module names in kohya form; and
 * kohya names with PEFT's halves, which are no spelling. */
TEST(t_spelling_variants)
{
    zi_dit_config c;
    tiny(&c);
    const ent e[] = {
        {"diffusion_model.layers.1.feed_forward.w3.lora_down.weight", "F32", 2, 64},
        {"diffusion_model.layers.1.feed_forward.w3.lora_up.weight", "F32", 170, 2},
        {"lora_transformer_noise_refiner_0_adaLN_modulation_0.lora_down.weight", "F32", 2, 64},
        {"lora_transformer_noise_refiner_0_adaLN_modulation_0.lora_up.weight", "F32", 256, 2},
        {"lora_unet_context_refiner_0_attention_out.lora_down.weight", "F32", 2, 64},
        {"lora_unet_context_refiner_0_attention_out.lora_up.weight", "F32", 64, 2},
        {"lora_unet_layers_0_attention_qkv.lora_down.weight", "F32", 2, 64},
        {"lora_unet_layers_0_attention_qkv.lora_up.weight", "F32", 192, 2}};
    size_t len;
    unsigned char *b = build(e, 8, &len, -1);
    zi_lora *l = NULL;
    char err[1024] = "";
    if (zi_lora_open_mem(b, len, "v", &c, &l, err, sizeof err))
        px_tfail(__FILE__, __LINE__, "open: %s", err);
    T_EQ_INT(zi_lora_count(l), 4);
    T_EQ_INT(zi_lora_spelling_of(l), ZI_LORA_COMFY); /* the first key's */
    const struct {
        int block;
        zi_lora_site site;
        int rows;
    } want[4] = {{0, ZI_LORA_ADA, 256}, {1, ZI_LORA_OUT, 64}, {2, ZI_LORA_QKV, 192},
                 {3, ZI_LORA_W3, 170}};
    for (int i = 0; i < 4; i++) {
        int n;
        const zi_lora_delta *d = zi_lora_find(l, want[i].block, want[i].site, &n);
        T_EQ_INT(n, 1);
        T_TRUE(d == zi_lora_at(l, i));
        T_EQ_INT(d->rows, want[i].rows);
        T_EQ_INT(d->row0, 0);
    }
    T_EQ_INT((int)zi_lora_site_mask(l),
             1 << ZI_LORA_ADA | 1 << ZI_LORA_OUT | 1 << ZI_LORA_QKV | 1 << ZI_LORA_W3);
    zi_lora_free(l);
    free(b);
    const ent mixed[] = {{"lora_unet_layers_0_attention_to_q.lora_A.weight", "F32", 2, 64},
                         {"lora_unet_layers_0_attention_to_q.lora_up.weight", "F32", 64, 2}};
    refused(mixed, 2, PX_ECORRUPT,
            (const char *const[]){"unknown key lora_unet_layers_0_attention_to_q.lora_A.weight",
                                  "lora_unet_layers_0_attention_to_q.lora_up.weight without its "
                                  "down half", NULL}, -1);
}

/* --- the tiny model and the tool's files ------------------------------------------------ */

/* Makes the tiny fp32 model (seed 3) in dir/m/hf, LoRAs in every spelling
 * (rank 4, attention + FFN + adaLN, seed 1), a bf16 and an f16 one, a second LoRA
 * (kohya, rank 2, attention, no alpha, seed 2) and the model with both
 * merged at scales 0.8 and -0.5 — in one interpreter (torch's import is
 * most of the time). */
static void make_files(const char *dir)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import sys; sys.path.insert(0, 'tools'); "
             "import zimage_reference as z, zimage_lora as L; "
             "sys.argv = ['z', 'make', '%s/m', '--config', 'tiny', '--layouts', 'hf', "
             "'--seed', '3']; z.main()\n"
             "for s in ['peft', 'peft-bare', 'comfy', 'comfy-fused', 'kohya']:\n"
             "    sys.argv = ['L', 'write', '%s/' + s + '.safetensors', '--model', '%s/m/hf', "
             "'--spelling', s, '--rank', '4', '--targets', 'attn,ffn,ada', '--seed', '1']; L.main()\n"
             "sys.argv = ['L', 'write', '%s/bf16.safetensors', '--model', '%s/m/hf', '--rank', '4', "
             "'--targets', 'attn,ffn,ada', '--seed', '1', '--dtype', 'bf16']; L.main()\n"
             "sys.argv = ['L', 'write', '%s/f16.safetensors', '--model', '%s/m/hf', '--rank', '4', "
             "'--targets', 'attn,ffn,ada', '--seed', '1', '--dtype', 'f16']; L.main()\n"
             "sys.argv = ['L', 'write', '%s/two.safetensors', '--model', '%s/m/hf', '--spelling', "
             "'kohya', '--rank', '2', '--no-alpha', '--seed', '2']; L.main()\n"
             "sys.argv = ['L', 'merge', '%s/m/hf', '%s/merged', '--lora', '%s/comfy.safetensors:0.8', "
             "'--lora', '%s/two.safetensors:-0.5']; L.main()\" > /dev/null",
             dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir);
    sh(cmd);
}

static void same_deltas(const zi_lora *a, const zi_lora *b)
{
    T_EQ_INT(zi_lora_count(a), zi_lora_count(b));
    for (int i = 0; i < zi_lora_count(a); i++) {
        const zi_lora_delta *x = zi_lora_at(a, i), *y = zi_lora_at(b, i);
        T_EQ_INT(x->block, y->block);
        T_EQ_INT(x->site, y->site);
        T_EQ_INT(x->row0, y->row0);
        T_EQ_INT(x->rows, y->rows);
        T_EQ_INT(x->rank, y->rank);
        T_EQ_INT(x->in, y->in);
        T_NEAR(x->alpha_over_rank, y->alpha_over_rank, 0);
        T_EQ_INT(x->dtype, y->dtype);
        for (size_t k = 0; k < (size_t)x->rank * x->in; k++)
            T_NEAR(zi_lora_value(x->dtype, x->A, k), zi_lora_value(y->dtype, y->A, k), 0);
        for (size_t k = 0; k < (size_t)x->rows * x->rank; k++)
            T_NEAR(zi_lora_value(x->dtype, x->B, k), zi_lora_value(y->dtype, y->B, k), 0);
    }
}

/* Max |difference| of the weights two LoRAs merge into, over every linear. */
static double merged_diff(const zi_lora *a, const zi_lora *b, const zi_dit_config *c)
{
    int nb = 2 * c->n_refiner_layers + c->n_layers, D = c->dim, F = c->ffn_hidden;
    const int rows[ZI_LORA_NSITES] = {3 * D, D, F, D, F, 4 * D};
    const int in[ZI_LORA_NSITES] = {D, D, D, F, D, c->t_dim};
    double m = 0;
    for (int blk = 0; blk < nb; blk++)
        for (int s = 0; s < ZI_LORA_NSITES; s++) {
            size_t n = (size_t)rows[s] * in[s];
            float *wa = calloc(n, sizeof *wa), *wb = calloc(n, sizeof *wb);
            zi_lora_use ua = {a, 1.0f}, ub = {b, 1.0f};
            T_EQ_INT(zi_lora_merge(&ua, 1, blk, s, wa, rows[s], in[s]), 0);
            T_EQ_INT(zi_lora_merge(&ub, 1, blk, s, wb, rows[s], in[s]), 0);
            for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)wa[i] - wb[i]));
            free(wa), free(wb);
        }
    return m;
}

static void check_spellings(const char *dir, const zi_dit_config *c)
{
    zi_lora *peft = open_ok(dir, "peft.safetensors", c);
    T_EQ_INT(zi_lora_count(peft), 4 * 7 + 3); /* 4 blocks × q k v out w1 w2 w3, 3 adaLN */
    T_EQ_INT(zi_lora_max_rank(peft), 4);
    T_EQ_INT((int)zi_lora_site_mask(peft), (1 << ZI_LORA_NSITES) - 1);
    size_t bytes = 0;
    for (int i = 0; i < zi_lora_count(peft); i++) {
        const zi_lora_delta *d = zi_lora_at(peft, i);
        bytes += (size_t)d->rank * (d->in + d->rows) * sizeof(float);
    }
    T_EQ_INT((int)zi_lora_bytes(peft), (int)bytes);
    T_EQ_INT((int)bytes, 93180 - 31 * 4); /* the tool's F32 bytes less the 31 alphas */
    T_EQ_INT(zi_lora_spelling_of(peft), ZI_LORA_PEFT);
    T_NEAR(zi_lora_at(peft, 0)->alpha_over_rank, 0.5f, 0);
    const char *const files[] = {"peft-bare", "comfy", "kohya"};
    const zi_lora_spelling sp[] = {ZI_LORA_PEFT, ZI_LORA_COMFY, ZI_LORA_KOHYA};
    for (int i = 0; i < 3; i++) {
        char f[64];
        snprintf(f, sizeof f, "%s.safetensors", files[i]);
        zi_lora *o = open_ok(dir, f, c);
        printf("  %-12s %d deltas, spelling %s\n", files[i], zi_lora_count(o),
               zi_lora_spelling_name(zi_lora_spelling_of(o)));
        T_EQ_INT(zi_lora_spelling_of(o), sp[i]);
        same_deltas(peft, o);
        zi_lora_free(o);
    }
    /* fused qkv: one rank-12 delta per block instead of three slices, the
     * same merged weights */
    zi_lora *fused = open_ok(dir, "comfy-fused.safetensors", c);
    T_EQ_INT(zi_lora_count(fused), 4 * 5 + 3);
    int n;
    const zi_lora_delta *q = zi_lora_find(fused, 3, ZI_LORA_QKV, &n);
    T_EQ_INT(n, 1);
    T_EQ_INT(q->rows, 192);
    T_EQ_INT(q->rank, 12);
    double m = merged_diff(peft, fused, c);
    printf("  comfy-fused  merged weights max |diff| %.3g against peft\n", m);
    T_CMP_DBL(m, <, 1e-6);
    /* bf16: kept as BF16, each value the F32 one rounded, bit for bit, in
     * 64-byte aligned halves; half the bytes */
    zi_lora *bf = open_ok(dir, "bf16.safetensors", c);
    T_EQ_INT(zi_lora_count(bf), zi_lora_count(peft));
    for (int i = 0; i < zi_lora_count(bf); i++) {
        const zi_lora_delta *x = zi_lora_at(peft, i), *y = zi_lora_at(bf, i);
        T_EQ_INT(x->dtype, ZI_F32);
        T_EQ_INT(y->dtype, ZI_BF16);
        T_EQ_INT((int)((uintptr_t)y->A % 64), 0);
        T_EQ_INT((int)((uintptr_t)y->B % 64), 0);
        const float *xa = x->A, *xb = x->B;
        const uint16_t *ya = y->A, *yb = y->B;
        for (int k = 0; k < x->rank * x->in; k++) T_EQ_INT(ya[k], zi_f32_to_bf16(xa[k]));
        for (int k = 0; k < x->rows * x->rank; k++) T_EQ_INT(yb[k], zi_f32_to_bf16(xb[k]));
    }
    T_EQ_INT((int)zi_lora_bytes(bf), (int)bytes / 2);
    T_CMP_DBL(merged_diff(peft, bf, c), <, 0.05);
    zi_lora_free(bf);
    /* f16: widened to F32 (F16 -> BF16 would drop mantissa bits) */
    zi_lora *h = open_ok(dir, "f16.safetensors", c);
    for (int i = 0; i < zi_lora_count(h); i++) {
        const zi_lora_delta *x = zi_lora_at(peft, i), *y = zi_lora_at(h, i);
        T_EQ_INT(y->dtype, ZI_F32);
        for (size_t k = 0; k < (size_t)x->rank * x->in; k++) {
            float a = zi_lora_value(ZI_F32, x->A, k);
            T_NEAR(zi_lora_value(ZI_F32, y->A, k), a, fabsf(a) * 0x1p-11f + 0x1p-24f);
        }
    }
    T_EQ_INT((int)zi_lora_bytes(h), (int)bytes);
    zi_lora_free(h);
    zi_lora_free(fused);
    zi_lora_free(peft);
}

static zi_weights *open_dit(const char *dir, zi_dit_config *c, zi_dit **d)
{
    char path[600], err[512] = "";
    snprintf(path, sizeof path, "%s/transformer", dir);
    zi_weights *w = NULL;
    zi_load_opts o = {.convert_to = ZI_F32, .keep_bf16 = 1};
    if (zi_weights_open(path, ZI_PART_DIT, &o, &w, err, sizeof err))
        px_tfail(__FILE__, __LINE__, "zi_weights_open %s: %s", path, err);
    tiny(c);
    if (zi_dit_config_from_weights(w, c, err, sizeof err) || zi_dit_bind(w, c, d, err, sizeof err))
        px_tfail(__FILE__, __LINE__, "%s: %s", path, err);
    return w;
}

static void randn(float *v, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = ((float)(seed >> 8) / (float)(1u << 24) - 0.5f) * 3.0f;
    }
}

static double max_diff(const float *a, const float *b, size_t n, double *scale)
{
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        m = fmax(m, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    if (scale) *scale = s;
    return m;
}

#define LAT (16 * 8 * 10) /* latents [16, 8, 10] */

/* Run-time application against the tool's merged weights, and a batch
 * mixing LoRAs against each item alone. */
static void check_forward(const char *dir, const zi_dit_config *cfg)
{
    char path[600], err[512] = "";
    zi_dit_config c;
    zi_dit *base = NULL, *merged = NULL;
    snprintf(path, sizeof path, "%s/m/hf", dir);
    zi_weights *wb = open_dit(path, &c, &base);
    snprintf(path, sizeof path, "%s/merged", dir);
    zi_weights *wm = open_dit(path, &c, &merged);
    zi_lora *l1 = open_ok(dir, "comfy.safetensors", cfg), *l2 = open_ok(dir, "two.safetensors", cfg);
    zi_ctx *ctx = NULL;
    T_EQ_INT(zi_ctx_create(NULL, &ctx, err, sizeof err), 0);
    static float lat[3][LAT], text[3][40 * 32], out[4][LAT], solo[LAT], plain[LAT];
    const int tl[3] = {7, 40, 12};
    for (int i = 0; i < 3; i++) randn(lat[i], LAT, 11u + i), randn(text[i], 40 * 32, 99u + i);
    zi_lora_use both[2] = {{l1, 0.8f}, {l2, -0.5f}};
    zi_dit_input in = {lat[0], 300.0f, text[0], tl[0], both, 2};
    T_EQ_INT(zi_dit_forward(base, ctx, &in, 1, 8, 10, solo, NULL, err, sizeof err), 0);
    zi_dit_input pin = {lat[0], 300.0f, text[0], tl[0], NULL, 0};
    T_EQ_INT(zi_dit_forward(merged, ctx, &pin, 1, 8, 10, out[0], NULL, err, sizeof err), 0);
    T_EQ_INT(zi_dit_forward(base, ctx, &pin, 1, 8, 10, plain, NULL, err, sizeof err), 0);
    double s, m = max_diff(solo, out[0], LAT, &s), eff = max_diff(solo, plain, LAT, NULL);
    printf("  run-time LoRAs vs merged weights: max |diff| %.3g (max |out| %.3g, relative %.3g);"
           " the LoRAs change the output by up to %.3g\n", m, s, m / s, eff);
    T_CMP_DBL(m / s, <, 1e-4);
    T_CMP_DBL(eff, >, 100 * m);
    /* the BF16 LoRA (kept BF16: zi_op_matmul's BF16 path) against the same
     * LoRA in F32: apart by the rounding of its values only */
    zi_lora *lb = open_ok(dir, "bf16.safetensors", cfg);
    zi_lora_use ub = {lb, 0.8f}, uf = {l1, 0.8f};
    in = (zi_dit_input){lat[0], 300.0f, text[0], tl[0], &ub, 1};
    T_EQ_INT(zi_dit_forward(base, ctx, &in, 1, 8, 10, out[0], NULL, err, sizeof err), 0);
    in.loras = &uf;
    T_EQ_INT(zi_dit_forward(base, ctx, &in, 1, 8, 10, out[1], NULL, err, sizeof err), 0);
    m = max_diff(out[0], out[1], LAT, &s);
    eff = max_diff(out[1], plain, LAT, NULL);
    printf("  bf16 LoRA vs f32 LoRA at run time: max |diff| %.3g; the LoRA changes the output "
           "by up to %.3g\n", m, eff);
    T_CMP_DBL(m, <, 0.02 * eff);
    T_CMP_DBL(m, >, 0);
    zi_lora_free(lb);
    /* scale 0 is the base model exactly */
    zi_lora_use zero = {l1, 0.0f};
    in = (zi_dit_input){lat[0], 300.0f, text[0], tl[0], &zero, 1};
    T_EQ_INT(zi_dit_forward(base, ctx, &in, 1, 8, 10, out[0], NULL, err, sizeof err), 0);
    T_EQ_MEM(out[0], plain, sizeof plain);
    /* a mixed batch: LoRA 1 at 0.8; nothing; LoRA 1 at -0.3 and LoRA 2 */
    zi_lora_use u0 = {l1, 0.8f}, u2[2] = {{l1, -0.3f}, {l2, 1.0f}};
    zi_dit_input items[3] = {{lat[0], 300.0f, text[0], tl[0], &u0, 1},
                             {lat[1], 500.0f, text[1], tl[1], NULL, 0},
                             {lat[2], 100.0f, text[2], tl[2], u2, 2}};
    T_EQ_INT(zi_dit_forward(base, ctx, items, 3, 8, 10, out[0], NULL, err, sizeof err), 0);
    for (int i = 0; i < 3; i++) {
        T_EQ_INT(zi_dit_forward(base, ctx, &items[i], 1, 8, 10, solo, NULL, err, sizeof err), 0);
        m = max_diff(out[i], solo, LAT, &s);
        printf("  batch item %d vs alone: max |diff| %.3g (max |out| %.3g)\n", i, m, s);
        T_CMP_DBL(m / s, <, 1e-5);
    }
    /* a LoRA opened for another model (two refiner blocks: its layers.1 is
     * block 5) is refused before anything runs */
    zi_dit_config big = *cfg;
    big.n_refiner_layers = 2;
    zi_lora *l5 = NULL;
    snprintf(path, sizeof path, "%s/two.safetensors", dir);
    T_EQ_INT(zi_lora_open(path, &big, &l5, err, sizeof err), 0);
    zi_lora_use u5 = {l5, 1.0f};
    in = (zi_dit_input){lat[0], 300.0f, text[0], tl[0], &u5, 1};
    T_EQ_INT(zi_dit_forward(base, ctx, &in, 1, 8, 10, solo, NULL, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "opened for another model");
    zi_lora_free(l5);
    zi_ctx_destroy(ctx);
    zi_lora_free(l1), zi_lora_free(l2);
    zi_dit_free(base), zi_dit_free(merged);
    zi_weights_close(wb), zi_weights_close(wm);
}

TEST(t_model)
{
    const char *dir = px_test_tmpdir();
    make_files(dir);
    zi_dit_config c;
    tiny(&c);
    check_spellings(dir, &c);
    check_forward(dir, &c);
}

TEST_MAIN(t_refusals, t_merge_api, t_spelling_variants, t_model)
