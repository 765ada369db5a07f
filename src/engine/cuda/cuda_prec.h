/*
 * cuda_prec.h — the numeric precisions a CUDA engine computes in, and what
 * each means to the libraries: the element type of activations and
 * weights, and whether tensor cores may round (TF32, BF16) or every
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
    PX_CUDA_NPREC
} px_cuda_prec;

/* "fp32", "tf32", "bf16". */
static inline const char *px_cuda_prec_name(px_cuda_prec p)
{
    static const char *const names[] = {"fp32", "tf32", "bf16"};
    return (unsigned)p < PX_CUDA_NPREC ? names[p] : "?";
}

/* Bytes of one tensor element. */
static inline size_t px_cuda_prec_size(px_cuda_prec p)
{
    return p == PX_CUDA_BF16 ? 2 : 4;
}

static inline cudnnDataType_t px_cuda_prec_dnn_type(px_cuda_prec p)
{
    return p == PX_CUDA_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

static inline cudnnMathType_t px_cuda_prec_dnn_math(px_cuda_prec p)
{
    return p == PX_CUDA_FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
}

#endif
