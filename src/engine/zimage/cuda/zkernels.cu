/*
 * zkernels.cu — the Z-Image CUDA backend's kernels (see zkernels.h). The
 * row kernels (norms, residual, q/k norm + RoPE) give a block to a row and
 * reduce in fp32; the element-wise ones a thread to an element. The
 * attention kernels are in zattn.cu, the per-step and layout ones in
 * zlayout.cu.
 *
 * The tests in tests/unit/zimage_cuda_test.c check every kernel through the
 * stages (passed on an H200 and H100s, 2026-12-05); the wide and fused
 * kernels also against the per-value kernels they replace
 * (t_fused_kernels_match; passed on H100s, 2026-12-05, tenth session).
 */
#include "engine/zimage/cuda/zkernels.h"

#include "core/env.h"
#include "engine/zimage/cuda/zc_fp8.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <type_traits>

namespace
{

typedef __nv_bfloat16 bf16;

const int ROW_THREADS = 256;

__device__ __forceinline__ float b2f(bf16 v)
{
    return __bfloat162float(v);
}
__device__ __forceinline__ bf16 f2b(float v)
{
    return __float2bfloat16(v);
}

/* A value of an fp32 or bf16 tensor as fp32 (the residual's h is either). */
__device__ __forceinline__ float val(float v)
{
    return v;
}

__device__ __forceinline__ float val(bf16 v)
{
    return b2f(v);
}

/* v stored as the residual stream's element type (bf16 by default, fp32
 * with PX_ZIMAGE_CUDA_RESID=fp32); the kernels go on from the stored value
 * (val of it), so a fused pass and the split ones round alike. */
__device__ __forceinline__ void put_x(float *p, float v)
{
    *p = v;
}
__device__ __forceinline__ void put_x(bf16 *p, float v)
{
    *p = f2b(v);
}

/* Sum over the block (ROW_THREADS threads); every thread gets the total. */
__device__ float block_sum(float v, float *sh)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x / 32, l = threadIdx.x % 32;
    __syncthreads(); /* sh may still be read by a previous call */
    if (l == 0) sh[w] = v;
    __syncthreads();
    float t = 0;
    for (int i = 0; i < ROW_THREADS / 32; i++) t += sh[i];
    return t;
}

int launch_err()
{
    return (int)cudaGetLastError();
}

/* PX_ZIMAGE_CUDA_FUSE=0 keeps the per-element kernels too (zc_dit.c then
 * also runs the residuals and norms apart): the kernels of before, to
 * compare with in a profile. */
bool wide_kernels()
{
    static int on = -1;
    return px_env_on_unless_0("PX_ZIMAGE_CUDA_FUSE", &on) != 0;
}

size_t blocks_for(size_t n, int t)
{
    return (n + (size_t)t - 1) / (size_t)t;
}

__global__ void k_f32_to_bf16(const float *x, bf16 *y, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = f2b(x[i]);
}

/* mode 0: RMSNorm with weight; 1: LayerNorm without affine. X: the
 * rows' type (fp32, or the bf16 residual stream). */
template <typename X>
__global__ void k_norm_mod(const X *x, int ldx, int n, const float *w, float eps, const float *mul,
                           int ldmul, int rpi, bf16 *y, int ldy, int layer)
{
    __shared__ float sh[32];
    int r = blockIdx.x;
    const X *xr = x + (size_t)r * ldx;
    float mean = 0;
    if (layer) {
        float s = 0;
        for (int i = threadIdx.x; i < n; i += ROW_THREADS) s += val(xr[i]);
        mean = block_sum(s, sh) / n;
    }
    float ss = 0;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) {
        float d = val(xr[i]) - mean;
        ss += d * d;
    }
    float inv = rsqrtf(block_sum(ss, sh) / n + eps);
    const float *m = mul ? mul + (size_t)(r / rpi) * ldmul : nullptr;
    bf16 *yr = y + (size_t)r * ldy;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) {
        float v = (val(xr[i]) - mean) * inv;
        if (w) v *= w[i];
        if (m) v *= m[i];
        yr[i] = f2b(v);
    }
}

/* One warp per (row, head); head_dim <= 256 (4 pairs per lane at 128...
 * the loop covers any even size). */
__global__ void k_qknorm_rope(bf16 *x, int ld, int col0, int rows, int nh, int hd, const float *w,
                              float eps, const float *cs, int period, int inter)
{
    int gw = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (gw >= rows * nh) return;
    int r = gw / nh, h = gw % nh;
    bf16 *p = x + (size_t)r * ld + col0 + (size_t)h * hd;
    float ss = 0;
    for (int i = lane; i < hd; i += 32) {
        float v = b2f(p[i]);
        ss += v * v;
    }
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    float inv = rsqrtf(ss / hd + eps);
    const float *c = cs + (size_t)(period ? r % period : r) * hd;
    int half = hd / 2;
    /* Each lane owns whole pairs, so the in-place update is race-free. */
    for (int i = lane; i < half; i += 32) {
        int i0 = inter ? 2 * i : i, i1 = inter ? 2 * i + 1 : i + half;
        float a = b2f(p[i0]) * inv * w[i0], b = b2f(p[i1]) * inv * w[i1];
        float co = c[2 * i], si = c[2 * i + 1];
        p[i0] = f2b(a * co - b * si);
        p[i1] = f2b(b * co + a * si);
    }
}

/* The gated residual (x += gate · RMSNorm(h) · wh), then, with y, the next
 * RMSNorm · modulation on the updated row (k_norm_mod's arithmetic, in its
 * order: the same bits as running it after) without reading x from memory
 * a second time: each thread reads back only the elements it wrote. */
template <typename X, typename H>
__global__ void k_gated_residual_norm(X *x, int ldx, const H *h, int ldh, int n, const float *wh,
                                      float eps, const float *gate, int ldgate, int rpi,
                                      const float *w, const float *mul, int ldmul, bf16 *y, int ldy)
{
    __shared__ float sh[32];
    int r = blockIdx.x;
    const H *hr = h + (size_t)r * ldh;
    float ss = 0;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) ss += val(hr[i]) * val(hr[i]);
    float inv = rsqrtf(block_sum(ss, sh) / n + eps);
    const float *g = gate ? gate + (size_t)(r / rpi) * ldgate : nullptr;
    X *xr = x + (size_t)r * ldx;
    float ssx = 0;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) {
        float v = val(hr[i]) * inv * wh[i];
        put_x(&xr[i], val(xr[i]) + (g ? g[i] * v : v));
        float d = val(xr[i]);
        ssx += d * d;
    }
    if (!y) return; /* the whole block alike: no thread waits in block_sum */
    float invx = rsqrtf(block_sum(ssx, sh) / n + eps);
    const float *m = mul ? mul + (size_t)(r / rpi) * ldmul : nullptr;
    bf16 *yr = y + (size_t)r * ldy;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) {
        float v = val(xr[i]) * invx;
        if (w) v *= w[i];
        if (m) v *= m[i];
        yr[i] = f2b(v);
    }
}

/* The row kernels above, 16 bytes a thread (fp32 x4) with the row held in
 * registers: thread t owns the 4-float chunks t, t + 256, ... (at most K
 * of them), so x and h are read from memory once. The per-value kernels
 * ran at about half the memory rate (the residual + norm: 7.1 ms of a
 * 1024² DiT step on an H100, 64 calls of ~110 µs against ~60 µs of
 * traffic). Every wide kernel sums a row in this same order, so the fused
 * residual + norm still gives the bits of the residual then the norm
 * (t_fused_kernels_match); against the per-value kernels the norms are an
 * fp32 rounding apart. Needs n % 4 == 0, n <= 4 · 256 · K, 16-byte aligned
 * fp32 rows and 8-byte aligned bf16 ones (wide_rows() checks). */
__device__ __forceinline__ float4 ld4(const float *p, int c)
{
    return ((const float4 *)p)[c];
}

/* Four bf16 values (8 bytes) as fp32. */
__device__ __forceinline__ float4 ld4(const bf16 *p, int c)
{
    uint2 q = ((const uint2 *)p)[c];
    const bf16 *e = (const bf16 *)&q;
    return make_float4(b2f(e[0]), b2f(e[1]), b2f(e[2]), b2f(e[3]));
}
/* Four values into row p at chunk c as X stores them (fp32: 16 bytes;
 * bf16: 8), returned as read back (as_x). */
__device__ __forceinline__ float4 st4(float *p, int c, float4 v)
{
    ((float4 *)p)[c] = v;
    return v;
}
__device__ __forceinline__ float4 st4(bf16 *p, int c, float4 v)
{
    uint2 u;
    bf16 *e = (bf16 *)&u;
    e[0] = f2b(v.x), e[1] = f2b(v.y), e[2] = f2b(v.z), e[3] = f2b(v.w);
    ((uint2 *)p)[c] = u;
    return make_float4(b2f(e[0]), b2f(e[1]), b2f(e[2]), b2f(e[3]));
}

__device__ __forceinline__ float sq4(float4 v, float s)
{
    s += v.x * v.x;
    s += v.y * v.y;
    s += v.z * v.z;
    return s + v.w * v.w;
}

/* v · inv · w · m (w, m optional) at chunk c of a row, as four bf16 (8
 * bytes). */
__device__ __forceinline__ uint2 norm4(int c, float4 v, float inv, const float *w, const float *m)
{
    float o[4] = {v.x * inv, v.y * inv, v.z * inv, v.w * inv};
    if (w) {
        float4 a = ld4(w, c);
        o[0] *= a.x, o[1] *= a.y, o[2] *= a.z, o[3] *= a.w;
    }
    if (m) {
        float4 a = ld4(m, c);
        o[0] *= a.x, o[1] *= a.y, o[2] *= a.z, o[3] *= a.w;
    }
    uint2 out;
    bf16 *q = (bf16 *)&out;
    for (int k = 0; k < 4; k++) q[k] = f2b(o[k]);
    return out;
}

/* The four bf16 of u: their largest magnitude, and their e4m3 codes by
 * inv (zc_fp8_inv of the row's scale) in one word (zc_fp8.h's rule on the
 * bf16 values). */
__device__ __forceinline__ float absmax4(uint2 u, float mx)
{
    const bf16 *e = (const bf16 *)&u;
    for (int k = 0; k < 4; k++) mx = fmaxf(mx, fabsf(b2f(e[k])));
    return mx;
}
__device__ __forceinline__ uint32_t codes4(uint2 u, float inv)
{
    const bf16 *e = (const bf16 *)&u;
    return zc_fp8_code2(b2f(e[0]), b2f(e[1]), inv) | zc_fp8_code2(b2f(e[2]), b2f(e[3]), inv) << 16;
}

/* The row's norm from its sum of squares ss (block-wide), then y = v ·
 * inv · w · m for the thread's chunks v: the end of both wide kernels, so
 * the fused and split paths round alike. With q8.q, the bf16 results'
 * e4m3 copy as well (y NULL: only that), for an fp8 GEMM. */
template <int K>
__device__ __forceinline__ void norm_store4(const float4 (&v)[K], float ss, int n4, float eps,
                                            float *sh, int rpi, const float *w, const float *mul,
                                            int ldmul, bf16 *y, int ldy, zc_q8 q8)
{
    int r = blockIdx.x;
    float inv = rsqrtf(block_sum(ss, sh) / (4.0f * n4) + eps), mx = 0.0f;
    const float *m = mul ? mul + (size_t)(r / rpi) * ldmul : nullptr;
    uint2 o[K];
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = threadIdx.x + k * ROW_THREADS;
        if (c < n4) {
            o[k] = norm4(c, v[k], inv, w, m);
            if (y) ((uint2 *)(y + (size_t)r * ldy))[c] = o[k];
            if (q8.q) mx = absmax4(o[k], mx); /* bf16 runs (the default) skip it */
        }
    }
    if (!q8.q) return; /* the whole block alike */
    float sc = zc_fp8_scale(zc_fp8_block_max(mx, sh, ROW_THREADS)), qi = zc_fp8_inv(sc);
    if (threadIdx.x == 0) q8.scale[r] = sc;
    uint32_t *qr = (uint32_t *)(q8.q + (size_t)r * q8.ld);
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = threadIdx.x + k * ROW_THREADS;
        if (c < n4) qr[c] = codes4(o[k], qi);
    }
    for (int c = n4 + threadIdx.x; c < q8.ld / 4; c += ROW_THREADS) qr[c] = 0u; /* K' padding */
}

template <int K, typename X>
__global__ void k_norm_mod4(const X *x, int ldx, int n4, const float *w, float eps,
                            const float *mul, int ldmul, int rpi, bf16 *y, int ldy, int layer)
{
    __shared__ float sh[32];
    int r = blockIdx.x;
    const X *xr = x + (size_t)r * ldx;
    float4 v[K];
    float s = 0, n = 4.0f * n4;
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = threadIdx.x + k * ROW_THREADS;
        if (c < n4) {
            v[k] = ld4(xr, c);
            s += v[k].x + v[k].y + v[k].z + v[k].w;
        }
    }
    float mean = layer ? block_sum(s, sh) / n : 0.0f, ss = 0;
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = threadIdx.x + k * ROW_THREADS;
        if (c < n4) {
            v[k].x -= mean, v[k].y -= mean, v[k].z -= mean, v[k].w -= mean;
            ss = sq4(v[k], ss);
        }
    }
    norm_store4<K>(v, ss, n4, eps, sh, rpi, w, mul, ldmul, y, ldy, zc_q8{});
}

template <int K, typename X, typename H>
__global__ void k_gated_residual_norm4(X *x, int ldx, const H *h, int ldh, int n4, const float *wh,
                                       float eps, const float *gate, int ldgate, int rpi,
                                       const float *w, const float *mul, int ldmul, bf16 *y,
                                       int ldy, zc_q8 q8)
{
    __shared__ float sh[32];
    int r = blockIdx.x;
    const H *hr = h + (size_t)r * ldh;
    X *xr = x + (size_t)r * ldx;
    float4 hv[K], xv[K];
    float ss = 0, n = 4.0f * n4;
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = threadIdx.x + k * ROW_THREADS;
        if (c < n4) {
            hv[k] = ld4(hr, c);
            xv[k] = ld4(xr, c); /* in flight with h's loads */
            ss = sq4(hv[k], ss);
        }
    }
    float inv = rsqrtf(block_sum(ss, sh) / n + eps);
    const float *g = gate ? gate + (size_t)(r / rpi) * ldgate : nullptr;
    float ssx = 0;
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = threadIdx.x + k * ROW_THREADS;
        if (c < n4) {
            float4 a = ld4(wh, c), gv = g ? ld4(g, c) : make_float4(1, 1, 1, 1);
            float v0 = hv[k].x * inv * a.x, v1 = hv[k].y * inv * a.y;
            float v2 = hv[k].z * inv * a.z, v3 = hv[k].w * inv * a.w;
            xv[k].x += g ? gv.x * v0 : v0;
            xv[k].y += g ? gv.y * v1 : v1;
            xv[k].z += g ? gv.z * v2 : v2;
            xv[k].w += g ? gv.w * v3 : v3;
            xv[k] = st4(xr, c, xv[k]); /* as stored: the split path reads it so */
            ssx = sq4(xv[k], ssx);
        }
    }
    if (!y && !q8.q) return; /* the whole block alike: no thread waits in block_sum */
    norm_store4<K>(xv, ssx, n4, eps, sh, rpi, w, mul, ldmul, y, ldy, q8);
}

/* SwiGLU eight elements a thread (16-byte loads and stores) and a block
 * row per grid row: the per-element kernel below spends its time on
 * 64-bit index divisions (6 ms of a 1024² DiT step on an H100, about 40 %
 * of the memory rate). Needs n and ld multiples of 8 and x 16-byte
 * aligned; the same arithmetic per element. */
__global__ void k_swiglu8(bf16 *x, int ld, int rows, int n)
{
    int c = (blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (c >= n) return;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        bf16 *row = x + (size_t)r * ld;
        uint4 gv = *(const uint4 *)(row + c), uv = *(const uint4 *)(row + n + c), ov;
        const bf16 *gp = (const bf16 *)&gv, *up = (const bf16 *)&uv;
        bf16 *op = (bf16 *)&ov;
        for (int k = 0; k < 8; k++) {
            float g = b2f(gp[k]), u = b2f(up[k]);
            op[k] = f2b(zc_swiglu1(g, u));
        }
        *(uint4 *)(row + c) = ov;
    }
}

/* k_qknorm_rope for interleaved pairs, a block a row and eight elements
 * (four pairs, 16 bytes) a thread: L = head_dim / 8 threads a head, 128 / L
 * heads at a time, four heads' loads in flight per thread, and the row's
 * (cos, sin) and the norm weight read once per thread, not once per head.
 * The warp-per-head kernel before it (four elements a lane) reached about
 * half the memory rate: 2.5 ms of a 1024² DiT step on an H100 against
 * ~1.2 ms of traffic. The sum of squares adds in another order than the
 * per-element kernel's (an fp32 rounding apart); the rest is the same
 * arithmetic. Needs L a power of two <= 32, x, w and cs 16-byte aligned,
 * ld and col0 multiples of 8 (zc_qknorm_rope checks). Q8: the result goes
 * to o8 (e4m3 codes of value · s8, row stride ld8 bytes, the same columns)
 * instead of back over x, rounded once from fp32 (the fp8 attention). */
template <bool Q8>
__global__ void k_qknorm_rope8(bf16 *x, int ld, int col0, int nh, int hd, const float *w, float eps,
                               const float *cs, int period, uint8_t *o8, int ld8, float s8)
{
    const int L = hd / 8, l = threadIdx.x % L, g = threadIdx.x / L, G = blockDim.x / L;
    int r = blockIdx.x;
    bf16 *row = x + (size_t)r * ld + col0 + 8 * l;
    const float *c = cs + (size_t)(period ? r % period : r) * hd + 8 * l;
    float4 c0 = ld4(c, 0), c1 = ld4(c, 1), w0 = ld4(w + 8 * l, 0), w1 = ld4(w + 8 * l, 1);
    const float cv[8] = {c0.x, c0.y, c0.z, c0.w, c1.x, c1.y, c1.z, c1.w};
    const float wv[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
    /* The same trip count for every thread: the shuffles need the whole warp. */
    for (int base = 0; base < nh; base += 4 * G) {
        uint4 v[4];
        float ss[4];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int h = base + j * G + g;
            v[j] = h < nh ? *(const uint4 *)(row + (size_t)h * hd) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const bf16 *e = (const bf16 *)&v[j];
            ss[j] = 0;
            for (int k = 0; k < 8; k++) {
                float f = b2f(e[k]);
                ss[j] += f * f;
            }
            for (int o = L / 2; o > 0; o >>= 1) ss[j] += __shfl_xor_sync(0xffffffffu, ss[j], o);
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int h = base + j * G + g;
            if (h >= nh) continue;
            float inv = rsqrtf(ss[j] / hd + eps);
            const bf16 *e = (const bf16 *)&v[j];
            float y[8];
            for (int k = 0; k < 8; k += 2) {
                float a = b2f(e[k]) * inv * wv[k], b = b2f(e[k + 1]) * inv * wv[k + 1];
                y[k] = a * cv[k] - b * cv[k + 1];
                y[k + 1] = b * cv[k] + a * cv[k + 1];
            }
            if (Q8) {
                *(uint2 *)(o8 + (size_t)r * ld8 + col0 + (size_t)h * hd + 8 * l) =
                    zc_fp8_codes8(y, s8);
            } else {
                uint4 o;
                bf16 *q = (bf16 *)&o;
                for (int k = 0; k < 8; k++) q[k] = f2b(y[k]);
                *(uint4 *)(row + (size_t)h * hd) = o;
            }
        }
    }
}

__global__ void k_swiglu(bf16 *x, int ld, int rows, int n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)rows * n) return;
    size_t r = i / n, c = i % n;
    bf16 *row = x + r * ld;
    float g = b2f(row[c]), u = b2f(row[n + c]);
    row[c] = f2b(zc_swiglu1(g, u));
}

template <typename T> __device__ float ldf(const T *p, size_t i);
template <> __device__ float ldf<float>(const float *p, size_t i)
{
    return p[i];
}
template <> __device__ float ldf<bf16>(const bf16 *p, size_t i)
{
    return b2f(p[i]);
}
__device__ void stf(float *p, size_t i, float v)
{
    p[i] = v;
}
__device__ void stf(bf16 *p, size_t i, float v)
{
    p[i] = f2b(v);
}

template <typename T> __global__ void k_silu(T *x, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = ldf(x, i);
    stf(x, i, v / (1.0f + expf(-v)));
}

__global__ void k_softmax_rows(float *x, int n, float scale)
{
    __shared__ float sh[32];
    float *r = x + (size_t)blockIdx.x * n;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) m = fmaxf(m, r[i] * scale);
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    __syncthreads();
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = m;
    __syncthreads();
    m = -INFINITY;
    for (int i = 0; i < ROW_THREADS / 32; i++) m = fmaxf(m, sh[i]);
    float sum = 0;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) {
        float e = expf(r[i] * scale - m);
        r[i] = e;
        sum += e;
    }
    float inv = 1.0f / block_sum(sum, sh);
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) r[i] *= inv;
}

/* The wide row kernels' K for rows of n (0: use the per-value ones). */
int row_k(int n)
{
    int n4 = n / 4;
    if (!wide_kernels() || n % 4 || n4 > 8 * ROW_THREADS) return 0;
    int k = (n4 + ROW_THREADS - 1) / ROW_THREADS;
    return k <= 1 ? 1 : k <= 2 ? 2 : k <= 4 ? 4 : 8;
}

/* fp32 rows (or a vector, ld 0) a wide kernel can read 16 bytes at a time;
 * NULL passes. */
bool al16(const void *p, int ld)
{
    return !p || ((uintptr_t)p % 16 == 0 && ld % 4 == 0);
}

/* bf16 rows written four values (8 bytes) at a time. */
bool al8(const void *p, int ld)
{
    return !p || ((uintptr_t)p % 8 == 0 && ld % 4 == 0);
}

/* launch(std::integral_constant<int, K>()) for K = k, one of 1, 2, 4 or
 * 8 (row_k): the wide kernels' K as a compile-time constant. */
template <typename F> void row_wide(int k, F launch)
{
    switch (k) {
    case 1:
        launch(std::integral_constant<int, 1>());
        break;
    case 2:
        launch(std::integral_constant<int, 2>());
        break;
    case 4:
        launch(std::integral_constant<int, 4>());
        break;
    default:
        launch(std::integral_constant<int, 8>());
        break;
    }
}

template <typename X>
void norm_mod_x(zc_stream s, const X *x, int ldx, int rows, int n, const float *w, float eps,
                const float *mul, int ldmul, int rpi, bf16 *y, int ldy, int layer, int k)
{
    if (k)
        row_wide(k, [&](auto K) {
            k_norm_mod4<K(), X><<<rows, ROW_THREADS, 0, s>>>(x, ldx, n / 4, w, eps, mul, ldmul, rpi,
                                                             y, ldy, layer);
        });
    else
        k_norm_mod<X>
            <<<rows, ROW_THREADS, 0, s>>>(x, ldx, n, w, eps, mul, ldmul, rpi, y, ldy, layer);
}

int norm_mod(zc_stream s, const void *x, int x_bf, int ldx, int rows, int n, const float *w,
             float eps, const float *mul, int ldmul, int rows_per_item, void *y, int ldy, int layer)
{
    if (rows <= 0) return 0;
    int rpi = rows_per_item > 0 ? rows_per_item : rows, k = row_k(n);
    bool wide =
        k && (x_bf ? al8(x, ldx) : al16(x, ldx)) && al16(w, 0) && al16(mul, ldmul) && al8(y, ldy);
    if (x_bf)
        norm_mod_x(s, (const bf16 *)x, ldx, rows, n, w, eps, mul, ldmul, rpi, (bf16 *)y, ldy, layer,
                   wide ? k : 0);
    else
        norm_mod_x(s, (const float *)x, ldx, rows, n, w, eps, mul, ldmul, rpi, (bf16 *)y, ldy,
                   layer, wide ? k : 0);
    return launch_err();
}

/* zc_gated_residual_norm's arguments besides x, h and the grid. */
struct grn_args {
    int ldx, ldh, n;
    const float *wh;
    float eps;
    const float *gate;
    int ldgate, rpi;
    const float *w, *mul;
    int ldmul;
    bf16 *y;
    int ldy;
    zc_q8 q;
};

/* The residual + norm on X rows with h of type H: the wide kernel (k its
 * K, 0: the per-value one, which has no fp8 copy). */
template <typename X, typename H>
void grn_launch_h(zc_stream s, X *x, const H *h, int rows, int k, const grn_args &a)
{
    if (k)
        row_wide(k, [&](auto K) {
            k_gated_residual_norm4<K(), X, H><<<rows, ROW_THREADS, 0, s>>>(
                x, a.ldx, h, a.ldh, a.n / 4, a.wh, a.eps, a.gate, a.ldgate, a.rpi, a.w, a.mul,
                a.ldmul, a.y, a.ldy, a.q);
        });
    else
        k_gated_residual_norm<X, H><<<rows, ROW_THREADS, 0, s>>>(x, a.ldx, h, a.ldh, a.n, a.wh,
                                                                 a.eps, a.gate, a.ldgate, a.rpi,
                                                                 a.w, a.mul, a.ldmul, a.y, a.ldy);
}

template <typename X>
void grn_launch(zc_stream s, X *x, const void *h, int h_bf, int rows, int k, const grn_args &a)
{
    if (h_bf)
        grn_launch_h(s, x, (const bf16 *)h, rows, k, a);
    else
        grn_launch_h(s, x, (const float *)h, rows, k, a);
}

} // namespace

extern "C" {

int zc_softmax_rows(zc_stream s, float *x, int rows, int n, float scale)
{
    if (rows <= 0) return 0;
    k_softmax_rows<<<rows, ROW_THREADS, 0, s>>>(x, n, scale);
    return launch_err();
}

int zc_wide_kernels(void)
{
    return wide_kernels();
}

int zc_f32_to_bf16(zc_stream s, const float *x, void *y, size_t n)
{
    if (!n) return 0;
    k_f32_to_bf16<<<blocks_for(n, 256), 256, 0, s>>>(x, (bf16 *)y, n);
    return launch_err();
}

int zc_rmsnorm_mod(zc_stream s, const void *x, int x_bf, int ldx, int rows, int n, const float *w,
                   float eps, const float *mul, int ldmul, int rows_per_item, void *y, int ldy)
{
    return norm_mod(s, x, x_bf, ldx, rows, n, w, eps, mul, ldmul, rows_per_item, y, ldy, 0);
}

int zc_layernorm_mod(zc_stream s, const void *x, int x_bf, int ldx, int rows, int n, float eps,
                     const float *mul, int ldmul, int rows_per_item, void *y, int ldy)
{
    return norm_mod(s, x, x_bf, ldx, rows, n, nullptr, eps, mul, ldmul, rows_per_item, y, ldy, 1);
}

int zc_gated_residual(zc_stream s, void *x, int x_bf, int ldx, const void *h, int h_bf, int ldh,
                      int rows, int n, const float *w, float eps, const float *gate, int ldgate,
                      int rows_per_item)
{
    return zc_gated_residual_norm(s, x, x_bf, ldx, h, h_bf, ldh, rows, n, w, eps, gate, ldgate,
                                  rows_per_item, nullptr, nullptr, 0, nullptr, 0, nullptr);
}

/* Whether k_qknorm_rope8 takes these rows (its comment says what it needs). */
static bool qknorm8_fits(const void *x, int ld, int col0, int head_dim, const float *w,
                         const float *cs, int interleaved)
{
    int L = head_dim / 8;
    return interleaved && head_dim % 8 == 0 && L <= 32 && !(L & (L - 1)) && ld % 8 == 0 &&
           col0 % 8 == 0 && (uintptr_t)x % 16 == 0 && al16(w, 0) && al16(cs, 0);
}

int zc_qknorm_rope_q8(zc_stream s, const void *x, int ld, int col0, int rows, int n_heads,
                      int head_dim, const float *w, float eps, const float *cs, int period,
                      uint8_t *o8, int ld8, float s8)
{
    if (!qknorm8_fits(x, ld, col0, head_dim, w, cs, 1) || ld8 % 8 || (uintptr_t)o8 % 8)
        return (int)cudaErrorInvalidValue;
    if (rows <= 0) return 0;
    k_qknorm_rope8<true><<<rows, 128, 0, s>>>((bf16 *)x, ld, col0, n_heads, head_dim, w, eps, cs,
                                              period, o8, ld8, s8);
    return launch_err();
}

int zc_qknorm_rope(zc_stream s, void *x, int ld, int col0, int rows, int n_heads, int head_dim,
                   const float *w, float eps, const float *cs, int period, int interleaved)
{
    size_t warps = (size_t)rows * n_heads;
    if (!warps) return 0;
    if (wide_kernels() && qknorm8_fits(x, ld, col0, head_dim, w, cs, interleaved)) {
        k_qknorm_rope8<false><<<rows, 128, 0, s>>>((bf16 *)x, ld, col0, n_heads, head_dim, w, eps,
                                                   cs, period, NULL, 0, 0.0f);
        return launch_err();
    }
    k_qknorm_rope<<<blocks_for(warps * 32, 256), 256, 0, s>>>(
        (bf16 *)x, ld, col0, rows, n_heads, head_dim, w, eps, cs, period, interleaved);
    return launch_err();
}

int zc_gated_residual_norm(zc_stream s, void *x, int x_bf, int ldx, const void *h, int h_bf,
                           int ldh, int rows, int n, const float *wh, float eps, const float *gate,
                           int ldgate, int rows_per_item, const float *w, const float *mul,
                           int ldmul, void *y, int ldy, const zc_q8 *q8)
{
    if (rows <= 0) return 0;
    int rpi = rows_per_item > 0 ? rows_per_item : rows, k = row_k(n);
    bool wide = k && (x_bf ? al8(x, ldx) : al16(x, ldx)) && (h_bf ? al8(h, ldh) : al16(h, ldh)) &&
                al16(wh, 0) && al16(gate, ldgate) && al16(w, 0) && al16(mul, ldmul) &&
                al8(y, ldy) && (!q8 || (al16(q8->q, 0) && q8->ld % 16 == 0 && q8->ld >= n));
    zc_q8 q = q8 && wide ? *q8 : zc_q8{};
    if (q8 && !wide && !y) return (int)cudaErrorInvalidValue; /* nothing to quantize from */
    grn_args a = {ldx, ldh, n, wh, eps, gate, ldgate, rpi, w, mul, ldmul, (bf16 *)y, ldy, q};
    if (x_bf)
        grn_launch(s, (bf16 *)x, h, h_bf, rows, wide ? k : 0, a);
    else
        grn_launch(s, (float *)x, h, h_bf, rows, wide ? k : 0, a);
    int rc = launch_err();
    if (!rc && q8 && !wide) /* not fused: the bf16 rows quantized after */
        rc = zc_fp8_quant_rows(s, y, ldy, rows, n, q8->ld, q8->q, q8->scale);
    return rc;
}

int zc_q8_fusable(int n)
{
    return row_k(n) != 0;
}

int zc_swiglu(zc_stream s, void *x, int ld, int rows, int n)
{
    size_t t = (size_t)rows * n;
    if (!t) return 0;
    if (wide_kernels() && n % 8 == 0 && ld % 8 == 0 && (uintptr_t)x % 16 == 0) {
        unsigned gy = rows < 65535 ? (unsigned)rows : 65535u;
        dim3 grid((unsigned)blocks_for((size_t)n / 8, 128), gy);
        k_swiglu8<<<grid, 128, 0, s>>>((bf16 *)x, ld, rows, n);
    } else {
        k_swiglu<<<blocks_for(t, 256), 256, 0, s>>>((bf16 *)x, ld, rows, n);
    }
    return launch_err();
}

int zc_silu(zc_stream s, void *x, int is_bf16, size_t n)
{
    if (!n) return 0;
    if (is_bf16)
        k_silu<bf16><<<blocks_for(n, 256), 256, 0, s>>>((bf16 *)x, n);
    else
        k_silu<float><<<blocks_for(n, 256), 256, 0, s>>>((float *)x, n);
    return launch_err();
}

} // extern "C"
