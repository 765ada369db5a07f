/*
 * lama_cuda_net.c — big-lama on one GPU (see lama_cuda_net.h).
 *
 * Layout: NHWC throughout, activations in fp32 or bf16 (precision "bf16";
 * FFTs always in fp32). Convolutions are cuDNN's (cuda_conv.h), with
 * BatchNorm folded (weights.c) and bias + ReLU fused into the convolution
 * where cuDNN can (cudnnConvolutionBiasActivationForward), else in a
 * kernel. Per FFC of a residual block:
 *   pad(x) -> [x_l | x_g] (and x_l alone)          trunk_pad (adds the residual)
 *   y_l = relu(conv3x3([l2l | g2l], [x_l | x_g]) + b_l)   one convolution
 *   y_g = conv3x3(l2g, x_l)                                (no bias yet)
 *   s   = relu(st1(x_g) + b_s)                              1x1
 *   u   = s + irfft2(relu(fu(rfft2(s)) + b_f))              Fourier unit
 *   y_g = relu(st2(u) + y_g + b_g)                          1x1, accumulating
 * The inverse FFT is explicit (lama.md's pitfall): complex inverse along H,
 * imaginary parts of bins 0 and W/2 zeroed, real inverse along W — what
 * PyTorch's CPU build computes, not what a 2-D C2R plan would.
 */
#include "engine/lama/cuda/lama_cuda_net.h"

#include "engine/lama/cuda/lama_cuda_arena.h"

#include "core/alloc.h"
#include "core/err.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_conv.h"
#include "engine/cuda/cuda_graph.h"
#include "engine/cuda/cuda_plan_async.h"
#include "engine/cuda/cuda_prof.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <cufft.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Plans per device, least recently used dropped. 24: the CROP window
 * buckets of a 1024² image (256², 512², 768², 1024²: kind_inpaint.h) at
 * the batch plans of --max-batch 8 (1, 2, 4, 8) are 16, all built at
 * warm-up; 8 evicted the warm-up's own plans. A build that runs out of
 * memory still frees every plan and retries (cuda_plan.h). */
#define MAX_PLANS 24
#define MAX_ALGOS 512                 /* per device: convolution shapes whose algorithm is kept */

/* ---------------------------------------------------------------- weights */

/* One convolution's weights on a device, cuDNN's NHWC filter layout (KRSC;
 * for a transposed convolution K is its input channels). */
typedef struct {
    int cout, cin, kh, kw, stride, transposed;
    px_cuda_prec prec; /* what it computes in: the network's, or TF32 (see upload) */
    void *w;           /* act type */
    float *b;          /* fp32 bias (epilogue kernel) or NULL */
    void *b_act;       /* act-type bias (cuDNN's fused path) or NULL */
    cudnnFilterDescriptor_t fd;
} dconv;

typedef struct {
    dconv a;   /* 3x3, [l2l | g2l]: (cl + cg) -> cl */
    dconv b;   /* 3x3, l2g: cl -> cg */
    dconv st1; /* 1x1, cg -> cs */
    dconv fu;  /* 1x1, 2cs -> 2cs */
    dconv st2; /* 1x1, cs -> cg */
} dffc;

struct px_lcnet {
    px_cuda_ctx *ctx;
    px_lama_arch arch;
    px_cuda_prec prec;
    dconv stem, down[PX_LAMA_MAX_DOWN], down_g, up[PX_LAMA_MAX_DOWN], out;
    dffc (*blk)[2];
    /* Plans per (batch, H, W); cuDNN's algorithm choice per convolution
     * shape: the 18 residual blocks repeat the same few shapes, and a
     * server builds plans for many batch sizes and windows, so a plan
     * costs a few searches instead of some eighty. */
    px_cuda_aplans *plans;
    px_cuda_algos *algos;
    /* Every plan is built with these (cuda_plan_async.c runs one build at
     * a time, on the device's worker or in the background): a build's
     * algorithm search then never waits for, nor delays, the batches
     * running on ctx's stream. */
    cudnnHandle_t bdnn;
    cudaStream_t bstream;
    size_t weight_bytes;
};

/*
 * Uploads one convolution: w is PyTorch's layout (cout, cin, kh, kw), or
 * (cin, cout, kh, kw) when transposed; cin_pad/cout_pad widen the input or
 * output channels with zeros (tensor cores want multiples of 8). The host
 * arrays may be NULL for the parts of a combined convolution (see upload_a).
 * raw: for the fused stem and head kernels, fp32 whatever the precision and
 * no cuDNN descriptor. f32: a convolution that stays in TF32 when the
 * engine runs in BF16 (the Fourier unit's, whose input is a spectrum: its
 * DC terms dwarf the rest, and bf16's 8-bit mantissa lost the rest).
 */
static int upload(px_lcnet *net, dconv *c, const float *w, const float *b, int cout, int cin, int k,
                  int stride, int transposed, int cout_pad, int cin_pad, bool raw, bool f32,
                  char *err, size_t errlen)
{
    int rc = 0;
    px_cuda_prec cp = f32 && net->prec == PX_CUDA_BF16 ? PX_CUDA_TF32 : net->prec;
    c->prec = cp;
    float *host = NULL, *tmp = NULL, *hb = NULL;
    c->cout = cout_pad;
    c->cin = cin_pad;
    c->kh = c->kw = k;
    c->stride = stride;
    c->transposed = transposed;
    /* K x R x S x C with K the filter's "output" side in cuDNN terms. */
    int K = transposed ? cin_pad : cout_pad, C = transposed ? cout_pad : cin_pad;
    size_t n = (size_t)K * k * k * C;
    host = px_xcalloc(n, sizeof *host);
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++)
            for (int y = 0; y < k; y++)
                for (int x = 0; x < k; x++) {
                    float v = transposed ? w[(((size_t)i * cout + o) * k + y) * k + x]
                                         : w[(((size_t)o * cin + i) * k + y) * k + x];
                    int kk = transposed ? i : o, cc = transposed ? o : i;
                    host[(((size_t)kk * k + y) * k + x) * C + cc] = v;
                }
    PX_CUDA_CHECK(cudaMalloc((void **)&tmp, n * sizeof(float)));
    /* On the stream the conversion below runs on: a plain cudaMemcpy runs
     * on the legacy stream, which ctx->stream (non-blocking) is not
     * ordered with, and a pageable upload's DMA may still run when it
     * returns — the conversion could read a weight's tail before it lands. */
    PX_CUDA_CHECK(cudaMemcpyAsync(tmp, host, n * sizeof(float), cudaMemcpyHostToDevice,
                                  net->ctx->stream));
    PX_CUDA_CHECK(cudaStreamSynchronize(net->ctx->stream)); /* host is freed below */
    if (cp == PX_CUDA_BF16 && !raw) {
        PX_CUDA_CHECK(cudaMalloc(&c->w, n * 2));
        PX_CUDA_LAUNCH_CHECK(px_cu_convert((px_cu_stream)net->ctx->stream, 1, tmp, n, c->w));
        PX_CUDA_CHECK(cudaStreamSynchronize(net->ctx->stream));
        PX_CUDA_CHECK(cudaFree(tmp));
    } else {
        c->w = tmp;
    }
    tmp = NULL;
    net->weight_bytes += n * (raw ? sizeof(float) : px_cuda_prec_size(cp));
    if (b) {
        hb = px_xcalloc((size_t)cout_pad, sizeof *hb);
        memcpy(hb, b, (size_t)cout * sizeof *hb);
        PX_CUDA_CHECK(cudaMalloc((void **)&c->b, (size_t)cout_pad * sizeof(float)));
        PX_CUDA_CHECK(cudaMemcpyAsync(c->b, hb, (size_t)cout_pad * sizeof(float),
                                      cudaMemcpyHostToDevice, net->ctx->stream)); /* as above */
        if (!raw) {
            PX_CUDA_CHECK(cudaMalloc(&c->b_act, (size_t)cout_pad * px_cuda_prec_size(cp)));
            PX_CUDA_LAUNCH_CHECK(px_cu_convert((px_cu_stream)net->ctx->stream, cp == PX_CUDA_BF16,
                                               c->b, (size_t)cout_pad, c->b_act));
            PX_CUDA_CHECK(cudaStreamSynchronize(net->ctx->stream));
        }
    }
    if (!raw) {
        PX_CUDNN_CHECK(cudnnCreateFilterDescriptor(&c->fd));
        PX_CUDNN_CHECK(cudnnSetFilter4dDescriptor(c->fd, px_cuda_prec_dnn_type(cp),
                                                  CUDNN_TENSOR_NHWC, K, C, k, k));
    }
fail:
    free(host);
    free(hb);
    if (tmp) cudaFree(tmp);
    return rc;
}

static void dconv_free(dconv *c)
{
    if (c->w) cudaFree(c->w);
    if (c->b) cudaFree(c->b);
    if (c->b_act) cudaFree(c->b_act);
    if (c->fd) cudnnDestroyFilterDescriptor(c->fd);
    memset(c, 0, sizeof *c);
}

static int upload_conv(px_lcnet *net, dconv *c, const px_lama_conv *src, bool raw, bool f32,
                       char *err, size_t errlen)
{
    return upload(net, c, src->w, src->b, src->cout, src->cin, src->k, src->stride, src->transposed,
                  src->cout, src->cin, raw, f32, err, errlen);
}

/* The local output of an FFC as one convolution over [x_l | x_g]: l2l's and
 * g2l's weights side by side along the input channels (the bias is l2l's:
 * weights.c folds the local BatchNorm's shift there). */
static int upload_a(px_lcnet *net, dconv *c, const px_lama_ffc *f, char *err, size_t errlen)
{
    const px_lama_conv *l = &f->l2l, *g = &f->g2l;
    int cout = l->cout, cin = l->cin + g->cin, k = l->k;
    float *w = px_xmalloc((size_t)cout * cin * k * k * sizeof *w);
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++)
            for (int t = 0; t < k * k; t++)
                w[((size_t)o * cin + i) * k * k + t] =
                    i < l->cin ? l->w[((size_t)o * l->cin + i) * k * k + t]
                               : g->w[((size_t)o * g->cin + (i - l->cin)) * k * k + t];
    int rc = upload(net, c, w, l->b, cout, cin, k, 1, 0, cout, cin, false, false, err, errlen);
    free(w);
    return rc;
}

static int upload_all(px_lcnet *net, const px_lama_weights *W, char *err, size_t errlen)
{
    const px_lama_arch *a = &net->arch;
    int rc = upload_conv(net, &net->stem, &W->stem, true, false, err, errlen);
    for (int i = 0; !rc && i < a->n_down; i++)
        rc = upload_conv(net, &net->down[i], &W->down[i], false, false, err, errlen);
    if (!rc) rc = upload_conv(net, &net->down_g, &W->down_g, false, false, err, errlen);
    net->blk = px_xcalloc((size_t)a->n_blocks, sizeof *net->blk);
    for (int b = 0; !rc && b < a->n_blocks; b++)
        for (int j = 0; !rc && j < 2; j++) {
            const px_lama_ffc *f = &W->blocks[b][j];
            dffc *o = &net->blk[b][j];
            rc = upload_a(net, &o->a, f, err, errlen);
            if (!rc) rc = upload_conv(net, &o->b, &f->l2g, false, false, err, errlen);
            if (!rc) rc = upload_conv(net, &o->st1, &f->st1, false, false, err, errlen);
            if (!rc) rc = upload_conv(net, &o->fu, &f->fu, false, true, err, errlen);
            if (!rc) rc = upload_conv(net, &o->st2, &f->st2, false, false, err, errlen);
        }
    for (int i = 0; !rc && i < a->n_down; i++)
        rc = upload_conv(net, &net->up[i], &W->up[i], false, false, err, errlen);
    if (!rc) rc = upload_conv(net, &net->out, &W->out, true, false, err, errlen);
    return rc;
}

/* ---------------------------------------------------------------- plans */

/* Diagnosis knobs: PX_LAMA_CUDA_HEURISTIC=1 takes cuDNN's heuristic
 * algorithm order instead of timing them (cudnnFind), PX_LAMA_CUDA_NOFUSE=1
 * keeps bias and ReLU out of the convolutions. */
static unsigned conv_flags(void)
{
    return (getenv("PX_LAMA_CUDA_HEURISTIC") ? PX_CUDA_CONV_HEURISTIC : 0) |
           (getenv("PX_LAMA_CUDA_NOFUSE") ? PX_CUDA_CONV_NOFUSE : 0);
}

/* One convolution bound to a plan's buffers. */
typedef struct {
    px_cuda_conv c;
    size_t rows; /* output pixels, for the epilogue */
    bool relu, bias;
} op;

#define MAX_OPS (16 + 10 * PX_LAMA_MAX_BLOCKS * 2)

struct px_lcnet_plan {
    int B, H, W;
    size_t bytes;
    char *arena;
    void *buf[BF_COUNT];
    void *ws; /* cuDNN's workspace: the search's limit while built, then what it chose */
    /* Pinned host mirrors of the inputs and outputs (graph-captured copies). */
    uint8_t *h_img, *h_mask, *h_out;
    px_cu_item *h_items;
    cufftHandle fwd, inv; /* R2C and C2R 2D over B*cs planes: see fourier_unit() */
    bool have_fft;
    op ops[MAX_OPS];
    int nops;
    px_cuda_graph graph;
};

typedef struct px_lcnet_plan plan;

static void plan_free(plan *p)
{
    if (!p) return;
    px_cuda_graph_free(&p->graph);
    for (int i = 0; i < p->nops; i++) px_cuda_conv_free(&p->ops[i].c);
    if (p->have_fft) {
        cufftDestroy(p->fwd);
        cufftDestroy(p->inv);
    }
    if (p->arena) cudaFree(p->arena);
    if (p->ws) cudaFree(p->ws);
    if (p->h_img) cudaFreeHost(p->h_img);
    if (p->h_mask) cudaFreeHost(p->h_mask);
    if (p->h_out) cudaFreeHost(p->h_out);
    if (p->h_items) cudaFreeHost(p->h_items);
    free(p);
}

/* State of one pass over the network: building a plan (creating each op,
 * choosing its algorithm) or running it (launching). One function walks
 * the network for both, so the two can never disagree on the order. */
typedef struct {
    px_lcnet *net;
    plan *p;
    bool build;
    int next;         /* next op */
    float *pred;      /* run: also write the float prediction here (device) */
    px_cuda_prof *pf; /* run: time every step (PX_LAMA_CUDA_PROFILE=1; no graph) */
    char *err;
    size_t errlen;
} pass;

static void mark(pass *ps, const char *label)
{
    if (!ps->build) px_cuda_prof_mark(ps->pf, label);
}

/*
 * A convolution from x (n x ih x iw x cin) to y (n x oh x ow x cout), zero
 * padding `pad` (the graph pads by reflection itself, so 0 except for the
 * transposed ones), times alpha, optionally accumulating into y, adding the
 * bias and applying ReLU.
 */
static int conv(pass *ps, const dconv *w, const void *x, int ih, int iw, void *y, int oh, int ow,
                int pad, bool acc, bool bias, bool relu, float alpha)
{
    char *err = ps->err;
    size_t errlen = ps->errlen;
    plan *p = ps->p;
    int rc = 0;
    if (ps->next >= MAX_OPS) return px_errf(err, errlen, PX_EINVAL, "lama-cuda: too many layers");
    op *o = &p->ops[ps->next++];
    cudnnHandle_t h = ps->build ? ps->net->bdnn : ps->net->ctx->dnn;
    /* clang-format off */
    px_cuda_conv_args args = {.fd = w->fd, .w = w->w, .bias = w->b_act, .x = x, .y = y,
                              .ws = p->ws, .alpha = alpha, .acc = acc};
    /* clang-format on */
    if (ps->build) {
        p->nops = ps->next;
        o->relu = relu;
        o->bias = bias && w->b;
        o->rows = (size_t)p->B * oh * ow;
        /* For a transposed convolution x is cuDNN's dy and y its dx; cin and
         * cout are the transposed convolution's own, so the same either way. */
        /* clang-format off */
        px_cuda_conv_shape s = {w->transposed, p->B, w->cin, w->cout, ih, iw, oh, ow, w->kh,
                                w->kw, w->stride, pad, o->relu && o->bias, (int)w->prec};
        /* clang-format on */
        return px_cuda_conv_build(&o->c, &s, h, &args, PX_LCA_WS_LIMIT, ps->net->algos, conv_flags(), err,
                                  errlen);
    }
    /* run */
    if ((rc = px_cuda_conv_run(&o->c, h, &args, err, errlen))) goto fail;
    if (!o->c.fused && (o->bias || o->relu))
        PX_CUDA_LAUNCH_CHECK(px_cu_bias_act((px_cu_stream)ps->net->ctx->stream,
                                            w->prec == PX_CUDA_BF16, y, o->bias ? w->b : NULL,
                                            o->rows, w->cout, o->relu));
fail:
    return rc;
}

#define LAUNCH(call)                                                                               \
    do {                                                                                           \
        if (run) PX_CUDA_LAUNCH_CHECK(call);                                                       \
    } while (0)
#define CONV(...)                                                                                  \
    do {                                                                                           \
        if ((rc = conv(ps, __VA_ARGS__))) goto fail;                                               \
    } while (0)

/*
 * The Fourier unit of one FFC: u = s + irfft2(relu(fu(rfft2(s)) + b)), both
 * transforms orthonormal, on a planar layout: s (NHWC, fp32 or bf16) is
 * transposed to fp32 [B][c][h][w] and one R2C 2D runs over all B*c planes;
 * the spectrum is transposed to NHWC complex [B][h][wf][cs] for the 1x1
 * convolution (channel 2k = Re, 2k+1 = Im, LaMa's order; the forward
 * 1/sqrt(h*w) is its alpha). Back: one transpose to planar that makes
 * columns 0 and w/2 Hermitian along H (what zeroing their imaginary parts
 * after an inverse along H would do), one C2R 2D, and the last kernel
 * scales, goes back to NHWC and adds s. Unit-stride transforms over all
 * images at once cost two more transposes and still won: the FFTs took
 * 35.0 ms of a 1024² batch-8 pass as channel-strided calls per image, 11.4
 * ms so, with 5.5 ms more of layout kernels (H100, 2026-12-06, lama-cuda.md).
 * The transforms and the convolution run in fp32 in every precision.
 */
static int fourier_unit(pass *ps, const dffc *f)
{
    px_lcnet *net = ps->net;
    plan *p = ps->p;
    const px_lama_arch *a = &net->arch;
    char *err = ps->err;
    size_t errlen = ps->errlen;
    px_cu_stream s = (px_cu_stream)net->ctx->stream;
    void **buf = p->buf;
    int bf = net->prec == PX_CUDA_BF16, B = p->B, cs = a->cs, rc = 0;
    int h8 = p->H >> a->n_down, w8 = p->W >> a->n_down, wf = w8 / 2 + 1;
    bool run = !ps->build;
    float scale = 1.0f / sqrtf((float)h8 * (float)w8);
    cufftComplex *spec = buf[BF_SPEC];
    LAUNCH(px_cu_to_planar(s, bf, buf[BF_S], B, h8 * w8, cs, buf[BF_PLANAR]));
    mark(ps, "fu layout kernels");
    if (run) PX_CUFFT_CHECK(cufftExecR2C(p->fwd, buf[BF_PLANAR], buf[BF_SPECT]));
    mark(ps, "fu fft");
    LAUNCH(px_cu_planar_to_nhwc_c(s, buf[BF_SPECT], B, h8 * wf, cs, (float *)spec));
    mark(ps, "fu layout kernels");
    /* g: the convolution's output (fp32 in every precision, see upload),
     * and then the spectrum to invert. */
    cufftComplex *g = buf[BF_G];
    CONV(&f->fu, spec, h8, wf, g, h8, wf, 0, false, true, true, scale);
    mark(ps, "fu conv");
    LAUNCH(px_cu_hermitian_transpose(s, (const float *)g, B, cs, h8, wf, w8, buf[BF_SPECT]));
    mark(ps, "fu layout kernels");
    if (run) PX_CUFFT_CHECK(cufftExecC2R(p->inv, buf[BF_SPECT], buf[BF_PLANAR]));
    mark(ps, "fu fft");
    LAUNCH(px_cu_planar_add(s, bf, buf[BF_PLANAR], scale, buf[BF_S], B, h8, w8, cs, buf[BF_U]));
    mark(ps, "fu layout kernels");
fail:
    return rc;
}

/* The trunk's n_blocks residual FFC pairs at 1/2^n_down scale. x = (xl,
 * xg) comes in as the down-sampling's output and goes out as the last
 * block's input (the caller adds the last z): it alternates between two
 * buffer pairs because the residual add reads the old x while writing the
 * new. */
static int trunk(pass *ps, void **xl_io, void **xg_io)
{
    px_lcnet *net = ps->net;
    plan *p = ps->p;
    const px_lama_arch *a = &net->arch;
    char *err = ps->err;
    size_t errlen = ps->errlen;
    px_cu_stream s = (px_cu_stream)net->ctx->stream;
    int bf = net->prec == PX_CUDA_BF16, B = p->B, h8 = p->H >> a->n_down, w8 = p->W >> a->n_down;
    void **buf = p->buf;
    int rc = 0;
    bool run = !ps->build;
    void *xl = *xl_io, *xg = *xg_io, *nxl = buf[BF_XL1], *nxg = buf[BF_XG1];
    for (int b = 0; b < a->n_blocks; b++) {
        for (int j = 0; j < 2; j++) {
            const dffc *f = &net->blk[b][j];
            /* Inputs and outputs of this FFC. */
            void *il = j ? buf[BF_YL] : xl, *ig = j ? buf[BF_YG] : xg;
            void *ol = j ? buf[BF_ZL] : buf[BF_YL], *og = j ? buf[BF_ZG] : buf[BF_YG];
            if (j == 0 && b > 0) {
                /* x += z of the previous block, written to the other pair. */
                LAUNCH(px_cu_trunk_pad(s, bf, xl, xg, buf[BF_ZL], buf[BF_ZG], nxl, nxg, B, h8, w8,
                                       a->cl, a->cg, 1, buf[BF_PCAT], buf[BF_PL]));
                void *t = xl;
                xl = nxl, nxl = t;
                t = xg, xg = nxg, nxg = t;
                il = xl, ig = xg;
            } else {
                LAUNCH(px_cu_trunk_pad(s, bf, il, ig, NULL, NULL, NULL, NULL, B, h8, w8, a->cl,
                                       a->cg, 1, buf[BF_PCAT], buf[BF_PL]));
            }
            mark(ps, "trunk pad");
            CONV(&f->a, buf[BF_PCAT], h8 + 2, w8 + 2, ol, h8, w8, 0, false, true, true, 1.0f);
            mark(ps, "ffc conv a (l2l|g2l)");
            CONV(&f->b, buf[BF_PL], h8 + 2, w8 + 2, og, h8, w8, 0, false, false, false, 1.0f);
            mark(ps, "ffc conv b (l2g)");
            CONV(&f->st1, ig, h8, w8, buf[BF_S], h8, w8, 0, false, true, true, 1.0f);
            mark(ps, "st1 conv");
            if ((rc = fourier_unit(ps, f))) goto fail;
            CONV(&f->st2, buf[BF_U], h8, w8, og, h8, w8, 0, true, true, true, 1.0f);
            mark(ps, "st2 conv");
        }
    }
    *xl_io = xl, *xg_io = xg;
fail:
    return rc;
}

/* Enqueues (or, building, plans) the whole forward pass. */
static int forward(pass *ps)
{
    px_lcnet *net = ps->net;
    plan *p = ps->p;
    const px_lama_arch *a = &net->arch;
    char *err = ps->err;
    size_t errlen = ps->errlen;
    px_cu_stream s = (px_cu_stream)net->ctx->stream;
    int bf = net->prec == PX_CUDA_BF16, B = p->B, H = p->H, W = p->W, nd = a->n_down;
    int h8 = H >> nd, w8 = W >> nd;
    void **buf = p->buf;
    int rc = 0;
    bool run = !ps->build;
    size_t img_stride = (size_t)H * W * 3, mask_stride = (size_t)H * W;

    if (run) {
        PX_CUDA_CHECK(cudaMemcpyAsync(buf[BF_ITEMS], p->h_items, (size_t)B * sizeof(px_cu_item),
                                      cudaMemcpyHostToDevice, net->ctx->stream));
        PX_CUDA_CHECK(cudaMemcpyAsync(buf[BF_IMG], p->h_img, (size_t)B * img_stride,
                                      cudaMemcpyHostToDevice, net->ctx->stream));
        PX_CUDA_CHECK(cudaMemcpyAsync(buf[BF_MASK], p->h_mask, (size_t)B * mask_stride,
                                      cudaMemcpyHostToDevice, net->ctx->stream));
    }
    mark(ps, "upload");
    /* Stem: the input built from image and mask, padded, 7x7, bias, ReLU:
     * one kernel (4 input channels suit cuDNN badly). */
    LAUNCH(px_cu_stem(s, bf, buf[BF_IMG], buf[BF_MASK], img_stride, mask_stride, buf[BF_ITEMS], B,
                      H, W, net->stem.w, net->stem.b, a->ngf, buf[BF_BIG]));
    mark(ps, "stem");
    /* Down-sampling: reflection pad 1 -> 3x3 stride 2; the last one splits
     * into the trunk's local and global groups. */
    void *cur = buf[BF_BIG];
    for (int i = 0; i < nd; i++) {
        int hi = H >> i, wi = W >> i;
        LAUNCH(px_cu_reflect_pad(s, bf, cur, B, hi, wi, a->ch[i], 1, buf[BF_PD]));
        mark(ps, "down pad");
        if (i + 1 < nd) {
            CONV(&net->down[i], buf[BF_PD], hi + 2, wi + 2, buf[BF_DOWN + i], hi / 2, wi / 2, 0,
                 false, true, true, 1.0f);
            cur = buf[BF_DOWN + i];
        } else {
            CONV(&net->down[i], buf[BF_PD], hi + 2, wi + 2, buf[BF_XL0], h8, w8, 0, false, true,
                 true, 1.0f);
            CONV(&net->down_g, buf[BF_PD], hi + 2, wi + 2, buf[BF_XG0], h8, w8, 0, false, true,
                 true, 1.0f);
        }
        mark(ps, "down conv");
    }
    void *xl = buf[BF_XL0], *xg = buf[BF_XG0];
    if ((rc = trunk(ps, &xl, &xg))) goto fail;
    LAUNCH(px_cu_trunk_concat(s, bf, xl, xg, buf[BF_ZL], buf[BF_ZG], B, h8, w8, a->cl, a->cg,
                              buf[BF_CAT]));
    mark(ps, "trunk pad");
    /* Up-sampling: transposed 3x3 stride 2 (padding 1, output padding 1). */
    cur = buf[BF_CAT];
    for (int j = 0; j < nd; j++) {
        int hi = h8 << j, wi = w8 << j;
        void *dst = j + 1 < nd ? buf[BF_UP + j] : buf[BF_LAST];
        CONV(&net->up[j], cur, hi, wi, dst, hi * 2, wi * 2, 1, false, true, true, 1.0f);
        mark(ps, j + 1 < nd ? "up conv (+bias relu)" : "last up conv (+bias relu)");
        cur = dst;
    }
    /* Head: reflection pad 3 -> 7x7 -> sigmoid, quantised and composed, in
     * one kernel (3 output channels suit cuDNN badly). */
    LAUNCH(px_cu_head(s, bf, buf[BF_LAST], B, H, W, a->ngf, net->out.w, net->out.b, buf[BF_IMG],
                      buf[BF_MASK], img_stride, mask_stride, buf[BF_ITEMS], buf[BF_OUT], ps->pred));
    mark(ps, "head");
    if (run)
        PX_CUDA_CHECK(cudaMemcpyAsync(p->h_out, buf[BF_OUT], (size_t)B * img_stride,
                                      cudaMemcpyDeviceToHost, net->ctx->stream));
    mark(ps, "download");
fail:
    return rc;
}
#undef LAUNCH
#undef CONV

static int plan_create(px_lcnet *net, int B, int H, int W, plan **out, char *err, size_t errlen)
{
    const px_lama_arch *a = &net->arch;
    cudaStream_t stream = net->bstream;
    int rc = 0;
    plan *p = px_xcalloc(1, sizeof *p);
    p->B = B;
    p->H = H;
    p->W = W;
    size_t sz[BF_COUNT], off[BF_COUNT];
    px_lca_sizes(a, net->prec, B, H, W, sz);
    p->bytes = px_lca_layout(a, net->prec, sz, off);
    PX_CUDA_CHECK(cudaSetDevice(net->ctx->dev));
    PX_CUDA_CHECK(cudaMalloc((void **)&p->arena, p->bytes));
    /* Zeroed once: the fused convolutions read y (times 0) before writing
     * it, and 0 * NaN from stale memory would be NaN. */
    PX_CUDA_CHECK(cudaMemsetAsync(p->arena, 0, p->bytes, stream));
    for (int i = 0; i < BF_COUNT; i++) p->buf[i] = sz[i] ? p->arena + off[i] : NULL;
    PX_CUDA_CHECK(cudaMallocHost((void **)&p->h_img, sz[BF_IMG]));
    PX_CUDA_CHECK(cudaMallocHost((void **)&p->h_mask, sz[BF_MASK]));
    PX_CUDA_CHECK(cudaMallocHost((void **)&p->h_out, sz[BF_OUT]));
    PX_CUDA_CHECK(cudaMallocHost((void **)&p->h_items, sz[BF_ITEMS]));
    /* See fourier_unit(): unit-stride 2D transforms over all B*cs planes. */
    int n2[2] = {H >> a->n_down, W >> a->n_down};
    PX_CUFFT_CHECK(cufftPlanMany(&p->fwd, 2, n2, NULL, 1, 0, NULL, 1, 0, CUFFT_R2C, B * a->cs));
    PX_CUFFT_CHECK(cufftPlanMany(&p->inv, 2, n2, NULL, 1, 0, NULL, 1, 0, CUFFT_C2R, B * a->cs));
    p->have_fft = true;
    /* The transforms run with the plan's other work, on ctx's stream. */
    PX_CUFFT_CHECK(cufftSetStream(p->fwd, net->ctx->stream));
    PX_CUFFT_CHECK(cufftSetStream(p->inv, net->ctx->stream));
    PX_CUDA_CHECK(cudaStreamSynchronize(stream));
    PX_CUDA_CHECK(cudaMalloc(&p->ws, PX_LCA_WS_LIMIT));
    pass ps = {.net = net, .p = p, .build = true, .err = err, .errlen = errlen};
    if ((rc = forward(&ps))) goto fail;
    PX_CUDA_CHECK(cudaStreamSynchronize(stream));
    /* Keep only the workspace the chosen algorithms use (at 512², batch
     * 16, the limit alone was a tenth of the plan). */
    size_t ws = 0;
    for (int i = 0; i < p->nops; i++)
        if (p->ops[i].c.ws > ws) ws = p->ops[i].c.ws;
    PX_CUDA_CHECK(cudaFree(p->ws));
    p->ws = NULL;
    if (ws) PX_CUDA_CHECK(cudaMalloc(&p->ws, ws));
    *out = p;
    return 0;
fail:
    plan_free(p);
    *out = NULL;
    return rc;
}

/* The graph helper may enqueue twice in one run (a failed capture, then
 * directly): each pass walks the ops from the first. */
static int enqueue_forward(void *arg, char *err, size_t errlen)
{
    (void)err, (void)errlen; /* the pass carries the same buffer */
    pass *ps = arg;
    ps->next = 0;
    return forward(ps);
}

int px_lcnet_plan_run(px_lcnet *net, plan *p, float *pred, char *err, size_t errlen)
{
    cudaStream_t stream = net->ctx->stream;
    int rc = 0;
    pass ps = {.net = net, .p = p, .build = false, .pred = pred, .err = err, .errlen = errlen};
    static int profiling = -1;
    if (profiling < 0) profiling = getenv("PX_LAMA_CUDA_PROFILE") != NULL;
    /* Profiled runs (after the first, which initialises) run directly. */
    bool timed = profiling && p->graph.runs >= 1;
    if (timed) ps.pf = px_cuda_prof_start(stream);
    if ((rc = px_cuda_graph_run(&p->graph, stream, pred || timed, enqueue_forward, &ps, "lama-cuda",
                                err, errlen)))
        goto fail;
    PX_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (timed) {
        char title[96];
        snprintf(title, sizeof title, "lama-cuda profile: batch %d, %dx%d", p->B, p->W, p->H);
        px_cuda_prof_report(ps.pf, stderr, title);
    }
fail:
    px_cuda_prof_free(ps.pf);
    return rc;
}

/* ------------------------------------------------------------- the cache */

typedef struct {
    int B, H, W;
} plan_key;

static int build_plan(void *arg, const void *key, void **out, char *err, size_t errlen)
{
    const plan_key *k = key;
    plan *p = NULL;
    int rc = plan_create(arg, k->B, k->H, k->W, &p, err, errlen);
    *out = p;
    return rc;
}

static void drop_plan(void *arg, void *p)
{
    (void)arg;
    plan_free(p);
}

int px_lcnet_plan_get(px_lcnet *net, int B, int H, int W, plan **out, char *err, size_t errlen)
{
    plan_key k = {B, H, W};
    void *p = NULL;
    int rc = px_cuda_aplans_get(net->plans, &k, &p, err, errlen);
    *out = p;
    return rc;
}

int px_lcnet_plan_ready(px_lcnet *net, int B, int H, int W, int want)
{
    plan_key k = {B, H, W};
    return px_cuda_aplans_ready(net->plans, &k, want);
}

px_lcnet_io px_lcnet_plan_io(plan *p)
{
    return (px_lcnet_io){.img = p->h_img,
                         .mask = p->h_mask,
                         .out = p->h_out,
                         .items = p->h_items,
                         .B = p->B,
                         .H = p->H,
                         .W = p->W};
}

size_t px_lcnet_plan_bytes(const px_lama_arch *a, px_cuda_prec prec, int B, int H, int W)
{
    size_t sz[BF_COUNT];
    px_lca_sizes(a, prec, B, H, W, sz);
    /* cuFFT's work areas (two plans) are at most about one spectrum each,
     * and one more of margin; cuDNN's workspace is its limit while the
     * plan is built. */
    size_t off[BF_COUNT];
    return px_lca_layout(a, prec, sz, off) + 3 * sz[BF_SPEC] + PX_LCA_WS_LIMIT;
}

/* ----------------------------------------------------------- the network */

int px_lcnet_create(const px_lama_weights *W, px_cuda_prec prec, px_cuda_ctx *ctx, px_lcnet **out,
                    char *err, size_t errlen)
{
    int rc = 0;
    px_lcnet *net = px_xcalloc(1, sizeof *net);
    net->ctx = ctx;
    net->arch = W->arch;
    net->prec = prec;
    px_cuda_plan_ops ops = {.build = build_plan, .destroy = drop_plan, .arg = net};
    net->plans = px_cuda_aplans_create(sizeof(plan_key), MAX_PLANS, &ops, "lama-cuda");
    net->algos =
        px_cuda_algos_create(sizeof(px_cuda_conv_shape), sizeof(px_cuda_conv_choice), MAX_ALGOS);
    PX_CUDA_CHECK(cudaSetDevice(ctx->dev));
    PX_CUDA_CHECK(cudaStreamCreateWithFlags(&net->bstream, cudaStreamNonBlocking));
    if (cudnnCreate(&net->bdnn) != CUDNN_STATUS_SUCCESS ||
        cudnnSetStream(net->bdnn, net->bstream) != CUDNN_STATUS_SUCCESS) {
        rc = px_errf(err, errlen, PX_EIO, "lama-cuda: cuDNN handle for plan builds failed");
        goto fail;
    }
    if ((rc = upload_all(net, W, err, errlen))) goto fail;
    /* Every upload made with a plain cudaMemcpy (legacy stream) has landed
     * before the first request's kernels run on ctx->stream. */
    PX_CUDA_CHECK(cudaDeviceSynchronize());
    *out = net;
    return 0;
fail:
    px_lcnet_free(net);
    *out = NULL;
    return rc;
}

size_t px_lcnet_weight_bytes(const px_lcnet *net)
{
    return net->weight_bytes;
}

void px_lcnet_free(px_lcnet *net)
{
    if (!net) return;
    cudaSetDevice(net->ctx->dev);
    px_cuda_aplans_destroy(net->plans); /* first: a background build uses the rest */
    px_cuda_algos_destroy(net->algos);
    dconv_free(&net->stem);
    dconv_free(&net->down_g);
    dconv_free(&net->out);
    for (int k = 0; k < PX_LAMA_MAX_DOWN; k++) {
        dconv_free(&net->down[k]);
        dconv_free(&net->up[k]);
    }
    if (net->blk)
        for (int b = 0; b < net->arch.n_blocks; b++)
            for (int j = 0; j < 2; j++) {
                dffc *f = &net->blk[b][j];
                dconv_free(&f->a);
                dconv_free(&f->b);
                dconv_free(&f->st1);
                dconv_free(&f->fu);
                dconv_free(&f->st2);
            }
    free(net->blk);
    if (net->bdnn) cudnnDestroy(net->bdnn);
    if (net->bstream) cudaStreamDestroy(net->bstream);
    free(net);
}
