/*
 * cuda_conv.h — one cuDNN convolution (or transposed convolution) bound to
 * a plan: its descriptors and algorithm, chosen when the plan is built and
 * reused by every run (and every CUDA graph) of that plan.
 *
 * Building searches cuDNN's algorithms by timing them on the plan's own
 * buffers (cudnnFind...Ex) unless the device's algorithm cache
 * (cuda_plan.h) already knows the shape: the same shapes recur across a
 * network's layers and across the plans of many batch sizes and sizes.
 * Outside fp32, transform-domain algorithms (FFT, non-fused Winograd) are
 * passed over: they round their transformed operands too, and the error
 * grows over deep networks. Bias + ReLU are fused into the convolution
 * where cuDNN takes them for the chosen algorithm (tried once, at build);
 * otherwise the caller applies them (px_cuda_conv.fused tells).
 *
 * Tensors NHWC, filters cuDNN's NHWC (KRSC; for a transposed convolution
 * K is its input channels).
 */
#ifndef PX_ENGINE_CUDA_CUDA_CONV_H
#define PX_ENGINE_CUDA_CUDA_CONV_H

#include "engine/cuda/cuda_plan.h"
#include "engine/cuda/cuda_prec.h"

#include <cudnn.h>
#include <stdbool.h>
#include <stddef.h>

/* The shape, also the algorithm cache's key (ints only: no padding). xc
 * and yc are the convolution's own input and output channels (for a
 * transposed one x is cuDNN's dy and y its dx). */
typedef struct {
    int transposed, n, xc, yc, ih, iw, oh, ow, kh, kw, stride, pad;
    int fuse; /* bias + ReLU wanted (the caller passes an act-type bias) */
    int prec; /* px_cuda_prec */
} px_cuda_conv_shape;

/* What the cache remembers per shape. */
typedef struct {
    int algo;
    int fused;
    size_t ws;
} px_cuda_conv_choice;

/* The tensors of one call. */
typedef struct {
    cudnnFilterDescriptor_t fd;
    const void *w;
    const void *bias; /* act-type, cout values: the fused path's (may be NULL without fuse) */
    const void *x;
    void *y;
    void *ws;    /* workspace of the plan, ws_limit bytes */
    float alpha; /* scales the convolution, not the bias */
    bool acc;    /* y = alpha conv(x) + y (else the old y is ignored) */
} px_cuda_conv_args;

typedef struct {
    cudnnTensorDescriptor_t xd, yd, bd;
    cudnnConvolutionDescriptor_t cd;
    cudnnActivationDescriptor_t ad;
    int algo;
    size_t ws;  /* workspace bytes the algorithm uses */
    bool fused; /* bias + ReLU run inside the convolution */
    bool transposed;
} px_cuda_conv;

/* Build flags (diagnosis knobs an engine may expose). */
enum {
    PX_CUDA_CONV_HEURISTIC = 1, /* cuDNN's heuristic order instead of timing (no Find) */
    PX_CUDA_CONV_NOFUSE = 2     /* never fuse bias + ReLU */
};

/*
 * Builds op (zeroed by the caller) for shape s with `pad` zero padding, on
 * cuDNN handle h, searching with a's buffers (their contents are
 * overwritten: x and y must be the plan's, and y must hold no NaN when acc
 * or fusion reads it) and at most ws_limit bytes of workspace; cache may
 * be NULL. Returns 0 or PX_EIO/PX_ENOMEM with a message; px_cuda_conv_free
 * releases what was made either way.
 */
int px_cuda_conv_build(px_cuda_conv *op, const px_cuda_conv_shape *s, cudnnHandle_t h,
                       const px_cuda_conv_args *a, size_t ws_limit, px_cuda_algos *cache,
                       unsigned flags, char *err, size_t errlen);

/* Enqueues the convolution on h's stream (with bias + ReLU when fused),
 * on the buffers of a (the plan's, as at build). Returns 0 or
 * PX_EIO/PX_ENOMEM with a message. */
int px_cuda_conv_run(const px_cuda_conv *op, cudnnHandle_t h, const px_cuda_conv_args *a, char *err,
                     size_t errlen);

/* Destroys the descriptors (op is zeroed; a zeroed op is a no-op). */
void px_cuda_conv_free(px_cuda_conv *op);

#endif
