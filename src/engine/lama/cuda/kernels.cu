/*
 * kernels.cu — the LaMa CUDA backend's element-wise and layout kernels (see
 * kernels.h). They are memory-bound: one thread per output element, with
 * NHWC's channel index fastest so that a warp reads and writes contiguous
 * bytes. Templates cover the three activation types (float, bfloat16,
 * half); all arithmetic is in float.
 */
#include "engine/lama/cuda/kernels.h"

#include "engine/cuda/cuda_elem.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace {

using namespace pxcu; /* bf16_t, f16_t, ld, st */

/* Eight consecutive elements, moved as 16 (bf16, half) or 32 (float) bytes: the
 * memory-bound kernels below work in these units when channel counts are
 * multiples of 8 (they are in every LaMa configuration). */
struct v8 {
    float v[8];
};

__device__ __forceinline__ v8 ld8(const float *p, size_t i)
{
    float4 a = *reinterpret_cast<const float4 *>(p + i), b = *reinterpret_cast<const float4 *>(p + i + 4);
    return v8{{a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w}};
}

__device__ __forceinline__ v8 ld8(const bf16_t *p, size_t i)
{
    uint4 u = *reinterpret_cast<const uint4 *>(p + i);
    const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&u);
    v8 r;
    for (int k = 0; k < 4; k++) {
        float2 f = __bfloat1622float2(h[k]);
        r.v[2 * k] = f.x;
        r.v[2 * k + 1] = f.y;
    }
    return r;
}

__device__ __forceinline__ v8 ld8(const f16_t *p, size_t i)
{
    uint4 u = *reinterpret_cast<const uint4 *>(p + i);
    const __half2 *h = reinterpret_cast<const __half2 *>(&u);
    v8 r;
    for (int k = 0; k < 4; k++) {
        float2 f = __half22float2(h[k]);
        r.v[2 * k] = f.x;
        r.v[2 * k + 1] = f.y;
    }
    return r;
}

__device__ __forceinline__ void st8(float *p, size_t i, const v8 &r)
{
    *reinterpret_cast<float4 *>(p + i) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
    *reinterpret_cast<float4 *>(p + i + 4) = make_float4(r.v[4], r.v[5], r.v[6], r.v[7]);
}

__device__ __forceinline__ void st8(bf16_t *p, size_t i, const v8 &r)
{
    uint4 u;
    __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&u);
    for (int k = 0; k < 4; k++) h[k] = __floats2bfloat162_rn(r.v[2 * k], r.v[2 * k + 1]);
    *reinterpret_cast<uint4 *>(p + i) = u;
}

__device__ __forceinline__ void st8(f16_t *p, size_t i, const v8 &r)
{
    uint4 u;
    __half2 *h = reinterpret_cast<__half2 *>(&u);
    for (int k = 0; k < 4; k++) h[k] = __floats2half2_rn(r.v[2 * k], r.v[2 * k + 1]);
    *reinterpret_cast<uint4 *>(p + i) = u;
}

/* torch "reflect": ... 2 1 | 0 1 ... n-1 | n-2 ...; valid for |overshoot| < n. */
__device__ __forceinline__ int reflect(int i, int n)
{
    if (i < 0) return -i;
    if (i >= n) return 2 * n - 2 - i;
    return i;
}

/* numpy "symmetric" (edge repeated), periodic for any distance. */
__device__ __forceinline__ int symmetric(int i, int n)
{
    int m = i % (2 * n);
    if (m < 0) m += 2 * n;
    return m < n ? m : 2 * n - 1 - m;
}

const int THREADS = 256;

inline unsigned blocks_for(size_t n)
{
    size_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < 2147483647u ? b : 2147483647u);
}

#define GRID_STRIDE(i, n) \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)gridDim.x * blockDim.x)

/* The bias channel's eight values (lama_cuda_weights.h, ext): 1, then 0s. */
__device__ __forceinline__ v8 bias_channel()
{
    return v8{{1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}};
}

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
            st8(dst, (size_t)i * 8, bias_channel());
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
            st8(pcat, (size_t)i * 8, bias_channel());
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

/* ---- fused stem and head convolutions ----
 * Direct convolutions for the two 7x7 layers at full resolution, whose
 * channel counts (4 in, 3 out) leave cuDNN's tensor-core kernels idle. A
 * block computes a 32 x 32 output tile; the input tile (with a 3-pixel
 * halo) sits in shared memory with its reflection (and, for the stem,
 * symmetric) padding applied as it is loaded. Lane i of every warp owns
 * output row i and a warp a few consecutive columns: a thread slides a
 * window of input values held in registers along its row, so each shared
 * load feeds up to 7 taps, and the lanes of a warp read 32 different rows
 * of one column — conflict-free, the tile's row pitch being odd. The
 * weights are read as broadcast float4s. (The first versions, one shared
 * load per one or two FMAs, were bound by shared-memory issue: 8.8 ms each
 * at 1024² batch 8, where the FMAs alone take ~3.) */

const int TILE = 32, KS = 7, HALO = 3, TW = TILE + 2 * HALO, TP = TW + 1; /* 38, pitch 39 */

/* Row or column i of a tile of the padded input, as an index into [0, n):
 * torch "reflect" for the conv's padding; rows and columns past the tensor
 * (outputs that are not stored) take a valid neighbour. */
__device__ __forceinline__ int tile_src(int i, int n)
{
    int r = reflect(i, n);
    return r < 0 ? 0 : r >= n ? n - 1 : r;
}

/* The stem: STEM_PX consecutive pixels x G output channels per thread;
 * blockIdx.z = batch item * (cout / G) + group; G = 16 for real models (64
 * channels), 8 for small test configurations. */
const int STEM_PX = 4, STEM_WARPS = TILE / STEM_PX; /* 8 */

template <typename T, int G>
__global__ void __launch_bounds__(32 * STEM_WARPS)
    stem_k(const uint8_t *img, const uint8_t *mask, size_t img_stride, size_t mask_stride,
           const px_cu_item *items, int H, int W, const float *w32, const float *bias, int cout,
           T *out)
{
    __shared__ float tile[4][TW][TP];
    __shared__ __align__(16) float wsh[KS * KS][4][G];
    int groups = cout / G;
    int b = blockIdx.z / groups, g = blockIdx.z % groups;
    int x0 = blockIdx.x * TILE, y0 = blockIdx.y * TILE;
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    int h = items[b].h, w = items[b].w;
    const uint8_t *im = img + (size_t)b * img_stride, *mk = mask + (size_t)b * mask_stride;
    for (int q = tid; q < TW * TW; q += 32 * STEM_WARPS) {
        int ty = q / TW, tx = q % TW;
        int sy = symmetric(tile_src(y0 + ty - HALO, H), h);
        int sx = symmetric(tile_src(x0 + tx - HALO, W), w);
        const uint8_t *px = im + ((size_t)sy * w + sx) * 3;
        float m = mk[(size_t)sy * w + sx] ? 1.0f : 0.0f;
        for (int k = 0; k < 3; k++) tile[k][ty][tx] = (float)px[k] / 255.0f * (1.0f - m);
        tile[3][ty][tx] = m;
    }
    for (int q = tid; q < KS * KS * 4 * G; q += 32 * STEM_WARPS) {
        int o = q % G, r = q / G, i = r % 4, t = r / 4;
        wsh[t][i][o] = w32[(((size_t)(g * G + o) * KS * KS) + t) * 4 + i];
    }
    __syncthreads();
    int cx = warp * STEM_PX; /* the thread's first column in the tile */
    float acc[STEM_PX][G];
    for (int p = 0; p < STEM_PX; p++)
        for (int o = 0; o < G; o++) acc[p][o] = bias[g * G + o];
    for (int i = 0; i < 4; i++)
        for (int dy = 0; dy < KS; dy++) {
            float win[STEM_PX + KS - 1];
#pragma unroll
            for (int k = 0; k < STEM_PX + KS - 1; k++) win[k] = tile[i][lane + dy][cx + k];
#pragma unroll
            for (int dx = 0; dx < KS; dx++) {
                const float4 *wr = reinterpret_cast<const float4 *>(wsh[dy * KS + dx][i]);
#pragma unroll
                for (int o4 = 0; o4 < G / 4; o4++) {
                    float4 wv = wr[o4];
#pragma unroll
                    for (int p = 0; p < STEM_PX; p++) {
                        float v = win[p + dx];
                        acc[p][4 * o4] += v * wv.x;
                        acc[p][4 * o4 + 1] += v * wv.y;
                        acc[p][4 * o4 + 2] += v * wv.z;
                        acc[p][4 * o4 + 3] += v * wv.w;
                    }
                }
            }
        }
    int y = y0 + lane;
    if (y >= H) return;
    for (int p = 0; p < STEM_PX; p++) {
        int x = x0 + cx + p;
        if (x >= W) break;
        size_t base = (((size_t)b * H + y) * W + x) * cout + g * G;
        for (int o = 0; o < G; o += 8) {
            v8 r;
            for (int j = 0; j < 8; j++) r.v[j] = acc[p][o + j] > 0.0f ? acc[p][o + j] : 0.0f;
            st8(out, base + o, r);
        }
    }
}

/* Four consecutive channels of one pixel as floats. */
__device__ __forceinline__ float4 ld4(const float *p, size_t i)
{
    return *reinterpret_cast<const float4 *>(p + i);
}

__device__ __forceinline__ float4 ld4(const bf16_t *p, size_t i)
{
    uint2 u = *reinterpret_cast<const uint2 *>(p + i);
    float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&u.x));
    float2 c = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&u.y));
    return make_float4(a.x, a.y, c.x, c.y);
}

__device__ __forceinline__ float4 ld4(const f16_t *p, size_t i)
{
    uint2 u = *reinterpret_cast<const uint2 *>(p + i);
    float2 a = __half22float2(*reinterpret_cast<const __half2 *>(&u.x));
    float2 c = __half22float2(*reinterpret_cast<const __half2 *>(&u.y));
    return make_float4(a.x, a.y, c.x, c.y);
}

/* The head's end for one pixel of item b: sigmoid of the 3 logits, the
 * float prediction (pred, when not NULL), then inside the item quantised
 * and composed: the prediction in the hole, the input elsewhere. */
__device__ __forceinline__ void head_store(const float *acc, int b, int y, int x, int H, int W,
                                           const uint8_t *img, const uint8_t *mask,
                                           size_t img_stride, size_t mask_stride,
                                           const px_cu_item *items, uint8_t *out, float *pred)
{
    int h = items[b].h, w = items[b].w;
    for (int k = 0; k < 3; k++) {
        float v = 1.0f / (1.0f + __expf(-acc[k]));
        if (pred) pred[(((size_t)b * H + y) * W + x) * 3 + k] = v;
        if (y >= h || x >= w) continue;
        size_t o = (size_t)b * img_stride + ((size_t)y * w + x) * 3 + k;
        if (mask[(size_t)b * mask_stride + (size_t)y * w + x]) {
            float q = v * 255.0f;
            q = q < 0.0f ? 0.0f : q > 255.0f ? 255.0f : q;
            out[o] = (uint8_t)q; /* truncation, as astype(uint8) */
        } else {
            out[o] = img[o];
        }
    }
}

/* The head: HEAD_PX consecutive pixels x 3 outputs per thread, input
 * channels in chunks of HEAD_CC (the tile of a chunk: 23 KB). */
const int HEAD_CC = 4, HEAD_PX = 8, HEAD_WARPS = TILE / HEAD_PX; /* 4 */

template <typename T>
__global__ void __launch_bounds__(32 * HEAD_WARPS)
    head_k(const T *u, int H, int W, int cin, const float *w32, const float *bias,
           const uint8_t *img, const uint8_t *mask, size_t img_stride, size_t mask_stride,
           const px_cu_item *items, uint8_t *out, float *pred)
{
    __shared__ float tile[HEAD_CC][TW][TP];
    __shared__ __align__(16) float wsh[KS * KS][HEAD_CC][4]; /* 3 outputs and a zero */
    int b = blockIdx.z;
    int x0 = blockIdx.x * TILE, y0 = blockIdx.y * TILE;
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nthr = 32 * HEAD_WARPS;
    int cx = warp * HEAD_PX;
    float acc[HEAD_PX][3];
    for (int p = 0; p < HEAD_PX; p++)
        for (int o = 0; o < 3; o++) acc[p][o] = bias[o];
    for (int c0 = 0; c0 < cin; c0 += HEAD_CC) {
        for (int q = tid; q < TW * TW; q += nthr) {
            int ty = q / TW, tx = q % TW;
            int sy = tile_src(y0 + ty - HALO, H), sx = tile_src(x0 + tx - HALO, W);
            float4 v = ld4(u, (((size_t)b * H + sy) * W + sx) * cin + c0);
            tile[0][ty][tx] = v.x, tile[1][ty][tx] = v.y, tile[2][ty][tx] = v.z,
            tile[3][ty][tx] = v.w;
        }
        for (int q = tid; q < KS * KS * HEAD_CC * 4; q += nthr) {
            int o = q % 4, r = q / 4, j = r % HEAD_CC, t = r / HEAD_CC;
            wsh[t][j][o] = o < 3 ? w32[((size_t)o * KS * KS + t) * cin + c0 + j] : 0.0f;
        }
        __syncthreads();
        for (int j = 0; j < HEAD_CC; j++)
            for (int dy = 0; dy < KS; dy++) {
                float win[HEAD_PX + KS - 1];
#pragma unroll
                for (int k = 0; k < HEAD_PX + KS - 1; k++) win[k] = tile[j][lane + dy][cx + k];
#pragma unroll
                for (int dx = 0; dx < KS; dx++) {
                    float4 wv = *reinterpret_cast<const float4 *>(wsh[dy * KS + dx][j]);
#pragma unroll
                    for (int p = 0; p < HEAD_PX; p++) {
                        float v = win[p + dx];
                        acc[p][0] += v * wv.x;
                        acc[p][1] += v * wv.y;
                        acc[p][2] += v * wv.z;
                    }
                }
            }
        __syncthreads();
    }
    int y = y0 + lane;
    if (y >= H) return;
    for (int p = 0; p < HEAD_PX; p++) {
        int x = x0 + cx + p;
        if (x >= W) break;
        head_store(acc[p], b, y, x, H, W, img, mask, img_stride, mask_stride, items, out, pred);
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

int launched(void)
{
    return (int)cudaGetLastError();
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

/* Runs the statement with the type Tn the element type et names; an et
 * that names none returns cudaErrorInvalidValue from the launcher. */
#define WITH_TYPE(Tn, et, ...)                                                                     \
    do {                                                                                           \
        if ((et) == PX_CU_BF16) {                                                                  \
            typedef bf16_t Tn;                                                                     \
            __VA_ARGS__;                                                                           \
        } else if ((et) == PX_CU_F16) {                                                            \
            typedef f16_t Tn;                                                                      \
            __VA_ARGS__;                                                                           \
        } else if ((et) == PX_CU_F32) {                                                            \
            typedef float Tn;                                                                      \
            __VA_ARGS__;                                                                           \
        } else {                                                                                   \
            return (int)cudaErrorInvalidValue;                                                     \
        }                                                                                          \
    } while (0)
#define WITH_ELEM(et, ...) WITH_TYPE(T, et, __VA_ARGS__)
/* Two types: Tx (etx: the residual stream, the FU's addend) and T (et). */
#define WITH_ELEM2(etx, et, ...) WITH_TYPE(Tx, etx, WITH_TYPE(T, et, __VA_ARGS__))

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
        st8(buf, ((size_t)r * (cv + ev) + cv + k) * 8, k ? v8{} : bias_channel());
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

extern "C" int px_cu_stem(px_cu_stream s, int et, const uint8_t *img, const uint8_t *mask,
                          size_t img_stride, size_t mask_stride, const px_cu_item *items, int B,
                          int H, int W, const float *w32, const float *bias, int cout, void *out)
{
    if (cout % 8) return (int)cudaErrorInvalidValue;
    int g = cout % 16 ? 8 : 16;
    dim3 grid((W + TILE - 1) / TILE, (H + TILE - 1) / TILE, B * (cout / g)), block(32 * STEM_WARPS);
    cudaStream_t cs = (cudaStream_t)s;
#define STEM(G)                                                                                    \
    stem_k<T, G><<<grid, block, 0, cs>>>(img, mask, img_stride, mask_stride, items, H, W, w32,     \
                                         bias, cout, (T *)out)
    if (g == 16)
        WITH_ELEM(et, STEM(16));
    else
        WITH_ELEM(et, STEM(8));
#undef STEM
    return launched();
}

extern "C" int px_cu_head(px_cu_stream s, int et, const void *u, int B, int H, int W, int cin,
                          const float *w32, const float *bias, const uint8_t *img,
                          const uint8_t *mask, size_t img_stride, size_t mask_stride,
                          const px_cu_item *items, uint8_t *out, float *pred)
{
    if (cin % HEAD_CC) return (int)cudaErrorInvalidValue;
    dim3 grid((W + TILE - 1) / TILE, (H + TILE - 1) / TILE, B), block(32 * HEAD_WARPS);
    WITH_ELEM(et, head_k<T><<<grid, block, 0, (cudaStream_t)s>>>((const T *)u, H, W, cin, w32, bias,
                                                                 img, mask, img_stride, mask_stride,
                                                                 items, out, pred));
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
