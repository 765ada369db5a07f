/*
 * lama_cuda_weights.h — big-lama's weights on one GPU (px_lcw_): each
 * convolution uploaded in cuDNN's NHWC filter layout, in the precision
 * it computes in (BatchNorm already folded by weights.c), with its bias in
 * fp32 and in the activations' type. lama_cuda_net.c runs the network on
 * them.
 */
#ifndef PX_ENGINE_LAMA_CUDA_LAMA_CUDA_WEIGHTS_H
#define PX_ENGINE_LAMA_CUDA_LAMA_CUDA_WEIGHTS_H

#include "engine/cuda/cuda_prec.h"
#include "engine/lama/weights.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <stddef.h>

/* One convolution's weights on a device, cuDNN's NHWC filter layout (KRSC;
 * for a transposed convolution K is its input channels). */
typedef struct {
    int cout, cin, kh, kw, stride, transposed;
    px_cuda_prec prec; /* what it computes in: the network's, or TF32 (see upload) */
    void *w;           /* act type */
    float *b;          /* fp32 bias (epilogue kernel) or NULL */
    void *b_act;       /* act-type bias (cuDNN's fused path) or NULL */
    void *wtc;         /* stem and head: the tensor cores' fp16 weights (conv7.h), or NULL */
    cudnnFilterDescriptor_t fd;
} px_lcw_conv;

typedef struct {
    px_lcw_conv a;   /* 3x3, [l2l | g2l]: (cl + cg) -> cl */
    px_lcw_conv b;   /* 3x3, l2g: cl -> cg */
    px_lcw_conv st1; /* 1x1, cg -> cs */
    px_lcw_conv fu;  /* 1x1, 2cs -> 2cs */
    px_lcw_conv st2; /* 1x1, cs -> cg */
} px_lcw_ffc;

typedef struct {
    px_lama_arch arch;
    px_cuda_prec prec;
    /* The bias channel's width (0, or 8 ... 64: 32 by default): the fused
     * 16-bit convolutions' inputs (PD, PCAT, U) carry ext more channels, 1
     * then 0s, from which their weights add the part of the bias 16 bits
     * cannot hold (see split_bias in lama_cuda_weights.c). */
    int ext;
    px_lcw_conv stem, down[PX_LAMA_MAX_DOWN], down_g, up[PX_LAMA_MAX_DOWN], out;
    px_lcw_ffc (*blk)[2];
    size_t bytes;        /* device bytes of the weights */
    cudaStream_t stream; /* the stream the upload ran on */
} px_lcw;

/* Uploads W to the current device for precision prec,
 * on stream (synchronised before it returns). Returns 0, or a CUDA/cuDNN
 * error with what is uploaded so far left for px_lcw_free. */
int px_lcw_upload(px_lcw *w, const px_lama_weights *W, px_cuda_prec prec, cudaStream_t stream,
                  char *err, size_t errlen);

/* The bias channel's width for precision prec: 32 in fp16 (without it fp16
 * missed the accuracy gate; PX_LAMA_CUDA_BIASCH=0 drops it, for
 * diagnosis; the 1 and then zeros: 32 suits cuDNN's kernels better than
 * 8) and in bf16 with PX_LAMA_CUDA_BIASCH=1, else 0;
 * PX_LAMA_CUDA_BIASCH=8|16|...|64 sets the width, for measuring. */
int px_lcw_ext(px_cuda_prec prec);

/* Whether the 7x7 stem and head run on the tensor cores (conv7.h) in
 * precision prec: in every precision but fp32 (whose 2e-4 bound fp16
 * inputs would break), unless PX_LAMA_CUDA_TC7=0. */
int px_lcw_tc7(px_cuda_prec prec);

/* Frees what px_lcw_upload uploaded (any part of it) and zeroes w. */
void px_lcw_free(px_lcw *w);

/* The kernels' element type (kernels.h) of a precision's activations, and
 * of its residual stream and st1 output (fp32 in FP16: lama_cuda_arena.h). */
int px_lcw_elem(px_cuda_prec p);
int px_lcw_elem_wide(px_cuda_prec p);

#endif
