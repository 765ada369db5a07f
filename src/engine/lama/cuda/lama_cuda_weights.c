/*
 * lama_cuda_weights.c — big-lama's weights on one GPU (see
 * lama_cuda_weights.h).
 */
#include "engine/lama/cuda/lama_cuda_weights.h"

#include "engine/lama/cuda/conv7.h"
#include "engine/lama/cuda/kernels.h"
#include "engine/lama/cuda/lama_cuda_arena.h"

#include "core/alloc.h"
#include "core/err.h"
#include "engine/cuda/cuda_check.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int px_lcw_elem(px_cuda_prec p)
{
    return p == PX_CUDA_BF16 ? PX_CU_BF16 : p == PX_CUDA_FP16 ? PX_CU_F16 : PX_CU_F32;
}

int px_lcw_elem_wide(px_cuda_prec p)
{
    return px_lca_wide(p) ? PX_CU_F32 : px_lcw_elem(p);
}

/*
 * Uploads one convolution: w is PyTorch's layout (cout, cin, kh, kw), or
 * (cin, cout, kh, kw) when transposed; cin_pad/cout_pad widen the input or
 * output channels with zeros (tensor cores want multiples of 8). The host
 * arrays may be NULL for the parts of a combined convolution (see upload_a).
 * raw: for the fused stem and head kernels, fp32 whatever the precision and
 * no cuDNN descriptor. f32: a convolution that stays in TF32 when the
 * engine runs in 16 bits: TF32_HALF in both (the Fourier unit's, whose
 * input is a spectrum: its DC terms dwarf the rest, and bf16's 8-bit
 * mantissa lost the rest), TF32_WIDE in FP16 only (st1, see
 * px_lca_wide()).
 */
enum { TF32_NEVER, TF32_HALF, TF32_WIDE };

/* v rounded to nearest even in p's 16-bit type (v itself in fp32/TF32). */
static float round_act(px_cuda_prec p, float v)
{
    if (p == PX_CUDA_FP16) return (float)(_Float16)v;
    if (p != PX_CUDA_BF16) return v;
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    memcpy(&v, &u, sizeof v);
    return v;
}

/*
 * The bias channel (px_lcw.ext): cuDNN's fused epilogue takes a 16-bit
 * convolution's bias in 16 bits, and BatchNorm's folded shift nearly
 * cancels the sum it is added to, so its rounding shifted whole channels:
 * 5 % of the FP16 engine's accuracy (docs/benchmarks/lama-cuda.md,
 * twenty-third session). Split b into hi (its 16-bit value: the fused
 * bias, and the fp32 one an unfused epilogue adds) and lo = b - hi, which
 * the filter's centre tap reads from input channel cin, all ones: the
 * convolution sums it in fp32 and the bias arrives whole (lo's own
 * rounding is 2^-11 of 2^-11 of b). host: K x k x k x C (C > cin).
 */
static void split_bias(px_cuda_prec p, float *host, float *hb, int cout, int cin, int k, int C)
{
    for (int o = 0; o < cout; o++) {
        float hi = round_act(p, hb[o]);
        host[(((size_t)o * k + k / 2) * k + k / 2) * C + cin] = hb[o] - hi;
        hb[o] = hi;
    }
}

static int upload(px_lcw *lw, px_lcw_conv *c, const float *w, const float *b, int cout, int cin,
                  int k, int stride, int transposed, int cout_pad, int cin_pad, bool raw, int f32,
                  char *err, size_t errlen)
{
    int rc = 0;
    bool tf32 = (f32 == TF32_HALF && px_cuda_prec_half(lw->prec)) ||
                (f32 == TF32_WIDE && px_lca_wide(lw->prec));
    px_cuda_prec cp = tf32 ? PX_CUDA_TF32 : lw->prec;
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
    /* The bias, padded, and split where the input has the bias channel. */
    if (b) {
        hb = px_xcalloc((size_t)cout_pad, sizeof *hb);
        memcpy(hb, b, (size_t)cout * sizeof *hb);
        if (cin_pad > cin && lw->ext && px_cuda_prec_half(cp) && !raw && !transposed)
            split_bias(cp, host, hb, cout, cin, k, C);
    }
    PX_CUDA_CHECK(cudaMalloc((void **)&tmp, n * sizeof(float)));
    /* On the stream the conversion below runs on: a plain cudaMemcpy runs
     * on the legacy stream, which ctx->stream (non-blocking) is not
     * ordered with, and a pageable upload's DMA may still run when it
     * returns — the conversion could read a weight's tail before it lands. */
    PX_CUDA_CHECK(
        cudaMemcpyAsync(tmp, host, n * sizeof(float), cudaMemcpyHostToDevice, lw->stream));
    PX_CUDA_CHECK(cudaStreamSynchronize(lw->stream)); /* host is freed below */
    if (px_cuda_prec_half(cp) && !raw) {
        PX_CUDA_CHECK(cudaMalloc(&c->w, n * 2));
        PX_CUDA_LAUNCH_CHECK(
            px_cu_convert((px_cu_stream)lw->stream, px_lcw_elem(cp), tmp, n, c->w));
        PX_CUDA_CHECK(cudaStreamSynchronize(lw->stream));
        PX_CUDA_CHECK(cudaFree(tmp));
    } else {
        c->w = tmp;
    }
    tmp = NULL;
    lw->bytes += n * (raw ? sizeof(float) : px_cuda_prec_size(cp));
    if (b) {
        PX_CUDA_CHECK(cudaMalloc((void **)&c->b, (size_t)cout_pad * sizeof(float)));
        PX_CUDA_CHECK(cudaMemcpyAsync(c->b, hb, (size_t)cout_pad * sizeof(float),
                                      cudaMemcpyHostToDevice, lw->stream)); /* as above */
        if (!raw) {
            PX_CUDA_CHECK(cudaMalloc(&c->b_act, (size_t)cout_pad * px_cuda_prec_size(cp)));
            PX_CUDA_LAUNCH_CHECK(px_cu_convert((px_cu_stream)lw->stream, px_lcw_elem(cp), c->b,
                                               (size_t)cout_pad, c->b_act));
            PX_CUDA_CHECK(cudaStreamSynchronize(lw->stream));
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

static void conv_free(px_lcw_conv *c)
{
    if (c->w) cudaFree(c->w);
    if (c->b) cudaFree(c->b);
    if (c->b_act) cudaFree(c->b_act);
    if (c->wtc) cudaFree(c->wtc);
    if (c->fd) cudnnDestroyFilterDescriptor(c->fd);
    memset(c, 0, sizeof *c);
}

/* ext: the input's bias channel (0 or lw->ext). */
static int upload_conv(px_lcw *lw, px_lcw_conv *c, const px_lama_conv *src, bool raw, int f32,
                       int ext, char *err, size_t errlen)
{
    return upload(lw, c, src->w, src->b, src->cout, src->cin, src->k, src->stride, src->transposed,
                  src->cout, src->cin + ext, raw, f32, err, errlen);
}

/* The local output of an FFC as one convolution over [x_l | x_g]: l2l's and
 * g2l's weights side by side along the input channels (the bias is l2l's:
 * weights.c folds the local BatchNorm's shift there). */
static int upload_a(px_lcw *lw, px_lcw_conv *c, const px_lama_ffc *f, char *err, size_t errlen)
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
    int rc = upload(lw, c, w, l->b, cout, cin, k, 1, 0, cout, cin + lw->ext, false, TF32_NEVER, err,
                    errlen);
    free(w);
    return rc;
}

/* The stem's and head's weights for the tensor cores, arranged from the
 * fp32 ones already uploaded. */
static int upload_tc7(px_lcw *lw, char *err, size_t errlen)
{
    int rc = 0;
    px_cu_stream s = (px_cu_stream)lw->stream;
    size_t sb = px_cu_stem_tc_bytes(lw->stem.cout), hb = px_cu_head_tc_bytes(lw->out.cin);
    PX_CUDA_CHECK(cudaMalloc(&lw->stem.wtc, sb));
    PX_CUDA_CHECK(cudaMalloc(&lw->out.wtc, hb));
    PX_CUDA_LAUNCH_CHECK(px_cu_stem_tc_weights(s, lw->stem.w, lw->stem.cout, lw->stem.wtc));
    PX_CUDA_LAUNCH_CHECK(px_cu_head_tc_weights(s, lw->out.w, lw->out.cin, lw->out.wtc));
    PX_CUDA_CHECK(cudaStreamSynchronize(lw->stream));
    lw->bytes += sb + hb;
fail:
    return rc;
}

static int upload_all(px_lcw *lw, const px_lama_weights *W, char *err, size_t errlen)
{
    const px_lama_arch *a = &lw->arch;
    int x = lw->ext; /* the bias channel of PD, PCAT and U: the fused 16-bit convolutions' inputs */
    int rc = upload_conv(lw, &lw->stem, &W->stem, true, TF32_NEVER, 0, err, errlen);
    for (int i = 0; !rc && i < a->n_down; i++)
        rc = upload_conv(lw, &lw->down[i], &W->down[i], false, TF32_NEVER, x, err, errlen);
    if (!rc) rc = upload_conv(lw, &lw->down_g, &W->down_g, false, TF32_NEVER, x, err, errlen);
    lw->blk = px_xcalloc((size_t)a->n_blocks, sizeof *lw->blk);
    for (int b = 0; !rc && b < a->n_blocks; b++)
        for (int j = 0; !rc && j < 2; j++) {
            const px_lama_ffc *f = &W->blocks[b][j];
            px_lcw_ffc *o = &lw->blk[b][j];
            rc = upload_a(lw, &o->a, f, err, errlen);
            if (!rc) rc = upload_conv(lw, &o->b, &f->l2g, false, TF32_NEVER, 0, err, errlen);
            if (!rc) rc = upload_conv(lw, &o->st1, &f->st1, false, TF32_WIDE, 0, err, errlen);
            if (!rc) rc = upload_conv(lw, &o->fu, &f->fu, false, TF32_HALF, 0, err, errlen);
            if (!rc) rc = upload_conv(lw, &o->st2, &f->st2, false, TF32_NEVER, x, err, errlen);
        }
    for (int i = 0; !rc && i < a->n_down; i++)
        rc = upload_conv(lw, &lw->up[i], &W->up[i], false, TF32_NEVER, 0, err, errlen);
    if (!rc) rc = upload_conv(lw, &lw->out, &W->out, true, TF32_NEVER, 0, err, errlen);
    if (!rc && px_lcw_tc7(lw->prec)) rc = upload_tc7(lw, err, errlen);
    return rc;
}

void px_lcw_free(px_lcw *w)
{
    conv_free(&w->stem);
    conv_free(&w->down_g);
    conv_free(&w->out);
    for (int k = 0; k < PX_LAMA_MAX_DOWN; k++) {
        conv_free(&w->down[k]);
        conv_free(&w->up[k]);
    }
    if (w->blk)
        for (int b = 0; b < w->arch.n_blocks; b++)
            for (int j = 0; j < 2; j++) {
                px_lcw_ffc *f = &w->blk[b][j];
                conv_free(&f->a);
                conv_free(&f->b);
                conv_free(&f->st1);
                conv_free(&f->fu);
                conv_free(&f->st2);
            }
    free(w->blk);
    memset(w, 0, sizeof *w);
}

int px_lcw_ext(px_cuda_prec prec)
{
    const char *e = getenv("PX_LAMA_CUDA_BIASCH");
    /* 32 wide by default: cuDNN picks faster kernels for the FFC's 3x3
     * with 544 input channels than with 520 (8 wide: 22 % slower than
     * without the channel for 1.6 % more work); 32 made the whole pass
     * 3 % faster (H100, 2026-12-07, lama-cuda.md). =8 ... =64 choose. */
    int n = e ? atoi(e) : -1, wide = n >= 8 && n <= 64 && n % 8 == 0 ? n : 32;
    if (prec == PX_CUDA_FP16) return n == 0 ? 0 : wide;
    return prec == PX_CUDA_BF16 && n > 0 ? wide : 0;
}

int px_lcw_tc7(px_cuda_prec prec)
{
    const char *e = getenv("PX_LAMA_CUDA_TC7");
    return prec != PX_CUDA_FP32 && !(e && !strcmp(e, "0"));
}

int px_lcw_upload(px_lcw *w, const px_lama_weights *W, px_cuda_prec prec, cudaStream_t stream,
                  char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->arch = W->arch;
    w->prec = prec;
    w->ext = px_lcw_ext(prec);
    w->stream = stream;
    return upload_all(w, W, err, errlen);
}
