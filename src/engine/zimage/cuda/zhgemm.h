/*
 * zhgemm.h — our own bf16 GEMM for Hopper (sm_90: TMA loads, wgmma with
 * fp32 accumulation), in the Linear convention y = x·Wᵀ, written for the
 * one fusion cuBLASLt cannot do: SwiGLU in the epilogue. The feed-forward's
 * w1|w3 GEMM writes 2F columns that a separate pass reads back to make F
 * (silu(gate) · up); with `glu` this GEMM computes a gate tile and its up
 * tile in the same block and writes only the F columns of h, from the fp32
 * accumulators (no bf16 rounding of gate and up before the product).
 *
 * Without `glu` it is a plain bf16 GEMM, there to hold the kernel's rate
 * against cuBLASLt's at the same shapes (bench/zgemm_cuda_bench.c).
 *
 * Tiles: 128 rows × 256 columns (glu: 128 gate + 128 up) × 64 of K, three
 * or four stages of shared memory filled by TMA from one producer thread,
 * two consumer warpgroups of 64 rows each; one persistent block per SM
 * walks the tiles M fastest, so that the blocks running at once share
 * their weight tiles in L2. The output goes through shared memory and TMA
 * stores where y's rows allow (16-byte aligned), so that storing a tile
 * overlaps the next tile's loads and products.
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZHGEMM_H
#define PX_ENGINE_ZIMAGE_CUDA_ZHGEMM_H

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zc_hgemm_args {
    const void *x; /* bf16 [M, K], row stride ldx elements (ldx·2 % 16 == 0), 16-byte aligned */
    int ldx, M, K; /* K % 8 == 0 */
    const void *w; /* bf16 rows of K, contiguous, 16-byte aligned: [N, K]; with glu the gate
                      rows [0, N) and the up rows [glu_off, glu_off + N) */
    int N;         /* output columns, even; with glu, glu_off >= N (a gate tile past N reads
                      up rows or zeros into columns that are not stored) */
    int glu;       /* 1: y[:, j] = silu(x·w_j) · (x·w_{glu_off + j}) */
    int glu_off;
    void *y; /* bf16 [M, N], row stride ldy (even) */
    int ldy;
    /* NULL, or bf16 [M, ld_add] added to the fp32 products before the epilogue's
     * SwiGLU (the LoRAs' deltas of w1|w3): column j to output j's gate, column
     * glu_off + j to its up (without glu, to output j); ld_add even */
    const void *add;
    int ld_add;
    int direct_store; /* 1: the registers straight to y even where TMA stores could
                         (16-byte aligned y and ldy % 8 == 0): for measuring */
} zc_hgemm_args;

/* 1 when the kernel can run on device dev (compute capability 9.x and a
 * driver that encodes tensor maps), else 0. The first call that answers 1
 * also raises the kernel's shared-memory limit (not a stream operation,
 * but done here so that no run inside a graph capture has to). */
int zc_hgemm_available(int dev);

/* 1 when a's shapes, strides and alignments are within the limits above. */
int zc_hgemm_fits(const zc_hgemm_args *a);

/* Enqueues the GEMM on s (graph capture allowed: the tensor maps travel as
 * kernel parameters). Returns 0, or a cudaError_t; cudaErrorInvalidValue
 * for arguments outside the limits above. */
int zc_hgemm_run(cudaStream_t s, const zc_hgemm_args *a);

#ifdef __cplusplus
}
#endif

#endif
