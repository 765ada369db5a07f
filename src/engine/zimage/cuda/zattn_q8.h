/*
 * zattn_q8.h — the e4m3 operands of the DiT's fp8 attention (cuDNN's fp8
 * SDPA, zattn_cudnn.h), written by the kernels before it:
 *
 *   Q, K: zc_qknorm_rope_q8 (zkernels.h) writes them from the per-head
 *         RMSNorm + RoPE at a static scale per block and side: an
 *         RMS-normed head of hd values has an L2 norm of at most sqrt(hd),
 *         so after the norm weight w and a rotation every value is at most
 *         sqrt(hd) · max|w| (zattn_q8_qk_scale). No pass over the data to
 *         find a scale, and no dependence on the batch.
 *   V:    a scale per batch item, from the item's own largest |v|
 *         (zattn_q8_v_amax, then zattn_q8_v_quant), so that no item's
 *         result depends on its batchmates. cuDNN takes one descale for
 *         the whole call, so the per-item factor is not given to cuDNN:
 *         it stays in the output (O = P·V8 = s_b · O_true, stored e4m3,
 *         |O| <= max|V8| <= 448), and the out projection's fp8 GEMM takes
 *         O8 as its input with 1/s_b as every row's scale (row_scale).
 *
 * Every scale is a power of two, so scaling is exact and the only
 * rounding is the e4m3 conversion (zc_fp8.h's rule: nearest even,
 * saturating).
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZATTN_Q8_H
#define PX_ENGINE_ZIMAGE_CUDA_ZATTN_Q8_H

#include "engine/zimage/cuda/zc_fp8.h"

#include <math.h>

/* The largest power of two s with bound · s <= 448 (1 for a bound that is
 * zero, negative or not finite). */
static inline ZC_FP8_HD float zattn_q8_pow2_scale(float bound)
{
    if (!(bound > 0.0f) || !(bound < 3.0e38f)) return 1.0f;
    int e;
    (void)frexpf(ZC_FP8_MAX / bound, &e); /* 448 / bound = m · 2^e, m in [0.5, 1) */
    return ldexpf(1.0f, e - 1);
}

/* The static Q or K scale of a block (w: its q_norm or k_norm weight, hd
 * values, on the host). */
static inline float zattn_q8_qk_scale(const float *w, int hd)
{
    float m = 0.0f;
    for (int i = 0; i < hd; i++) m = fabsf(w[i]) > m ? fabsf(w[i]) : m;
    return zattn_q8_pow2_scale(sqrtf((float)hd) * m);
}

#ifdef __cplusplus
extern "C" {
#endif

/* amax[b] = max(amax[b], the largest |x| of item b's rows), over columns
 * [col0, col0 + n) of bf16 rows (row stride ld elements; rows_per_item
 * rows an item). amax must be zeroed before (atomic maximum). n % 8 == 0,
 * ld and col0 multiples of 8, x 16-byte aligned; else cudaErrorInvalidValue. */
int zattn_q8_v_amax(zc_stream s, const void *x, int ld, int col0, int rows, int n,
                    int rows_per_item, float *amax);

/* q[r, col0 + c] = e4m3(x[r, col0 + c] · s_b) with s_b =
 * zattn_q8_pow2_scale(amax[b]) of row r's item b (q: row stride ldq bytes),
 * and row_scale[r] = 1 / s_b. The same alignment as zattn_q8_v_amax, q
 * 8-byte aligned and ldq % 8 == 0. */
int zattn_q8_v_quant(zc_stream s, const void *x, int ld, int col0, int rows, int n,
                     int rows_per_item, const float *amax, uint8_t *q, int ldq, float *row_scale);

#ifdef __cplusplus
}
#endif

#endif
