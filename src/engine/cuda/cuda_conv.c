/*
 * cuda_conv.c — a cuDNN convolution bound to a plan (see cuda_conv.h).
 */
#include "engine/cuda/cuda_conv.h"

#include "core/err.h"
#include "engine/cuda/cuda_check.h"

#include <string.h>

static const float k_one = 1.0f, k_zero = 0.0f;

/* Transform-domain algorithms: fine in fp32, rounding errors that grow
 * over deep networks in TF32 and BF16. */
static bool fwd_ok(cudnnConvolutionFwdAlgo_t a, px_cuda_prec p)
{
    return p == PX_CUDA_FP32 ||
           (a != CUDNN_CONVOLUTION_FWD_ALGO_FFT && a != CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING &&
            a != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED);
}

static bool bwd_ok(cudnnConvolutionBwdDataAlgo_t a, px_cuda_prec p)
{
    return p == PX_CUDA_FP32 || (a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT &&
                                 a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING &&
                                 a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED);
}

/* The transposed convolution: cuDNN's backward-data pass. */
static int search_bwd(px_cuda_conv *op, const px_cuda_conv_shape *s, cudnnHandle_t h,
                      const px_cuda_conv_args *a, size_t ws_limit, unsigned flags, char *err,
                      size_t errlen)
{
    int rc = 0;
    cudnnConvolutionBwdDataAlgoPerf_t perf[8];
    int got = 0;
    if (flags & PX_CUDA_CONV_HEURISTIC)
        PX_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, a->fd, op->xd, op->cd, op->yd,
                                                                   8, &got, perf));
    else
        PX_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
            h, a->fd, a->w, op->xd, a->x, op->cd, op->yd, a->y, 8, &got, perf, a->ws, ws_limit));
    int k = 0;
    while (k < got && (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].memory > ws_limit ||
                       !bwd_ok(perf[k].algo, (px_cuda_prec)s->prec)))
        k++;
    if (k == got)
        return px_errf(err, errlen, PX_EIO, "no cuDNN algorithm for a %dx%d transposed convolution",
                       s->kh, s->kw);
    op->algo = (int)perf[k].algo;
    op->ws = perf[k].memory;
fail:
    return rc;
}

static int search_fwd(px_cuda_conv *op, const px_cuda_conv_shape *s, cudnnHandle_t h,
                      const px_cuda_conv_args *a, size_t ws_limit, unsigned flags, char *err,
                      size_t errlen)
{
    int rc = 0;
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    int got = 0;
    if (flags & PX_CUDA_CONV_HEURISTIC)
        PX_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, op->xd, a->fd, op->cd, op->yd, 8,
                                                              &got, perf));
    else
        PX_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
            h, op->xd, a->x, a->fd, a->w, op->cd, op->yd, a->y, 8, &got, perf, a->ws, ws_limit));
    int k = 0;
    while (k < got && (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].memory > ws_limit ||
                       !fwd_ok(perf[k].algo, (px_cuda_prec)s->prec)))
        k++;
    if (k == got)
        return px_errf(err, errlen, PX_EIO, "no cuDNN algorithm for a %dx%d convolution %d->%d",
                       s->kh, s->kw, s->xc, s->yc);
    op->algo = (int)perf[k].algo;
    op->ws = perf[k].memory;
    /* Fused bias + ReLU where cuDNN supports it for this algorithm and
     * type; tried once here, kept only if it works. */
    if (s->fuse && !(flags & PX_CUDA_CONV_NOFUSE)) {
        cudnnStatus_t st = cudnnConvolutionBiasActivationForward(
            h, &a->alpha, op->xd, a->x, a->fd, a->w, op->cd, (cudnnConvolutionFwdAlgo_t)op->algo,
            a->ws, op->ws, a->acc ? &k_one : &k_zero, op->yd, a->y, op->bd, a->bias, op->ad, op->yd,
            a->y);
        op->fused = st == CUDNN_STATUS_SUCCESS;
        if (!op->fused) (void)cudaGetLastError();
    }
fail:
    return rc;
}

int px_cuda_conv_build(px_cuda_conv *op, const px_cuda_conv_shape *s, cudnnHandle_t h,
                       const px_cuda_conv_args *a, size_t ws_limit, px_cuda_algos *cache,
                       unsigned flags, char *err, size_t errlen)
{
    int rc = 0;
    px_cuda_prec pr = (px_cuda_prec)s->prec;
    cudnnDataType_t t = px_cuda_prec_dnn_type(pr);
    op->transposed = s->transposed;
    PX_CUDNN_CHECK(cudnnCreateTensorDescriptor(&op->xd));
    PX_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(op->xd, CUDNN_TENSOR_NHWC, t, s->n, s->xc, s->ih, s->iw));
    PX_CUDNN_CHECK(cudnnCreateTensorDescriptor(&op->yd));
    PX_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(op->yd, CUDNN_TENSOR_NHWC, t, s->n, s->yc, s->oh, s->ow));
    PX_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&op->cd));
    PX_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(op->cd, s->pad, s->pad, s->stride, s->stride, 1,
                                                   1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    PX_CUDNN_CHECK(cudnnSetConvolutionMathType(op->cd, px_cuda_prec_dnn_math(pr)));
    px_cuda_conv_choice known;
    int have = cache && px_cuda_algos_get(cache, s, &known);
    if (s->fuse) {
        PX_CUDNN_CHECK(cudnnCreateTensorDescriptor(&op->bd));
        PX_CUDNN_CHECK(cudnnSetTensor4dDescriptor(op->bd, CUDNN_TENSOR_NHWC, t, 1, s->yc, 1, 1));
        PX_CUDNN_CHECK(cudnnCreateActivationDescriptor(&op->ad));
        PX_CUDNN_CHECK(cudnnSetActivationDescriptor(op->ad, CUDNN_ACTIVATION_RELU,
                                                    CUDNN_NOT_PROPAGATE_NAN, 0.0));
    }
    if (have) {
        op->algo = known.algo;
        op->ws = known.ws;
        op->fused = known.fused;
        return 0;
    }
    rc = s->transposed ? search_bwd(op, s, h, a, ws_limit, flags, err, errlen)
                       : search_fwd(op, s, h, a, ws_limit, flags, err, errlen);
    if (rc) return rc;
    if (cache) {
        px_cuda_conv_choice c;
        memset(&c, 0, sizeof c);
        c.algo = op->algo;
        c.fused = op->fused;
        c.ws = op->ws;
        px_cuda_algos_put(cache, s, &c);
    }
fail:
    return rc;
}

int px_cuda_conv_run(const px_cuda_conv *op, cudnnHandle_t h, const px_cuda_conv_args *a, char *err,
                     size_t errlen)
{
    int rc = 0;
    const float *beta = a->acc ? &k_one : &k_zero;
    if (op->transposed)
        PX_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &a->alpha, a->fd, a->w, op->xd, a->x, op->cd,
                                                    (cudnnConvolutionBwdDataAlgo_t)op->algo, a->ws,
                                                    op->ws, beta, op->yd, a->y));
    else if (op->fused)
        PX_CUDNN_CHECK(cudnnConvolutionBiasActivationForward(
            h, &a->alpha, op->xd, a->x, a->fd, a->w, op->cd, (cudnnConvolutionFwdAlgo_t)op->algo,
            a->ws, op->ws, beta, op->yd, a->y, op->bd, a->bias, op->ad, op->yd, a->y));
    else
        PX_CUDNN_CHECK(cudnnConvolutionForward(h, &a->alpha, op->xd, a->x, a->fd, a->w, op->cd,
                                               (cudnnConvolutionFwdAlgo_t)op->algo, a->ws, op->ws,
                                               beta, op->yd, a->y));
fail:
    return rc;
}

void px_cuda_conv_free(px_cuda_conv *op)
{
    if (op->xd) cudnnDestroyTensorDescriptor(op->xd);
    if (op->yd) cudnnDestroyTensorDescriptor(op->yd);
    if (op->bd) cudnnDestroyTensorDescriptor(op->bd);
    if (op->cd) cudnnDestroyConvolutionDescriptor(op->cd);
    if (op->ad) cudnnDestroyActivationDescriptor(op->ad);
    memset(op, 0, sizeof *op);
}
