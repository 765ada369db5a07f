/*
 * conv7.cu — the LaMa CUDA backend's two 7x7 convolutions at full
 * resolution, the stem (4 inputs) and the head (3 outputs), whose channel
 * counts leave cuDNN's kernels idle (its own 7x7 algorithms were 2.6x
 * slower end to end: docs/benchmarks/lama-cuda.md). Each is fused with
 * what surrounds it: the stem builds its input from the uint8 image and
 * mask, the head ends in sigmoid, quantisation and composition. Two
 * implementations each (conv7.h):
 *   - fp32 on the CUDA cores (the fp32 engine's, and the fallback);
 *   - fp16 on the tensor cores (mma.sync m16n8k16, fp32 accumulation),
 *     from weights pre-arranged in the fragments' order
 *     (px_cu_stem_tc_weights, px_cu_head_tc_weights).
 */
#include "engine/lama/cuda/conv7.h"

#include "engine/cuda/cuda_mma.cuh"
#include "engine/lama/cuda/lama_dev.cuh"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace {

using namespace pxlama;

/* ---- on the CUDA cores ----
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

/* The stem's input at (y, x) of the padded H x W image (reflection beyond
 * it), for an item of h x w (symmetric padding beyond that): the masked
 * image in [0, 1] and the mask, as (r, g, b, m). */
__device__ __forceinline__ float4 stem_input(const uint8_t *im, const uint8_t *mk, int y, int x,
                                             int H, int W, int h, int w)
{
    int sy = symmetric(tile_src(y, H), h), sx = symmetric(tile_src(x, W), w);
    const uint8_t *px = im + ((size_t)sy * w + sx) * 3;
    float m = mk[(size_t)sy * w + sx] ? 1.0f : 0.0f;
    return make_float4((float)px[0] / 255.0f * (1.0f - m), (float)px[1] / 255.0f * (1.0f - m),
                       (float)px[2] / 255.0f * (1.0f - m), m);
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
        float4 v = stem_input(im, mk, y0 + ty - HALO, x0 + tx - HALO, H, W, h, w);
        tile[0][ty][tx] = v.x, tile[1][ty][tx] = v.y, tile[2][ty][tx] = v.z, tile[3][ty][tx] = v.w;
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

/* ---- on the tensor cores ----
 * Both as implicit GEMMs over m16n8k16 tiles: M = 16 consecutive output
 * pixels of a row, K = (tap, input channel), N = 8 output channels. The
 * padded input tile, converted to fp16, sits in shared memory; B comes
 * from the pre-arranged weights (one 8-byte load per lane per mma, L1
 * resident: 28 KB for the stem, 50 KB for the head). Accumulators start at
 * the bias (fp32), so the sum is rounded once, when stored. */

__device__ __forceinline__ uint32_t h2u(__half2 v)
{
    return *reinterpret_cast<uint32_t *>(&v);
}

/* Two neighbouring channels of one pixel, stored in T. */
__device__ __forceinline__ void st2(float *p, size_t i, float a, float b)
{
    *reinterpret_cast<float2 *>(p + i) = make_float2(a, b);
}
__device__ __forceinline__ void st2(f16_t *p, size_t i, float a, float b)
{
    *reinterpret_cast<__half2 *>(p + i) = __floats2half2_rn(a, b);
}
__device__ __forceinline__ void st2(bf16_t *p, size_t i, float a, float b)
{
    *reinterpret_cast<__nv_bfloat162 *>(p + i) = __floats2bfloat162_rn(a, b);
}

/* The stem: K = 7 rows (dy) x 8 columns (dx, the 8th a zero weight) x 4
 * channels = 14 chunks of 16, chunk kc = (dy = kc / 2, dx from 4 (kc % 2)):
 * a lane's A pair (k = 2t, 2t + 1) is channels 2 (t % 2), +1 of tap dx +
 * t / 2, one 32-bit shared load (the tile keeps a pixel's 4 channels in 8
 * bytes). A block computes 8 rows x 32 pixels, warp w row w in two
 * m-tiles, all NT x 8 output channels. */
const int SC_ROWS = 8, SC_COLS = 32, SC_TW = SC_COLS + 8, SC_KC = 14;

/* Where the stem's output pixel (y, x) goes, as element offsets: into the
 * plain H x W x C tensor (pad 0), or into the first down-sampling's
 * reflection-padded (H+2) x (W+2) x (C + ext) input (pad 1), at (y+1,
 * x+1) and once more in the border for each row and column torch's
 * reflection repeats (1 and H-2, 1 and W-2). Returns how many. */
__device__ __forceinline__ int stem_places(int b, int y, int x, int H, int W, int C, int pad,
                                           size_t off[9])
{
    if (!pad) {
        off[0] = (((size_t)b * H + y) * W + x) * C;
        return 1;
    }
    int rows[3] = {y + 1}, cols[3] = {x + 1}, nr = 1, nc = 1;
    if (y == 1) rows[nr++] = 0;
    if (y == H - 2) rows[nr++] = H + 1;
    if (x == 1) cols[nc++] = 0;
    if (x == W - 2) cols[nc++] = W + 1;
    int n = 0;
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++)
            off[n++] = (((size_t)b * (H + 2) + rows[r]) * (W + 2) + cols[c]) * C;
    return n;
}

template <typename T, int NT>
__global__ void __launch_bounds__(32 * SC_ROWS)
    stem_tc_k(const uint8_t *img, const uint8_t *mask, size_t img_stride, size_t mask_stride,
              const px_cu_item *items, int H, int W, const uint2 *wtc, const float *bias, int pad,
              int ext, T *out)
{
    __shared__ __half2 tile[SC_ROWS + 2 * HALO][SC_TW][2];
    int b = blockIdx.z, x0 = blockIdx.x * SC_COLS, y0 = blockIdx.y * SC_ROWS;
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    int h = items[b].h, w = items[b].w;
    const uint8_t *im = img + (size_t)b * img_stride, *mk = mask + (size_t)b * mask_stride;
    for (int q = tid; q < (SC_ROWS + 2 * HALO) * SC_TW; q += 32 * SC_ROWS) {
        int ty = q / SC_TW, tx = q % SC_TW;
        float4 v = stem_input(im, mk, y0 + ty - HALO, x0 + tx - HALO, H, W, h, w);
        tile[ty][tx][0] = __floats2half2_rn(v.x, v.y);
        tile[ty][tx][1] = __floats2half2_rn(v.z, v.w);
    }
    __syncthreads();
    float acc[2][NT][4];
#pragma unroll
    for (int n = 0; n < NT; n++) {
        float b0 = bias[n * 8 + 2 * t], b1 = bias[n * 8 + 2 * t + 1];
#pragma unroll
        for (int m = 0; m < 2; m++) acc[m][n][0] = acc[m][n][2] = b0, acc[m][n][1] = acc[m][n][3] = b1;
    }
#pragma unroll 2
    for (int kc = 0; kc < SC_KC; kc++) {
        int dy = kc >> 1, dx = 4 * (kc & 1) + (t >> 1);
        const __half2 *row = &tile[warp + dy][0][t & 1];
        uint32_t a[2][4];
#pragma unroll
        for (int m = 0; m < 2; m++) {
            int c = 16 * m + g + dx;
            a[m][0] = h2u(row[2 * c]);
            a[m][1] = h2u(row[2 * (c + 8)]);
            a[m][2] = h2u(row[2 * (c + 2)]);
            a[m][3] = h2u(row[2 * (c + 10)]);
        }
#pragma unroll
        for (int n = 0; n < NT; n++) {
            uint2 bw = __ldg(&wtc[(n * SC_KC + kc) * 32 + lane]);
            mma16816_f16(acc[0][n], a[0], bw.x, bw.y);
            mma16816_f16(acc[1][n], a[1], bw.x, bw.y);
        }
    }
    int y = y0 + warp;
    if (y >= H) return;
#pragma unroll
    for (int m = 0; m < 2; m++)
#pragma unroll
        for (int hi = 0; hi < 2; hi++) {
            int x = x0 + 16 * m + g + 8 * hi;
            if (x >= W) continue;
            size_t off[9];
            int np = stem_places(b, y, x, H, W, NT * 8 + ext, pad, off);
            for (int q = 0; q < np; q++) {
#pragma unroll
                for (int n = 0; n < NT; n++)
                    st2(out, off[q] + n * 8 + 2 * t, fmaxf(acc[m][n][2 * hi], 0.0f),
                        fmaxf(acc[m][n][2 * hi + 1], 0.0f));
                for (int e = t; e < ext / 8; e += 4) /* the bias channel */
                    st8(out, off[q] + NT * 8 + 8 * e, bias_channel(e));
            }
        }
}

/* The head: N = 8 of which 3 are used (the other five are zero weights: the
 * tensor cores are ~15x the CUDA cores, so the waste is cheap), K = 49 taps
 * x the input channels in chunks of 16. The input is read one chunk of 16
 * channels at a time into a tile of 22 x 38 pixels (40 KB, so that several
 * blocks share an SM); the pixel pitch of 24 halves puts the 8 rows of an
 * ldmatrix on different banks. A block computes 16 rows x 32 pixels, warp w
 * rows 2w and 2w + 1 in two m-tiles each. */
const int HC_ROWS = 16, HC_COLS = 32, HC_TH = HC_ROWS + 2 * HALO, HC_TW = HC_COLS + 2 * HALO,
          HC_PITCH = 24, HC_WARPS = 8;

template <typename T>
__global__ void __launch_bounds__(32 * HC_WARPS)
    head_tc_k(const T *u, int H, int W, int cin, const uint2 *wtc, const float *bias,
              const uint8_t *img, const uint8_t *mask, size_t img_stride, size_t mask_stride,
              const px_cu_item *items, uint8_t *out, float *pred)
{
    __shared__ __align__(16) __half tile[HC_TH * HC_TW * HC_PITCH];
    int b = blockIdx.z, x0 = blockIdx.x * HC_COLS, y0 = blockIdx.y * HC_ROWS;
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    int kcs = (cin + 15) / 16;
    float acc[4][4] = {};
    /* This lane's ldmatrix row: pixel +(lane % 8) + 8 (lane / 8 % 2), channels +8 (lane / 16). */
    int lrow = (lane & 7) + 8 * ((lane >> 3) & 1), lch = 8 * (lane >> 4);
    for (int kc = 0; kc < kcs; kc++) {
        for (int q = tid; q < HC_TH * HC_TW * 2; q += 32 * HC_WARPS) {
            int p = q >> 1, j = q & 1, ty = p / HC_TW, tx = p % HC_TW, c = kc * 16 + 8 * j;
            int sy = tile_src(y0 + ty - HALO, H), sx = tile_src(x0 + tx - HALO, W);
            v8 v = {};
            if (c < cin) v = ld8(u, (((size_t)b * H + sy) * W + sx) * cin + c);
            uint4 pk;
            pk.x = h2u(__floats2half2_rn(v.v[0], v.v[1]));
            pk.y = h2u(__floats2half2_rn(v.v[2], v.v[3]));
            pk.z = h2u(__floats2half2_rn(v.v[4], v.v[5]));
            pk.w = h2u(__floats2half2_rn(v.v[6], v.v[7]));
            *reinterpret_cast<uint4 *>(&tile[p * HC_PITCH + 8 * j]) = pk;
        }
        __syncthreads();
        for (int dy = 0; dy < KS; dy++)
#pragma unroll
            for (int dx = 0; dx < KS; dx++) {
                uint2 bw = __ldg(&wtc[((dy * KS + dx) * kcs + kc) * 32 + lane]);
#pragma unroll
                for (int m = 0; m < 4; m++) {
                    int ty = 2 * warp + (m >> 1) + dy, tx = 16 * (m & 1) + dx + lrow;
                    uint32_t a[4];
                    ldsm4(a, &tile[(ty * HC_TW + tx) * HC_PITCH + lch]);
                    mma16816_f16(acc[m], a, bw.x, bw.y);
                }
            }
        __syncthreads();
    }
    /* Lane 4g holds outputs 0 and 1 of pixels g and g + 8; lane 4g + 1
     * holds output 2. */
    int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int m = 0; m < 4; m++) {
        float o2a = __shfl_down_sync(0xffffffffu, acc[m][0], 1);
        float o2b = __shfl_down_sync(0xffffffffu, acc[m][2], 1);
        int y = y0 + 2 * warp + (m >> 1);
        if (t || y >= H) continue;
        for (int hi = 0; hi < 2; hi++) {
            int x = x0 + 16 * (m & 1) + g + 8 * hi;
            if (x >= W) continue;
            float logit[3] = {acc[m][2 * hi] + bias[0], acc[m][2 * hi + 1] + bias[1],
                              (hi ? o2b : o2a) + bias[2]};
            head_store(logit, b, y, x, H, W, img, mask, img_stride, mask_stride, items, out, pred);
        }
    }
}

/* Weights in the fragments' order: lane 4g + t of the (n-tile, chunk)
 * fragment holds, as two half pairs, k = 2t, 2t + 1 and 2t + 8, 2t + 9 of
 * output channel 8n + g. The stem's k of chunk kc: dy = kc / 2, dx = 4 (kc
 * % 2) + k / 4 (dx 7 is zero), channel k % 4; w32 is cout x 7 x 7 x 4. */
__global__ void stem_tc_weights_k(const float *w32, int nt, uint2 *dst)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nt * SC_KC * 32) return;
    int lane = i % 32, kc = i / 32 % SC_KC, n = i / 32 / SC_KC, o = 8 * n + lane / 4;
    float v[4];
    for (int j = 0; j < 4; j++) {
        int k = 2 * (lane % 4) + (j & 1) + 8 * (j >> 1);
        int dy = kc / 2, dx = 4 * (kc % 2) + k / 4, ch = k % 4;
        v[j] = dx < KS ? w32[((o * KS + dy) * KS + dx) * 4 + ch] : 0.0f;
    }
    dst[i] = make_uint2(h2u(__floats2half2_rn(v[0], v[1])), h2u(__floats2half2_rn(v[2], v[3])));
}

/* The head's: fragment (tap, chunk kc), output channel g (zero past 3), k =
 * input channel 16 kc + k (zero past cin); w32 is 3 x 7 x 7 x cin. */
__global__ void head_tc_weights_k(const float *w32, int cin, uint2 *dst)
{
    int kcs = (cin + 15) / 16, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= KS * KS * kcs * 32) return;
    int lane = i % 32, kc = i / 32 % kcs, tap = i / 32 / kcs, o = lane / 4;
    float v[4];
    for (int j = 0; j < 4; j++) {
        int c = 16 * kc + 2 * (lane % 4) + (j & 1) + 8 * (j >> 1);
        v[j] = o < 3 && c < cin ? w32[((size_t)o * KS * KS + tap) * cin + c] : 0.0f;
    }
    dst[i] = make_uint2(h2u(__floats2half2_rn(v[0], v[1])), h2u(__floats2half2_rn(v[2], v[3])));
}

} /* namespace */

extern "C" size_t px_cu_stem_tc_bytes(int cout)
{
    return (size_t)(cout / 8) * SC_KC * 32 * sizeof(uint2);
}

extern "C" size_t px_cu_head_tc_bytes(int cin)
{
    return (size_t)KS * KS * ((cin + 15) / 16) * 32 * sizeof(uint2);
}

extern "C" int px_cu_stem_tc_weights(px_cu_stream s, const float *w32, int cout, void *dst)
{
    int n = cout / 8 * SC_KC * 32;
    if (cout % 8) return (int)cudaErrorInvalidValue;
    stem_tc_weights_k<<<(n + 255) / 256, 256, 0, (cudaStream_t)s>>>(w32, cout / 8, (uint2 *)dst);
    return launched();
}

extern "C" int px_cu_head_tc_weights(px_cu_stream s, const float *w32, int cin, void *dst)
{
    int n = KS * KS * ((cin + 15) / 16) * 32;
    if (cin % 8) return (int)cudaErrorInvalidValue;
    head_tc_weights_k<<<(n + 255) / 256, 256, 0, (cudaStream_t)s>>>(w32, cin, (uint2 *)dst);
    return launched();
}

/* The stem on the tensor cores for cout = 8, 16, 32 or 64 (NT n-tiles);
 * other widths return cudaErrorInvalidValue. */
static int stem_tc(cudaStream_t s, int et, const uint8_t *img, const uint8_t *mask,
                   size_t img_stride, size_t mask_stride, const px_cu_item *items, int B, int H,
                   int W, const void *wtc, const float *bias, int cout, int pad, int ext,
                   void *out)
{
    dim3 grid((W + SC_COLS - 1) / SC_COLS, (H + SC_ROWS - 1) / SC_ROWS, B), block(32 * SC_ROWS);
#define STEM_TC(NT)                                                                                \
    stem_tc_k<T, NT><<<grid, block, 0, s>>>(img, mask, img_stride, mask_stride, items, H, W,       \
                                            (const uint2 *)wtc, bias, pad, ext, (T *)out)
    switch (cout) {
    case 8: WITH_ELEM(et, STEM_TC(1)); break;
    case 16: WITH_ELEM(et, STEM_TC(2)); break;
    case 32: WITH_ELEM(et, STEM_TC(4)); break;
    case 64: WITH_ELEM(et, STEM_TC(8)); break;
    default: return (int)cudaErrorInvalidValue;
    }
#undef STEM_TC
    return launched();
}

extern "C" int px_cu_stem(px_cu_stream s, int et, const uint8_t *img, const uint8_t *mask,
                          size_t img_stride, size_t mask_stride, const px_cu_item *items, int B,
                          int H, int W, const float *w32, const void *wtc, const float *bias,
                          int cout, int pad, int ext, void *out)
{
    if (cout % 8 || ext % 8 || (pad && (!wtc || H < 2 || W < 2)))
        return (int)cudaErrorInvalidValue;
    cudaStream_t cs = (cudaStream_t)s;
    if (wtc)
        return stem_tc(cs, et, img, mask, img_stride, mask_stride, items, B, H, W, wtc, bias, cout,
                       pad, pad ? ext : 0, out);
    int g = cout % 16 ? 8 : 16;
    dim3 grid((W + TILE - 1) / TILE, (H + TILE - 1) / TILE, B * (cout / g)), block(32 * STEM_WARPS);
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
                          const float *w32, const void *wtc, const float *bias,
                          const uint8_t *img, const uint8_t *mask, size_t img_stride,
                          size_t mask_stride, const px_cu_item *items, uint8_t *out, float *pred)
{
    cudaStream_t cs = (cudaStream_t)s;
    if (wtc) {
        if (cin % 8) return (int)cudaErrorInvalidValue;
        dim3 grid((W + HC_COLS - 1) / HC_COLS, (H + HC_ROWS - 1) / HC_ROWS, B),
            block(32 * HC_WARPS);
        WITH_ELEM(et, head_tc_k<T><<<grid, block, 0, cs>>>(
                          (const T *)u, H, W, cin, (const uint2 *)wtc, bias, img, mask, img_stride,
                          mask_stride, items, out, pred));
        return launched();
    }
    if (cin % HEAD_CC) return (int)cudaErrorInvalidValue;
    dim3 grid((W + TILE - 1) / TILE, (H + TILE - 1) / TILE, B), block(32 * HEAD_WARPS);
    WITH_ELEM(et, head_k<T><<<grid, block, 0, cs>>>((const T *)u, H, W, cin, w32, bias, img, mask,
                                                    img_stride, mask_stride, items, out, pred));
    return launched();
}
