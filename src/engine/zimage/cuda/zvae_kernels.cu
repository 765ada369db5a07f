/*
 * zvae_kernels.cu — the Z-Image VAE decoder's kernels (see zvae_kernels.h),
 * each for fp32 or bf16 activations (a template over the element type T;
 * values are read into fp32 and rounded once when stored).
 *
 * The fp32 kernels passed the stage tests on an H200 (2026-12-05); the
 * 16-byte ones and the bf16 instances (ninth session) passed on H100s in
 * the tenth: zc_kernels_check.c holds the 16-byte ones to the per-value
 * ones, zimage_cuda_test the bf16 decoder to the fp32 one.
 */
#include "engine/zimage/cuda/zvae_kernels.h"

#include "engine/cuda/cuda_elem.cuh"

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

namespace {

using namespace pxcu; /* ld, st */
typedef bf16_t bf16;

size_t blocks_for(size_t n, int t)
{
    return (n + (size_t)t - 1) / (size_t)t;
}

int launch_err()
{
    return (int)cudaGetLastError();
}

template <typename T>
__global__ void k_gn_part(const T *x, const float *xb, int hw, int C, int nslice, double *part)
{
    int c = threadIdx.x, sl = blockIdx.x;
    if (c >= C) return;
    int per = (hw + nslice - 1) / nslice, p0 = sl * per, p1 = min(hw, p0 + per);
    float bc = xb ? xb[c] : 0.0f;
    double s = 0, ss = 0;
    for (int p = p0; p < p1; p++) {
        double v = ld(x, (size_t)p * C + c) + bc; /* the fp32 sum gn_apply also forms */
        s += v, ss += v * v;
    }
    part[((size_t)sl * C + c) * 2] = s;
    part[((size_t)sl * C + c) * 2 + 1] = ss;
}

/* Eight values of x at i (16-byte aligned) as fp32. */
__device__ __forceinline__ void ld8(const bf16 *x, size_t i, float (&v)[8])
{
    uint4 q = *(const uint4 *)(x + i);
    const bf16 *e = (const bf16 *)&q;
#pragma unroll
    for (int k = 0; k < 8; k++) v[k] = __bfloat162float(e[k]);
}

__device__ __forceinline__ void ld8(const float *x, size_t i, float (&v)[8])
{
    float4 a = *(const float4 *)(x + i), b = *(const float4 *)(x + i + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}

/* k_gn_part with 8 channels a thread (one 16-byte load of bf16, two of
 * fp32) and 256 threads a block: C/8 channel groups times 256/(C/8) pixel
 * lanes, each lane every lanes-th pixel of the block's slice of `per`;
 * then a tree over the lanes in shared memory. k_gn_part's single loads
 * of 2 or 4 bytes ran GroupNorm at under half the memory rate (8.6 ms of
 * a 1024² decode on an H100). The same order for both types, so bf16
 * values and their fp32 copies give the same statistics. */
template <typename T>
__global__ void __launch_bounds__(256)
    k_gn_part8(const T *x, const float *xb, int hw, int C, int per, double *part)
{
    __shared__ double sh[2][256][8];
    int CV = C / 8, L = 256 / CV, t = threadIdx.x, cg = t % CV, lane = t / CV;
    int p0 = blockIdx.x * per, p1 = min(hw, p0 + per);
    float b[8], v[8];
    double s[8], ss[8];
#pragma unroll
    for (int k = 0; k < 8; k++) b[k] = xb ? xb[cg * 8 + k] : 0.0f, s[k] = ss[k] = 0;
    for (int p = p0 + lane; p < p1; p += L) {
        ld8(x, (size_t)p * C + cg * 8, v);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            double d = v[k] + b[k]; /* the fp32 sum gn_apply also forms */
            s[k] += d, ss[k] += d * d;
        }
    }
#pragma unroll
    for (int k = 0; k < 8; k++) sh[0][t][k] = s[k], sh[1][t][k] = ss[k];
    __syncthreads();
    for (int h = L / 2; h > 0; h >>= 1) {
        if (lane < h)
#pragma unroll
            for (int k = 0; k < 8; k++)
                sh[0][t][k] += sh[0][t + h * CV][k], sh[1][t][k] += sh[1][t + h * CV][k];
        __syncthreads();
    }
    if (lane) return;
    double *o = part + ((size_t)blockIdx.x * C + cg * 8) * 2;
#pragma unroll
    for (int k = 0; k < 8; k++) o[2 * k] = sh[0][t][k], o[2 * k + 1] = sh[1][t][k];
}

/* A block a group: its (slice, channel) partials summed in a fixed order
 * (a thread's strided share, then a tree over the block). 1024 threads:
 * only G (32) blocks run, so the loads in flight per block set its speed
 * (a 1024² map leaves 8 MB of partials; by load latency alone, estimated,
 * ~60 us a call at 256 threads, ~30 calls a decode). Measured on an H100
 * (2026-12-07): GroupNorm 7.3 ms of a 1024² decode against 7.6-7.7 at
 * 256 threads on other hosts, within host-to-host noise. */
#define GN_FINAL_T 1024
__global__ void __launch_bounds__(GN_FINAL_T)
    k_gn_final(const double *part, int hw, int C, int G, int nslice, float eps, float *stats)
{
    const int T = GN_FINAL_T;
    __shared__ double sh[2][T];
    int g = blockIdx.x, t = threadIdx.x, cpg = C / G, m = nslice * cpg;
    double s = 0, ss = 0;
    for (int k = t; k < m; k += T) {
        size_t o = ((size_t)(k / cpg) * C + g * cpg + k % cpg) * 2;
        s += part[o], ss += part[o + 1];
    }
    sh[0][t] = s, sh[1][t] = ss;
    __syncthreads();
    for (int h = T / 2; h > 0; h >>= 1) {
        if (t < h) sh[0][t] += sh[0][t + h], sh[1][t] += sh[1][t + h];
        __syncthreads();
    }
    if (t) return;
    double n = (double)hw * cpg, mean = sh[0][0] / n, var = sh[1][0] / n - mean * mean;
    stats[2 * g] = (float)mean;
    stats[2 * g + 1] = (float)(1.0 / sqrt((var > 0 ? var : 0) + eps));
}

/* One value's GroupNorm(+SiLU) from its channel's mean, 1/std, gamma and
 * beta: the same expression in every kernel (their outputs are compared
 * bit for bit). */
__device__ __forceinline__ float gn1v(float x, float mean, float rstd, float gamma, float beta,
                                      int silu)
{
    float v = (x - mean) * rstd * gamma + beta;
    if (silu == 2) return __fdividef(v, 1.0f + __expf(-v)); /* zc_gn_apply says when */
    return silu ? v / (1.0f + expf(-v)) : v;
}

__device__ __forceinline__ float gn1(float x, int c, int cpg, const float *stats,
                                     const float *gamma, const float *beta, int silu)
{
    int g = c / cpg;
    return gn1v(x, stats[2 * g], stats[2 * g + 1], gamma[c], beta[c], silu);
}

template <typename T>
__global__ void k_gn_apply(const T *x, const float *xb, size_t n, int C, int cpg,
                           const float *stats, const float *gamma, const float *beta, int silu,
                           T *y)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    int c = (int)(i % C);
    st(y, i, gn1(ld(x, i) + (xb ? xb[c] : 0.0f), c, cpg, stats, gamma, beta, silu));
}

/* 16 bytes a thread: V = 16 / sizeof(T) channels, their first channel
 * from one 32-bit division (each value's group is still one more). */
template <typename T>
__global__ void k_gn_apply16(const uint4 *x, const float *xb, unsigned nv, unsigned CV, int cpg,
                             const float *stats, const float *gamma, const float *beta, int silu,
                             uint4 *y)
{
    const int V = 16 / sizeof(T);
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nv) return;
    int c0 = (int)(i % CV) * V;
    uint4 q = x[i], r;
    const T *e = reinterpret_cast<const T *>(&q);
    T *o = reinterpret_cast<T *>(&r);
#pragma unroll
    for (int k = 0; k < V; k++)
        st(o, k, gn1(ld(e, k) + (xb ? xb[c0 + k] : 0.0f), c0 + k, cpg, stats, gamma, beta, silu));
    y[i] = r;
}

/* k_gn_apply16 with each thread's channels fixed: CV chunks of V channels
 * a pixel, L = 256 / CV pixel lanes a block; a thread loads its channels'
 * bias, group statistics, gamma and beta once, then walks every L-th pixel
 * of the block's `per`. k_gn_apply16 found a chunk's channels (an integer
 * division a value) and loaded those five values again for every chunk:
 * the decode's GroupNorm ran at ~30 % of the memory rate (10.2-10.8 ms of
 * a 1024² decode on an H100, 2026-12-06), bound by instructions as the fp8
 * SwiGLU was. gn1v's arithmetic, so the same bits. Needs 256 % CV == 0. */
template <typename T>
__global__ void __launch_bounds__(256)
    k_gn_apply16c(const uint4 *x, const float *xb, int hw, int CV, int cpg, const float *stats,
                  const float *gamma, const float *beta, int silu, int per, uint4 *y)
{
    const int V = 16 / sizeof(T);
    int t = threadIdx.x, cv = t % CV, L = 256 / CV, c0 = cv * V;
    float mu[V], rs[V], ga[V], be[V], bi[V];
#pragma unroll
    for (int k = 0; k < V; k++) {
        int c = c0 + k, g = c / cpg;
        mu[k] = stats[2 * g], rs[k] = stats[2 * g + 1], ga[k] = gamma[c], be[k] = beta[c];
        bi[k] = xb ? xb[c] : 0.0f;
    }
    int p1 = min(hw, (blockIdx.x + 1) * per);
    for (int p = blockIdx.x * per + t / CV; p < p1; p += L) {
        size_t i = (size_t)p * CV + cv;
        uint4 q = x[i], r;
        const T *e = reinterpret_cast<const T *>(&q);
        T *o = reinterpret_cast<T *>(&r);
#pragma unroll
        for (int k = 0; k < V; k++)
            st(o, k, gn1v(ld(e, k) + bi[k], mu[k], rs[k], ga[k], be[k], silu));
        y[i] = r;
    }
}

template <typename T> __global__ void k_bias_add(const T *x, T *y, const float *b, size_t n, int C)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) st(y, i, ld(x, i) + b[i % C]);
}

template <typename T>
__global__ void k_bias_add16(const uint4 *x, uint4 *y, const float *b, unsigned nv, unsigned CV)
{
    const int V = 16 / sizeof(T);
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nv) return;
    int c0 = (int)(i % CV) * V;
    uint4 q = x[i];
    T *e = reinterpret_cast<T *>(&q);
#pragma unroll
    for (int k = 0; k < V; k++) st(e, k, ld(e, k) + b[c0 + k]);
    y[i] = q;
}

template <typename T> __global__ void k_upsample2(const T *x, int h, int w, int C, T *y)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t n = (size_t)4 * h * w * C;
    if (i >= n) return;
    int c = (int)(i % C);
    size_t p = i / C;
    int ox = (int)(p % (2 * w)), oy = (int)(p / (2 * w));
    y[i] = x[((size_t)(oy / 2) * w + ox / 2) * C + c];
}

/* A thread per 16 bytes of a source pixel (CV of them a pixel), written
 * to its 2 x 2: a copy, whatever the element type. */
__global__ void k_upsample2_16(const uint4 *x, unsigned h, unsigned w, unsigned CV, uint4 *y)
{
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= h * w * CV) return;
    unsigned c = i % CV, p = i / CV, sy = p / w, sx = p % w;
    uint4 v = x[i];
    size_t o = ((size_t)(2 * sy) * (2 * w) + 2 * sx) * CV + c, row = (size_t)2 * w * CV;
    y[o] = v, y[o + CV] = v, y[o + row] = v, y[o + row + CV] = v;
}

__global__ void k_vae_in(const float *lat, int C, int hw, float scale, float shift, float *z)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)C * hw) return;
    int c = (int)(i % C);
    size_t p = i / C;
    z[i] = lat[(size_t)c * hw + p] / scale + shift;
}

__global__ void k_vae_out(const float *x, size_t n, uint8_t *rgb8)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = fminf(fmaxf((x[i] + 1.0f) / 2.0f, 0.0f), 1.0f);
    rgb8[i] = (uint8_t)lrintf(v * 255.0f);
}

/* The mid attention's row softmax with its probabilities in bf16: a row
 * of up to 4·16·SOFT_T = 16,384 scores a block, read once into registers
 * (V <= 16 float4 a thread), written once as bf16: at 1024² the scores are 1 GB,
 * which zc_softmax_rows reads three times and writes twice. Its sums add
 * in another order than that kernel's, so a probability may round to the
 * next bf16 value (zc_kernels_check.c allows one step, no more). */
const int SOFT_T = 256;

__device__ float block_red(float v, float *sh, bool max)
{
    for (int o = 16; o > 0; o >>= 1) {
        float u = __shfl_xor_sync(0xffffffffu, v, o);
        v = max ? fmaxf(v, u) : v + u;
    }
    __syncthreads(); /* sh may still be read by the previous call */
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = v;
    __syncthreads();
    float t = sh[0];
    for (int i = 1; i < SOFT_T / 32; i++) t = max ? fmaxf(t, sh[i]) : t + sh[i];
    return t;
}

template <int V>
__global__ void __launch_bounds__(SOFT_T)
    k_softmax_bf16(const float4 *x, int n4, float scale, uint2 *y)
{
    __shared__ float sh[SOFT_T / 32];
    const float4 *r = x + (size_t)blockIdx.x * n4;
    float4 v[V];
    float m = -INFINITY, sum = 0.0f;
#pragma unroll
    for (int k = 0; k < V; k++) {
        int i = threadIdx.x + k * SOFT_T;
        v[k] = i < n4 ? r[i] : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
        m = fmaxf(m, fmaxf(fmaxf(v[k].x, v[k].y), fmaxf(v[k].z, v[k].w)) * scale);
    }
    m = block_red(m, sh, true);
#pragma unroll
    for (int k = 0; k < V; k++) {
        v[k].x = expf(v[k].x * scale - m), v[k].y = expf(v[k].y * scale - m);
        v[k].z = expf(v[k].z * scale - m), v[k].w = expf(v[k].w * scale - m);
        sum += (v[k].x + v[k].y) + (v[k].z + v[k].w);
    }
    float inv = 1.0f / block_red(sum, sh, false);
#pragma unroll
    for (int k = 0; k < V; k++) {
        int i = threadIdx.x + k * SOFT_T;
        if (i >= n4) break;
        __nv_bfloat162 a = __floats2bfloat162_rn(v[k].x * inv, v[k].y * inv);
        __nv_bfloat162 b = __floats2bfloat162_rn(v[k].z * inv, v[k].w * inv);
        uint2 o;
        memcpy(&o.x, &a, 4), memcpy(&o.y, &b, 4);
        y[(size_t)blockIdx.x * n4 + i] = o;
    }
}

template <typename A, typename B> __global__ void k_convert(const A *x, B *y, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) st(y, i, ld(x, i));
}

} // namespace

extern "C" {

int zc_vae_convert(zc_stream s, const void *x, int x_bf, void *y, int y_bf, size_t n)
{
    if (!n || x_bf == y_bf) return (int)cudaErrorInvalidValue;
    if (x_bf)
        k_convert<<<blocks_for(n, 256), 256, 0, s>>>((const bf16 *)x, (float *)y, n);
    else
        k_convert<<<blocks_for(n, 256), 256, 0, s>>>((const float *)x, (bf16 *)y, n);
    return launch_err();
}

int zc_gn_stats(zc_stream s, const void *x, const float *xb, int bf, int hw, int C, int G,
                float eps, int part_pairs, double *part, float *stats)
{
    if (C > 1024 || C < 1 || part_pairs < C || C % G) return (int)cudaErrorInvalidValue;
    int cap = part_pairs / C, CV = C / 8, nslice;
    if (zc_wide_kernels() && C % 8 == 0 && 256 % CV == 0 && !((uintptr_t)x % 16)) {
        /* ~48 pixels a thread: at 16 a 1024² map left 4,096 slices of
         * partials for k_gn_final's 32 blocks to read; at 48 the statistics
         * took 3.0 ms of a 1024² decode instead of 3.9 (H100, thirty-third
         * session). PX_ZIMAGE_CUDA_GN_PPT sets it (1-256) for measuring. */
        static int ppt = -1;
        if (ppt < 0) {
            const char *e = getenv("PX_ZIMAGE_CUDA_GN_PPT");
            ppt = e && atoi(e) > 0 && atoi(e) <= 256 ? atoi(e) : 48;
        }
        int per = ppt * (256 / CV);
        if ((hw + per - 1) / per > cap) per = (hw + cap - 1) / cap;
        nslice = (hw + per - 1) / per;
        if (bf)
            k_gn_part8<<<nslice, 256, 0, s>>>((const bf16 *)x, xb, hw, C, per, part);
        else
            k_gn_part8<<<nslice, 256, 0, s>>>((const float *)x, xb, hw, C, per, part);
    } else {
        /* ~64 pixels a thread: with 256 slices (the first version) a 1024²
         * map left each thread 4096 dependent loads and a few warps an SM
         * (GroupNorm was a third of the VAE's time on an H100). */
        nslice = (hw + 63) / 64;
        nslice = nslice < 1 ? 1 : nslice > cap ? cap : nslice;
        if (bf)
            k_gn_part<<<nslice, C, 0, s>>>((const bf16 *)x, xb, hw, C, nslice, part);
        else
            k_gn_part<<<nslice, C, 0, s>>>((const float *)x, xb, hw, C, nslice, part);
    }
    k_gn_final<<<G, GN_FINAL_T, 0, s>>>(part, hw, C, G, nslice, eps, stats);
    return launch_err();
}

int zc_vae_kernels4(const void *a, const void *b, int bf, size_t n, int C)
{
    int V = bf ? 8 : 4;
    return zc_wide_kernels() && C % V == 0 && !((uintptr_t)a % 16) && !((uintptr_t)b % 16) &&
           n / V < (1u << 31);
}

int zc_gn_apply(zc_stream s, const void *x, const float *xb, int bf, int hw, int C, int G,
                const float *stats, const float *gamma, const float *beta, int silu, void *y)
{
    size_t n = (size_t)hw * C;
    int V = bf ? 8 : 4, cpg = C / G;
    if (!n) return 0;
    /* SiLU from the fast exp and division (gn1v's silu == 2) where the
     * output is bf16: their error (a few fp32 ulps) is far under bf16's
     * rounding (2^-9), and the apply was bound by its instructions: 3.49 ->
     * 2.93 ms of a 1024² decode on an H100 (thirty-third session).
     * PX_ZIMAGE_CUDA_GN_FAST=0 never, =1 for fp32 outputs too. */
    static int fast = -2;
    if (fast == -2) {
        const char *e = getenv("PX_ZIMAGE_CUDA_GN_FAST");
        fast = e && *e ? atoi(e) != 0 : -1;
    }
    if (silu && (fast == 1 || (fast == -1 && bf))) silu = 2;
    if (zc_vae_kernels4(x, y, bf, n, C) && 256 % (C / V) == 0) {
        int CV = C / V, per = 16 * (256 / CV); /* ~16 pixels a thread */
        unsigned nb = (unsigned)blocks_for((size_t)hw, per);
        if (bf)
            k_gn_apply16c<bf16><<<nb, 256, 0, s>>>((const uint4 *)x, xb, hw, CV, cpg, stats, gamma,
                                                   beta, silu, per, (uint4 *)y);
        else
            k_gn_apply16c<float><<<nb, 256, 0, s>>>((const uint4 *)x, xb, hw, CV, cpg, stats, gamma,
                                                    beta, silu, per, (uint4 *)y);
    } else if (zc_vae_kernels4(x, y, bf, n, C)) {
        unsigned nv = (unsigned)(n / V), CV = (unsigned)(C / V);
        if (bf)
            k_gn_apply16<bf16><<<blocks_for(nv, 256), 256, 0, s>>>(
                (const uint4 *)x, xb, nv, CV, cpg, stats, gamma, beta, silu, (uint4 *)y);
        else
            k_gn_apply16<float><<<blocks_for(nv, 256), 256, 0, s>>>(
                (const uint4 *)x, xb, nv, CV, cpg, stats, gamma, beta, silu, (uint4 *)y);
    } else if (bf) {
        k_gn_apply<<<blocks_for(n, 256), 256, 0, s>>>((const bf16 *)x, xb, n, C, cpg, stats, gamma,
                                                      beta, silu, (bf16 *)y);
    } else {
        k_gn_apply<<<blocks_for(n, 256), 256, 0, s>>>((const float *)x, xb, n, C, cpg, stats, gamma,
                                                      beta, silu, (float *)y);
    }
    return launch_err();
}

int zc_bias_add(zc_stream s, const void *x, void *y, int bf, const float *b, size_t rows, int C)
{
    size_t n = rows * C;
    int V = bf ? 8 : 4;
    if (!n) return 0;
    /* b is read a float at a time: only x and y need the 16 bytes */
    if (zc_vae_kernels4(x, y, bf, n, C)) {
        unsigned nv = (unsigned)(n / V), CV = (unsigned)(C / V);
        if (bf)
            k_bias_add16<bf16>
                <<<blocks_for(nv, 256), 256, 0, s>>>((const uint4 *)x, (uint4 *)y, b, nv, CV);
        else
            k_bias_add16<float>
                <<<blocks_for(nv, 256), 256, 0, s>>>((const uint4 *)x, (uint4 *)y, b, nv, CV);
    } else if (bf) {
        k_bias_add<<<blocks_for(n, 256), 256, 0, s>>>((const bf16 *)x, (bf16 *)y, b, n, C);
    } else {
        k_bias_add<<<blocks_for(n, 256), 256, 0, s>>>((const float *)x, (float *)y, b, n, C);
    }
    return launch_err();
}

int zc_upsample2(zc_stream s, const void *x, int bf, int h, int w, int C, void *y)
{
    size_t n = (size_t)4 * h * w * C;
    int V = bf ? 8 : 4;
    if (!n) return 0;
    if (zc_vae_kernels4(x, y, bf, n, C)) {
        unsigned CV = (unsigned)(C / V);
        k_upsample2_16<<<blocks_for(n / 4 / V, 256), 256, 0, s>>>((const uint4 *)x, h, w, CV,
                                                                  (uint4 *)y);
    } else if (bf) {
        k_upsample2<<<blocks_for(n, 256), 256, 0, s>>>((const bf16 *)x, h, w, C, (bf16 *)y);
    } else {
        k_upsample2<<<blocks_for(n, 256), 256, 0, s>>>((const float *)x, h, w, C, (float *)y);
    }
    return launch_err();
}

int zc_vae_softmax_bf16(zc_stream s, float *x, int rows, int n, float scale, void *y)
{
    int n4 = n / 4, V = (n4 + SOFT_T - 1) / SOFT_T;
    if (rows <= 0 || n <= 0) return 0;
    if (n % 4 || V > 16 || ((uintptr_t)x | (uintptr_t)y) % 16) {
        int rc = zc_softmax_rows(s, x, rows, n, scale);
        return rc ? rc : zc_vae_convert(s, x, 0, y, 1, (size_t)rows * n);
    }
    const float4 *x4 = (const float4 *)x;
    uint2 *y4 = (uint2 *)y;
    if (V <= 4)
        k_softmax_bf16<4><<<rows, SOFT_T, 0, s>>>(x4, n4, scale, y4);
    else if (V <= 8)
        k_softmax_bf16<8><<<rows, SOFT_T, 0, s>>>(x4, n4, scale, y4);
    else
        k_softmax_bf16<16><<<rows, SOFT_T, 0, s>>>(x4, n4, scale, y4);
    return launch_err();
}

int zc_vae_in(zc_stream s, const float *lat, int C, int hw, float scale, float shift, float *z)
{
    k_vae_in<<<blocks_for((size_t)C * hw, 256), 256, 0, s>>>(lat, C, hw, scale, shift, z);
    return launch_err();
}

int zc_vae_out(zc_stream s, const float *x, int hw, uint8_t *rgb8)
{
    size_t n = (size_t)hw * 3;
    k_vae_out<<<blocks_for(n, 256), 256, 0, s>>>(x, n, rgb8);
    return launch_err();
}

} // extern "C"
