/*
 * zc_gemm.h — the Z-Image CUDA backend's linear layers: cuBLASLt GEMMs
 * with bf16 operands and fp32 accumulation, in PyTorch's row-major Linear
 * convention (y = x·Wᵀ + b), the bias fused as cuBLASLt's epilogue (fp32
 * y; a kernel after the GEMM for a bf16 y: zc_gemm.c says why), a
 * scale of the product and an optional accumulate into y (the Qwen3
 * residual, LoRA deltas: y += s·T·Bᵀ). Output bf16 (the input
 * of the next GEMM or of attention) or fp32 (what feeds a norm or the
 * residual stream).
 *
 * One zc_gemm per device context: its cuBLASLt handle (the context's),
 * a fixed workspace (fixed so that CUDA graphs can capture the calls) and
 * the heuristic's choice per shape and operand alignment (px_cuda_algos),
 * so a shape asks the heuristic once (PX_ZIMAGE_CUDA_GEMM_TUNE=1: times
 * its first few candidates instead and keeps the fastest, a diagnosis). Operands may start anywhere (e.g. a
 * column slice of y): the heuristic is told each pointer's alignment.
 * Not thread-safe: the context's holder uses it.
 *
 * FP8 (e4m3, zc_fp8.h): a GEMM given w8 quantizes x per row into the
 * caller's scratch and runs cuBLASLt's e4m3 GEMM with a scale per output
 * feature (w_scale) and per token (x_scale), fp32 accumulation, the same
 * outputs; the bias is added by a kernel after it. zimage_cuda_test's fp8
 * tests check it (passed on an H200, 2026-12-05).
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZC_GEMM_H
#define PX_ENGINE_ZIMAGE_CUDA_ZC_GEMM_H

#include "engine/cuda/cuda_device.h"

#include <stddef.h>

typedef enum zc_type { ZC_BF16 = 0, ZC_F32 = 1 } zc_type;

/* zc_gemm_args.f32_in's value for TF32 math. */
#define ZC_TF32 2

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
    int f32_in; /* x and w fp32 (the VAE's attention), yt ZC_F32: 1 fp32 math (FMA),
                 ZC_TF32 (2) TF32 tensor-core math, as the VAE's convolutions */
    int w_kn;   /* w is [K, N] row-major (y = x·w, e.g. probabilities · V) */
    const float *bias; /* NULL or N floats */
    void *y;           /* [M, N], row stride ldy, of type yt */
    int ldy;
    zc_type yt;
    int accumulate; /* y += x·Wᵀ (+ b) */
    float alpha;    /* x·Wᵀ is multiplied by alpha; 0 (the zero-initialised default) means 1 */
    /* FP8: w8 non-NULL runs the GEMM on w8 (e4m3 [N, zc_fp8_ld(K)], one
     * fp32 scale per row in w_scale; w unused) after quantizing x (bf16)
     * into x8 (M x zc_fp8_ld(K) bytes, 16-byte aligned) and x_scale (M
     * floats): scratch the caller owns, so that a captured CUDA graph
     * sees fixed addresses. N % 16 == 0 (zc_fp8_fits); not with f32_in
     * or w_kn. */
    const void *w8;
    const float *w_scale;
    void *x8;
    float *x_scale;
    int x8_ready; /* x8/x_scale already hold x quantized (the kernel that wrote x wrote
                     them, zc_q8): no quantization here, x unread (it may be stale) */
} zc_gemm_args;

/* Enqueues the GEMM on the context's stream. Returns 0, PX_EINVAL (a
 * shape cuBLASLt has no algorithm for: err names it) or PX_EIO/PX_ENOMEM. */
int zc_gemm_run(zc_gemm *g, const zc_gemm_args *a, char *err, size_t errlen);

/* The rate the GEMMs ran at is the bench's business; this is their work:
 * 2·M·N·K. */
double zc_gemm_flops(const zc_gemm_args *a);

/* 0 when cuBLASLt offers this GPU e4m3 GEMMs with per-row and per-column
 * scales (compute capability 9.0 or later and a cuBLASLt that has them);
 * else PX_EUNSUP saying what is missing (an fp8 engine refuses to start). */
int zc_gemm_fp8_probe(zc_gemm *g, char *err, size_t errlen);

/* Whether the fp8 GEMMs use cuBLASLt's fast accumulation (the default;
 * PX_ZIMAGE_CUDA_FP8_FASTACC=0 turns it off): 1 or 0. */
int zc_gemm_fp8_fast_accum(void);

#endif
