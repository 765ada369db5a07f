/*
 * zattn.h — attention for the Z-Image CUDA backend (the DiT's full
 * attention over padded items, the Qwen3 encoder's causal GQA), callable
 * from C. Three kernels of the same contract, all flash attention (online
 * softmax, fp32 statistics and accumulation, bf16 operands on the tensor
 * cores, the probabilities rounded to bf16 before P·V and their sum taken
 * over the rounded values):
 *
 *   ZC_ATTN_MMA   mma.sync m16n8k16 with ldmatrix: scores, probabilities
 *                 and the output stay in registers; 52 KB of shared memory
 *                 per 64 queries at head size 128, so several blocks share
 *                 an SM. Runs every call cuDNN's path does not take (the
 *                 text encoder's causal GQA, the tiny models' head sizes).
 *   ZC_ATTN_WMMA  the first kernel: WMMA fragments, whose element order is
 *                 opaque, so scores and the running output pass through
 *                 shared memory (120 KB a block at head size 128: one block
 *                 per SM). Kept as the second opinion the tests compare
 *                 with, and for the bench's A/B.
 *   ZC_ATTN_MMA2  the mma kernel's arithmetic with FlashAttention-2's
 *                 memory side: 128 queries a block (8 warps), K/V tiles
 *                 double-buffered with cp.async, Q fragments in registers;
 *                 104 KB of shared memory a block at head size 128.
 *                 Passes zattn_cuda_bench check on an H200 (2026-12-05)
 *                 but is no faster than mma there (1.76 vs 1.75 ms at
 *                 1024²: register-bound), so not the default.
 *
 *   ZC_ATTN_CUDNN cuDNN's fused flash attention through its backend graph
 *                 API (zattn_cudnn.h): the DiT's calls only (non-causal, no
 *                 GQA, head size 64/128, n_q == S_q); any other call, and
 *                 every call once cuDNN failed or no spelling of its graph
 *                 passed the one-time self-check against mma, runs the mma
 *                 kernel. The default since 2026-12-05: on an H100 it
 *                 passed zattn_cuda_bench check and ran the 1024² DiT
 *                 attention in 0.45 ms against mma's 1.73 (3.8x; PyTorch's
 *                 cuDNN SDPA backend 0.46), a 1024² image in 0.92 s
 *                 against 1.05 for torch.compile (docs/benchmarks/zimage-cuda.md).
 *
 * PX_ZIMAGE_CUDA_ATTN=mma|wmma|mma2|cudnn (read by zc_attn_init) makes the
 * engine use that kernel.
 *
 * mma and WMMA pass bench/zattn_cuda_bench check on an H200 (2026-12-05); the
 * mma kernel ran ~20x the WMMA one (159 vs 7.8 TFLOP/s at 1024²).
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZATTN_H
#define PX_ENGINE_ZIMAGE_CUDA_ZATTN_H

#include "engine/zimage/cuda/zkernels.h"

#ifdef __cplusplus
extern "C" {
#endif

enum zc_attn_impl {
    ZC_ATTN_MMA = 0,
    ZC_ATTN_WMMA = 1,
    ZC_ATTN_MMA2 = 2,
    ZC_ATTN_CUDNN = 3,
    ZC_ATTN_COUNT = 4
};

/* Attention operands: row r of item b of q is q + (b·S_q + r)·ldq + h·head_dim.
 * Rows must be 16-byte aligned (ld and the head offset multiples of 8). */
typedef struct zc_attn {
    const void *q, *k, *v; /* bf16 */
    void *o;               /* bf16, may not alias q/k/v */
    int ldq, ldk, ldv, ldo;
    int n_items, S_q, S_kv; /* rows per item of q/o and of k/v */
    int n_q;                /* queries computed per item (<= S_q) */
    const int *kv_len;      /* device, n_items: keys [0, kv_len[b]) are seen */
    int n_heads, n_kv_heads;
    int head_dim; /* 16, 32, 64 or 128 (Z-Image: 128; the tiny test models: 16, 32) */
    float scale;
    int causal; /* query i sees keys <= i */
    /* fp8 (zattn_q8.h): q, k, v and o are e4m3 codes, ld in bytes, and o =
     * e4m3(softmax(scale · dq · dk · q·kᵀ) · v) with dq, dk = descale_qk[0],
     * [1] (device floats). Only cuDNN runs it (zattn_cudnn.h); any other
     * kernel answers cudaErrorNotSupported. */
    int fp8;
    const float *descale_qk;
} zc_attn;

/* Once per device before the first attention: raises the kernels' dynamic
 * shared-memory limits and reads PX_ZIMAGE_CUDA_ATTN. 0 or a cudaError_t. */
int zc_attn_init(void);

/* The default kernel's name ("mma", "wmma", "mma2" or "cudnn"), for logs and bench
 * rows; zc_attn_impl_name names any. */
const char *zc_attn_name(void);
const char *zc_attn_impl_name(int impl);

/* softmax(scale·q·kᵀ)·v per (item, head) with the default kernel. A query
 * with no key gets zeros. cudaErrorInvalidValue for a head size not built. */
int zc_attention(zc_stream s, const zc_attn *a);

/* The same with a chosen kernel (enum zc_attn_impl): tests and benches.
 * ZC_ATTN_CUDNN runs mma for the calls cuDNN does not take. */
int zc_attention_with(zc_stream s, const zc_attn *a, int impl);

#ifdef __cplusplus
}
#endif

#endif
