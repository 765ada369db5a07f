/*
 * zc_vae.c — the Z-Image (FLUX.1) VAE decoder on the GPU, one image at a
 * time (zc_net.h): cuDNN convolutions (cuda_conv.h, NHWC; fp32 tensors
 * with TF32 tensor-core math, bf16 ones in the up blocks by default, FMA
 * with PX_ZIMAGE_CUDA_VAE=fp32 — fp16 is known to fail; the first H200 run
 * (2026-12-05) measured the FMA VAE at 823 ms of a 1.9 s 1024² image, and
 * zimage_cuda_test holds the TF32 decoder to the fp32 reference's image
 * within one 8-bit level, the default to the TF32 one by PSNR),
 * our GroupNorm(+SiLU), bias, nearest-upsample and output kernels, and the
 * mid block's single-head attention over all latent positions as fp32
 * cuBLASLt GEMMs in chunks of queries (scores of a chunk, row softmax,
 * times V) so its memory stays bounded at 1024² (16k positions). Those
 * GEMMs take the convolutions' math: in FMA they were ~0.55 TFLOP of
 * SIMT work at 1024² (~10 ms of the VAE's ~80 on an H100, by their FLOPs
 * at the fp32 rate), in TF32 a few ms.
 *
 * By default (PX_ZIMAGE_CUDA_VAE=bf16) the up blocks run on bf16
 * activations and weights (walk says where the types change): 64 -> 46 ms
 * at 1024² on an H100, and its gate against the TF32 decoder passed
 * (docs/benchmarks/zimage-cuda.md). The mid attention's GEMMs then take
 * bf16 operands too, with fp32 scores and a softmax that reads them once
 * (attn_bf16; thirty-third session). PX_ZIMAGE_CUDA_VAE=tf32 keeps fp32
 * activations with TF32 math (the default before), =fp32 FMA math. The
 * kernels are zvae_kernels.h's, for either type.
 *
 * One plan (buffers + the convolutions' algorithms) for the last latent
 * size; a new size rebuilds it. Convolutions are built in a first pass
 * over the network that launches nothing (cuDNN's search writes the plan's
 * buffers), then every decode is a run pass of the same walker.
 *
 */
#include "engine/zimage/cuda/zc_net.h"

#include "core/alloc.h"
#include "core/err.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_conv.h"
#include "engine/cuda/cuda_prof.h"
#include "engine/zimage/cuda/zkernels.h"
#include "engine/zimage/cuda/zvae_kernels.h"
#include "engine/zimage/zops.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPS 128
#define WS_LIMIT ((size_t)256 << 20)
/* GroupNorm partials: (slice, channel) pairs (zc_gn_stats), 16 MiB. */
#define GN_PAIRS (1 << 20)
#define SCORE_BYTES ((size_t)256 << 20)

typedef struct vconv {
    void *w;  /* fp32, or bf16 when bf */
    float *b; /* fp32 always (added by zc_bias_add) */
    cudnnFilterDescriptor_t fd;
    int cin, cout, k;
    bool bf; /* a convolution of the bf16 up path */
} vconv;

typedef struct vnorm {
    float *g, *b;
} vnorm;

/* With v->fold (the default; not with PX_ZIMAGE_CUDA_FUSE=0) the block's
 * biases are not passes of their own: conv1's is added by norm2 on the
 * fly (zc_gn_stats' xb), conv2's (plus the shortcut's) once with the
 * residual: b2 = c2.b (+ sc.b), fp32 on the GPU. Two passes over the
 * block's output fewer. */
typedef struct vres {
    vnorm n1, n2;
    vconv c1, c2, sc;
    float *b2;
    const float *pb; /* folded: the bias the input still lacks (fold_upc_bias), or NULL */
    bool has_sc;
} vres;

struct zc_vae {
    px_cuda_ctx *ctx;
    zc_gemm *gemm;
    zi_vae_config cfg;
    vconv conv_in, conv_out, upc[8];
    vres mid[2], *up;
    vnorm attn_norm, norm_out;
    float *wq, *wk, *wv, *wo, *bq, *bk, *bv, *bo;
    void *w16[3]; /* bf16 copies of wq, wk, wv for the bf16 attention (up_bf) */
    px_cuda_algos *algos;
    px_cuda_prec prec; /* the fp32 convolutions' math: TF32 or FP32 (FMA) */
    bool up_bf;        /* PX_ZIMAGE_CUDA_VAE=bf16: the up path in bf16 (see walk) */
    bool fold;         /* the ResNet blocks' biases folded (vres; zc_wide_kernels()) */
    size_t weight_bytes;
    /* the plan */
    int lh, lw, chunk;
    size_t act;
    void *buf[3]; /* activations: fp32 sizes, bf16 in the bf16 up path */
    float *q, *k, *v, *sc, *stats; /* q, k, v hold bf16 in the bf16 attention */
    void *p16;                     /* the bf16 attention's probabilities, chunk x hw */
    double *part;
    void *ws;
    uint8_t *rgb;
    px_cuda_conv ops[MAX_OPS];
    int nops;
};

/* --------------------------------------------------------------- weights */

static int up_f32(zc_vae *v, const zi_weights *w, const char *name, size_t n, float **dst,
                  char *err, size_t errlen)
{
    int rc = 0;
    const zi_tensor *t = zi_weights_find(w, name);
    if (!t) return px_errf(err, errlen, PX_ENOTFOUND, "vae: tensor %s is missing", name);
    if (t->nelem != n || t->dtype != ZI_F32)
        return px_errf(err, errlen, PX_ECORRUPT, "vae: tensor %s: %zu elements, expected %zu F32",
                       name, t->nelem, n);
    PX_CUDA_CHECK(cudaMalloc((void **)dst, n * sizeof(float)));
    PX_CUDA_CHECK(cudaMemcpy(*dst, t->data, n * sizeof(float), cudaMemcpyHostToDevice));
    v->weight_bytes += n * sizeof(float);
fail:
    return rc;
}

/* prefix.weight [cout, cin, k, k] as cuDNN's KRSC, prefix.bias [cout]. */
static int up_conv(zc_vae *v, const zi_weights *w, const char *prefix, int cin, int cout, int k,
                   vconv *c, char *err, size_t errlen)
{
    int rc = 0;
    char name[200];
    float *host = NULL;
    uint16_t *hb = NULL;
    c->cin = cin, c->cout = cout, c->k = k;
    snprintf(name, sizeof name, "%s.weight", prefix);
    const zi_tensor *t = zi_weights_find(w, name);
    size_t n = (size_t)cout * cin * k * k;
    if (!t || t->nelem != n || t->dtype != ZI_F32)
        return px_errf(err, errlen, PX_ECORRUPT, "vae: tensor %s missing or not [%d, %d, %d, %d]",
                       name, cout, cin, k, k);
    host = px_xmalloc(n * sizeof *host);
    const float *src = t->data;
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++)
            for (int y = 0; y < k * k; y++)
                host[((size_t)o * k * k + y) * cin + i] = src[((size_t)o * cin + i) * k * k + y];
    /* bf16 weights rounded here (zops.h: PyTorch's rounding); the copy
     * from pageable memory has read them when cudaMemcpy returns. */
    size_t esz = c->bf ? 2 : 4;
    const void *src_w = host;
    if (c->bf) {
        hb = px_xmalloc(n * sizeof *hb);
        for (size_t i = 0; i < n; i++) hb[i] = zi_f32_to_bf16(host[i]);
        src_w = hb;
    }
    PX_CUDA_CHECK(cudaMalloc(&c->w, n * esz));
    PX_CUDA_CHECK(cudaMemcpy(c->w, src_w, n * esz, cudaMemcpyHostToDevice));
    v->weight_bytes += n * esz;
    PX_CUDNN_CHECK(cudnnCreateFilterDescriptor(&c->fd));
    PX_CUDNN_CHECK(cudnnSetFilter4dDescriptor(
        c->fd, c->bf ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, cout, cin, k, k));
    snprintf(name, sizeof name, "%s.bias", prefix);
    rc = up_f32(v, w, name, (size_t)cout, &c->b, err, errlen);
fail:
    free(host);
    free(hb);
    return rc;
}

static int up_norm(zc_vae *v, const zi_weights *w, const char *prefix, int C, vnorm *nm,
                   char *err, size_t errlen)
{
    char a[200], b[200];
    snprintf(a, sizeof a, "%s.weight", prefix);
    snprintf(b, sizeof b, "%s.bias", prefix);
    int rc = up_f32(v, w, a, (size_t)C, &nm->g, err, errlen);
    return rc ? rc : up_f32(v, w, b, (size_t)C, &nm->b, err, errlen);
}

/* r->b2 = conv2's bias (+ the shortcut's) from the host tensors (up_conv
 * has checked them: cout F32 values), for the folded walk only. */
static int bias_sum(zc_vae *v, const zi_weights *w, const char *c2, const char *sc, vres *r,
                    int C, char *err, size_t errlen)
{
    int rc = 0;
    char name[220];
    float *h = px_xmalloc((size_t)C * sizeof *h);
    snprintf(name, sizeof name, "%s.bias", c2);
    memcpy(h, zi_weights_find(w, name)->data, (size_t)C * sizeof *h);
    if (r->has_sc) {
        snprintf(name, sizeof name, "%s.bias", sc);
        const float *b = zi_weights_find(w, name)->data;
        for (int c = 0; c < C; c++) h[c] += b[c];
    }
    PX_CUDA_CHECK(cudaMalloc((void **)&r->b2, (size_t)C * sizeof *h));
    PX_CUDA_CHECK(cudaMemcpy(r->b2, h, (size_t)C * sizeof *h, cudaMemcpyHostToDevice));
    v->weight_bytes += (size_t)C * sizeof *h;
fail:
    free(h);
    return rc;
}

/* bf: the block's convolutions take bf16 weights (the bf16 up path). */
static int up_res(zc_vae *v, const zi_weights *w, const char *p, int cin, int cout, bool bf,
                  vres *r, char *err, size_t errlen)
{
    char n[5][200];
    r->c1.bf = r->c2.bf = r->sc.bf = bf;
    const char *what[5] = {"norm1", "conv1", "norm2", "conv2", "conv_shortcut"};
    for (int i = 0; i < 5; i++) snprintf(n[i], sizeof n[i], "%s.%s", p, what[i]);
    int rc;
    if ((rc = up_norm(v, w, n[0], cin, &r->n1, err, errlen)) ||
        (rc = up_conv(v, w, n[1], cin, cout, 3, &r->c1, err, errlen)) ||
        (rc = up_norm(v, w, n[2], cout, &r->n2, err, errlen)) ||
        (rc = up_conv(v, w, n[3], cout, cout, 3, &r->c2, err, errlen)))
        return rc;
    r->has_sc = cin != cout;
    if (r->has_sc && (rc = up_conv(v, w, n[4], cin, cout, 1, &r->sc, err, errlen))) return rc;
    return v->fold ? bias_sum(v, w, n[3], n[4], r, cout, err, errlen) : 0;
}

/* Folded, an upsampler's convolution adds no bias either: the ResNet
 * block after it (r, whose first convolution's input is that output)
 * takes it as a pending bias in norm1 (r->pb) and on the residual's way:
 * in b2 as it is, or through the 1x1 shortcut as W_sc·b (no padding, so a
 * constant per channel). One pass over the largest activations fewer a
 * level. upc: the upsampler's prefix, sc: r's shortcut's. */
static int fold_upc_bias(const zi_weights *w, const char *upc, const char *sc, const vconv *cu,
                         vres *r, char *err, size_t errlen)
{
    int rc = 0, cin = r->c1.cin, cout = r->c1.cout;
    char name[240];
    snprintf(name, sizeof name, "%s.bias", upc);
    const float *b = zi_weights_find(w, name)->data; /* up_conv checked it: cin F32 */
    float *h = px_xmalloc((size_t)cout * sizeof *h);
    PX_CUDA_CHECK(cudaMemcpy(h, r->b2, (size_t)cout * sizeof *h, cudaMemcpyDeviceToHost));
    if (r->has_sc) {
        snprintf(name, sizeof name, "%s.weight", sc);
        const float *ws = zi_weights_find(w, name)->data; /* [cout, cin, 1, 1] */
        for (int o = 0; o < cout; o++) {
            double d = 0;
            for (int i = 0; i < cin; i++) d += (double)ws[(size_t)o * cin + i] * b[i];
            h[o] += (float)d;
        }
    } else {
        for (int c = 0; c < cout; c++) h[c] += b[c];
    }
    PX_CUDA_CHECK(cudaMemcpy(r->b2, h, (size_t)cout * sizeof *h, cudaMemcpyHostToDevice));
    r->pb = cu->b;
fail:
    free(h);
    return rc;
}

static int up_attn(zc_vae *v, const zi_weights *w, int C, char *err, size_t errlen)
{
    const char *at = "decoder.mid_block.attentions.0";
    const char *proj[4] = {"to_q", "to_k", "to_v", "to_out.0"};
    float **ws[4] = {&v->wq, &v->wk, &v->wv, &v->wo}, **bs[4] = {&v->bq, &v->bk, &v->bv, &v->bo};
    char p[200];
    snprintf(p, sizeof p, "%s.group_norm", at);
    int rc = up_norm(v, w, p, C, &v->attn_norm, err, errlen);
    for (int i = 0; i < 4 && !rc; i++) {
        char a[200], b[200];
        snprintf(a, sizeof a, "%s.%s.weight", at, proj[i]);
        snprintf(b, sizeof b, "%s.%s.bias", at, proj[i]);
        if (!(rc = up_f32(v, w, a, (size_t)C * C, ws[i], err, errlen)))
            rc = up_f32(v, w, b, (size_t)C, bs[i], err, errlen);
        if (!rc && v->up_bf && i < 3) {
            PX_CUDA_CHECK(cudaMalloc(&v->w16[i], (size_t)C * C * 2));
            PX_CUDA_LAUNCH_CHECK(
                zc_vae_convert(v->ctx->stream, *ws[i], 0, v->w16[i], 1, (size_t)C * C));
            PX_CUDA_CHECK(cudaStreamSynchronize(v->ctx->stream));
            v->weight_bytes += (size_t)C * C * 2;
        }
    }
fail:
    return rc;
}

static int up_all(zc_vae *v, const zi_weights *w, char *err, size_t errlen)
{
    const zi_vae_config *c = &v->cfg;
    int L = c->nlevels, per = c->layers_per_block + 1, top = c->block_out[L - 1], rc;
    if ((rc = up_conv(v, w, "decoder.conv_in", c->latent_channels, top, 3, &v->conv_in, err,
                      errlen)) ||
        (rc = up_res(v, w, "decoder.mid_block.resnets.0", top, top, false, &v->mid[0], err,
                     errlen)) ||
        (rc = up_attn(v, w, top, err, errlen)) ||
        (rc = up_res(v, w, "decoder.mid_block.resnets.1", top, top, false, &v->mid[1], err,
                     errlen)))
        return rc;
    v->up = px_xcalloc((size_t)L * per, sizeof *v->up);
    int cin = top;
    for (int i = 0; i < L; i++) {
        int cout = c->block_out[L - 1 - i];
        for (int j = 0; j < per; j++) {
            char p[200];
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
            if ((rc = up_res(v, w, p, cin, cout, v->up_bf, &v->up[i * per + j], err, errlen)))
                return rc;
            if (v->fold && i > 0 && j == 0) {
                char u[200], sc[220];
                snprintf(u, sizeof u, "decoder.up_blocks.%d.upsamplers.0.conv", i - 1);
                snprintf(sc, sizeof sc, "%s.conv_shortcut", p);
                if ((rc = fold_upc_bias(w, u, sc, &v->upc[i - 1], &v->up[i * per], err, errlen)))
                    return rc;
            }
            cin = cout;
        }
        if (i < L - 1) {
            char p[200];
            snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            v->upc[i].bf = v->up_bf;
            if ((rc = up_conv(v, w, p, cout, cout, 3, &v->upc[i], err, errlen))) return rc;
        }
    }
    if ((rc = up_norm(v, w, "decoder.conv_norm_out", cin, &v->norm_out, err, errlen)) ||
        (rc = up_conv(v, w, "decoder.conv_out", cin, 3, 3, &v->conv_out, err, errlen)))
        return rc;
    return 0;
}

int zc_vae_create(px_cuda_ctx *c, zc_gemm *g, const zi_weights *w, const zi_vae_config *cfg,
                  zc_vae **out, char *err, size_t errlen)
{
    zc_vae *v = px_xcalloc(1, sizeof *v);
    *out = v;
    v->ctx = c, v->gemm = g, v->cfg = *cfg;
    /* bf16 up path by default (its gate passed on an H100, 2026-12-05:
     * 52.9 dB at worst over 12 prompts against TF32); tf32 and fp32 keep
     * every activation in fp32. */
    const char *pv = getenv("PX_ZIMAGE_CUDA_VAE");
    v->prec = pv && !strcmp(pv, "fp32") ? PX_CUDA_FP32 : PX_CUDA_TF32;
    v->up_bf = !pv || !*pv || !strcmp(pv, "bf16");
    v->fold = zc_wide_kernels();
    if (pv && *pv && strcmp(pv, "bf16") && strcmp(pv, "tf32") && strcmp(pv, "fp32"))
        return px_errf(err, errlen, PX_EINVAL, "PX_ZIMAGE_CUDA_VAE=%s: want bf16, tf32 or fp32",
                       pv);
    if (cfg->nlevels < 1 || cfg->nlevels > 8)
        return px_errf(err, errlen, PX_EUNSUP, "vae: %d levels", cfg->nlevels);
    v->algos = px_cuda_algos_create(sizeof(px_cuda_conv_shape), sizeof(px_cuda_conv_choice), 256);
    return up_all(v, w, err, errlen);
}

const char *zc_vae_precision(const zc_vae *v)
{
    return v->up_bf ? "bf16" : v->prec == PX_CUDA_FP32 ? "fp32" : "tf32";
}

static void vconv_free(vconv *c)
{
    if (c->w) cudaFree(c->w);
    if (c->b) cudaFree(c->b);
    if (c->fd) cudnnDestroyFilterDescriptor(c->fd);
}

static void vnorm_free(vnorm *n)
{
    if (n->g) cudaFree(n->g);
    if (n->b) cudaFree(n->b);
}

static void vres_free(vres *r)
{
    vnorm_free(&r->n1), vnorm_free(&r->n2);
    vconv_free(&r->c1), vconv_free(&r->c2), vconv_free(&r->sc);
    if (r->b2) cudaFree(r->b2);
}

static void plan_free(zc_vae *v)
{
    for (int i = 0; i < v->nops; i++) px_cuda_conv_free(&v->ops[i]);
    v->nops = 0;
    void *p[11] = {v->buf[0], v->buf[1], v->buf[2], v->q,  v->k,  v->v,
                   v->sc,     v->stats,  v->part,   v->ws, v->p16};
    for (int i = 0; i < 11; i++)
        if (p[i]) cudaFree(p[i]);
    if (v->rgb) cudaFree(v->rgb);
    v->buf[0] = v->buf[1] = v->buf[2] = v->q = v->k = v->v = v->sc = v->stats = NULL;
    v->part = NULL, v->ws = NULL, v->rgb = NULL, v->p16 = NULL;
    v->lh = v->lw = 0;
}

void zc_vae_free(zc_vae *v)
{
    if (!v) return;
    plan_free(v);
    int per = v->cfg.layers_per_block + 1;
    vconv_free(&v->conv_in), vconv_free(&v->conv_out);
    for (int i = 0; i < 8; i++) vconv_free(&v->upc[i]);
    vres_free(&v->mid[0]), vres_free(&v->mid[1]);
    for (int i = 0; v->up && i < v->cfg.nlevels * per; i++) vres_free(&v->up[i]);
    free(v->up);
    vnorm_free(&v->attn_norm), vnorm_free(&v->norm_out);
    void *a[11] = {v->wq, v->wk, v->wv,     v->wo,     v->bq,    v->bk,
                   v->bv, v->bo, v->w16[0], v->w16[1], v->w16[2]};
    for (int i = 0; i < 11; i++)
        if (a[i]) cudaFree(a[i]);
    px_cuda_algos_destroy(v->algos);
    free(v);
}

size_t zc_vae_weight_bytes(const zc_vae *v)
{
    return v->weight_bytes;
}

/* Floats of the largest activation at latent lh x lw. */
static size_t act_floats(const zi_vae_config *c, int lh, int lw)
{
    int L = c->nlevels, cin = c->block_out[L - 1];
    size_t hw = (size_t)lh * lw, m = hw * (size_t)cin;
    for (int i = 0; i < L; i++) {
        int cout = c->block_out[L - 1 - i];
        size_t a = hw * (size_t)(cin > cout ? cin : cout);
        if (a > m) m = a;
        if (i < L - 1) hw *= 4;
        if (hw * (size_t)cout > m) m = hw * (size_t)cout;
        cin = cout;
    }
    return m;
}

size_t zc_vae_bytes(const zi_vae_config *c, int lh, int lw)
{
    size_t hw = (size_t)lh * lw, C = (size_t)c->block_out[c->nlevels - 1];
    return 3 * act_floats(c, lh, lw) * 4 + 3 * hw * C * 4 + SCORE_BYTES * 3 / 2 + WS_LIMIT;
}

static int plan_make(zc_vae *v, int lh, int lw, char *err, size_t errlen)
{
    int rc = 0;
    plan_free(v);
    const zi_vae_config *c = &v->cfg;
    size_t hw = (size_t)lh * lw, C = (size_t)c->block_out[c->nlevels - 1];
    v->act = act_floats(c, lh, lw);
    size_t chunk = SCORE_BYTES / 4 / hw;
    v->chunk = (int)(chunk < 1 ? 1 : chunk > hw ? hw : chunk);
    for (int i = 0; i < 3; i++) {
        PX_CUDA_CHECK(cudaMalloc(&v->buf[i], v->act * 4));
        /* on the stream the decoder runs on (a plain cudaMemset goes on the
         * legacy stream, which that stream is not ordered with) */
        PX_CUDA_CHECK(cudaMemsetAsync(v->buf[i], 0, v->act * 4, v->ctx->stream));
    }
    PX_CUDA_CHECK(cudaMalloc((void **)&v->q, hw * C * 4));
    PX_CUDA_CHECK(cudaMalloc((void **)&v->k, hw * C * 4));
    PX_CUDA_CHECK(cudaMalloc((void **)&v->v, hw * C * 4));
    PX_CUDA_CHECK(cudaMalloc((void **)&v->sc, (size_t)v->chunk * hw * 4));
    if (v->up_bf) PX_CUDA_CHECK(cudaMalloc(&v->p16, (size_t)v->chunk * hw * 2));
    PX_CUDA_CHECK(cudaMalloc((void **)&v->stats, 2 * (size_t)c->groups * 4));
    PX_CUDA_CHECK(cudaMalloc((void **)&v->part, (size_t)GN_PAIRS * 2 * sizeof(double)));
    PX_CUDA_CHECK(cudaMalloc(&v->ws, WS_LIMIT));
    size_t f = (size_t)1 << (c->nlevels - 1);
    PX_CUDA_CHECK(cudaMalloc((void **)&v->rgb, hw * f * f * 3));
    v->lh = lh, v->lw = lw;
    return 0;
fail:
    plan_free(v);
    return rc;
}

/* ----------------------------------------------------------- the walker */

typedef struct vpass {
    zc_vae *v;
    bool build; /* build the convolutions, launch nothing */
    int next;
    int h, w; /* current resolution */
    int bf;   /* activations now bf16 (the bf16 up path), else fp32 */
    px_cuda_prof *pf; /* PX_ZIMAGE_CUDA_PROFILE=1: time per kind of work */
    char *err;
    size_t errlen;
} vpass;

/* Marks the end of a profiled piece of work (no-op unless profiling). */
static void vmark(const vpass *ps, const char *label)
{
    px_cuda_prof_mark(ps->pf, label);
}

/* y = conv(x) (+ y when acc) (+ bias when not NULL: one more pass over
 * y), at the pass's resolution. */
static int conv(vpass *ps, const vconv *cv, const void *x, void *y, bool acc, const float *bias)
{
    zc_vae *v = ps->v;
    char *err = ps->err;
    size_t errlen = ps->errlen;
    int rc = 0;
    if (ps->next >= MAX_OPS) return px_errf(err, errlen, PX_EINVAL, "vae: too many convolutions");
    if (cv->bf != (ps->bf != 0))
        return px_errf(err, errlen, PX_EINVAL, "vae: a %s convolution on %s activations",
                       cv->bf ? "bf16" : "fp32", ps->bf ? "bf16" : "fp32");
    px_cuda_conv *op = &v->ops[ps->next++];
    px_cuda_conv_args a = {.fd = cv->fd, .w = cv->w, .x = x, .y = y, .ws = v->ws, .alpha = 1.0f,
                           .acc = acc};
    if (ps->build) {
        px_cuda_conv_shape s = {0,     1,     cv->cin, cv->cout, ps->h,     ps->w,        ps->h,
                                ps->w, cv->k, cv->k,   1,        cv->k / 2, 0,
                                cv->bf ? PX_CUDA_BF16 : v->prec};
        v->nops = ps->next;
        return px_cuda_conv_build(op, &s, v->ctx->dnn, &a, WS_LIMIT, v->algos, 0, err, errlen);
    }
    if ((rc = px_cuda_conv_run(op, v->ctx->dnn, &a, err, errlen))) return rc;
    vmark(ps, "vae convolutions");
    if (bias) {
        PX_CUDA_LAUNCH_CHECK(
            zc_bias_add(v->ctx->stream, y, y, ps->bf, bias, (size_t)ps->h * ps->w, cv->cout));
        vmark(ps, "vae bias");
    }
fail:
    return rc;
}

/* y = GroupNorm(x + xb) (+ SiLU); xb NULL or a bias x still lacks. */
static int gn(vpass *ps, const vnorm *nm, const void *x, const float *xb, int C, int silu,
              void *y)
{
    char *err = ps->err;
    size_t errlen = ps->errlen;
    int rc = 0, hw = ps->h * ps->w, G = ps->v->cfg.groups;
    if (ps->build) return 0;
    cudaStream_t s = ps->v->ctx->stream;
    PX_CUDA_LAUNCH_CHECK(
        zc_gn_stats(s, x, xb, ps->bf, hw, C, G, ps->v->cfg.eps, GN_PAIRS, ps->v->part, ps->v->stats));
    vmark(ps, "vae GroupNorm statistics");
    PX_CUDA_LAUNCH_CHECK(
        zc_gn_apply(s, x, xb, ps->bf, hw, C, G, ps->v->stats, nm->g, nm->b, silu, y));
    vmark(ps, "vae GroupNorm apply(+SiLU)");
fail:
    return rc;
}

/* The ResNet block on buf[*x]; the result in another buffer, *x updated. */
static int resnet(vpass *ps, const vres *r, int *xi)
{
    zc_vae *v = ps->v;
    char *err = ps->err;
    size_t errlen = ps->errlen;
    int a = (*xi + 1) % 3, b = (*xi + 2) % 3, rc;
    void *X = v->buf[*xi], *A = v->buf[a], *B = v->buf[b];
    bool fold = v->fold;
    if ((rc = gn(ps, &r->n1, X, fold ? r->pb : NULL, r->c1.cin, 1, A)) ||
        (rc = conv(ps, &r->c1, A, B, false, fold ? NULL : r->c1.b)) ||
        (rc = gn(ps, &r->n2, B, fold ? r->c1.b : NULL, r->c1.cout, 1, A)))
        return rc;
    /* B = shortcut(X) or X, then += conv2(A); folded, both convolutions'
     * biases come with the shortcut's result or on the residual copy's way. */
    if (r->has_sc) {
        if ((rc = conv(ps, &r->sc, X, B, false, fold ? NULL : r->sc.b)) ||
            (rc = conv(ps, &r->c2, A, B, true, fold ? r->b2 : r->c2.b)))
            return rc;
    } else {
        if (!ps->build && fold) {
            PX_CUDA_LAUNCH_CHECK(zc_bias_add(v->ctx->stream, X, B, ps->bf, r->b2,
                                             (size_t)ps->h * ps->w, r->c1.cin));
            vmark(ps, "vae residual copies");
        } else if (!ps->build) {
            size_t bytes = (size_t)ps->h * ps->w * r->c1.cin * (ps->bf ? 2 : 4);
            PX_CUDA_CHECK(cudaMemcpyAsync(B, X, bytes, cudaMemcpyDeviceToDevice, v->ctx->stream));
            vmark(ps, "vae residual copies");
        }
        if ((rc = conv(ps, &r->c2, A, B, true, fold ? NULL : r->c2.b))) return rc;
    }
    *xi = b;
fail:
    return rc;
}

static int lin(zc_vae *v, const float *x, int M, int K, const float *w, int N, const float *bias,
               float *y, int acc, int w_kn, char *err, size_t errlen)
{
    zc_gemm_args g = {.x = x, .ldx = K, .M = M, .K = K, .w = w, .N = N, .bias = bias, .y = y,
                      .ldy = N, .yt = ZC_F32, .accumulate = acc, .f32_in = v->prec == PX_CUDA_TF32 ? ZC_TF32 : 1,
                      .w_kn = w_kn};
    return zc_gemm_run(v->gemm, &g, err, errlen);
}

/* A = softmax(q·kᵀ/√C)·v from A = GroupNorm(x), fp32 GEMMs (TF32 or FMA,
 * the convolutions' math) a chunk of queries at a time. */
static int attn_f32(vpass *ps, float *A, int hw, int C)
{
    zc_vae *v = ps->v;
    char *err = ps->err;
    size_t errlen = ps->errlen;
    int rc = 0;
    if ((rc = lin(v, A, hw, C, v->wq, C, v->bq, v->q, 0, 0, err, errlen)) ||
        (rc = lin(v, A, hw, C, v->wk, C, v->bk, v->k, 0, 0, err, errlen)) ||
        (rc = lin(v, A, hw, C, v->wv, C, v->bv, v->v, 0, 0, err, errlen)))
        return rc;
    for (int q0 = 0; q0 < hw; q0 += v->chunk) {
        int m = hw - q0 < v->chunk ? hw - q0 : v->chunk;
        if ((rc = lin(v, v->q + (size_t)q0 * C, m, C, v->k, hw, NULL, v->sc, 0, 0, err, errlen)))
            return rc;
        PX_CUDA_LAUNCH_CHECK(zc_softmax_rows(v->ctx->stream, v->sc, m, hw, 1.0f / sqrtf((float)C)));
        if ((rc = lin(v, v->sc, m, hw, v->v, C, NULL, A + (size_t)q0 * C, 0, 1, err, errlen)))
            return rc;
    }
fail:
    return rc;
}

/* attn_f32's result with bf16 operands (A, q, k, v, the probabilities)
 * and fp32 accumulation and scores, as a bf16 PyTorch VAE's fused
 * attention runs it: at 1024² (16,384 positions) the fp32 GEMMs and a
 * softmax that passes over the 1 GB of scores five times were ~3.7 ms of
 * a ~30 ms decode (H100 profile, 2026-12-07). scratch: hw x C bf16. */
static int attn_bf16(vpass *ps, float *A, void *scratch, int hw, int C)
{
    zc_vae *v = ps->v;
    char *err = ps->err;
    size_t errlen = ps->errlen;
    cudaStream_t s = v->ctx->stream;
    int rc = 0;
    PX_CUDA_LAUNCH_CHECK(zc_vae_convert(s, A, 0, scratch, 1, (size_t)hw * C));
    void *out[3] = {v->q, v->k, v->v};
    const float *bias[3] = {v->bq, v->bk, v->bv};
    for (int i = 0; i < 3 && !rc; i++) {
        zc_gemm_args g = {.x = scratch,
                          .ldx = C,
                          .M = hw,
                          .K = C,
                          .w = v->w16[i],
                          .N = C,
                          .bias = bias[i],
                          .y = out[i],
                          .ldy = C,
                          .yt = ZC_BF16};
        rc = zc_gemm_run(v->gemm, &g, err, errlen);
    }
    for (int q0 = 0; q0 < hw && !rc; q0 += v->chunk) {
        int m = hw - q0 < v->chunk ? hw - q0 : v->chunk;
        zc_gemm_args sc = {.x = (const uint16_t *)(const void *)v->q + (size_t)q0 * C,
                           .ldx = C,
                           .M = m,
                           .K = C,
                           .w = v->k,
                           .N = hw,
                           .y = v->sc,
                           .ldy = hw,
                           .yt = ZC_F32};
        zc_gemm_args pv = {.x = v->p16,
                           .ldx = hw,
                           .M = m,
                           .K = hw,
                           .w = v->v,
                           .N = C,
                           .w_kn = 1,
                           .y = A + (size_t)q0 * C,
                           .ldy = C,
                           .yt = ZC_F32};
        if ((rc = zc_gemm_run(v->gemm, &sc, err, errlen))) break;
        PX_CUDA_LAUNCH_CHECK(zc_vae_softmax_bf16(s, v->sc, m, hw, 1.0f / sqrtf((float)C), v->p16));
        rc = zc_gemm_run(v->gemm, &pv, err, errlen);
    }
fail:
    return rc;
}

/* x + out(softmax(q·kᵀ/√C)·v) over every position, one head of C. */
static int attention(vpass *ps, int *xi)
{
    zc_vae *v = ps->v;
    char *err = ps->err;
    size_t errlen = ps->errlen;
    int a = (*xi + 1) % 3, b = (*xi + 2) % 3, rc = 0;
    int hw = ps->h * ps->w, C = v->cfg.block_out[v->cfg.nlevels - 1];
    float *X = v->buf[*xi], *A = v->buf[a], *B = v->buf[b]; /* the fp32 mid block */
    if (ps->build) return 0;
    cudaStream_t s = v->ctx->stream;
    if ((rc = gn(ps, &v->attn_norm, X, NULL, C, 0, A)) ||
        (rc = v->up_bf ? attn_bf16(ps, A, B, hw, C) : attn_f32(ps, A, hw, C)))
        return rc;
    PX_CUDA_CHECK(cudaMemcpyAsync(B, X, (size_t)hw * C * 4, cudaMemcpyDeviceToDevice, s));
    if ((rc = lin(v, A, hw, C, v->wo, C, v->bo, B, 1, 0, err, errlen))) return rc;
    vmark(ps, "vae mid attention");
    *xi = b;
fail:
    return rc;
}

/* buf[*xi] (C channels at the pass's resolution) converted into another
 * buffer as bf16 (bf) or fp32, *xi and the pass's type updated. */
static int convert(vpass *ps, int *xi, int C, int bf)
{
    char *err = ps->err;
    size_t errlen = ps->errlen;
    int a = (*xi + 1) % 3, rc = 0;
    if (!ps->build)
        PX_CUDA_LAUNCH_CHECK(zc_vae_convert(ps->v->ctx->stream, ps->v->buf[*xi], ps->bf,
                                            ps->v->buf[a], bf, (size_t)ps->h * ps->w * C));
    vmark(ps, "vae fp32 <-> bf16");
    *xi = a, ps->bf = bf;
fail:
    return rc;
}

/* The decoder: conv_in and the mid block in fp32 (TF32 or FMA math), the
 * up blocks in bf16 when up_bf (their convolutions are most of the work:
 * 9.6 of the decoder's 10.5 TFLOP at 1024²), the final norm and 3-channel
 * convolution in fp32 again (cuDNN's bf16 kernels want channels in
 * eights). */
static int walk(vpass *ps, const float *lat)
{
    zc_vae *v = ps->v;
    const zi_vae_config *c = &v->cfg;
    char *err = ps->err;
    size_t errlen = ps->errlen;
    cudaStream_t s = v->ctx->stream;
    int L = c->nlevels, per = c->layers_per_block + 1, xi = 0, rc = 0;
    ps->h = v->lh, ps->w = v->lw;
    if (!ps->build)
        PX_CUDA_LAUNCH_CHECK(zc_vae_in(s, lat, c->latent_channels, v->lh * v->lw,
                                       c->scaling_factor, c->shift_factor, v->buf[1]));
    vmark(ps, "vae in/out");
    if ((rc = conv(ps, &v->conv_in, v->buf[1], v->buf[0], false, v->conv_in.b)) ||
        (rc = resnet(ps, &v->mid[0], &xi)) || (rc = attention(ps, &xi)) ||
        (rc = resnet(ps, &v->mid[1], &xi)) ||
        (v->up_bf && (rc = convert(ps, &xi, c->block_out[L - 1], 1))))
        return rc;
    for (int i = 0; i < L; i++) {
        for (int j = 0; j < per; j++)
            if ((rc = resnet(ps, &v->up[i * per + j], &xi))) return rc;
        if (i < L - 1) {
            int a = (xi + 1) % 3, b = (xi + 2) % 3, C = v->upc[i].cin;
            if (!ps->build)
                PX_CUDA_LAUNCH_CHECK(
                    zc_upsample2(s, v->buf[xi], ps->bf, ps->h, ps->w, C, v->buf[a]));
            vmark(ps, "vae upsample");
            ps->h *= 2, ps->w *= 2;
            if ((rc = conv(ps, &v->upc[i], v->buf[a], v->buf[b], false,
                           v->fold ? NULL : v->upc[i].b)))
                return rc;
            xi = b;
        }
    }
    int a = (xi + 1) % 3, b = (xi + 2) % 3;
    if ((rc = gn(ps, &v->norm_out, v->buf[xi], NULL, v->conv_out.cin, 1, v->buf[a])) ||
        (ps->bf && (rc = convert(ps, &a, v->conv_out.cin, 0))))
        return rc;
    b = (a + 1) % 3;
    if ((rc = conv(ps, &v->conv_out, v->buf[a], v->buf[b], false, v->conv_out.b))) return rc;
    if (!ps->build) PX_CUDA_LAUNCH_CHECK(zc_vae_out(s, v->buf[b], ps->h * ps->w, v->rgb));
    vmark(ps, "vae in/out");
fail:
    return rc;
}

int zc_vae_decode(zc_vae *v, const float *lat, int lh, int lw, uint8_t *rgb, char *err,
                  size_t errlen)
{
    int rc = 0;
    if (lh != v->lh || lw != v->lw) {
        if ((rc = plan_make(v, lh, lw, err, errlen))) return rc;
        vpass b = {.v = v, .build = true, .err = err, .errlen = errlen};
        if ((rc = walk(&b, lat))) {
            plan_free(v);
            return rc;
        }
    }
    vpass r = {.v = v, .err = err, .errlen = errlen};
    if (getenv("PX_ZIMAGE_CUDA_PROFILE")) r.pf = px_cuda_prof_start(v->ctx->stream);
    if ((rc = walk(&r, lat))) goto fail;
    size_t f = (size_t)1 << (v->cfg.nlevels - 1);
    PX_CUDA_CHECK(cudaMemcpyAsync(rgb, v->rgb, (size_t)lh * lw * f * f * 3,
                                  cudaMemcpyDeviceToHost, v->ctx->stream));
    PX_CUDA_CHECK(cudaStreamSynchronize(v->ctx->stream));
    if (r.pf) {
        char title[64];
        snprintf(title, sizeof title, "zimage-cuda profile: VAE, latent %dx%d", lw, lh);
        px_cuda_prof_report(r.pf, stderr, title);
    }
fail:
    px_cuda_prof_free(r.pf);
    return rc;
}
