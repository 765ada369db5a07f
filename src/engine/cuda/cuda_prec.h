/*
 * cuda_prec.h — the numeric precisions a CUDA engine computes in, and what
 * each means to the libraries: the element type of activations and
 * weights, and whether tensor cores may round (TF32, BF16, FP16) or every
 * multiply-add is fp32 (FMA).
 */
#ifndef PX_ENGINE_CUDA_CUDA_PREC_H
#define PX_ENGINE_CUDA_CUDA_PREC_H

#include <cudnn.h>
#include <stddef.h>

typedef enum {
    PX_CUDA_FP32, /* fp32 tensors, fp32 math */
    PX_CUDA_TF32, /* fp32 tensors, TF32 tensor cores */
    PX_CUDA_BF16, /* bf16 tensors, fp32 accumulation */
    PX_CUDA_FP16, /* IEEE half tensors (TF32's mantissa, 5-bit exponent), fp32 accumulation */
    PX_CUDA_NPREC
} px_cuda_prec;

/* "fp32", "tf32", "bf16", "fp16". */
static inline const char *px_cuda_prec_name(px_cuda_prec p)
{
    static const char *const names[] = {"fp32", "tf32", "bf16", "fp16"};
    return (unsigned)p < PX_CUDA_NPREC ? names[p] : "?";
}

/* Whether tensors are 16-bit (bf16 or fp16). */
static inline int px_cuda_prec_half(px_cuda_prec p)
{
    return p == PX_CUDA_BF16 || p == PX_CUDA_FP16;
}

/* Bytes of one tensor element. */
static inline size_t px_cuda_prec_size(px_cuda_prec p)
{
    return px_cuda_prec_half(p) ? 2 : 4;
}

static inline cudnnDataType_t px_cuda_prec_dnn_type(px_cuda_prec p)
{
    return p == PX_CUDA_BF16   ? CUDNN_DATA_BFLOAT16
           : p == PX_CUDA_FP16 ? CUDNN_DATA_HALF
                               : CUDNN_DATA_FLOAT;
}

static inline cudnnMathType_t px_cuda_prec_dnn_math(px_cuda_prec p)
{
    return p == PX_CUDA_FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
}

#endif
