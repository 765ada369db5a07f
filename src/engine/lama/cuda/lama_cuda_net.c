/*
 * lama_cuda_net.c — big-lama on one GPU (see lama_cuda_net.h).
 *
 * Layout: NHWC throughout, activations in fp32, bf16 or fp16 (precisions
 * "bf16", "fp16"; FFTs always in fp32; FP16 keeps the residual stream x
 * and s in fp32, st1 in TF32: lama_cuda_arena.h says why). Convolutions
 * are cuDNN's (cuda_conv.h), with BatchNorm folded (weights.c) and bias +
 * ReLU fused into the convolution where cuDNN can
 * (cudnnConvolutionBiasActivationForward), else in a kernel. Per FFC of a
 * residual block:
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

#include "engine/lama/cuda/conv7.h"
#include "engine/lama/cuda/fft2.h"
#include "engine/lama/cuda/lama_cuda_arena.h"
#include "engine/lama/cuda/lama_cuda_weights.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
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
#define MAX_ALGOS 512 /* per device: convolution shapes whose algorithm is kept */

struct px_lcnet {
    px_cuda_ctx *ctx;
    px_lcw w; /* the weights, in the network's precision */
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
    /* With the stem on the tensor cores, it writes the first
     * down-sampling's padded input itself, so the stem's own output and
     * one reflection pad go (1024² batch 8 on an H100: stem +0.37 ms, down
     * pad -0.97 ms); PX_LAMA_CUDA_STEM_PD=0 keeps them, for diagnosis. */
    bool stem_pd;
    /* fft2.h's transforms on the NHWC tensors where the shapes fit them,
     * cuFFT elsewhere (and everywhere with PX_LAMA_CUDA_FFT=cufft): see
     * fourier_unit(). */
    bool own_fft;
};

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
    /* fft2.h's transforms, decided once by plan_sizes: such a plan has
     * neither cuFFT's plans nor the planar buffers. */
    bool own_fft;
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
static int conv(pass *ps, const px_lcw_conv *w, const void *x, int ih, int iw, void *y, int oh,
                int ow, int pad, bool acc, bool bias, bool relu, float alpha)
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
        return px_cuda_conv_build(&o->c, &s, h, &args, PX_LCA_WS_LIMIT, ps->net->algos,
                                  conv_flags(), err, errlen);
    }
    /* run */
    if ((rc = px_cuda_conv_run(&o->c, h, &args, err, errlen))) goto fail;
    if (!o->c.fused && (o->bias || o->relu))
        PX_CUDA_LAUNCH_CHECK(px_cu_bias_act((px_cu_stream)ps->net->ctx->stream,
                                            px_lcw_elem(w->prec), y, o->bias ? w->b : NULL, o->rows,
                                            w->cout, o->relu));
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

/* What the unit's steps share: the stream, the plan's buffers, the
 * element types (et: 16-bit or fp32 activations; ets: s's), the sizes. */
typedef struct {
    px_cu_stream s;
    void **buf;
    int et, ets, B, cs, h8, w8, wf, ext;
    bool own; /* fft2.h's transforms (else cuFFT's) */
} fu_ctx;

/*
 * The Fourier unit of one FFC: u = s + irfft2(relu(fu(rfft2(s)) + b)), both
 * transforms orthonormal; the spectrum is NHWC complex [B][h][wf][cs] for
 * the 1x1 convolution (channel 2k = Re, 2k+1 = Im, LaMa's order; the
 * forward 1/sqrt(h*w) is its alpha). The transforms and the convolution
 * run in fp32 in every precision.
 *
 * Two ways to the spectrum and back. fft2.h's (the default where the
 * 1/8-scale sides are 32, 64 or 128) read and write the NHWC tensors
 * themselves, two passes a direction. cuFFT's (elsewhere, and everywhere
 * with PX_LAMA_CUDA_FFT=cufft) works on a planar layout: s (NHWC) is
 * transposed to fp32 [B][c][h][w] and one R2C 2D runs over all B*c
 * planes, then the spectrum is transposed to NHWC; back, one transpose to
 * planar that makes columns 0 and w/2 Hermitian along H (what zeroing
 * their imaginary parts after an inverse along H would do), one C2R 2D,
 * and the last kernel scales, goes back to NHWC and adds s. Unit-stride
 * transforms over all images at once cost two more transposes and still
 * won over channel-strided calls per image: 35.0 ms of a 1024² batch-8
 * pass so, 11.4 ms with 5.5 ms more of layout kernels (H100, 2026-12-06,
 * lama-cuda.md). This is the forward half; fu_inverse the other.
 */
static int fu_forward(pass *ps, const fu_ctx *u)
{
    plan *p = ps->p;
    char *err = ps->err;
    size_t errlen = ps->errlen;
    int rc = 0;
    if (u->own) {
        PX_CUDA_LAUNCH_CHECK(
            px_cu_fu_rfft2(u->s, u->ets, u->buf[BF_S], u->B, u->h8, u->w8, u->cs, u->buf[BF_SPEC]));
        mark(ps, "fu fft");
        return 0;
    }
    PX_CUDA_LAUNCH_CHECK(
        px_cu_to_planar(u->s, u->ets, u->buf[BF_S], u->B, u->h8 * u->w8, u->cs, u->buf[BF_PLANAR]));
    mark(ps, "fu layout kernels");
    PX_CUFFT_CHECK(cufftExecR2C(p->fwd, u->buf[BF_PLANAR], u->buf[BF_SPECT]));
    mark(ps, "fu fft");
    PX_CUDA_LAUNCH_CHECK(px_cu_planar_to_nhwc_c(u->s, u->buf[BF_SPECT], u->B, u->h8 * u->wf, u->cs,
                                                u->buf[BF_SPEC]));
    mark(ps, "fu layout kernels");
fail:
    return rc;
}

/* The way back: g (the convolution's output) to u = s + scale * C2R(g). */
static int fu_inverse(pass *ps, const fu_ctx *u, float scale)
{
    plan *p = ps->p;
    char *err = ps->err;
    size_t errlen = ps->errlen;
    int rc = 0;
    if (u->own) {
        PX_CUDA_LAUNCH_CHECK(px_cu_fu_irfft2(u->s, u->buf[BF_G], scale, u->ets, u->buf[BF_S], u->et,
                                             u->B, u->h8, u->w8, u->cs, u->ext, u->buf[BF_U]));
        mark(ps, "fu fft");
        return 0;
    }
    PX_CUDA_LAUNCH_CHECK(px_cu_hermitian_transpose(u->s, u->buf[BF_G], u->B, u->cs, u->h8, u->wf,
                                                   u->w8, u->buf[BF_SPECT]));
    mark(ps, "fu layout kernels");
    PX_CUFFT_CHECK(cufftExecC2R(p->inv, u->buf[BF_SPECT], u->buf[BF_PLANAR]));
    mark(ps, "fu fft");
    PX_CUDA_LAUNCH_CHECK(px_cu_planar_add(u->s, u->ets, u->et, u->buf[BF_PLANAR], scale,
                                          u->buf[BF_S], u->B, u->h8, u->w8, u->cs, u->ext,
                                          u->buf[BF_U]));
    mark(ps, "fu layout kernels");
fail:
    return rc;
}

static int fourier_unit(pass *ps, const px_lcw_ffc *f)
{
    px_lcnet *net = ps->net;
    plan *p = ps->p;
    const px_lama_arch *a = &net->w.arch;
    int h8 = p->H >> a->n_down, w8 = p->W >> a->n_down, wf = w8 / 2 + 1, rc = 0;
    float scale = 1.0f / sqrtf((float)h8 * (float)w8);
    /* clang-format off */
    fu_ctx u = {(px_cu_stream)net->ctx->stream, p->buf, px_lcw_elem(net->w.prec),
                px_lcw_elem_wide(net->w.prec), p->B, a->cs, h8, w8, wf, net->w.ext,
                p->own_fft};
    /* clang-format on */
    if (!ps->build && (rc = fu_forward(ps, &u))) return rc;
    /* g: the convolution's output (fp32 in every precision, see upload),
     * and then the spectrum to invert. */
    if ((rc = conv(ps, &f->fu, p->buf[BF_SPEC], h8, wf, p->buf[BF_G], h8, wf, 0, false, true, true,
                   scale)))
        return rc;
    mark(ps, "fu conv");
    return ps->build ? 0 : fu_inverse(ps, &u, scale);
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
    const px_lama_arch *a = &net->w.arch;
    char *err = ps->err;
    size_t errlen = ps->errlen;
    px_cu_stream s = (px_cu_stream)net->ctx->stream;
    int et = px_lcw_elem(net->w.prec), etx = px_lcw_elem_wide(net->w.prec), B = p->B,
        h8 = p->H >> a->n_down, w8 = p->W >> a->n_down, ext = net->w.ext;
    void **buf = p->buf;
    int rc = 0;
    bool run = !ps->build;
    void *xl = *xl_io, *xg = *xg_io, *nxl = buf[BF_XL1], *nxg = buf[BF_XG1];
    for (int b = 0; b < a->n_blocks; b++) {
        for (int j = 0; j < 2; j++) {
            const px_lcw_ffc *f = &net->w.blk[b][j];
            /* Inputs and outputs of this FFC. */
            void *il = j ? buf[BF_YL] : xl, *ig = j ? buf[BF_YG] : xg;
            void *ol = j ? buf[BF_ZL] : buf[BF_YL], *og = j ? buf[BF_ZG] : buf[BF_YG];
            /* st1's input: FP16 reads fp32 in TF32, so the second half's
             * (fp16) is widened on the way (XG32). */
            float *gw = j && px_lca_wide(net->w.prec) ? buf[BF_XG32] : NULL;
            if (j == 0 && b > 0) {
                /* x += z of the previous block, written to the other pair. */
                LAUNCH(px_cu_trunk_pad(s, etx, et, xl, xg, buf[BF_ZL], buf[BF_ZG], nxl, nxg, B, h8,
                                       w8, a->cl, a->cg, ext, 1, buf[BF_PCAT], buf[BF_PL], NULL));
                void *t = xl;
                xl = nxl, nxl = t;
                t = xg, xg = nxg, nxg = t;
                il = xl, ig = xg;
            } else {
                LAUNCH(px_cu_trunk_pad(s, j ? et : etx, et, il, ig, NULL, NULL, NULL, NULL, B, h8,
                                       w8, a->cl, a->cg, ext, 1, buf[BF_PCAT], buf[BF_PL], gw));
            }
            mark(ps, "trunk pad");
            CONV(&f->a, buf[BF_PCAT], h8 + 2, w8 + 2, ol, h8, w8, 0, false, true, true, 1.0f);
            mark(ps, "ffc conv a (l2l|g2l)");
            CONV(&f->b, buf[BF_PL], h8 + 2, w8 + 2, og, h8, w8, 0, false, false, false, 1.0f);
            mark(ps, "ffc conv b (l2g)");
            CONV(&f->st1, gw ? (void *)gw : ig, h8, w8, buf[BF_S], h8, w8, 0, false, true, true,
                 1.0f);
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
    const px_lama_arch *a = &net->w.arch;
    char *err = ps->err;
    size_t errlen = ps->errlen;
    px_cu_stream s = (px_cu_stream)net->ctx->stream;
    int et = px_lcw_elem(net->w.prec), B = p->B, H = p->H, W = p->W, nd = a->n_down;
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
    /* stem_pd: it writes the first down-sampling's padded input itself. */
    bool spd = net->stem_pd;
    LAUNCH(px_cu_stem(s, et, buf[BF_IMG], buf[BF_MASK], img_stride, mask_stride, buf[BF_ITEMS], B,
                      H, W, net->w.stem.w, net->w.stem.wtc, net->w.stem.b, a->ngf, spd, net->w.ext,
                      buf[spd ? BF_PD : BF_BIG]));
    mark(ps, "stem");
    /* Down-sampling: reflection pad 1 -> 3x3 stride 2; the last one splits
     * into the trunk's local and global groups. */
    void *cur = buf[BF_BIG];
    for (int i = 0; i < nd; i++) {
        int hi = H >> i, wi = W >> i;
        if (i || !spd)
            LAUNCH(px_cu_reflect_pad(s, et, cur, B, hi, wi, a->ch[i], net->w.ext, 1, buf[BF_PD]));
        mark(ps, "down pad");
        if (i + 1 < nd) {
            CONV(&net->w.down[i], buf[BF_PD], hi + 2, wi + 2, buf[BF_DOWN + i], hi / 2, wi / 2, 0,
                 false, true, true, 1.0f);
            cur = buf[BF_DOWN + i];
        } else {
            /* FP16: into fp16 buffers, widened for the fp32 residual stream. */
            bool wide = px_lca_wide(net->w.prec);
            CONV(&net->w.down[i], buf[BF_PD], hi + 2, wi + 2, buf[wide ? BF_YL : BF_XL0], h8, w8, 0,
                 false, true, true, 1.0f);
            CONV(&net->w.down_g, buf[BF_PD], hi + 2, wi + 2, buf[wide ? BF_YG : BF_XG0], h8, w8, 0,
                 false, true, true, 1.0f);
            size_t px8 = (size_t)B * h8 * w8;
            if (wide) LAUNCH(px_cu_widen(s, et, buf[BF_YL], px8 * a->cl, buf[BF_XL0]));
            if (wide) LAUNCH(px_cu_widen(s, et, buf[BF_YG], px8 * a->cg, buf[BF_XG0]));
        }
        mark(ps, "down conv");
    }
    void *xl = buf[BF_XL0], *xg = buf[BF_XG0];
    if ((rc = trunk(ps, &xl, &xg))) goto fail;
    LAUNCH(px_cu_trunk_concat(s, px_lcw_elem_wide(net->w.prec), et, xl, xg, buf[BF_ZL], buf[BF_ZG],
                              B, h8, w8, a->cl, a->cg, buf[BF_CAT]));
    mark(ps, "trunk pad");
    /* Up-sampling: transposed 3x3 stride 2 (padding 1, output padding 1). */
    cur = buf[BF_CAT];
    for (int j = 0; j < nd; j++) {
        int hi = h8 << j, wi = w8 << j;
        void *dst = j + 1 < nd ? buf[BF_UP + j] : buf[BF_LAST];
        CONV(&net->w.up[j], cur, hi, wi, dst, hi * 2, wi * 2, 1, false, true, true, 1.0f);
        mark(ps, j + 1 < nd ? "up conv (+bias relu)" : "last up conv (+bias relu)");
        cur = dst;
    }
    /* Head: reflection pad 3 -> 7x7 -> sigmoid, quantised and composed, in
     * one kernel (3 output channels suit cuDNN badly). */
    LAUNCH(px_cu_head(s, et, buf[BF_LAST], B, H, W, a->ngf, net->w.out.w, net->w.out.wtc,
                      net->w.out.b, buf[BF_IMG], buf[BF_MASK], img_stride, mask_stride,
                      buf[BF_ITEMS], buf[BF_OUT], ps->pred));
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

/* Whether the Fourier unit's transforms are fft2.h's where they fit (the
 * default) or cuFFT's everywhere (PX_LAMA_CUDA_FFT=cufft, for diagnosis). */
static bool own_fft_asked(void)
{
    const char *ff = getenv("PX_LAMA_CUDA_FFT");
    return !(ff && !strcmp(ff, "cufft"));
}

/* A plan's buffer sizes; where fft2.h's transforms take the shape (own
 * asked), cuFFT's planar buffers are not needed. Returns whether they do. */
static bool plan_sizes(const px_lama_arch *a, px_cuda_prec prec, int ext, bool own, int B, int H,
                       int W, size_t sz[BF_COUNT])
{
    px_lca_sizes(a, prec, ext, B, H, W, sz);
    own = own && px_cu_fu_fits(H >> a->n_down, W >> a->n_down, a->cs);
    if (own) sz[BF_PLANAR] = sz[BF_SPECT] = 0;
    return own;
}

static int plan_create(px_lcnet *net, int B, int H, int W, plan **out, char *err, size_t errlen)
{
    const px_lama_arch *a = &net->w.arch;
    cudaStream_t stream = net->bstream;
    int rc = 0;
    plan *p = px_xcalloc(1, sizeof *p);
    p->B = B;
    p->H = H;
    p->W = W;
    size_t sz[BF_COUNT], off[BF_COUNT];
    bool own = p->own_fft = plan_sizes(a, net->w.prec, net->w.ext, net->own_fft, B, H, W, sz);
    p->bytes = px_lca_layout(a, net->w.prec, sz, off);
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
    if (!own) {
        /* See fourier_unit(): unit-stride 2D transforms over all B*cs planes. */
        int n2[2] = {H >> a->n_down, W >> a->n_down};
        PX_CUFFT_CHECK(cufftPlanMany(&p->fwd, 2, n2, NULL, 1, 0, NULL, 1, 0, CUFFT_R2C, B * a->cs));
        PX_CUFFT_CHECK(cufftPlanMany(&p->inv, 2, n2, NULL, 1, 0, NULL, 1, 0, CUFFT_C2R, B * a->cs));
        p->have_fft = true;
        /* The transforms run with the plan's other work, on ctx's stream. */
        PX_CUFFT_CHECK(cufftSetStream(p->fwd, net->ctx->stream));
        PX_CUFFT_CHECK(cufftSetStream(p->inv, net->ctx->stream));
    }
    PX_CUDA_CHECK(cudaStreamSynchronize(stream));
    PX_CUDA_CHECK(cudaMalloc(&p->ws, PX_LCA_WS_LIMIT));
    pass ps = {.net = net, .p = p, .build = true, .err = err, .errlen = errlen};
    if ((rc = forward(&ps))) goto fail;
    PX_CUDA_CHECK(cudaStreamSynchronize(stream));
    /* Keep only the workspace the chosen algorithms use (at 512², batch
     * 16, the limit alone was a tenth of the plan). */
    size_t ws = 0;
    int want = 0, fused = 0;
    for (int i = 0; i < p->nops; i++) {
        if (p->ops[i].c.ws > ws) ws = p->ops[i].c.ws;
        want += p->ops[i].bias && p->ops[i].relu && !p->ops[i].c.transposed;
        fused += p->ops[i].c.fused;
    }
    /* Which epilogues cuDNN took is a fact about its build, not ours: an
     * unfused one costs a pass over the output, and in 16 bits it rounds
     * the sum before the bias is added, which costs LaMa a fifth of its
     * accuracy (docs/benchmarks/lama-cuda.md, twenty-third session). */
    PX_DEBUG("lama-cuda: plan %dx%dx%d %s: %d of %d bias + ReLU epilogues fused", B, H, W,
             px_cuda_prec_name(net->w.prec), fused, want);
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
    bool own = plan_sizes(a, prec, px_lcw_ext(prec), own_fft_asked(), B, H, W, sz);
    /* cuFFT's work areas (two plans) are at most about one spectrum each,
     * and one more of margin; cuDNN's workspace is its limit while the
     * plan is built. */
    size_t off[BF_COUNT];
    return px_lca_layout(a, prec, sz, off) + (own ? 0 : 3 * sz[BF_SPEC]) + PX_LCA_WS_LIMIT;
}

/* ----------------------------------------------------------- the network */

int px_lcnet_create(const px_lama_weights *W, px_cuda_prec prec, px_cuda_ctx *ctx, px_lcnet **out,
                    char *err, size_t errlen)
{
    int rc = 0;
    px_lcnet *net = px_xcalloc(1, sizeof *net);
    net->ctx = ctx;
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
    if ((rc = px_lcw_upload(&net->w, W, prec, ctx->stream, err, errlen))) goto fail;
    const char *sp = getenv("PX_LAMA_CUDA_STEM_PD");
    net->stem_pd = !(sp && !strcmp(sp, "0")) && net->w.stem.wtc;
    net->own_fft = own_fft_asked();
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
    return net->w.bytes;
}

void px_lcnet_free(px_lcnet *net)
{
    if (!net) return;
    cudaSetDevice(net->ctx->dev);
    px_cuda_aplans_destroy(net->plans); /* first: a background build uses the rest */
    px_cuda_algos_destroy(net->algos);
    px_lcw_free(&net->w);
    if (net->bdnn) cudnnDestroy(net->bdnn);
    if (net->bstream) cudaStreamDestroy(net->bstream);
    free(net);
}
