/*
 * zc_fp8.h — FP8 (e4m3) operands for the Z-Image CUDA backend's DiT
 * linears: the quantization rule, written once for the host and the GPU,
 * and the kernels that apply it (zc_fp8.cu).
 *
 * The rule, per row of a bf16 matrix [rows, K] (a weight's output feature,
 * an activation's token):
 *   scale = max_k |x_k| / 448     (448: e4m3's largest finite value;
 *                                  an all-zero row gets scale 1)
 *   q_k   = e4m3(x_k · inv)       inv = 1 / scale in fp32; round to nearest
 *                                  even, saturating to ±448 (cuda_fp8.h's
 *                                  __NV_SATFINITE)
 * so x_k ≈ q_k · scale, and a GEMM on (q, scale) pairs multiplies each
 * output by the two rows' scales (cuBLASLt's outer-vector scaling). e4m3
 * keeps 3 fraction bits: a value whose quotient is at least 2^-6 (e4m3's
 * smallest normal) is off by at most 2^-4 of itself; smaller ones by at
 * most 2^-10 · scale (half of the subnormal step 2^-9).
 *
 * The scalar functions below are plain C and CUDA __host__ __device__, so
 * tests/unit/zc_fp8_test.c checks the rule on the CPU with this very code;
 * the kernels convert with cuda_fp8.h's hardware conversion instead, and
 * zimage_cuda_test checks them against zc_fp8_from_float bit for bit
 * (zi_cuda_fp8_gemm_check). Nothing here needs CUDA headers.
 *
 * Layout of an fp8 operand: rows of zc_fp8_ld(K) bytes (K rounded up to
 * 16, zeros after column K: cuBLASLt's FP8 kernels want 16-byte leading
 * dimensions, and zero columns add nothing to a dot product), 16-byte
 * aligned, and one fp32 scale per row.
 *
 * The kernels and the GEMM path are checked by zimage_cuda_test's fp8
 * tests (passed on an H200, 2026-12-05).
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZC_FP8_H
#define PX_ENGINE_ZIMAGE_CUDA_ZC_FP8_H

#include "engine/zimage/cuda/zkernels.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define ZC_FP8_HD __host__ __device__
#else
#define ZC_FP8_HD
#endif

#define ZC_FP8_MAX 448.0f /* e4m3's largest finite value (S.1111.110) */

/* Bytes per row of an fp8 operand of K columns. */
static inline ZC_FP8_HD int zc_fp8_ld(int K)
{
    return (K + 15) / 16 * 16;
}

/* Whether a linear with N output features can run in fp8: cuBLASLt's FP8
 * kernels want every dimension of the output 16-byte aligned too, and N
 * is an output dimension the padding cannot reach (the output's row
 * stride belongs to the caller); N % 16 == 0 suits bf16 and fp32 outputs. */
static inline ZC_FP8_HD int zc_fp8_fits(int N)
{
    return N > 0 && N % 16 == 0;
}

static inline ZC_FP8_HD uint32_t zc_fp8_bits_(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline ZC_FP8_HD float zc_fp8_float_(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* |x| without libm (the test and the kernels share it). */
static inline ZC_FP8_HD float zc_fp8_abs(float x)
{
    return zc_fp8_float_(zc_fp8_bits_(x) & 0x7fffffffu);
}

/* The row scale from the row's largest magnitude. A NaN never becomes the
 * largest (x > m is false for it, as fmaxf ignores it on the GPU). */
static inline ZC_FP8_HD float zc_fp8_scale(float absmax)
{
    return absmax > 0.0f ? absmax / ZC_FP8_MAX : 1.0f;
}

/* The factor a row's values are multiplied by before their conversion:
 * one fp32 reciprocal per row, so a kernel multiplies each value instead
 * of dividing it (an IEEE division is ~8 instructions; the kernels that
 * write fp8 copies were partly bound by them, 2026-12-06). x · (1/s) is
 * within an fp32 rounding of x / s, far under e4m3's 2^-4. */
static inline ZC_FP8_HD float zc_fp8_inv(float scale)
{
    return 1.0f / scale;
}

/*
 * float -> e4m3 code, round to nearest even, saturating: NaN stays NaN
 * (0x7f with the sign), |f| >= 448 and ±inf become ±448 (0x7e). Integer
 * arithmetic on the float's bits, so the host and the device agree
 * exactly: for a normal result the 24-bit significand keeps its top 4 bits
 * (1.xxx, shift 20); below 2^-6 the result counts steps of 2^-9 (the
 * subnormals, codes 0..7; 8 rounds up into the smallest normal, code 8,
 * which is where the carry lands by itself).
 */
static inline ZC_FP8_HD uint8_t zc_fp8_from_float(float f)
{
    uint32_t u = zc_fp8_bits_(f), a = u & 0x7fffffffu;
    uint32_t sign = (u >> 24) & 0x80u;
    if (a > 0x7f800000u) return (uint8_t)(sign | 0x7fu);
    if (a >= 0x43e00000u) return (uint8_t)(sign | 0x7eu); /* 448.0f */
    if (a < 0x00800000u) return (uint8_t)sign;             /* float subnormals: far below 2^-10 */
    int e = (int)(a >> 23) - 127;                          /* |f| in [2^e, 2^(e+1)) */
    uint32_t sig = (a & 0x7fffffu) | 0x800000u;            /* |f| = sig · 2^(e-23) */
    int shift = e >= -6 ? 20 : 14 - e;                     /* subnormal: sig · 2^(e-14) steps */
    if (shift > 24) return (uint8_t)sign;                  /* |f| < 2^-10: under half a step */
    uint32_t q = sig >> shift, rem = sig & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    /* Normal: q in [8, 16] is 1.xxx in eighths; 16 carries into the next
     * exponent through the addition. */
    uint32_t code = e >= -6 ? ((uint32_t)(e + 7) << 3) + q - 8u : q;
    return (uint8_t)(sign | code);
}

/* e4m3 code -> float (exact). */
static inline ZC_FP8_HD float zc_fp8_to_float(uint8_t q)
{
    uint32_t s = (uint32_t)(q & 0x80u) << 24, e = (q >> 3) & 15u, m = q & 7u;
    if (e == 15u && m == 7u) return zc_fp8_float_(s | 0x7fc00000u);
    /* normal (8 + m) · 2^(e-10), subnormal m · 2^-9 */
    float v = e ? (float)(8u + m) * zc_fp8_float_((e - 10u + 127u) << 23)
                : (float)m * zc_fp8_float_((127u - 9u) << 23);
    return zc_fp8_float_(zc_fp8_bits_(v) | s);
}

/* One row by the rule on the host (tests; the kernels do the same
 * arithmetic): q gets ld bytes (zeros after K), returns the scale. */
static inline float zc_fp8_quant_row(const float *x, int K, int ld, uint8_t *q)
{
    float m = 0.0f;
    for (int k = 0; k < K; k++) {
        float v = zc_fp8_abs(x[k]);
        m = v > m ? v : m;
    }
    float sc = zc_fp8_scale(m), inv = zc_fp8_inv(sc);
    for (int k = 0; k < ld; k++) q[k] = k < K ? zc_fp8_from_float(x[k] * inv) : 0;
    return sc;
}

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp8.h>

/* The kernels' pieces of the rule, shared by zc_fp8.cu's quantizer and
 * the kernels that write an fp8 copy of their output (zc_q8, zkernels.h):
 * the largest of every thread's v over a block of nthreads (a multiple of
 * 32, at most 1024; sh: nthreads / 32 floats, free when called), */
static __device__ __forceinline__ float zc_fp8_block_max(float v, float *sh, int nthreads)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    int w = threadIdx.x / 32, l = threadIdx.x % 32;
    __syncthreads(); /* sh may still be read by an earlier reduction */
    if (l == 0) sh[w] = v;
    __syncthreads();
    float m = 0.0f;
    for (int i = 0; i < nthreads / 32; i++) m = fmaxf(m, sh[i]);
    return m;
}

/* and the code of v · inv (inv = zc_fp8_inv(scale); the hardware's
 * conversion, which equals zc_fp8_from_float: zimage_cuda_test checks it). */
static __device__ __forceinline__ uint32_t zc_fp8_code(float v, float inv)
{
    return (uint32_t)__nv_cvt_float_to_fp8(v * inv, __NV_SATFINITE, __NV_E4M3);
}

/* zc_fp8_code of a (low byte) and b (high byte) in one conversion: sm_89+
 * converts two values an instruction (cvt...e4m3x2.f32) where zc_fp8_code
 * spends one on each. The same bits as two zc_fp8_code calls (the kernels
 * check holds the fused copies to zc_fp8_quant_rows's bit for bit). */
static __device__ __forceinline__ uint32_t zc_fp8_code2(float a, float b, float inv)
{
    return (uint32_t)__nv_cvt_float2_to_fp8x2(make_float2(a * inv, b * inv), __NV_SATFINITE,
                                              __NV_E4M3);
}

/* The codes of v[0..8) · inv, in order, as the 8 bytes a kernel stores:
 * every eight-a-thread fp8 writer's last step. */
static __device__ __forceinline__ uint2 zc_fp8_codes8(const float (&v)[8], float inv)
{
    uint32_t w[2] = {0u, 0u};
#pragma unroll
    for (int k = 0; k < 8; k += 2) w[k / 4] |= zc_fp8_code2(v[k], v[k + 1], inv) << (8 * (k % 4));
    return make_uint2(w[0], w[1]);
}

/* The same for eight bf16 values in one 16-byte word. */
static __device__ __forceinline__ uint2 zc_fp8_codes8_bf16(uint4 u, float inv)
{
    const __nv_bfloat16 *e = (const __nv_bfloat16 *)&u;
    float v[8];
#pragma unroll
    for (int k = 0; k < 8; k++) v[k] = __bfloat162float(e[k]);
    return zc_fp8_codes8(v, inv);
}
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Quantizes bf16 x [rows, K] (row stride ldx elements) by the rule into q
 * (rows x ld bytes, ld = zc_fp8_ld(K) for a GEMM operand; 16-byte aligned)
 * and scale (rows floats): a block per row, the largest magnitude reduced
 * first. Weights at upload and activations before each fp8 GEMM.
 */
int zc_fp8_quant_rows(zc_stream s, const void *x, int ldx, int rows, int K, int ld, uint8_t *q,
                      float *scale);

/* zc_swiglu (rows of ld bf16: gate | up, n each) with the result's e4m3
 * copy in q8 (zc_q8, zkernels.h) in the same pass where the rows allow
 * (16-byte aligned, n % 8 == 0, n <= 16384; else SwiGLU then
 * zc_fp8_quant_rows); the bf16 result over the gate half only when
 * keep_bf16 (a LoRA reads it) or when not fused. */
int zc_fp8_swiglu(zc_stream s, void *x, int ld, int rows, int n, int keep_bf16, const zc_q8 *q8);

/* y[r, n] += bias[n] for r < rows, n < N; y bf16 (bf16 = 1) or fp32, row
 * stride ldy: the bias of an fp8 GEMM or of a bf16 y (zc_gemm.c says why
 * it is not the epilogue there). */
int zc_fp8_add_bias(zc_stream s, void *y, int bf16, int ldy, int rows, int N, const float *bias);

#ifdef __cplusplus
}
#endif

#endif
