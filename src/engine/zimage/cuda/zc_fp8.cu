/*
 * zc_fp8.cu — the FP8 kernels of the Z-Image CUDA backend (see zc_fp8.h):
 * per-row e4m3 quantization of bf16 matrices and the bias add of fp8
 * GEMMs.
 *
 * Also SwiGLU with its output's fp8 copy (zc_fp8_swiglu).
 *
 * The quantizer gives a block to a row (the eight-a-thread kernel where the
 * shapes allow, unless PX_ZIMAGE_CUDA_FUSE=0): the row's largest magnitude is
 * reduced over the block, then every thread converts 4 consecutive
 * columns and stores them as one 32-bit word (rows are 16-byte multiples,
 * so the stores are aligned and coalesced). The conversion is cuda_fp8.h's
 * (the hardware's cvt on sm_89+, its emulation below), the scale and the
 * division zc_fp8.h's, so the result equals zc_fp8_quant_row's bit for bit
 * (zimage_cuda_test checks it).
 *
 * Passed zimage_cuda_test on an H200 (2026-12-05).
 */
#include "engine/zimage/cuda/zc_fp8.h"

#include "engine/zimage/cuda/zkernels.h"

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

namespace {

typedef __nv_bfloat16 bf16;

const int QT = 256; /* threads per row */

__device__ __forceinline__ uint32_t quant1(const bf16 *xr, int k, int K, float inv)
{
    if (k >= K) return 0u;
    return zc_fp8_code(__bfloat162float(xr[k]), inv);
}

__global__ void k_quant_rows(const bf16 *x, int ldx, int K, int ld, uint8_t *q, float *scale)
{
    __shared__ float sh[QT / 32];
    int r = blockIdx.x;
    const bf16 *xr = x + (size_t)r * ldx;
    float m = 0.0f;
    for (int k = threadIdx.x; k < K; k += QT) m = fmaxf(m, fabsf(__bfloat162float(xr[k])));
    float sc = zc_fp8_scale(zc_fp8_block_max(m, sh, QT)), inv = zc_fp8_inv(sc);
    if (threadIdx.x == 0) scale[r] = sc;
    uint32_t *qr = (uint32_t *)(q + (size_t)r * ld);
    for (int g = threadIdx.x; g < ld / 4; g += QT) {
        int k = 4 * g;
        qr[g] = quant1(xr, k, K, inv) | (quant1(xr, k + 1, K, inv) << 8) |
                (quant1(xr, k + 2, K, inv) << 16) | (quant1(xr, k + 3, K, inv) << 24);
    }
}

/* The end of the eight-a-thread kernels: m (the thread's largest
 * magnitude) reduced to row r's scale, then the thread's chunks v (eight
 * bf16 each, chunk c = threadIdx.x + j·QT, c < n8) as e4m3 codes in row r
 * of q (ld bytes), zeros past them (K' padding). */
template <int C>
__device__ __forceinline__ void store_q8(const uint4 (&v)[C], float m, int n8, float *sh, int r,
                                         uint8_t *q, float *scale, int ld)
{
    float sc = zc_fp8_scale(zc_fp8_block_max(m, sh, QT)), inv = zc_fp8_inv(sc);
    if (threadIdx.x == 0) scale[r] = sc;
    uint2 *qr = (uint2 *)(q + (size_t)r * ld);
#pragma unroll
    for (int j = 0; j < C; j++) {
        int c = threadIdx.x + j * QT;
        if (c < n8) qr[c] = zc_fp8_codes8_bf16(v[j], inv);
    }
    for (int c = n8 + threadIdx.x; c < ld / 8; c += QT) qr[c] = make_uint2(0u, 0u);
}

/* k_quant_rows with eight columns a thread (16-byte loads, 8-byte stores)
 * and the row held in registers, so x is read once: the one-column-a-load
 * kernel above reads a row twice (its largest magnitude, then the values)
 * two bytes at a time, and fp8's activations pass through it before each
 * of a block's four GEMMs. The same largest magnitude (fmaxf does not
 * depend on the order), scale and conversion: the same bits. Needs K, ldx
 * and ld multiples of 8, x 16-byte and q 8-byte aligned, K <= 8 * QT * C
 * (zc_fp8_quant_rows checks). */
template <int C>
__global__ void k_quant_rows8(const bf16 *x, int ldx, int K, int ld, uint8_t *q, float *scale)
{
    __shared__ float sh[QT / 32];
    int r = blockIdx.x, n8 = K / 8;
    const uint4 *xr = (const uint4 *)(x + (size_t)r * ldx);
    uint4 v[C];
    float m = 0.0f;
#pragma unroll
    for (int j = 0; j < C; j++) {
        int c = threadIdx.x + j * QT;
        if (c < n8) {
            v[j] = xr[c];
            const bf16 *e = (const bf16 *)&v[j];
#pragma unroll
            for (int k = 0; k < 8; k++) m = fmaxf(m, fabsf(__bfloat162float(e[k])));
        }
    }
    store_q8<C>(v, m, n8, sh, r, q, scale, ld);
}

/* zc_swiglu's SwiGLU (the same arithmetic as k_swiglu8) a block a row,
 * eight columns a thread, with its result's e4m3 copy (zc_q8) from the
 * bf16 values still in registers: the feed-forward's w2 input is then
 * written once, in fp8 (and in bf16 only when KEEP, for LoRAs). It ran at
 * ~2.2 TB/s (3.4 ms of a 1024² fp8 step on an H100) against k_swiglu8's
 * 3.2: issuing all of a thread's loads first (below) changed nothing
 * measurable; taking the two IEEE divisions out of each value (zc_fp8_inv,
 * zc_swiglu1) took it to 2.4 ms (2026-12-06): it was instruction-bound. */
template <int C, bool KEEP>
__global__ void k_swiglu_q8(bf16 *x, int ld, int n, uint8_t *q, float *scale, int ldq)
{
    __shared__ float sh[QT / 32];
    int r = blockIdx.x, n8 = n / 8;
    bf16 *row = x + (size_t)r * ld;
    uint4 gv[C], uv[C];
#pragma unroll
    for (int j = 0; j < C; j++) {
        int c = threadIdx.x + j * QT;
        if (c < n8) {
            gv[j] = ((const uint4 *)row)[c];
            uv[j] = ((const uint4 *)(row + n))[c];
        }
    }
    float m = 0.0f;
#pragma unroll
    for (int j = 0; j < C; j++) {
        int c = threadIdx.x + j * QT;
        if (c < n8) {
            const bf16 *up = (const bf16 *)&uv[j];
            bf16 *gp = (bf16 *)&gv[j]; /* the result overwrites the gate, in registers */
#pragma unroll
            for (int k = 0; k < 8; k++) {
                float g = __bfloat162float(gp[k]), u = __bfloat162float(up[k]);
                gp[k] = __float2bfloat16(zc_swiglu1(g, u));
                m = fmaxf(m, fabsf(__bfloat162float(gp[k])));
            }
            if (KEEP) ((uint4 *)row)[c] = gv[j];
        }
    }
    store_q8<C>(gv, m, n8, sh, r, q, scale, ldq);
}

/* k_swiglu_q8 with C chunks a thread and the bf16 result kept or not. */
template <int C>
void swiglu_q8(zc_stream s, bf16 *x, int ld, int rows, int n, int keep, const zc_q8 *q8)
{
    if (keep)
        k_swiglu_q8<C, true><<<rows, QT, 0, s>>>(x, ld, n, q8->q, q8->scale, q8->ld);
    else
        k_swiglu_q8<C, false><<<rows, QT, 0, s>>>(x, ld, n, q8->q, q8->scale, q8->ld);
}

__global__ void k_add_bias(void *y, int is_bf16, int ldy, int N, size_t n, const float *b)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    size_t r = i / (size_t)N, c = i % (size_t)N, at = r * (size_t)ldy + c;
    if (is_bf16) {
        bf16 *p = (bf16 *)y + at;
        *p = __float2bfloat16(__bfloat162float(*p) + b[c]);
    } else {
        ((float *)y)[at] += b[c];
    }
}

} // namespace

extern "C" int zc_fp8_quant_rows(zc_stream s, const void *x, int ldx, int rows, int K, int ld,
                                 uint8_t *q, float *scale)
{
    /* ld % 4: the kernel stores words; anything else is a caller's bug. */
    if (rows <= 0) return 0;
    if (K <= 0 || ld < K || ld % 4 || ldx < K) return (int)cudaErrorInvalidValue;
    int n8 = K / 8, C = (n8 + QT - 1) / QT;
    bool wide = zc_wide_kernels() && K % 8 == 0 && ldx % 8 == 0 && ld % 8 == 0 &&
                (uintptr_t)x % 16 == 0 && (uintptr_t)q % 8 == 0 && C <= 8;
    const bf16 *xb = (const bf16 *)x;
    if (!wide)
        k_quant_rows<<<rows, QT, 0, s>>>(xb, ldx, K, ld, q, scale);
    else if (C <= 1)
        k_quant_rows8<1><<<rows, QT, 0, s>>>(xb, ldx, K, ld, q, scale);
    else if (C <= 2)
        k_quant_rows8<2><<<rows, QT, 0, s>>>(xb, ldx, K, ld, q, scale);
    else if (C <= 4)
        k_quant_rows8<4><<<rows, QT, 0, s>>>(xb, ldx, K, ld, q, scale);
    else
        k_quant_rows8<8><<<rows, QT, 0, s>>>(xb, ldx, K, ld, q, scale);
    return (int)cudaGetLastError();
}

extern "C" int zc_fp8_add_bias(zc_stream s, void *y, int bf16, int ldy, int rows, int N,
                               const float *bias)
{
    size_t n = (size_t)rows * (size_t)N;
    if (!n) return 0;
    k_add_bias<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(y, bf16, ldy, N, n, bias);
    return (int)cudaGetLastError();
}

extern "C" int zc_fp8_swiglu(zc_stream s, void *x, int ld, int rows, int n, int keep_bf16,
                             const zc_q8 *q8)
{
    if (rows <= 0) return 0;
    int n8 = n / 8, C = (n8 + QT - 1) / QT;
    bool fused = zc_wide_kernels() && n % 8 == 0 && ld % 8 == 0 && (uintptr_t)x % 16 == 0 &&
                 (uintptr_t)q8->q % 16 == 0 && q8->ld % 16 == 0 && q8->ld >= n && C <= 8;
    if (!fused) { /* the bf16 result, then its rows quantized */
        int rc = zc_swiglu(s, x, ld, rows, n);
        return rc ? rc : zc_fp8_quant_rows(s, x, ld, rows, n, q8->ld, q8->q, q8->scale);
    }
    bf16 *xb = (bf16 *)x;
    if (C <= 2)
        swiglu_q8<2>(s, xb, ld, rows, n, keep_bf16, q8);
    else if (C <= 4)
        swiglu_q8<4>(s, xb, ld, rows, n, keep_bf16, q8);
    else if (C <= 5) /* the full DiT's 10240 columns: no predicated-off chunks */
        swiglu_q8<5>(s, xb, ld, rows, n, keep_bf16, q8);
    else
        swiglu_q8<8>(s, xb, ld, rows, n, keep_bf16, q8);
    return (int)cudaGetLastError();
}
