/*
 * zc_gemm.h — the Z-Image CUDA backend's linear layers: cuBLASLt GEMMs
 * with bf16 operands and fp32 accumulation, in PyTorch's row-major Linear
 * convention (y = x·Wᵀ + b), the bias fused as cuBLASLt's epilogue, a
 * scale of the product and an optional accumulate into y (the Qwen3
 * residual, LoRA deltas: y += s·T·Bᵀ). Output bf16 (the input
 * of the next GEMM or of attention) or fp32 (what feeds a norm or the
 * residual stream).
 *
 * One zc_gemm per device context: its cuBLASLt handle (the context's),
 * a fixed workspace (fixed so that CUDA graphs can capture the calls) and
 * the heuristic's choice per shape and operand alignment (px_cuda_algos),
 * so a shape asks the heuristic once. Operands may start anywhere (e.g. a
 * column slice of y): the heuristic is told each pointer's alignment.
 * Not thread-safe: the context's holder uses it.
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZC_GEMM_H
#define PX_ENGINE_ZIMAGE_CUDA_ZC_GEMM_H

#include "engine/cuda/cuda_device.h"

#include <stddef.h>

typedef enum zc_type { ZC_BF16 = 0, ZC_F32 = 1 } zc_type;

typedef struct zc_gemm zc_gemm;

/* Takes c's cuBLASLt handle (px_cuda_blaslt_acquire first) and allocates
 * ws_bytes of workspace on c's device (current). Returns 0, PX_ENOMEM or
 * PX_EIO. Caller frees. */
int zc_gemm_create(px_cuda_ctx *c, size_t ws_bytes, zc_gemm **out, char *err, size_t errlen);
void zc_gemm_free(zc_gemm *g);

/* One GEMM's operands. */
typedef struct zc_gemm_args {
    const void *x; /* bf16 [M, K], row stride ldx (fp32 with f32_in) */
    int ldx, M, K;
    const void *w; /* bf16 [N, K] (a Linear weight), contiguous; [K, N] with w_kn */
    int N;
    int f32_in; /* x and w fp32, fp32 math (the VAE's attention); yt must be ZC_F32 */
    int w_kn;   /* w is [K, N] row-major (y = x·w, e.g. probabilities · V) */
    const float *bias; /* NULL or N floats */
    void *y;           /* [M, N], row stride ldy, of type yt */
    int ldy;
    zc_type yt;
    int accumulate; /* y += x·Wᵀ (+ b) */
    float alpha;    /* x·Wᵀ is multiplied by alpha; 0 (the zero-initialised default) means 1 */
} zc_gemm_args;

/* Enqueues the GEMM on the context's stream. Returns 0, PX_EINVAL (a
 * shape cuBLASLt has no algorithm for: err names it) or PX_EIO/PX_ENOMEM. */
int zc_gemm_run(zc_gemm *g, const zc_gemm_args *a, char *err, size_t errlen);

/* The rate the GEMMs ran at is the bench's business; this is their work:
 * 2·M·N·K. */
double zc_gemm_flops(const zc_gemm_args *a);

#endif
