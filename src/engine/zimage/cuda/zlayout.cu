/*
 * zlayout.cu — the Z-Image CUDA backend's per-step and layout kernels (see
 * zlayout.h): the timestep sinusoid, the modulation's 1 + scale and tanh
 * gate, patchify, the text rows' padding, copies and embedding, and the
 * unpatchify + Euler step. A thread an element; the row kernels are in
 * zkernels.cu (split from it on 2026-12-06, unchanged).
 *
 * Checked through zimage_cuda_test's stage tests (passed on an H200 and
 * H100s since 2026-12-05).
 */
#include "engine/zimage/cuda/zlayout.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace
{

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float b2f(bf16 v)
{
    return __bfloat162float(v);
}
__device__ __forceinline__ bf16 f2b(float v)
{
    return __float2bfloat16(v);
}

unsigned blocks(size_t n, int t)
{
    return (unsigned)((n + (size_t)t - 1) / (size_t)t);
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

__global__ void k_patchify(const float *lat, const int *lat_of, int n, int C, int ht, int wt, int p,
                           int ni, bf16 *out)
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

__device__ __forceinline__ void put(float *p, float v)
{
    *p = v;
}
__device__ __forceinline__ void put(bf16 *p, float v)
{
    *p = f2b(v);
}

template <typename X>
__global__ void k_pad_rows(X *x, int n, int S, int D, const int *len, const int *pad_end,
                           const float *pad)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)n * S * D) return;
    int d = (int)(i % D);
    size_t row = i / D;
    int b = (int)(row / S), t = (int)(row % S);
    if (t < len[b]) return;
    put(&x[i], t < pad_end[b] ? pad[d] : 0.0f);
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

__global__ void k_unpatchify_step(const float *pred, int ni, int C, int ht, int wt, int p, int nimg,
                                  const int *pos_of, const int *neg_of, const float *dt,
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

} // namespace

extern "C" {

int zc_timestep_freq(zc_stream s, const float *t_in, int n, int half, void *out)
{
    k_timestep<<<blocks((size_t)n * half, 128), 128, 0, s>>>(t_in, n, half, (bf16 *)out);
    return (int)cudaGetLastError();
}

int zc_modulation(zc_stream s, float *mod, int n, int D)
{
    k_modulation<<<blocks((size_t)n * 4 * D, 256), 256, 0, s>>>(mod, n, D);
    return (int)cudaGetLastError();
}

int zc_one_plus(zc_stream s, float *x, size_t n)
{
    k_one_plus<<<blocks(n, 256), 256, 0, s>>>(x, n);
    return (int)cudaGetLastError();
}

int zc_patchify(zc_stream s, const float *lat, const int *lat_of, int n, int C, int ht, int wt,
                int p, int ni, void *out)
{
    size_t t = (size_t)n * ni * p * p * C;
    k_patchify<<<blocks(t, 256), 256, 0, s>>>(lat, lat_of, n, C, ht, wt, p, ni, (bf16 *)out);
    return (int)cudaGetLastError();
}

int zc_pad_rows(zc_stream s, void *x, int x_bf, int n, int S, int D, const int *len,
                const int *pad_end, const float *pad)
{
    size_t t = (size_t)n * S * D;
    if (x_bf)
        k_pad_rows<<<blocks(t, 256), 256, 0, s>>>((bf16 *)x, n, S, D, len, pad_end, pad);
    else
        k_pad_rows<<<blocks(t, 256), 256, 0, s>>>((float *)x, n, S, D, len, pad_end, pad);
    return (int)cudaGetLastError();
}

int zc_copy_rows(zc_stream s, void *dst, int dst_S, int dst_off, const void *src, int src_S,
                 int rows, int n, int w, int x_bf)
{
    int w4 = x_bf ? w / 8 : w / 4; /* 16-byte units of a row */
    size_t t = (size_t)n * rows * w4;
    if (!t) return 0;
    k_copy_rows<<<blocks(t, 256), 256, 0, s>>>((float *)dst, dst_S, dst_off, (const float *)src,
                                               src_S, rows, n, w4);
    return (int)cudaGetLastError();
}

int zc_embed_rows(zc_stream s, const void *table, const int *ids, int rows, int n, float *x)
{
    size_t t = (size_t)rows * n;
    k_embed_rows<<<blocks(t, 256), 256, 0, s>>>((const bf16 *)table, ids, rows, n, x);
    return (int)cudaGetLastError();
}

int zc_unpatchify_step(zc_stream s, const float *pred, int ni, int C, int ht, int wt, int p,
                       int nimg, const int *pos_of, const int *neg_of, const float *dt,
                       const float *w, float *lat, float *out_pred)
{
    size_t t = (size_t)nimg * C * ht * p * wt * p;
    k_unpatchify_step<<<blocks(t, 256), 256, 0, s>>>(pred, ni, C, ht, wt, p, nimg, pos_of, neg_of,
                                                     dt, w, lat, out_pred);
    return (int)cudaGetLastError();
}

} // extern "C"
