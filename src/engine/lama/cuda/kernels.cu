/*
 * kernels.cu — the LaMa CUDA backend's element-wise and layout kernels (see
 * kernels.h). They are memory-bound: one thread per output element, with
 * NHWC's channel index fastest so that a warp reads and writes contiguous
 * bytes. Templates cover the three activation types (float, bfloat16,
 * half); all arithmetic is in float.
 */
#include "engine/lama/cuda/kernels.h"

#include "engine/lama/cuda/lama_dev.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace {

using namespace pxlama; /* v8, ld8, st8, reflect, ...; pxcu's bf16_t, f16_t, ld, st */

const int THREADS = 256;

inline unsigned blocks_for(size_t n)
{
    size_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < 2147483647u ? b : 2147483647u);
}

#define GRID_STRIDE(i, n) \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)gridDim.x * blockDim.x)

/* Vectorised kernels: one thread per 8 channels of one pixel; 32-bit
 * index arithmetic (every tensor here has fewer than 2^32 elements: the
 * launchers check). cv = channels / 8, ev = the bias channel's / 8. */
template <typename T>
__global__ void reflect_pad_k(const T *src, int B, int h, int w, int cv, int ev, int p, T *dst)
{
    int ph = h + 2 * p, pw = w + 2 * p, ov = cv + ev;
    unsigned n = (unsigned)B * ph * pw * ov;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        unsigned k = i % ov, q = i / ov;
        if ((int)k >= cv) {
            st8(dst, (size_t)i * 8, bias_channel((int)k - cv));
            continue;
        }
        int x = (int)(q % pw), y = (int)(q / pw % ph), b = (int)(q / ((unsigned)pw * ph));
        unsigned sp = ((unsigned)b * h + reflect(y - p, h)) * w + reflect(x - p, w);
        st8(dst, (size_t)i * 8, ld8(src, ((size_t)sp * cv + k) * 8));
    }
}

template <typename Tx, typename T>
__global__ void trunk_pad_k(const Tx *xl, const Tx *xg, const T *rl, const T *rg, Tx *nxl, Tx *nxg,
                            int B, int h, int w, int cl, int cg, int ev, int p, T *pcat, T *pl,
                            float *gw)
{
    int ph = h + 2 * p, pw = w + 2 * p, cv = (cl + cg) / 8, lv = cl / 8, gv = cg / 8, ov = cv + ev;
    unsigned n = (unsigned)B * ph * pw * ov;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        unsigned k = i % ov, q = i / ov;
        if ((int)k >= cv) { /* pcat's bias channel */
            st8(pcat, (size_t)i * 8, bias_channel((int)k - cv));
            continue;
        }
        int x = (int)(q % pw), y = (int)(q / pw % ph), b = (int)(q / ((unsigned)pw * ph));
        unsigned pix = ((unsigned)b * h + reflect(y - p, h)) * w + reflect(x - p, w);
        bool local = (int)k < lv;
        bool inner = y >= p && y < h + p && x >= p && x < w + p;
        size_t src = local ? ((size_t)pix * lv + k) * 8 : ((size_t)pix * gv + (k - lv)) * 8;
        v8 v = local ? ld8(xl, src) : ld8(xg, src);
        const T *r = local ? rl : rg;
        if (r) {
            v8 a = ld8(r, src);
            for (int j = 0; j < 8; j++) v.v[j] += a.v[j];
            /* The interior writes each sum once, unpadded, for the next add. */
            if (inner) st8(local ? nxl : nxg, src, v);
        }
        st8(pcat, (size_t)i * 8, v);
        if (pl && local) st8(pl, ((size_t)q * lv + k) * 8, v);
        if (gw && !local && inner) st8(gw, src, v);
    }
}

template <typename Tx, typename T>
__global__ void trunk_concat_k(const Tx *xl, const Tx *xg, const T *rl, const T *rg, int B, int h,
                               int w, int cl, int cg, T *out)
{
    int cv = (cl + cg) / 8, lv = cl / 8, gv = cg / 8;
    unsigned n = (unsigned)B * h * w * cv;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        unsigned k = i % cv, pix = i / cv;
        bool local = (int)k < lv;
        size_t src = local ? ((size_t)pix * lv + k) * 8 : ((size_t)pix * gv + (k - lv)) * 8;
        v8 v = local ? ld8(xl, src) : ld8(xg, src), a = local ? ld8(rl, src) : ld8(rg, src);
        for (int j = 0; j < 8; j++) v.v[j] += a.v[j];
        st8(out, (size_t)i * 8, v);
    }
}

template <typename T>
__global__ void bias_act_k(T *y, const float *bias, unsigned nv, int cv, int relu)
{
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += gridDim.x * blockDim.x) {
        int k = (int)(i % cv) * 8;
        v8 v = ld8(y, (size_t)i * 8);
        for (int j = 0; j < 8; j++) {
            float t = v.v[j] + (bias ? bias[k + j] : 0.0f);
            v.v[j] = relu && t < 0 ? 0.0f : t;
        }
        st8(y, (size_t)i * 8, v);
    }
}

/* ---- Fourier unit layout ---- */

/* 32 x 32 tiles through shared memory so that both the read and the write
 * of a transpose are coalesced. */
const int TT = 32, TR = 8; /* tile side, rows per thread pass */

/* [b*h + y][x][k] -> [b][k][y][x] (complex), columns 0 and w/2 made
 * Hermitian along H, (X[y] + conj X[-y]) / 2: a 2D C2R then gives the real
 * part of their inverse along H, which is what the inverse real FFT of a
 * spectrum that is not Hermitian means (zeroing their imaginary parts
 * after an inverse along H, the CPU engine's way). */
__global__ void hermitian_transpose_k(const float2 *g, int c, int h, int wf, int w, float2 *dst)
{
    __shared__ float2 t[TT][TT + 1];
    int by = blockIdx.z; /* b * h + y */
    int b = by / h, y = by % h;
    int k0 = blockIdx.x * TT, x0 = blockIdx.y * TT;
    const float2 *src = g + (size_t)by * wf * c;
    for (int r = threadIdx.y; r < TT; r += TR) {
        int x = x0 + r, k = k0 + threadIdx.x;
        if (x < wf && k < c) {
            float2 z = src[(size_t)x * c + k];
            if (x == 0 || (w % 2 == 0 && x == w / 2)) {
                float2 m = g[((size_t)b * h + (h - y) % h) * wf * c + (size_t)x * c + k];
                z = make_float2(0.5f * (z.x + m.x), 0.5f * (z.y - m.y));
            }
            t[r][threadIdx.x] = z;
        }
    }
    __syncthreads();
    for (int r = threadIdx.y; r < TT; r += TR) {
        int k = k0 + r, x = x0 + threadIdx.x;
        if (x < wf && k < c) dst[(((size_t)b * c + k) * h + y) * wf + x] = t[threadIdx.x][r];
    }
}

/* [b][k][p] (p = y * w + x, times scale) -> [b][p][k] + add. */
template <typename Ta, typename T>
__global__ void planar_add_k(const float *planar, float scale, const Ta *add, int c, int oc, int np,
                             T *out)
{
    __shared__ float t[TT][TT + 1];
    int b = blockIdx.z;
    int p0 = blockIdx.x * TT, k0 = blockIdx.y * TT;
    for (int r = threadIdx.y; r < TT; r += TR) {
        int k = k0 + r, p = p0 + threadIdx.x;
        if (k < c && p < np) t[r][threadIdx.x] = planar[((size_t)b * c + k) * np + p];
    }
    __syncthreads();
    for (int r = threadIdx.y; r < TT; r += TR) {
        int p = p0 + r, k = k0 + threadIdx.x;
        if (k < c && p < np) {
            size_t o = ((size_t)b * np + p) * c + k;
            st(out, ((size_t)b * np + p) * oc + k, t[threadIdx.x][r] * scale + ld(add, o));
        }
    }
}

/* [b][r][c] -> [b][c][r] for the planar transforms: activations (any
 * element type) to fp32, or complex to complex. */
template <typename T> __device__ __forceinline__ float ldx(const T *p, size_t i)
{
    return ld(p, i);
}
__device__ __forceinline__ float2 ldx(const float2 *p, size_t i)
{
    return p[i];
}

template <typename Ti, typename To>
__global__ void transpose_k(const Ti *src, int R, int C, To *dst)
{
    __shared__ To t[TT][TT + 1];
    int b = blockIdx.z, c0 = blockIdx.x * TT, r0 = blockIdx.y * TT;
    for (int r = threadIdx.y; r < TT; r += TR) {
        int rr = r0 + r, cc = c0 + threadIdx.x;
        if (rr < R && cc < C) t[r][threadIdx.x] = ldx(src, ((size_t)b * R + rr) * C + cc);
    }
    __syncthreads();
    for (int r = threadIdx.y; r < TT; r += TR) {
        int cc = c0 + r, rr = r0 + threadIdx.x;
        if (rr < R && cc < C) dst[((size_t)b * C + cc) * R + rr] = t[threadIdx.x][r];
    }
}

/* Eight at a time, float to T or T to float. */
template <typename Ti, typename To> __global__ void to_act_k(const Ti *src, unsigned nv, To *dst)
{
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += gridDim.x * blockDim.x)
        st8(dst, (size_t)i * 8, ld8(src, (size_t)i * 8));
}

template <typename T>
__global__ void convert_k(const float *src, size_t n, T *dst)
{
    GRID_STRIDE(i, n) st(dst, i, src[i]);
}

} /* namespace */


/* Launch size for a vectorised kernel over n8 units; 0 if too big for the
 * 32-bit indices. */
static unsigned vec_blocks(size_t n8)
{
    return n8 >= 0xffffffffu ? 0 : blocks_for(n8);
}

#define VEC_CHECK(n8, ...)                                                   \
    do {                                                                     \
        if (!vec_blocks(n8) || (__VA_ARGS__)) return (int)cudaErrorInvalidValue; \
    } while (0)

extern "C" int px_cu_reflect_pad(px_cu_stream s, int et, const void *src, int B, int h, int w,
                                 int c, int ext, int p, void *dst)
{
    size_t n8 = (size_t)B * (h + 2 * p) * (w + 2 * p) * ((c + ext) / 8);
    VEC_CHECK(n8, c % 8 || ext % 8);
    WITH_ELEM(et, reflect_pad_k<T><<<vec_blocks(n8), THREADS, 0, (cudaStream_t)s>>>(
                      (const T *)src, B, h, w, c / 8, ext / 8, p, (T *)dst));
    return launched();
}

template <typename T> __global__ void bias_channel_k(T *buf, unsigned rows, int cv, int ev)
{
    unsigned n = rows * (unsigned)ev;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        unsigned r = i / ev, k = i % ev;
        st8(buf, ((size_t)r * (cv + ev) + cv + k) * 8, bias_channel((int)k));
    }
}

extern "C" int px_cu_bias_channel(px_cu_stream s, int et, void *buf, size_t rows, int c, int ext)
{
    size_t n8 = rows * (size_t)(ext / 8);
    VEC_CHECK(n8, c % 8 || ext % 8);
    WITH_ELEM(et, bias_channel_k<T><<<vec_blocks(n8), THREADS, 0, (cudaStream_t)s>>>(
                      (T *)buf, (unsigned)rows, c / 8, ext / 8));
    return launched();
}

extern "C" int px_cu_trunk_pad(px_cu_stream s, int etx, int et, const void *xl, const void *xg,
                               const void *rl, const void *rg, void *nxl, void *nxg, int B, int h,
                               int w, int cl, int cg, int ext, int p, void *pcat, void *pl,
                               float *gw)
{
    size_t n8 = (size_t)B * (h + 2 * p) * (w + 2 * p) * ((cl + cg + ext) / 8);
    VEC_CHECK(n8, cl % 8 || cg % 8 || ext % 8);
    WITH_ELEM2(etx, et,
               trunk_pad_k<Tx, T><<<vec_blocks(n8), THREADS, 0, (cudaStream_t)s>>>(
                   (const Tx *)xl, (const Tx *)xg, (const T *)rl, (const T *)rg, (Tx *)nxl,
                   (Tx *)nxg, B, h, w, cl, cg, ext / 8, p, (T *)pcat, (T *)pl, gw));
    return launched();
}

extern "C" int px_cu_trunk_concat(px_cu_stream s, int etx, int et, const void *xl, const void *xg,
                                  const void *rl, const void *rg, int B, int h, int w, int cl,
                                  int cg, void *out)
{
    size_t n8 = (size_t)B * h * w * ((cl + cg) / 8);
    VEC_CHECK(n8, cl % 8 || cg % 8);
    WITH_ELEM2(etx, et,
               trunk_concat_k<Tx, T><<<vec_blocks(n8), THREADS, 0, (cudaStream_t)s>>>(
                   (const Tx *)xl, (const Tx *)xg, (const T *)rl, (const T *)rg, B, h, w, cl, cg,
                   (T *)out));
    return launched();
}

extern "C" int px_cu_bias_act(px_cu_stream s, int et, void *y, const float *bias, size_t rows,
                              int c, int relu)
{
    size_t n8 = rows * (size_t)(c / 8);
    VEC_CHECK(n8, c % 8);
    WITH_ELEM(et, bias_act_k<T><<<vec_blocks(n8), THREADS, 0, (cudaStream_t)s>>>(
                      (T *)y, bias, (unsigned)n8, c / 8, relu));
    return launched();
}

extern "C" int px_cu_hermitian_transpose(px_cu_stream s, const float *g, int B, int c, int h,
                                         int wf, int w, float *dst)
{
    dim3 grid((c + TT - 1) / TT, (wf + TT - 1) / TT, B * h), block(TT, TR);
    hermitian_transpose_k<<<grid, block, 0, (cudaStream_t)s>>>((const float2 *)g, c, h, wf, w,
                                                               (float2 *)dst);
    return launched();
}

extern "C" int px_cu_to_planar(px_cu_stream s, int et, const void *src, int B, int np, int c,
                               float *dst)
{
    dim3 grid((c + TT - 1) / TT, (np + TT - 1) / TT, B), block(TT, TR);
    WITH_ELEM(et, transpose_k<T, float>
              <<<grid, block, 0, (cudaStream_t)s>>>((const T *)src, np, c, dst));
    return launched();
}

extern "C" int px_cu_planar_to_nhwc_c(px_cu_stream s, const float *src, int B, int np, int c,
                                      float *dst)
{
    dim3 grid((np + TT - 1) / TT, (c + TT - 1) / TT, B), block(TT, TR);
    transpose_k<float2, float2>
        <<<grid, block, 0, (cudaStream_t)s>>>((const float2 *)src, c, np, (float2 *)dst);
    return launched();
}

extern "C" int px_cu_planar_add(px_cu_stream s, int eta, int et, const float *planar, float scale,
                                const void *add, int B, int h, int w, int c, int ext, void *out)
{
    int np = h * w;
    dim3 grid((np + TT - 1) / TT, (c + TT - 1) / TT, B), block(TT, TR);
    WITH_ELEM2(eta, et,
               planar_add_k<Tx, T><<<grid, block, 0, (cudaStream_t)s>>>(
                   planar, scale, (const Tx *)add, c, c + ext, np, (T *)out));
    if (ext) return px_cu_bias_channel(s, et, out, (size_t)B * np, c, ext);
    return launched();
}

extern "C" int px_cu_convert(px_cu_stream s, int et, const float *src, size_t n, void *dst)
{
    if (et != PX_CU_F32 && n % 8 == 0 && vec_blocks(n / 8)) { /* most weights: 8 at a time */
        WITH_ELEM(et, to_act_k<float, T><<<vec_blocks(n / 8), THREADS, 0, (cudaStream_t)s>>>(
                          src, (unsigned)(n / 8), (T *)dst));
        return launched();
    }
    WITH_ELEM(et, convert_k<T><<<blocks_for(n), THREADS, 0, (cudaStream_t)s>>>(src, n, (T *)dst));
    return launched();
}

extern "C" int px_cu_widen(px_cu_stream s, int et, const void *src, size_t n, float *dst)
{
    VEC_CHECK(n / 8, n % 8);
    WITH_ELEM(et, to_act_k<T, float><<<vec_blocks(n / 8), THREADS, 0, (cudaStream_t)s>>>(
                      (const T *)src, (unsigned)(n / 8), dst));
    return launched();
}
