/*
 * zc_dit.c — the Z-Image DiT on the GPU for a batch of items (zc_net.h).
 *
 * Layout: "padded items". The image stream XI has ni rows per item (the
 * patch tokens padded to a multiple of 32 with x_pad_token), the text
 * stream XT has T rows per item (T = the batch's largest padded text
 * length; item b's rows [L_b, Lp_b) are cap_pad_token and are attended,
 * rows [Lp_b, T) are dead: zeros, never keys), and the joint stream U has
 * S = ni + T rows per item: [image rows | text rows]. The valid keys are
 * then a prefix of each item's rows (ni + Lp_b of U, Lp_b of XT, ni of XI),
 * which is what the attention kernel's per-item key length expresses. So
 * an item's result does not depend on its batchmates (up to the GEMMs'
 * summation order, which cuBLASLt may pick per M).
 *
 * Every linear layer is one GEMM over all rows of the batch (dead rows
 * included: a little waste for one uniform shape per (batch, tokens)).
 * The text stream does not depend on the timestep (the context refiner is
 * unmodulated), so it is embedded and refined once per generation
 * (zc_plan_begin); a step (zc_plan_step) is the timestep embedding, the
 * image embedding, the noise refiner, the joint layers, the final layer
 * and the Euler update with CFG, captured as one CUDA graph per plan.
 *
 * Rounding differs from the CPU engine where bf16 enters: GEMM operands,
 * q/k/v and attention probabilities, and the residual stream (bf16 unless
 * PX_ZIMAGE_CUDA_RESID=fp32, as PyTorch's bf16 model keeps it); norms,
 * modulation and the latents are computed in fp32.
 */
#include "engine/zimage/cuda/zc_net.h"
#include "engine/zimage/cuda/zhgemm.h"

#include "core/alloc.h"
#include "core/env.h"
#include "core/err.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_prof.h"
#include "engine/zimage/cuda/zattn.h"
#include "engine/zimage/cuda/zattn_q8.h"
#include "engine/zimage/cuda/zc_attn8.h"
#include "engine/zimage/cuda/zc_fp8.h"
#include "engine/zimage/cuda/zkernels.h"
#include "engine/zimage/cuda/zlayout.h"
#include "engine/zimage/zops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_MULTI 32

/* Per-step values the host writes before each step (one pinned copy). */
typedef struct step_params {
    float t_in[ZC_MAX_ITEMS], dt[ZC_MAX_ITEMS], w[ZC_MAX_ITEMS];
} step_params;

/* Per-batch integers, uploaded once per generation. */
typedef struct batch_ints {
    int kv_i[ZC_MAX_ITEMS], kv_t[ZC_MAX_ITEMS], kv_u[ZC_MAX_ITEMS];
    int len_i[ZC_MAX_ITEMS], pad_i[ZC_MAX_ITEMS], len_t[ZC_MAX_ITEMS], pad_t[ZC_MAX_ITEMS];
    int lat_of[ZC_MAX_ITEMS], pos_of[ZC_MAX_ITEMS], neg_of[ZC_MAX_ITEMS];
} batch_ints;

struct zc_plan {
    zc_plan_key k;
    int nimg, ni, S, ri, rt, ru; /* image tokens, padded; rows per U item; rows of XI/XT/U */
    int n_images;
    float cfg_w[ZC_MAX_ITEMS]; /* per image (0: no guidance) */
    int lat_of[ZC_MAX_ITEMS];  /* per item: its image (the bound batch's) */
    int tab_lp[ZC_MAX_ITEMS];  /* per item: the padded text length the RoPE tables on the
                                  GPU are for (0: none yet; see tables) */
    zc_dev *d;
    void *mem;         /* one allocation, carved below */
    size_t bytes;      /* mem's size: what the cache reports it holds */
    void *U, *XI, *XT; /* the residual streams: fp32, bf16 when d->xbf */
    float *HF, *csi, *cst, *csu, *temb, *stemb, *fscale, *pred, *lat, *thid_f;
    float *mods[2]; /* adaLN modulation (B x 4D): blocks alternate, see run_blocks */
    void *HB, *QKV, *ATT, *FF, *tfreq, *thid, *temb_b, *stemb_b, *patch;
    void *x8;  /* fp8 devices: a block GEMM's input in e4m3 (B_X8), */
    float *xs; /* and its row scales (B_XS); empty otherwise */
    float *a8; /* fp8 devices: V's largest magnitude per item (B_A8, zattn_q8.h) */
    step_params *sp_dev, *sp_host; /* host: pinned */
    batch_ints *bi_dev;
    float *pred_out; /* the step's extra output (tests), NULL in graphs */
    zc_lora_bind *lora; /* the bound batch's LoRAs, NULL: none (zc_lora.h) */
    px_cuda_graph graph;
    px_cuda_prof *pf; /* PX_ZIMAGE_CUDA_PROFILE=1: this step's timing (a direct run) */
};

static int pad_to(int n)
{
    return (n + SEQ_MULTI - 1) / SEQ_MULTI * SEQ_MULTI;
}

/* Sizes of a plan's buffers in bytes, in carving order. */
enum { B_U, B_XI, B_XT, B_HF, B_CSI, B_CST, B_CSU, B_TEMB, B_STEMB, B_MOD, B_FSCALE, B_PRED,
       B_LAT, B_HB, B_QKV, B_ATT, B_FF, B_TFREQ, B_THID, B_TEMBB, B_STEMBB, B_PATCH, B_SP, B_BI,
       B_THIDF, B_X8, B_XS, B_A8, B_N };

/* fp8: B_X8 and B_XS, the e4m3 copy of a block GEMM's input (at most every
 * U row, K = dim or ffn_hidden) and its row scales; empty otherwise. */
static void plan_sizes(const zi_dit_config *c, const zc_plan_key *k, int fp8, int xbf, size_t *sz)
{
    size_t D = (size_t)c->dim, hd = D / (size_t)c->n_heads, B = (size_t)k->B;
    size_t ni = (size_t)pad_to(k->ht * k->wt), T = (size_t)k->T, ru = B * (ni + T);
    size_t pf = (size_t)c->patch * c->patch * c->in_channels;
    size_t H = (size_t)(c->cap_feat_dim > c->dim ? c->cap_feat_dim : c->dim);
    size_t lat = B * (size_t)c->in_channels * k->ht * c->patch * k->wt * c->patch;
    size_t xs = xbf ? 2 : 4;
    size_t s[B_N] = {
        [B_U] = ru * D * xs, [B_XI] = B * ni * D * xs, [B_XT] = B * T * D * xs,
        [B_HF] = ru * H * 4, [B_CSI] = B * ni * hd * 4, [B_CST] = B * T * hd * 4,
        [B_CSU] = ru * hd * 4, [B_TEMB] = B * (size_t)c->t_dim * 4,
        [B_STEMB] = B * (size_t)c->t_dim * 4, [B_MOD] = 2 * B * 4 * D * 4, [B_FSCALE] = B * D * 4,
        [B_PRED] = ru * pf * 4, [B_LAT] = lat * 4, [B_HB] = ru * H * 2, [B_QKV] = ru * 3 * D * 2,
        [B_ATT] = ru * D * 2, [B_FF] = ru * 2 * (size_t)c->ffn_hidden * 2,
        [B_TFREQ] = B * (size_t)c->t_freq * 2, [B_THID] = B * (size_t)c->t_hidden * 2,
        [B_TEMBB] = B * (size_t)c->t_dim * 2, [B_STEMBB] = B * (size_t)c->t_dim * 2,
        [B_PATCH] = B * ni * pf * 2, [B_SP] = sizeof(step_params), [B_BI] = sizeof(batch_ints),
        [B_THIDF] = B * (size_t)c->t_hidden * 4,
        [B_X8] = fp8 ? ru * (size_t)zc_fp8_ld(c->ffn_hidden > c->dim ? c->ffn_hidden : c->dim) : 0,
        [B_XS] = fp8 ? ru * 4 : 0, [B_A8] = fp8 ? B * 4 : 0};
    for (int i = 0; i < B_N; i++) sz[i] = (s[i] + 255) / 256 * 256;
}

size_t zc_plan_bytes(const zi_dit_config *c, const zc_plan_key *k)
{
    size_t sz[B_N], t = 0;
    plan_sizes(c, k, 0, 0, sz); /* an fp32 residual: the larger, an upper bound */
    for (int i = 0; i < B_N; i++) t += sz[i];
    return t;
}

size_t zc_plan_fp8_bytes(const zi_dit_config *c, const zc_plan_key *k)
{
    size_t sz[B_N];
    plan_sizes(c, k, 1, 0, sz);
    return sz[B_X8] + sz[B_XS] + sz[B_A8];
}

static void plan_destroy(void *arg, void *plan)
{
    (void)arg;
    zc_plan *p = plan;
    if (!p) return;
    zc_lora_bind_free(p->d->lora, p->lora);
    px_cuda_graph_free(&p->graph);
    if (p->mem) cudaFree(p->mem);
    if (p->sp_host) cudaFreeHost(p->sp_host);
    free(p);
}

static int plan_build(void *arg, const void *key, void **out, char *err, size_t errlen)
{
    zc_dev *d = arg;
    const zc_plan_key *k = key;
    int rc = 0;
    zc_plan *p = px_xcalloc(1, sizeof *p);
    p->k = *k;
    p->d = d;
    p->nimg = k->ht * k->wt;
    p->ni = pad_to(p->nimg);
    p->S = p->ni + k->T;
    p->ri = k->B * p->ni, p->rt = k->B * k->T, p->ru = k->B * p->S;
    size_t sz[B_N], total = 0;
    plan_sizes(&d->dc, k, d->fp8, d->xbf, sz);
    for (int i = 0; i < B_N; i++) total += sz[i];
    PX_CUDA_CHECK(cudaMalloc(&p->mem, total));
    p->bytes = total;
    PX_CUDA_CHECK(cudaMallocHost((void **)&p->sp_host, sizeof *p->sp_host));
    char *m = p->mem;
    void *b[B_N];
    for (int i = 0; i < B_N; i++) b[i] = m, m += sz[i];
    p->U = b[B_U], p->XI = b[B_XI], p->XT = b[B_XT], p->HF = b[B_HF];
    p->csi = b[B_CSI], p->cst = b[B_CST], p->csu = b[B_CSU], p->temb = b[B_TEMB];
    p->stemb = b[B_STEMB], p->fscale = b[B_FSCALE], p->pred = b[B_PRED];
    p->mods[0] = b[B_MOD], p->mods[1] = p->mods[0] + (size_t)k->B * 4 * d->dc.dim;
    p->lat = b[B_LAT], p->HB = b[B_HB], p->QKV = b[B_QKV], p->ATT = b[B_ATT], p->FF = b[B_FF];
    p->tfreq = b[B_TFREQ], p->thid = b[B_THID], p->temb_b = b[B_TEMBB];
    p->stemb_b = b[B_STEMBB], p->patch = b[B_PATCH], p->sp_dev = b[B_SP], p->bi_dev = b[B_BI];
    p->thid_f = b[B_THIDF];
    p->x8 = b[B_X8], p->xs = b[B_XS], p->a8 = b[B_A8];
    /* Dead rows and never-written pads must hold numbers, not garbage. */
    PX_CUDA_CHECK(cudaMemsetAsync(p->mem, 0, total, d->ctx->stream));
    *out = p;
    return 0;
fail:
    plan_destroy(NULL, p);
    return rc;
}

static size_t plan_held(void *arg, const void *plan)
{
    (void)arg;
    return ((const zc_plan *)plan)->bytes;
}

px_cuda_plans *zc_plans_create(zc_dev *d)
{
    px_cuda_plan_ops ops = {
        .build = plan_build, .destroy = plan_destroy, .bytes = plan_held, .arg = d};
    /* A few shapes per device: each 1024² batch-8 plan is gigabytes. */
    return px_cuda_plans_create(sizeof(zc_plan_key), 4, &ops);
}

int zc_plan_get(zc_dev *d, const zc_plan_key *k, zc_plan **out, char *err, size_t errlen)
{
    zc_plan_key key;
    memset(&key, 0, sizeof key);
    key = *k;
    if (k->B < 1 || k->B > ZC_MAX_ITEMS || k->n_images < 1 || k->n_images > k->B || k->ht < 1 ||
        k->wt < 1 || k->T < SEQ_MULTI || k->T % SEQ_MULTI)
        return px_errf(err, errlen, PX_EINVAL, "zimage-cuda: plan %d items, %dx%d patches, T %d",
                       k->B, k->ht, k->wt, k->T);
    void *p;
    int rc = px_cuda_plans_get(d->plans, &key, &p, err, errlen);
    *out = rc ? NULL : p;
    return rc;
}

const float *zc_plan_latents(const zc_plan *p)
{
    return p->lat;
}

void zc_plan_end(zc_dev *d, zc_plan *p)
{
    zc_lora_bind_free(d->lora, p->lora);
    p->lora = NULL;
}

/* ------------------------------------------------------------ one block */

static int gemm(zc_dev *d, const void *x, int ldx, int M, int K, const void *w, int N,
                const float *bias, void *y, int ldy, zc_type yt, char *err, size_t errlen)
{
    zc_gemm_args a = {.x = x, .ldx = ldx, .M = M, .K = K, .w = w, .N = N, .bias = bias, .y = y,
                      .ldy = ldy, .yt = yt};
    return zc_gemm_run(d->gemm, &a, err, errlen);
}

/* A block's big linear (zc_lin): bf16, or fp8 with x quantized into the
 * plan's scratch (p->x8, p->xs) — by the kernel that wrote x when ready
 * (q8_for). */
static int gemm_lin(zc_plan *p, const void *x, int ldx, int M, int K, const zc_lin *l, int N,
                    void *y, int ldy, zc_type yt, int ready, char *err, size_t errlen)
{
    zc_gemm_args a = {.x = x, .ldx = ldx, .M = M, .K = K, .w = l->w, .N = N, .y = y,
                      .ldy = ldy, .yt = yt, .w8 = l->w8, .w_scale = l->scale,
                      .x8 = p->x8, .x_scale = p->xs, .x8_ready = ready};
    return zc_gemm_run(p->d->gemm, &a, err, errlen);
}

/* A stream of the batch: x (the residual, bf16 when d->xbf else fp32), n
 * items of S rows, key lengths, RoPE. */
typedef struct stream {
    void *x;
    int S;
    const int *kv_len;
    const float *cs;
} stream;

/* The bound LoRAs' deltas of one group of block bi after its base GEMM
 * (x its input, y its output: zc_lora_apply); nothing without LoRAs. */
static int lora(zc_plan *p, int bi, zc_lora_group grp, const void *x, int ldx, int S, void *y,
                int ldy, zc_type yt, char *err, size_t errlen)
{
    if (!p->lora) return 0;
    return zc_lora_apply(p->d->lora, p->d->gemm, p->lora, bi, grp, x, ldx, S, y, ldy, yt,
                         p->d->dc.ffn_hidden, err, errlen);
}

/* Marks the end of a profiled part of the step (no-op unless profiling). */
static void mark(const zc_plan *p, const char *label)
{
    px_cuda_prof_mark(p->pf, label);
}

/* d's residual streams' type, for the GEMMs that write them (the
 * embedders; zc_gemm adds a bf16 y's bias by a kernel). */
static zc_type resid_type(const zc_dev *d)
{
    return d->xbf ? ZC_BF16 : ZC_F32;
}

/* Whether the kernel writing linear l's input (a norm, SwiGLU) writes its
 * fp8 copy too (zc_q8: the pass over it that the GEMM's quantization
 * would make saved; y then need not be written in bf16): an fp8 linear,
 * the fused kernels, no LoRA (its deltas read the bf16 input). */
static int q8_for(const zc_plan *p, const zc_lin *l)
{
    static int on = -1; /* PX_ZIMAGE_CUDA_Q8=0: the GEMMs quantize (to compare) */
    return px_env_on_unless_0("PX_ZIMAGE_CUDA_Q8", &on) && p->d->fp8 && l->w8 && !p->lora &&
           zc_wide_kernels();
}

/* The plan's e4m3 scratch as a kernel's q8 output for rows of K. */
static zc_q8 q8_of(const zc_plan *p, int K)
{
    return (zc_q8){.q = p->x8, .scale = p->xs, .ld = zc_fp8_ld(K)};
}

/* Whether block bl's attention over stream st runs in fp8 (cuDNN's fp8
 * SDPA on e4m3 Q, K, V, zattn_q8.h): where the device's policy allows it
 * for items this long (zc_attn8.h) and the out projection takes an fp8
 * copy from the kernel before it (q8_for). */
static int attn8_for(const zc_plan *p, const zc_dblock *bl, const stream *st)
{
    return zc_attn8_allowed(p->d, st->S) && q8_for(p, &bl->out) && bl->qk8_dev;
}

/* Block bl's fp8 attention: the e4m3 Q and K from the q/k norm + RoPE and
 * V from its per-item scale (zattn_q8.h) into FF (rows of 3D bytes), then
 * cuDNN's fp8 SDPA writing O's e4m3 codes into x8 with 1/s_b as each row's
 * scale in xs: the out projection's fp8 input, ready. QKV is only read, so
 * on cudaErrorNotSupported (cuDNN did not run it) the bf16 path can still
 * run from it. 0 or a cudaError_t. */
static int attn8(zc_plan *p, const zc_dblock *bl, const stream *st)
{
    zc_dev *d = p->d;
    const zi_dit_config *c = &d->dc;
    cudaStream_t s = d->ctx->stream;
    int D = c->dim, H = c->n_heads, rows = p->k.B * st->S, ld8 = 3 * D, rc;
    uint8_t *q8 = p->FF;
    if ((rc = cudaMemsetAsync(p->a8, 0, (size_t)p->k.B * sizeof(float), s)) ||
        (rc = zc_qknorm_rope_q8(s, p->QKV, 3 * D, 0, rows, H, d->hd, bl->q_norm, c->norm_eps,
                                st->cs, 0, q8, ld8, bl->qk8[0])) ||
        (rc = zc_qknorm_rope_q8(s, p->QKV, 3 * D, D, rows, H, d->hd, bl->k_norm, c->norm_eps,
                                st->cs, 0, q8, ld8, bl->qk8[1])) ||
        (rc = zattn_q8_v_amax(s, p->QKV, 3 * D, 2 * D, rows, D, st->S, p->a8)) ||
        (rc = zattn_q8_v_quant(s, p->QKV, 3 * D, 2 * D, rows, D, st->S, p->a8, q8, ld8, p->xs)))
        return rc;
    mark(p, "q/k norm + RoPE, V scale (fp8)");
    zc_attn a = {.q = q8, .k = q8 + D, .v = q8 + 2 * D, .o = p->x8, .ldq = ld8, .ldk = ld8,
                 .ldv = ld8, .ldo = zc_fp8_ld(D), .n_items = p->k.B, .S_q = st->S,
                 .S_kv = st->S, .n_q = st->S, .kv_len = st->kv_len, .n_heads = H,
                 .n_kv_heads = H, .head_dim = d->hd, .scale = 1.0f / sqrtf((float)d->hd),
                 .fp8 = 1, .descale_qk = bl->qk8_dev};
    if (!(rc = zc_attention(s, &a))) mark(p, "attention (fp8)");
    return rc;
}

/* Block bl's adaLN modulation into mod (B x 4D: scale, gate of the
 * attention, scale, gate of the feed-forward). */
static int adaln(zc_plan *p, const zc_dblock *bl, float *mod, char *err, size_t errlen)
{
    zc_dev *d = p->d;
    const zi_dit_config *c = &d->dc;
    int D = c->dim, B = p->k.B, rc = 0;
    if ((rc = gemm(d, p->temb_b, c->t_dim, B, c->t_dim, bl->ada_w, 4 * D, bl->ada_b, mod, 4 * D,
                   ZC_F32, err, errlen)) ||
        (rc = lora(p, (int)(bl - d->blocks), ZC_LORA_ADA, p->temb_b, c->t_dim, 1, mod, 4 * D,
                   ZC_F32, err, errlen)))
        goto fail;
    PX_CUDA_LAUNCH_CHECK(zc_modulation((cudaStream_t)d->ctx->stream, mod, B, D));
    mark(p, "adaLN modulation");
fail:
    return rc;
}

/* The type of the attention out and feed-forward w2 projections'
 * outputs, which only the gated residual reads (its RMSNorm in fp32):
 * bf16 as PyTorch's Linear writes it (half the bytes written by the GEMM
 * and read by the residual; with the VAE's folded biases 0.813 -> 0.803 s
 * a 1024² image on an H100, 2026-12-06), fp32 with PX_ZIMAGE_CUDA_FUSE=0
 * (the kernels of before, for comparing). */
static zc_type proj_out(void)
{
    return zc_wide_kernels() ? ZC_BF16 : ZC_F32;
}

/* A block's first half: adaLN, norm (both done already when `normed`: the
 * block before wrote them), qkv, q/k norm + RoPE, attention, out, gated
 * residual (and, fused, the second half's norm into HB). mod: the
 * block's modulation buffer, NULL for a block without one. */
static int block_attn(zc_plan *p, const zc_dblock *bl, const stream *st, float *mod, int normed,
                      char *err, size_t errlen)
{
    zc_dev *d = p->d;
    const zi_dit_config *c = &d->dc;
    cudaStream_t s = d->ctx->stream;
    int D = c->dim, B = p->k.B, rows = B * st->S, rc = 0;
    int bi = (int)(bl - d->blocks), S = st->S, xbf = d->xbf;
    float eps = c->norm_eps;
    if (!normed) {
        if (mod && (rc = adaln(p, bl, mod, err, errlen))) goto fail;
        PX_CUDA_LAUNCH_CHECK(zc_rmsnorm_mod(s, st->x, xbf, D, rows, D, bl->n1, eps, mod, 4 * D,
                                            st->S, p->HB, D));
        mark(p, "norm");
    }
    /* normed: the block before wrote HB, and its q8 copy when q8_for. */
    if ((rc = gemm_lin(p, p->HB, D, rows, D, &bl->qkv, 3 * D, p->QKV, 3 * D, ZC_BF16,
                       normed && q8_for(p, &bl->qkv), err, errlen)) ||
        (rc = lora(p, bi, ZC_LORA_QKV, p->HB, D, S, p->QKV, 3 * D, ZC_BF16, err, errlen)))
        goto fail;
    mark(p, "gemm qkv");
    /* 0: the fp8 attention ran (O's e4m3 copy is the out GEMM's input);
     * cudaErrorNotSupported: the bf16 attention runs instead. */
    int bf16_attn = attn8_for(p, bl, st) ? attn8(p, bl, st) : cudaErrorNotSupported;
    if (bf16_attn && bf16_attn != cudaErrorNotSupported) PX_CUDA_LAUNCH_CHECK(bf16_attn);
    if (bf16_attn) {
        PX_CUDA_LAUNCH_CHECK(zc_qknorm_rope(s, p->QKV, 3 * D, 0, rows, c->n_heads, d->hd,
                                            bl->q_norm, eps, st->cs, 0, 1));
        PX_CUDA_LAUNCH_CHECK(zc_qknorm_rope(s, p->QKV, 3 * D, D, rows, c->n_heads, d->hd,
                                            bl->k_norm, eps, st->cs, 0, 1));
        mark(p, "q/k norm + RoPE");
        zc_attn a = {.q = p->QKV, .k = (uint16_t *)p->QKV + D, .v = (uint16_t *)p->QKV + 2 * D,
                     .o = p->ATT, .ldq = 3 * D, .ldk = 3 * D, .ldv = 3 * D, .ldo = D,
                     .n_items = B, .S_q = st->S, .S_kv = st->S, .n_q = st->S,
                     .kv_len = st->kv_len, .n_heads = c->n_heads, .n_kv_heads = c->n_heads,
                     .head_dim = d->hd, .scale = 1.0f / sqrtf((float)d->hd)};
        PX_CUDA_LAUNCH_CHECK(zc_attention(s, &a));
        mark(p, "attention");
    }
    zc_type ht = proj_out();
    int hbf = ht == ZC_BF16;
    if ((rc = gemm_lin(p, p->ATT, D, rows, D, &bl->out, D, p->HF, D, ht, !bf16_attn, err,
                       errlen)) ||
        (rc = lora(p, bi, ZC_LORA_OUT, p->ATT, D, S, p->HF, D, ht, err, errlen)))
        goto fail;
    mark(p, "gemm out");
    /* With the wide kernels a gated residual also writes the norm that
     * reads its result (the feed-forward's here, the next block's after the
     * feed-forward: zc_gated_residual_norm, one pass over the residual
     * stream fewer each); PX_ZIMAGE_CUDA_FUSE=0 runs them apart. */
    if (zc_wide_kernels()) {
        int q8 = q8_for(p, &bl->w13);
        zc_q8 q = q8_of(p, D);
        PX_CUDA_LAUNCH_CHECK(zc_gated_residual_norm(
            s, st->x, xbf, D, p->HF, hbf, D, rows, D, bl->n2, eps, mod ? mod + D : NULL, 4 * D,
            st->S,
            bl->f1, mod ? mod + 2 * D : NULL, 4 * D, q8 && zc_q8_fusable(D) ? NULL : p->HB, D,
            q8 ? &q : NULL));
        mark(p, "gated residual + norm");
    } else {
        PX_CUDA_LAUNCH_CHECK(zc_gated_residual(s, st->x, xbf, D, p->HF, hbf, D, rows, D, bl->n2,
                                               eps, mod ? mod + D : NULL, 4 * D, st->S));
        mark(p, "gated residual");
    }
fail:
    return rc;
}

/* The feed-forward's first half: w1|w3 and SwiGLU, h left in FF's first F
 * columns (w2 reads it there). Fused into one GEMM of ours where the device
 * runs it (zc_dev.glu) and w13 is bf16; else cuBLASLt and a SwiGLU pass,
 * which writes h's e4m3 copy too when w2 is fp8 (*q8 = 1: w2's input is
 * ready; fused, w2 quantizes h itself). */
static int ffn_gate_up(zc_plan *p, const zc_dblock *bl, int rows, int S, int *q8, char *err,
                       size_t errlen)
{
    zc_dev *d = p->d;
    cudaStream_t s = d->ctx->stream;
    int D = d->dc.dim, F = d->dc.ffn_hidden, bi = (int)(bl - d->blocks), rc = 0;
    zc_hgemm_args h = {.x = p->HB,
                       .ldx = D,
                       .M = rows,
                       .K = D,
                       .w = bl->w13.w,
                       .N = F,
                       .glu = 1,
                       .glu_off = F,
                       .y = p->FF,
                       .ldy = 2 * F};
    int glu = d->glu && !bl->w13.w8 && zc_hgemm_fits(&h);
    *q8 = !glu && q8_for(p, &bl->w2);
    if (glu) {
        /* LoRAs: their deltas (zero for items without one) first, into FF,
         * which the GEMM adds to gate and up: an item's h is the same bits
         * whatever its batchmates */
        if (p->lora) {
            PX_CUDA_CHECK(cudaMemsetAsync(p->FF, 0, (size_t)rows * 2 * F * 2, s));
            if ((rc = lora(p, bi, ZC_LORA_W13, p->HB, D, S, p->FF, 2 * F, ZC_BF16, err, errlen)))
                goto fail;
            h.add = p->FF, h.ld_add = 2 * F;
        }
        PX_CUDA_LAUNCH_CHECK(zc_hgemm_run(s, &h));
        mark(p, "gemm w1|w3 + SwiGLU");
        return 0;
    }
    if ((rc = gemm_lin(p, p->HB, D, rows, D, &bl->w13, 2 * F, p->FF, 2 * F, ZC_BF16,
                       q8_for(p, &bl->w13), err, errlen)) ||
        (rc = lora(p, bi, ZC_LORA_W13, p->HB, D, S, p->FF, 2 * F, ZC_BF16, err, errlen)))
        goto fail;
    mark(p, "gemm w1|w3");
    zc_q8 q = q8_of(p, F);
    if (*q8)
        PX_CUDA_LAUNCH_CHECK(zc_fp8_swiglu(s, p->FF, 2 * F, rows, F, 0, &q));
    else
        PX_CUDA_LAUNCH_CHECK(zc_swiglu(s, p->FF, 2 * F, rows, F));
    mark(p, "SwiGLU");
fail:
    return rc;
}

/* Its second half: norm (unless block_attn wrote it), w1|w3, SwiGLU, w2,
 * gated residual; with `next` (the block after, in the same stream) also
 * next's adaLN into next_mod and its first norm into HB. */
static int block_ffn(zc_plan *p, const zc_dblock *bl, const stream *st, float *mod,
                     const zc_dblock *next, float *next_mod, char *err, size_t errlen)
{
    zc_dev *d = p->d;
    const zi_dit_config *c = &d->dc;
    cudaStream_t s = d->ctx->stream;
    int D = c->dim, F = c->ffn_hidden, rows = p->k.B * st->S, rc = 0;
    int bi = (int)(bl - d->blocks), S = st->S, xbf = d->xbf;
    float eps = c->norm_eps;
    if (!zc_wide_kernels()) {
        PX_CUDA_LAUNCH_CHECK(zc_rmsnorm_mod(s, st->x, xbf, D, rows, D, bl->f1, eps,
                                            mod ? mod + 2 * D : NULL, 4 * D, st->S, p->HB, D));
        mark(p, "norm");
    }
    int q8 = 0;
    if ((rc = ffn_gate_up(p, bl, rows, S, &q8, err, errlen))) goto fail;
    zc_type ht = proj_out();
    int hbf = ht == ZC_BF16;
    if ((rc = gemm_lin(p, p->FF, 2 * F, rows, F, &bl->w2, D, p->HF, D, ht, q8, err, errlen)) ||
        (rc = lora(p, bi, ZC_LORA_W2, p->FF, 2 * F, S, p->HF, D, ht, err, errlen)))
        goto fail;
    mark(p, "gemm w2");
    if (next) {
        if (next_mod && (rc = adaln(p, next, next_mod, err, errlen))) goto fail;
        int nq8 = q8_for(p, &next->qkv);
        zc_q8 nq = q8_of(p, D);
        PX_CUDA_LAUNCH_CHECK(zc_gated_residual_norm(
            s, st->x, xbf, D, p->HF, hbf, D, rows, D, bl->f2, eps, mod ? mod + 3 * D : NULL, 4 * D,
            st->S, next->n1, next_mod, 4 * D, nq8 && zc_q8_fusable(D) ? NULL : p->HB, D,
            nq8 ? &nq : NULL));
        mark(p, "gated residual + norm");
    } else {
        PX_CUDA_LAUNCH_CHECK(zc_gated_residual(s, st->x, xbf, D, p->HF, hbf, D, rows, D, bl->f2,
                                               eps, mod ? mod + 3 * D : NULL, 4 * D, st->S));
        mark(p, "gated residual");
    }
fail:
    return rc;
}

/* Blocks [first, last) over one stream. Fused, each block's last residual
 * writes the next block's first norm, so the next block's modulation is
 * made before it: consecutive blocks take the two buffers in turn. */
static int run_blocks(zc_plan *p, int first, int last, const stream *st, char *err,
                      size_t errlen)
{
    int rc = 0, normed = 0;
    for (int i = first; i < last && !rc; i++) {
        const zc_dblock *bl = &p->d->blocks[i];
        const zc_dblock *next = zc_wide_kernels() && i + 1 < last ? bl + 1 : NULL;
        float *mod = bl->ada_w ? p->mods[i & 1] : NULL;
        float *next_mod = next && next->ada_w ? p->mods[(i + 1) & 1] : NULL;
        rc = block_attn(p, bl, st, mod, normed, err, errlen);
        if (!rc) rc = block_ffn(p, bl, st, mod, next, next_mod, err, errlen);
        normed = next != NULL;
    }
    return rc;
}

/* ------------------------------------------------------ per generation */

/* RoPE tables of XI, XT and U (zi_rope_table: the CPU engine's rounding).
 * Within a plan the positions depend on each item's padded text length
 * alone, so tables already on the GPU for the same lengths are kept: a
 * 1024² plan's are 4 MB computed and uploaded on the host before the first
 * step. */
static int tables(zc_plan *p, const zc_batch *bt, char *err, size_t errlen)
{
    const zi_dit_config *c = &p->d->dc;
    int B = p->k.B, T = p->k.T, hd = p->d->hd, rc = 0, same = 1;
    for (int b = 0; b < B; b++) same &= p->tab_lp[b] == pad_to(bt->text_len[b]);
    if (same) return 0;
    memset(p->tab_lp, 0, sizeof p->tab_lp); /* until the new ones are there */
    int *pos = px_alloc_array((size_t)p->ru * 3, sizeof *pos);
    float *cs = px_alloc_array((size_t)p->ru * hd, sizeof *cs);
    if (!pos || !cs) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
        goto fail;
    }
    /* U rows in order; XI and XT tables are the matching slices. */
    memset(pos, 0, (size_t)p->ru * 3 * sizeof *pos);
    for (int b = 0; b < B; b++) {
        int lp = pad_to(bt->text_len[b]);
        int *u = pos + (size_t)b * p->S * 3;
        for (int t = 0; t < p->nimg; t++)
            u[t * 3] = lp + 1, u[t * 3 + 1] = t / p->k.wt, u[t * 3 + 2] = t % p->k.wt;
        for (int t = 0; t < T; t++) u[(p->ni + t) * 3] = 1 + t;
    }
    zi_rope_table(pos, p->ru, 3, c->axes_dims, c->rope_theta, cs);
    cudaStream_t s = p->d->ctx->stream;
    /* Every upload a step reads goes on s: the legacy stream a plain
     * cudaMemcpy uses is not ordered with s (non-blocking), and from
     * pageable memory its DMA may still run when it returns. */
    PX_CUDA_CHECK(cudaMemcpyAsync(p->csu, cs, (size_t)p->ru * hd * sizeof *cs,
                                  cudaMemcpyHostToDevice, s));
    for (int b = 0; b < B; b++) {
        const float *u = cs + (size_t)b * p->S * hd;
        PX_CUDA_CHECK(cudaMemcpyAsync(p->csi + (size_t)b * p->ni * hd, u,
                                      (size_t)p->ni * hd * sizeof *cs, cudaMemcpyHostToDevice, s));
        PX_CUDA_CHECK(cudaMemcpyAsync(p->cst + (size_t)b * T * hd, u + (size_t)p->ni * hd,
                                      (size_t)T * hd * sizeof *cs, cudaMemcpyHostToDevice, s));
    }
    PX_CUDA_CHECK(cudaStreamSynchronize(s)); /* cs is freed below */
    for (int b = 0; b < B; b++) p->tab_lp[b] = pad_to(bt->text_len[b]);
fail:
    free(pos);
    free(cs);
    return rc;
}

static int upload_ints(zc_plan *p, const zc_batch *bt, char *err, size_t errlen)
{
    int rc = 0;
    batch_ints bi;
    memset(&bi, 0, sizeof bi);
    for (int b = 0; b < p->k.B; b++) {
        int lp = pad_to(bt->text_len[b]);
        bi.kv_i[b] = p->ni, bi.kv_t[b] = lp, bi.kv_u[b] = p->ni + lp;
        bi.len_i[b] = p->nimg, bi.pad_i[b] = p->ni;
        bi.len_t[b] = bt->text_len[b], bi.pad_t[b] = lp;
        bi.lat_of[b] = b < bt->n_items ? bt->lat_of[b] : 0;
    }
    for (int i = 0; i < bt->n_images; i++) bi.pos_of[i] = bt->pos_of[i], bi.neg_of[i] = bt->neg_of[i];
    /* Staged before it returns (pageable): bi may go out of scope. */
    PX_CUDA_CHECK(cudaMemcpyAsync(p->bi_dev, &bi, sizeof bi, cudaMemcpyHostToDevice,
                                  p->d->ctx->stream));
fail:
    return rc;
}

int zc_plan_begin(zc_dev *d, zc_plan *p, const zc_batch *bt, const float *latents, char *err,
                  size_t errlen)
{
    const zi_dit_config *c = &d->dc;
    cudaStream_t s = d->ctx->stream;
    int B = p->k.B, T = p->k.T, D = c->dim, H = c->cap_feat_dim, rc = 0;
    if (bt->n_items != B || bt->n_images != p->k.n_images)
        return px_errf(err, errlen, PX_EINVAL, "zimage-cuda: batch of %d items for a plan of %d",
                       bt->n_items, B);
    for (int b = 0; b < B; b++)
        if (bt->text_len[b] < 1 || pad_to(bt->text_len[b]) > T || bt->text_len[b] > bt->lmax)
            return px_errf(err, errlen, PX_EINVAL, "zimage-cuda: item %d: %d text tokens", b,
                           bt->text_len[b]);
    p->n_images = bt->n_images;
    for (int i = 0; i < bt->n_images; i++) p->cfg_w[i] = bt->neg_of[i] >= 0 ? bt->cfg_w[i] : 0;
    for (int b = 0; b < B; b++) p->lat_of[b] = bt->lat_of[b];
    PX_CUDA_CHECK(cudaStreamSynchronize(s)); /* the plan's memset, a previous batch */
    zc_plan_end(d, p);
    if ((rc = tables(p, bt, err, errlen)) || (rc = upload_ints(p, bt, err, errlen)) ||
        (rc = zc_lora_bind_create(d->lora, bt->loras, bt->nloras, B, (size_t)p->ru, &p->lora,
                                  err, errlen)))
        goto fail;
    size_t lat = (size_t)c->in_channels * p->k.ht * c->patch * p->k.wt * c->patch;
    if (latents)
        PX_CUDA_CHECK(cudaMemcpyAsync(p->lat, latents,
                                      (size_t)bt->n_images * lat * sizeof(float),
                                      cudaMemcpyHostToDevice, s));
    else /* each image's own device copy (a continuous batch's survivors) */
        for (int i = 0; i < bt->n_images; i++)
            PX_CUDA_CHECK(cudaMemcpyAsync(p->lat + i * lat, bt->lat_dev[i], lat * sizeof(float),
                                          cudaMemcpyDeviceToDevice, s));
    /* Text: the encoder's rows (Lmax per item) into T rows per item of HF
     * (as scratch), normed into HB, embedded into XT, pads, refined. */
    PX_CUDA_CHECK(cudaMemsetAsync(p->HF, 0, (size_t)B * T * H * sizeof(float), s));
    PX_CUDA_LAUNCH_CHECK(zc_copy_rows(s, p->HF, T, 0, d->tb.x, bt->lmax, bt->lmax, B, H, 0));
    PX_CUDA_LAUNCH_CHECK(zc_rmsnorm_mod(s, p->HF, 0, H, p->rt, H, d->cap_norm, c->norm_eps, NULL, 0,
                                        0, p->HB, H));
    if ((rc = gemm(d, p->HB, H, p->rt, H, d->cap_w, D, d->cap_b, p->XT, D, resid_type(d), err,
                   errlen)))
        goto fail;
    PX_CUDA_LAUNCH_CHECK(zc_pad_rows(s, p->XT, d->xbf, B, T, D, p->bi_dev->len_t, p->bi_dev->pad_t,
                                     d->cap_pad));
    stream st = {p->XT, T, p->bi_dev->kv_t, p->cst};
    if ((rc = run_blocks(p, c->n_refiner_layers, 2 * c->n_refiner_layers, &st, err, errlen)))
        goto fail;
fail:
    return rc;
}

/* ---------------------------------------------------------------- step */

static int final_layer(zc_plan *p, char *err, size_t errlen)
{
    zc_dev *d = p->d;
    const zi_dit_config *c = &d->dc;
    cudaStream_t s = d->ctx->stream;
    int B = p->k.B, D = c->dim, rc = 0;
    PX_CUDA_CHECK(cudaMemcpyAsync(p->stemb, p->temb, (size_t)B * c->t_dim * sizeof(float),
                                  cudaMemcpyDeviceToDevice, s));
    PX_CUDA_LAUNCH_CHECK(zc_silu(s, p->stemb, 0, (size_t)B * c->t_dim));
    PX_CUDA_LAUNCH_CHECK(zc_f32_to_bf16(s, p->stemb, p->stemb_b, (size_t)B * c->t_dim));
    if ((rc = gemm(d, p->stemb_b, c->t_dim, B, c->t_dim, d->fin_ada_w, D, d->fin_ada_b,
                   p->fscale, D, ZC_F32, err, errlen)))
        goto fail;
    PX_CUDA_LAUNCH_CHECK(zc_one_plus(s, p->fscale, (size_t)B * D));
    /* Over every U row (the text rows' results are not read): one shape. */
    PX_CUDA_LAUNCH_CHECK(
        zc_layernorm_mod(s, p->U, d->xbf, D, p->ru, D, 1e-6f, p->fscale, D, p->S, p->HB, D));
    if ((rc = gemm(d, p->HB, D, p->ru, D, d->fin_w, d->pf, d->fin_b, p->pred, d->pf, ZC_F32, err,
                   errlen)))
        goto fail;
    const batch_ints *bi = p->bi_dev;
    PX_CUDA_LAUNCH_CHECK(zc_unpatchify_step(s, p->pred, p->S, c->in_channels, p->k.ht, p->k.wt,
                                            c->patch, p->n_images, bi->pos_of, bi->neg_of,
                                            p->sp_dev->dt, p->sp_dev->w, p->lat, p->pred_out));
fail:
    return rc;
}

/* The step's device work (what the graph captures). */
static int step_enqueue(void *arg, char *err, size_t errlen)
{
    zc_plan *p = arg;
    zc_dev *d = p->d;
    const zi_dit_config *c = &d->dc;
    cudaStream_t s = d->ctx->stream;
    int B = p->k.B, D = c->dim, nr = c->n_refiner_layers, rc = 0;
    const batch_ints *bi = p->bi_dev;
    /* Timestep embedding: sinusoid -> Linear -> SiLU -> Linear. Every GEMM
     * with a bias writes fp32 (the bias epilogue's safest form). */
    PX_CUDA_LAUNCH_CHECK(zc_timestep_freq(s, p->sp_dev->t_in, B, c->t_freq / 2, p->tfreq));
    if ((rc = gemm(d, p->tfreq, c->t_freq, B, c->t_freq, d->t0_w, c->t_hidden, d->t0_b,
                   p->thid_f, c->t_hidden, ZC_F32, err, errlen)))
        goto fail;
    PX_CUDA_LAUNCH_CHECK(zc_silu(s, p->thid_f, 0, (size_t)B * c->t_hidden));
    PX_CUDA_LAUNCH_CHECK(zc_f32_to_bf16(s, p->thid_f, p->thid, (size_t)B * c->t_hidden));
    if ((rc = gemm(d, p->thid, c->t_hidden, B, c->t_hidden, d->t2_w, c->t_dim, d->t2_b, p->temb,
                   c->t_dim, ZC_F32, err, errlen)))
        goto fail;
    PX_CUDA_LAUNCH_CHECK(zc_f32_to_bf16(s, p->temb, p->temb_b, (size_t)B * c->t_dim));
    mark(p, "timestep embedding");
    /* Image tokens. */
    PX_CUDA_LAUNCH_CHECK(zc_patchify(s, p->lat, bi->lat_of, B, c->in_channels, p->k.ht, p->k.wt,
                                     c->patch, p->ni, p->patch));
    if ((rc = gemm(d, p->patch, d->pf, p->ri, d->pf, d->x_w, D, d->x_b, p->XI, D, resid_type(d),
                   err, errlen)))
        goto fail;
    PX_CUDA_LAUNCH_CHECK(
        zc_pad_rows(s, p->XI, d->xbf, B, p->ni, D, bi->len_i, bi->pad_i, d->x_pad));
    mark(p, "patchify + embed");
    stream si = {p->XI, p->ni, bi->kv_i, p->csi};
    if ((rc = run_blocks(p, 0, nr, &si, err, errlen))) goto fail;
    /* Joint stream: [image | text] per item. */
    PX_CUDA_LAUNCH_CHECK(zc_copy_rows(s, p->U, p->S, 0, p->XI, p->ni, p->ni, B, D, d->xbf));
    PX_CUDA_LAUNCH_CHECK(zc_copy_rows(s, p->U, p->S, p->ni, p->XT, p->k.T, p->k.T, B, D, d->xbf));
    mark(p, "joint stream copy");
    stream su = {p->U, p->S, bi->kv_u, p->csu};
    if ((rc = run_blocks(p, 2 * nr, d->nblocks, &su, err, errlen))) goto fail;
    rc = final_layer(p, err, errlen);
    mark(p, "final layer + Euler step");
fail:
    return rc;
}

/* PX_ZIMAGE_CUDA_PROFILE=1: a step after the plan's first runs direct
 * with an event after each part, and where its time went is printed to
 * stderr (no nsys on the lent GPUs; the bench's stages stop at "step"). */
static int step_profiled(zc_plan *p, cudaStream_t s, char *err, size_t errlen)
{
    p->pf = px_cuda_prof_start(s);
    int rc = step_enqueue(p, err, errlen);
    cudaError_t e = rc ? cudaSuccess : cudaStreamSynchronize(s);
    if (e) rc = px_errf(err, errlen, PX_EIO, "zimage-cuda profile: %s", cudaGetErrorString(e));
    if (!rc) {
        char title[96];
        snprintf(title, sizeof title, "zimage-cuda profile: step, %d items x %d rows", p->k.B,
                 p->S);
        px_cuda_prof_report(p->pf, stderr, title);
    }
    px_cuda_prof_free(p->pf);
    p->pf = NULL;
    return rc;
}

int zc_plan_step(zc_dev *d, zc_plan *p, const float *sigma, const float *sigma_next, int direct,
                 float *pred_out, char *err, size_t errlen)
{
    int rc = 0;
    cudaStream_t s = d->ctx->stream;
    step_params *h = p->sp_host;
    /* The previous step's copy of the pinned values must have landed. */
    PX_CUDA_CHECK(cudaStreamSynchronize(s));
    memset(h, 0, sizeof *h);
    for (int b = 0; b < p->k.B; b++) /* an item's timestep is its image's */
        h->t_in[b] = (1.0f - sigma[p->lat_of[b]]) * d->dc.t_scale; /* zi_dit_t_in */
    for (int i = 0; i < p->n_images; i++) {
        h->dt[i] = sigma_next[i] - sigma[i];
        h->w[i] = p->cfg_w[i];
    }
    PX_CUDA_CHECK(cudaMemcpyAsync(p->sp_dev, h, sizeof *h, cudaMemcpyHostToDevice, s));
    p->pred_out = pred_out;
    /* LoRA'd steps run direct (zc_net.h says why), outside the graph's run
     * count: the plan's graph is still captured on its second step without
     * LoRAs, however many LoRA'd steps came first. */
    static int profiling = -1;
    if (profiling < 0) profiling = getenv("PX_ZIMAGE_CUDA_PROFILE") != NULL;
    if (profiling && p->graph.runs >= 1 && !pred_out)
        rc = step_profiled(p, s, err, errlen);
    else if (p->lora)
        rc = step_enqueue(p, err, errlen);
    else
        rc = px_cuda_graph_run(&p->graph, s, direct || pred_out, step_enqueue, p, "zimage-cuda",
                               err, errlen);
fail:
    return rc;
}
