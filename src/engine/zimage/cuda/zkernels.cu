/*
 * zkernels.cu — the Z-Image CUDA backend's kernels (see zkernels.h). The
 * row kernels (norms, residual, q/k norm + RoPE) give a block to a row and
 * reduce in fp32; the element-wise ones a thread to an element. The
 * attention kernels are in zattn.cu.
 *
 * The tests in tests/unit/zimage_cuda_test.c check every kernel through the
 * stages (passed on an H200, 2026-12-05); k_gated_residual_norm,
 * k_swiglu8 and k_qknorm_rope4 also against the kernels they replace
 * (t_fused_kernels_match; written 2026-12-05, eighth session, not yet run
 * on a GPU).
 */
#include "engine/zimage/cuda/zkernels.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

namespace {

typedef __nv_bfloat16 bf16;

const int ROW_THREADS = 256;

__device__ __forceinline__ float b2f(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ bf16 f2b(float v) { return __float2bfloat16(v); }

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
    if (on < 0) {
        const char *v = getenv("PX_ZIMAGE_CUDA_FUSE");
        on = !(v && !strcmp(v, "0"));
    }
    return on != 0;
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

/* mode 0: RMSNorm with weight; 1: LayerNorm without affine. */
__global__ void k_norm_mod(const float *x, int ldx, int n, const float *w, float eps,
                           const float *mul, int ldmul, int rpi, bf16 *y, int ldy, int layer)
{
    __shared__ float sh[32];
    int r = blockIdx.x;
    const float *xr = x + (size_t)r * ldx;
    float mean = 0;
    if (layer) {
        float s = 0;
        for (int i = threadIdx.x; i < n; i += ROW_THREADS) s += xr[i];
        mean = block_sum(s, sh) / n;
    }
    float ss = 0;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) {
        float d = xr[i] - mean;
        ss += d * d;
    }
    float inv = rsqrtf(block_sum(ss, sh) / n + eps);
    const float *m = mul ? mul + (size_t)(r / rpi) * ldmul : nullptr;
    bf16 *yr = y + (size_t)r * ldy;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) {
        float v = (xr[i] - mean) * inv;
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
__global__ void k_gated_residual_norm(float *x, int ldx, const float *h, int ldh, int n,
                                      const float *wh, float eps, const float *gate, int ldgate,
                                      int rpi, const float *w, const float *mul, int ldmul,
                                      bf16 *y, int ldy)
{
    __shared__ float sh[32];
    int r = blockIdx.x;
    const float *hr = h + (size_t)r * ldh;
    float ss = 0;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) ss += hr[i] * hr[i];
    float inv = rsqrtf(block_sum(ss, sh) / n + eps);
    const float *g = gate ? gate + (size_t)(r / rpi) * ldgate : nullptr;
    float *xr = x + (size_t)r * ldx;
    float ssx = 0;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) {
        float v = hr[i] * inv * wh[i];
        xr[i] += g ? g[i] * v : v;
        float d = xr[i];
        ssx += d * d;
    }
    if (!y) return; /* the whole block alike: no thread waits in block_sum */
    float invx = rsqrtf(block_sum(ssx, sh) / n + eps);
    const float *m = mul ? mul + (size_t)(r / rpi) * ldmul : nullptr;
    bf16 *yr = y + (size_t)r * ldy;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) {
        float v = xr[i] * invx;
        if (w) v *= w[i];
        if (m) v *= m[i];
        yr[i] = f2b(v);
    }
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
            op[k] = f2b(g / (1.0f + __expf(-g)) * u);
        }
        *(uint4 *)(row + c) = ov;
    }
}

/* k_qknorm_rope for interleaved pairs, four elements (two pairs) a lane
 * with 8-byte loads and stores: the per-element kernel's 2-byte accesses
 * ran at about 40 % of the memory rate. The sum of squares adds in another
 * order (an fp32 rounding apart); the rest is the same arithmetic. */
__global__ void k_qknorm_rope4(bf16 *x, int ld, int col0, int rows, int nh, int hd,
                               const float *w, float eps, const float *cs, int period)
{
    int gw = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (gw >= rows * nh) return;
    int r = gw / nh, h = gw % nh;
    bf16 *p = x + (size_t)r * ld + col0 + (size_t)h * hd;
    float ss = 0;
    for (int i = lane * 4; i < hd; i += 128) {
        uint2 v = *(const uint2 *)(p + i);
        const bf16 *e = (const bf16 *)&v;
        for (int k = 0; k < 4; k++) {
            float f = b2f(e[k]);
            ss += f * f;
        }
    }
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    float inv = rsqrtf(ss / hd + eps);
    const float *c = cs + (size_t)(period ? r % period : r) * hd;
    for (int i = lane * 4; i < hd; i += 128) {
        uint2 v = *(const uint2 *)(p + i), o;
        const bf16 *e = (const bf16 *)&v;
        bf16 *q = (bf16 *)&o;
        for (int k = 0; k < 4; k += 2) {
            float a = b2f(e[k]) * inv * w[i + k], b = b2f(e[k + 1]) * inv * w[i + k + 1];
            float co = c[i + k], si = c[i + k + 1];
            q[k] = f2b(a * co - b * si);
            q[k + 1] = f2b(b * co + a * si);
        }
        *(uint2 *)(p + i) = o;
    }
}

__global__ void k_swiglu(bf16 *x, int ld, int rows, int n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)rows * n) return;
    size_t r = i / n, c = i % n;
    bf16 *row = x + r * ld;
    float g = b2f(row[c]), u = b2f(row[n + c]);
    row[c] = f2b(g / (1.0f + __expf(-g)) * u);
}

template <typename T> __device__ float ldf(const T *p, size_t i);
template <> __device__ float ldf<float>(const float *p, size_t i) { return p[i]; }
template <> __device__ float ldf<bf16>(const bf16 *p, size_t i) { return b2f(p[i]); }
__device__ void stf(float *p, size_t i, float v) { p[i] = v; }
__device__ void stf(bf16 *p, size_t i, float v) { p[i] = f2b(v); }

template <typename T> __global__ void k_silu(T *x, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = ldf(x, i);
    stf(x, i, v / (1.0f + expf(-v)));
}

__global__ void k_timestep(const float *t_in, int n, int half, bf16 *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * half) return;
    int b = i / half, k = i % half;
    /* As the CPU engine (dit.c): exponent in float, exp/cos/sin in double. */
    float e = (float)-log(10000.0) * (float)k / (float)half;
    float arg = t_in[b] * (float)exp((double)e);
    out[(size_t)b * 2 * half + k] = f2b((float)cos((double)arg));
    out[(size_t)b * 2 * half + half + k] = f2b((float)sin((double)arg));
}

__global__ void k_modulation(float *mod, int n, int D)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * 4 * D) return;
    int part = (i % (4 * D)) / D;
    mod[i] = (part & 1) ? tanhf(mod[i]) : 1.0f + mod[i];
}

__global__ void k_one_plus(float *x, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) x[i] = 1.0f + x[i];
}

__global__ void k_patchify(const float *lat, const int *lat_of, int n, int C, int ht, int wt,
                           int p, int ni, bf16 *out)
{
    int pf = p * p * C;
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)n * ni * pf) return;
    int f = (int)(i % pf);
    size_t row = i / pf;
    int b = (int)(row / ni), t = (int)(row % ni);
    float v = 0;
    if (t < ht * wt) {
        int gh = t / wt, gw = t % wt, ph = f / (p * C), pw = (f / C) % p, c = f % C;
        int H = ht * p, W = wt * p;
        const float *L = lat + (size_t)lat_of[b] * C * H * W;
        v = L[((size_t)c * H + gh * p + ph) * W + gw * p + pw];
    }
    out[i] = f2b(v);
}

__global__ void k_pad_rows(float *x, int n, int S, int D, const int *len, const int *pad_end,
                           const float *pad)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)n * S * D) return;
    int d = (int)(i % D);
    size_t row = i / D;
    int b = (int)(row / S), t = (int)(row % S);
    if (t < len[b]) return;
    x[i] = t < pad_end[b] ? pad[d] : 0.0f;
}

__global__ void k_copy_rows(float *dst, int dst_S, int dst_off, const float *src, int src_S,
                            int rows, int n, int w4)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)n * rows * w4) return;
    int c = (int)(i % w4);
    size_t row = i / w4;
    int b = (int)(row / rows), t = (int)(row % rows);
    const float4 *s4 = reinterpret_cast<const float4 *>(src) + ((size_t)b * src_S + t) * w4;
    float4 *d4 = reinterpret_cast<float4 *>(dst) + ((size_t)b * dst_S + dst_off + t) * w4;
    d4[c] = s4[c];
}

__global__ void k_embed_rows(const bf16 *table, const int *ids, int rows, int n, float *x)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)rows * n) return;
    size_t r = i / n, c = i % n;
    x[i] = b2f(table[(size_t)ids[r] * n + c]);
}

__global__ void k_unpatchify_step(const float *pred, int ni, int C, int ht, int wt, int p,
                                  int nimg, const int *pos_of, const int *neg_of, const float *dt,
                                  const float *w, float *lat, float *out_pred)
{
    int H = ht * p, W = wt * p;
    size_t per = (size_t)C * H * W;
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)nimg * per) return;
    int im = (int)(i / per);
    size_t j = i % per;
    int c = (int)(j / ((size_t)H * W)), y = (int)((j / W) % H), x = (int)(j % W);
    int t = (y / p) * wt + x / p, f = ((y % p) * p + x % p) * C + c, pf = p * p * C;
    float pos = pred[((size_t)pos_of[im] * ni + t) * pf + f], v = pos;
    if (neg_of[im] >= 0) {
        float neg = pred[((size_t)neg_of[im] * ni + t) * pf + f];
        v = pos + w[im] * (pos - neg);
    }
    if (out_pred) out_pred[i] = pos;
    lat[i] += dt[im] * -v;
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

int zc_rmsnorm_mod(zc_stream s, const float *x, int ldx, int rows, int n, const float *w,
                   float eps, const float *mul, int ldmul, int rows_per_item, void *y, int ldy)
{
    if (rows <= 0) return 0;
    k_norm_mod<<<rows, ROW_THREADS, 0, s>>>(x, ldx, n, w, eps, mul, ldmul,
                                            rows_per_item > 0 ? rows_per_item : rows, (bf16 *)y,
                                            ldy, 0);
    return launch_err();
}

int zc_layernorm_mod(zc_stream s, const float *x, int ldx, int rows, int n, float eps,
                     const float *mul, int ldmul, int rows_per_item, void *y, int ldy)
{
    if (rows <= 0) return 0;
    k_norm_mod<<<rows, ROW_THREADS, 0, s>>>(x, ldx, n, nullptr, eps, mul, ldmul,
                                            rows_per_item > 0 ? rows_per_item : rows, (bf16 *)y,
                                            ldy, 1);
    return launch_err();
}

int zc_gated_residual(zc_stream s, float *x, int ldx, const float *h, int ldh, int rows, int n,
                      const float *w, float eps, const float *gate, int ldgate, int rows_per_item)
{
    if (rows <= 0) return 0;
    k_gated_residual_norm<<<rows, ROW_THREADS, 0, s>>>(
        x, ldx, h, ldh, n, w, eps, gate, ldgate, rows_per_item > 0 ? rows_per_item : rows,
        nullptr, nullptr, 0, nullptr, 0);
    return launch_err();
}

int zc_qknorm_rope(zc_stream s, void *x, int ld, int col0, int rows, int n_heads, int head_dim,
                   const float *w, float eps, const float *cs, int period, int interleaved)
{
    size_t warps = (size_t)rows * n_heads;
    if (!warps) return 0;
    if (wide_kernels() && interleaved && head_dim % 4 == 0 && ld % 4 == 0 && col0 % 4 == 0 &&
        (uintptr_t)x % 8 == 0) {
        k_qknorm_rope4<<<blocks_for(warps * 32, 256), 256, 0, s>>>(
            (bf16 *)x, ld, col0, rows, n_heads, head_dim, w, eps, cs, period);
        return launch_err();
    }
    k_qknorm_rope<<<blocks_for(warps * 32, 256), 256, 0, s>>>(
        (bf16 *)x, ld, col0, rows, n_heads, head_dim, w, eps, cs, period, interleaved);
    return launch_err();
}

int zc_gated_residual_norm(zc_stream s, float *x, int ldx, const float *h, int ldh, int rows,
                           int n, const float *wh, float eps, const float *gate, int ldgate,
                           int rows_per_item, const float *w, const float *mul, int ldmul,
                           void *y, int ldy)
{
    if (rows <= 0) return 0;
    k_gated_residual_norm<<<rows, ROW_THREADS, 0, s>>>(
        x, ldx, h, ldh, n, wh, eps, gate, ldgate, rows_per_item > 0 ? rows_per_item : rows, w,
        mul, ldmul, (bf16 *)y, ldy);
    return launch_err();
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

int zc_timestep_freq(zc_stream s, const float *t_in, int n, int half, void *out)
{
    k_timestep<<<blocks_for((size_t)n * half, 128), 128, 0, s>>>(t_in, n, half, (bf16 *)out);
    return launch_err();
}

int zc_modulation(zc_stream s, float *mod, int n, int D)
{
    k_modulation<<<blocks_for((size_t)n * 4 * D, 256), 256, 0, s>>>(mod, n, D);
    return launch_err();
}

int zc_one_plus(zc_stream s, float *x, size_t n)
{
    k_one_plus<<<blocks_for(n, 256), 256, 0, s>>>(x, n);
    return launch_err();
}

int zc_patchify(zc_stream s, const float *lat, const int *lat_of, int n, int C, int ht, int wt,
                int p, int ni, void *out)
{
    size_t t = (size_t)n * ni * p * p * C;
    k_patchify<<<blocks_for(t, 256), 256, 0, s>>>(lat, lat_of, n, C, ht, wt, p, ni, (bf16 *)out);
    return launch_err();
}

int zc_pad_rows(zc_stream s, float *x, int n, int S, int D, const int *len, const int *pad_end,
                const float *pad)
{
    size_t t = (size_t)n * S * D;
    k_pad_rows<<<blocks_for(t, 256), 256, 0, s>>>(x, n, S, D, len, pad_end, pad);
    return launch_err();
}

int zc_copy_rows(zc_stream s, float *dst, int dst_S, int dst_off, const float *src, int src_S,
                 int rows, int n, int w)
{
    size_t t = (size_t)n * rows * (w / 4);
    if (!t) return 0;
    k_copy_rows<<<blocks_for(t, 256), 256, 0, s>>>(dst, dst_S, dst_off, src, src_S, rows, n, w / 4);
    return launch_err();
}

int zc_embed_rows(zc_stream s, const void *table, const int *ids, int rows, int n, float *x)
{
    size_t t = (size_t)rows * n;
    k_embed_rows<<<blocks_for(t, 256), 256, 0, s>>>((const bf16 *)table, ids, rows, n, x);
    return launch_err();
}

int zc_unpatchify_step(zc_stream s, const float *pred, int ni, int C, int ht, int wt, int p,
                       int nimg, const int *pos_of, const int *neg_of, const float *dt,
                       const float *w, float *lat, float *out_pred)
{
    size_t t = (size_t)nimg * C * ht * p * wt * p;
    k_unpatchify_step<<<blocks_for(t, 256), 256, 0, s>>>(pred, ni, C, ht, wt, p, nimg, pos_of,
                                                         neg_of, dt, w, lat, out_pred);
    return launch_err();
}

} // extern "C"
