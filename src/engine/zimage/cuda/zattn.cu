/*
 * zattn.cu — the flash-attention kernels of zattn.h. All: a warp takes 16
 * queries of one (item, head) and walks the item's keys in tiles of 64 (K
 * and V tiles in shared memory, loaded by the whole block), keeping each
 * query row's running maximum and sum in fp32 (online softmax, in base 2:
 * exp2 of scale·log2(e)·score); blocks of 64 queries (WMMA, mma) or 128
 * (mma2).
 *
 * bench/zattn_cuda_bench check compares each with a host reference
 * (mma, WMMA and mma2 passed on an H200, 2026-12-05; also run by make
 * test-gpu). ZC_ATTN_CUDNN is no kernel here: it
 * is dispatched to zattn_cudnn.c (cuDNN's graph API) and falls back to mma.
 */
#include "engine/zimage/cuda/zattn.h"
#include "engine/zimage/cuda/zattn_cudnn.h"

#include "engine/cuda/cuda_mma.cuh"

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>
#include <stdlib.h>
#include <string.h>

namespace {

using pxcu::ldsm4;
using pxcu::ldsm4_t;
using pxcu::mma16816;

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float b2f(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ bf16 f2b(float v) { return __float2bfloat16(v); }

int g_impl = ZC_ATTN_CUDNN; /* zc_attn_init: PX_ZIMAGE_CUDA_ATTN */

/* ------------------------------------------------------- the WMMA kernel */

/* A block: 64 queries of one (item, head), 4 warps of 16 queries; key
 * tiles of 64. Q, K, V tiles in shared memory (bf16); each warp's scores,
 * probabilities and running output too (WMMA fragments' element order is
 * opaque, so the online-softmax rescaling happens on shared copies). HD,
 * the head size, is 128 for Z-Image; the tiny test models use 16 and 32. */
const int FA_BQ = 64, FA_BK = 64, FA_WARPS = 4;

template <int HD> constexpr size_t fa_smem()
{
    return (size_t)FA_BQ * HD * 2 * 3 /* Q K V */ +
           (size_t)FA_WARPS * 16 * (HD > FA_BK ? HD : FA_BK) * 4 /* S / PV */ +
           (size_t)FA_WARPS * 16 * FA_BK * 2 /* P */ + (size_t)FA_WARPS * 16 * HD * 4 /* O */;
}

/* rows [0, 64) x HD bf16 from global (row stride ld) into sh (row stride
 * L); rows at or past `valid` become zeros. 128 threads, 16 bytes each at a
 * time. Both kernels' tiles. */
template <int HD> __device__ void load_tile(bf16 *sh, int L, const bf16 *g, int ld, int valid)
{
    for (int i = threadIdx.x; i < 64 * HD / 8; i += 128) {
        int r = i / (HD / 8), c = (i % (HD / 8)) * 8;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (r < valid) v = *reinterpret_cast<const uint4 *>(g + (size_t)r * ld + c);
        *reinterpret_cast<uint4 *>(sh + r * L + c) = v;
    }
}

template <int HD>
__global__ void __launch_bounds__(FA_WARPS * 32)
    k_flash(const bf16 *Q, const bf16 *K, const bf16 *V, bf16 *O, int ldq, int ldk, int ldv,
            int ldo, int S_q, int S_kv, int n_q, const int *kv_len, int nh, int nkv, float scale,
            int causal)
{
    using namespace nvcuda;
    const int SW = HD > FA_BK ? HD : FA_BK; /* width of a warp's S / PV area */
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *sQ = reinterpret_cast<bf16 *>(smem), *sK = sQ + FA_BQ * HD, *sV = sK + FA_BK * HD;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *sSall = reinterpret_cast<float *>(sV + FA_BK * HD);
    bf16 *sPall = reinterpret_cast<bf16 *>(sSall + FA_WARPS * 16 * SW);
    float *sOall = reinterpret_cast<float *>(sPall + FA_WARPS * 16 * FA_BK);
    float *sS = sSall + warp * 16 * SW, *sO = sOall + warp * 16 * HD;
    bf16 *sP = sPall + warp * 16 * FA_BK;

    int q0 = blockIdx.x * FA_BQ, h = blockIdx.y, b = blockIdx.z, hk = h / (nh / nkv);
    int nkeys = kv_len[b];
    if (nkeys > S_kv) nkeys = S_kv;
    const bf16 *gq = Q + ((size_t)b * S_q + q0) * ldq + (size_t)h * HD;
    const bf16 *gk = K + (size_t)b * S_kv * ldk + (size_t)hk * HD;
    const bf16 *gv = V + (size_t)b * S_kv * ldv + (size_t)hk * HD;
    load_tile<HD>(sQ, HD, gq, ldq, n_q - q0);
    for (int i = lane; i < 16 * HD; i += 32) sO[i] = 0;
    /* Each row's statistics live in its two lanes (lane = 2·row + half). */
    int row = lane / 2, half = lane % 2, qi = q0 + warp * 16 + row;
    float m = -INFINITY, l = 0;
    const float sl2 = scale * 1.4426950408889634f;
    int kend = nkeys;
    if (causal && q0 + FA_BQ < kend) kend = q0 + FA_BQ; /* keys past the tile's queries */
    for (int k0 = 0; k0 < kend; k0 += FA_BK) {
        __syncthreads(); /* the previous tile is no longer read */
        load_tile<HD>(sK, HD, gk + (size_t)k0 * ldk, ldk, nkeys - k0);
        load_tile<HD>(sV, HD, gv + (size_t)k0 * ldv, ldv, nkeys - k0);
        __syncthreads();
        /* S = Q·Kᵀ for this warp's 16 rows: 4 tiles of 16 keys. */
        for (int nt = 0; nt < FA_BK / 16; nt++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
            for (int kk = 0; kk < HD; kk += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb;
                wmma::load_matrix_sync(fa, sQ + warp * 16 * HD + kk, HD);
                wmma::load_matrix_sync(fb, sK + nt * 16 * HD + kk, HD);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(sS + nt * 16, acc, FA_BK, wmma::mem_row_major);
        }
        __syncwarp();
        /* Online softmax over this lane's 32 columns of its row. */
        float *srow = sS + row * FA_BK + half * 32;
        float tmax = -INFINITY;
        for (int j = 0; j < 32; j++) {
            int key = k0 + half * 32 + j;
            bool ok = key < nkeys && (!causal || key <= qi);
            float v = ok ? srow[j] * sl2 : -INFINITY;
            srow[j] = v;
            tmax = fmaxf(tmax, v);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        float mnew = fmaxf(m, tmax);
        float alpha = mnew == -INFINITY ? 1.0f : exp2f(m - mnew);
        float psum = 0;
        bf16 *prow = sP + row * FA_BK + half * 32;
        for (int j = 0; j < 32; j++) {
            float pj = mnew == -INFINITY ? 0.0f : exp2f(srow[j] - mnew);
            bf16 pb = f2b(pj);
            prow[j] = pb;
            psum += b2f(pb); /* the sum of what is multiplied with V */
        }
        psum += __shfl_xor_sync(0xffffffffu, psum, 1);
        l = l * alpha + psum;
        m = mnew;
        __syncwarp();
        /* PV = P·V (16 x HD) into the S area, then O = O·alpha + PV. */
        for (int nt = 0; nt < HD / 16; nt++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
            for (int kk = 0; kk < FA_BK; kk += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
                wmma::load_matrix_sync(fa, sP + kk, FA_BK);
                wmma::load_matrix_sync(fb, sV + kk * HD + nt * 16, HD);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(sS + nt * 16, acc, HD, wmma::mem_row_major);
        }
        __syncwarp();
        float *orow = sO + row * HD + half * (HD / 2), *pv = sS + row * HD + half * (HD / 2);
        for (int j = 0; j < HD / 2; j++) orow[j] = orow[j] * alpha + pv[j];
        __syncwarp();
    }
    if (qi >= n_q) return;
    float inv = l > 0 ? 1.0f / l : 0.0f;
    bf16 *go = O + ((size_t)b * S_q + qi) * ldo + (size_t)h * HD + half * (HD / 2);
    const float *orow = sO + row * HD + half * (HD / 2);
    for (int j = 0; j < HD / 2; j++) go[j] = f2b(orow[j] * inv);
}



/* ------------------------------------------------ the mma.sync kernel */

/*
 * Fragments of mma.sync.m16n8k16 (bf16 in, fp32 accumulate), for lane
 * = 4·g + t: an accumulator tile (16 x 8) holds rows g and g+8, columns
 * 2t and 2t+1 — and two neighbouring score tiles, rounded to bf16, are
 * exactly the A operand (16 x 16) of the next product, so P never leaves
 * the registers. ldmatrix.x4 fetches four 8x8 bf16 blocks (lanes 8i..8i+7
 * give block i's row addresses); .trans hands out the transposed element,
 * which turns V's rows (keys) into the B operand's k index.
 * Shared rows are HD + 8 elements apart: 8 rows of an ldmatrix then start
 * 4 banks apart and are read without conflicts.
 */
template <int HD> __host__ __device__ constexpr int mma_ld() { return HD + 8; }
template <int HD> constexpr size_t mma_smem() { return (size_t)3 * 64 * mma_ld<HD>() * 2; }

__device__ __forceinline__ uint32_t pack2(float lo, float hi, float *sum)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    *sum += __low2float(v) + __high2float(v); /* the sum of what meets V */
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

/* s += Q·Kᵀ over head columns [kk, kk + 16) for this warp's 16 rows and
 * the tile's 64 keys (s[j]: keys 8j..8j+7; a: the warp's Q fragment of
 * those columns). Block i of the K ldmatrix: rows (keys) +8·(i/2), columns
 * +8·(i%2) — two key tiles' B operands. */
template <int HD>
__device__ __forceinline__ void mma_scores_kk(float s[8][4], const uint32_t a[4], const bf16 *sK,
                                              int kk, int lane)
{
    constexpr int L = mma_ld<HD>();
    int i = lane / 8, r = lane % 8;
#pragma unroll
    for (int j = 0; j < 8; j += 2) {
        uint32_t b[4];
        ldsm4(b, sK + ((j + i / 2) * 8 + r) * L + kk + (i % 2) * 8);
        mma16816(s[j], a, b[0], b[1]);
        mma16816(s[j + 1], a, b[2], b[3]);
    }
}

/* The warp's Q fragment of head columns [kk, kk + 16): block i of the
 * ldmatrix is Q rows +8·(i%2), columns +8·(i/2) (the A operand's order). */
template <int HD>
__device__ __forceinline__ void mma_q_frag(uint32_t a[4], const bf16 *sQw, int kk, int lane)
{
    constexpr int L = mma_ld<HD>();
    int i = lane / 8, r = lane % 8;
    ldsm4(a, sQw + ((i % 2) * 8 + r) * L + kk + (i / 2) * 8);
}

/* S = Q·Kᵀ for this warp's 16 rows (Q read from shared memory). */
template <int HD>
__device__ __forceinline__ void mma_scores(float s[8][4], const bf16 *sQw, const bf16 *sK, int lane)
{
#pragma unroll
    for (int j = 0; j < 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0;
#pragma unroll
    for (int kk = 0; kk < HD; kk += 16) {
        uint32_t a[4];
        mma_q_frag<HD>(a, sQw, kk, lane);
        mma_scores_kk<HD>(s, a, sK, kk, lane);
    }
}

/* Online softmax of one row's 16 scores held by this lane (v[j][e], the
 * row's other 48 in the lanes 4g..4g+3): mask, new maximum m, rescale
 * factor (returned), probabilities packed as bf16 pairs into p[j], their
 * sum added to l. */
__device__ __forceinline__ float mma_softmax_row(float *v0, int stride, int key0, int nkeys,
                                                 int causal, int qi, float sl2, float &m, float &l,
                                                 uint32_t *p)
{
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            int key = key0 + j * 8 + e;
            float &x = v0[j * stride + e];
            x = key < nkeys && (!causal || key <= qi) ? x * sl2 : -INFINITY;
            mx = fmaxf(mx, x);
        }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    float mn = fmaxf(m, mx);
    float alpha = mn == -INFINITY ? 1.0f : exp2f(m - mn);
    float sum = 0;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        float a = mn == -INFINITY ? 0.0f : exp2f(v0[j * stride] - mn);
        float b = mn == -INFINITY ? 0.0f : exp2f(v0[j * stride + 1] - mn);
        p[j] = pack2(a, b, &sum);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    l = l * alpha + sum;
    m = mn;
    return alpha;
}

/* A lane's two query rows' running maximum and sum (rows g and g + 8 of
 * its warp's 16). */
struct mma_stats {
    float ma, mb, la, lb;
};

/* One key tile's online-softmax update of a warp's 16 rows: the scores s
 * (Q·Kᵀ of keys k0..k0+63) masked and turned into probabilities, the
 * running output o rescaled and O += P·V (V: the tile in shared memory).
 * qa: the lane's first query row. */
template <int HD>
__device__ __forceinline__ void mma_tile(float o[HD / 8][4], float s[8][4], const bf16 *sV, int k0,
                                         int nkeys, int causal, int qa, float sl2, mma_stats &st,
                                         int lane)
{
    constexpr int L = mma_ld<HD>(), NT = HD / 8;
    int t = lane % 4, i8 = lane / 8, r8 = lane % 8;
    uint32_t pa[8], pb[8];
    float aa = mma_softmax_row(&s[0][0], 4, k0 + 2 * t, nkeys, causal, qa, sl2, st.ma, st.la, pa);
    float ab = mma_softmax_row(&s[0][2], 4, k0 + 2 * t, nkeys, causal, qa + 8, sl2, st.mb, st.lb,
                               pb);
#pragma unroll
    for (int n = 0; n < NT; n++) {
        o[n][0] *= aa, o[n][1] *= aa;
        o[n][2] *= ab, o[n][3] *= ab;
    }
    /* O += P·V, 16 keys at a time: P's A operand is score tiles 2ks and
     * 2ks+1; V blocks: keys +8·(i%2), head columns +8·(i/2). */
#pragma unroll
    for (int ks = 0; ks < 4; ks++) {
        uint32_t a[4] = {pa[2 * ks], pb[2 * ks], pa[2 * ks + 1], pb[2 * ks + 1]};
#pragma unroll
        for (int n = 0; n < NT; n += 2) {
            uint32_t v[4];
            ldsm4_t(v, sV + (ks * 16 + (i8 % 2) * 8 + r8) * L + (n + i8 / 2) * 8);
            mma16816(o[n], a, v[0], v[1]);
            mma16816(o[n + 1], a, v[2], v[3]);
        }
    }
}

/* The lane's two rows of O / l into go (the item's and head's first
 * column), rows at or past n_q left alone. */
template <int HD>
__device__ __forceinline__ void mma_store(bf16 *go, int ldo, const float o[HD / 8][4],
                                          const mma_stats &st, int qa, int n_q, int lane)
{
    float ia = st.la > 0 ? 1.0f / st.la : 0.0f, ib = st.lb > 0 ? 1.0f / st.lb : 0.0f;
    int qb = qa + 8;
    go += 2 * (lane % 4);
#pragma unroll
    for (int n = 0; n < HD / 8; n++) {
        if (qa < n_q)
            *reinterpret_cast<__nv_bfloat162 *>(go + (size_t)qa * ldo + n * 8) =
                __floats2bfloat162_rn(o[n][0] * ia, o[n][1] * ia);
        if (qb < n_q)
            *reinterpret_cast<__nv_bfloat162 *>(go + (size_t)qb * ldo + n * 8) =
                __floats2bfloat162_rn(o[n][2] * ib, o[n][3] * ib);
    }
}

template <int HD>
__global__ void __launch_bounds__(128)
    k_flash_mma(const bf16 *Q, const bf16 *K, const bf16 *V, bf16 *O, int ldq, int ldk, int ldv,
                int ldo, int S_q, int S_kv, int n_q, const int *kv_len, int nh, int nkv,
                float scale, int causal)
{
    constexpr int L = mma_ld<HD>(), NT = HD / 8;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *sQ = reinterpret_cast<bf16 *>(smem), *sK = sQ + 64 * L, *sV = sK + 64 * L;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int q0 = blockIdx.x * 64, h = blockIdx.y, b = blockIdx.z, hk = h / (nh / nkv);
    int nkeys = min(kv_len[b], S_kv);
    const bf16 *gk = K + (size_t)b * S_kv * ldk + (size_t)hk * HD;
    const bf16 *gv = V + (size_t)b * S_kv * ldv + (size_t)hk * HD;
    load_tile<HD>(sQ, L, Q + ((size_t)b * S_q + q0) * ldq + (size_t)h * HD, ldq, n_q - q0);
    float o[NT][4];
#pragma unroll
    for (int n = 0; n < NT; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0;
    int qa = q0 + warp * 16 + lane / 4; /* this lane's rows: qa and qa + 8 */
    mma_stats st = {-INFINITY, -INFINITY, 0, 0};
    const float sl2 = scale * 1.4426950408889634f;
    int kend = nkeys;
    if (causal && q0 + 64 < kend) kend = q0 + 64; /* keys past the tile's queries */
    for (int k0 = 0; k0 < kend; k0 += 64) {
        __syncthreads(); /* the previous tile is no longer read */
        load_tile<HD>(sK, L, gk + (size_t)k0 * ldk, ldk, nkeys - k0);
        load_tile<HD>(sV, L, gv + (size_t)k0 * ldv, ldv, nkeys - k0);
        __syncthreads();
        float s[8][4];
        mma_scores<HD>(s, sQ + warp * 16 * L, sK, lane);
        mma_tile<HD>(o, s, sV, k0, nkeys, causal, qa, sl2, st, lane);
    }
    mma_store<HD>(O + (size_t)b * S_q * ldo + (size_t)h * HD, ldo, o, st, qa, n_q, lane);
}



/* ------------------------------------- the pipelined mma.sync kernel */

/*
 * k_flash_mma2: the mma kernel's arithmetic (mma_tile) with the memory
 * side of FlashAttention-2: 128 queries a block (8 warps), so each K/V
 * tile read from global memory serves twice the queries; K/V tiles loaded
 * with cp.async into two stages, the next tile's copy in flight while the
 * current one is computed; the warp's Q fragments loaded once into
 * registers. 104 KB of shared memory a block at head size 128.
 */
__device__ __forceinline__ void cp16(void *sh, const void *g, bool ok)
{
    uint32_t a = (uint32_t)__cvta_generic_to_shared(sh);
    int n = ok ? 16 : 0; /* 0: the 16 bytes are zero-filled, nothing read */
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(a), "l"(g), "r"(n));
}

__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N> __device__ __forceinline__ void cp_wait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/* rows [0, R) x HD bf16 from global (row stride ld) into sh (row stride
 * L) by 256 threads, asynchronously; rows at or past `valid` are zeros. */
template <int HD, int R> __device__ void cp_tile(bf16 *sh, int L, const bf16 *g, int ld, int valid)
{
    for (int i = threadIdx.x; i < R * HD / 8; i += 256) {
        int r = i / (HD / 8), c = (i % (HD / 8)) * 8;
        bool ok = r < valid;
        cp16(sh + r * L + c, ok ? g + (size_t)r * ld + c : g, ok);
    }
}

template <int HD> constexpr size_t mma2_smem() { return (size_t)(128 + 4 * 64) * mma_ld<HD>() * 2; }

template <int HD>
__global__ void __launch_bounds__(256)
    k_flash_mma2(const bf16 *Q, const bf16 *K, const bf16 *V, bf16 *O, int ldq, int ldk, int ldv,
                 int ldo, int S_q, int S_kv, int n_q, const int *kv_len, int nh, int nkv,
                 float scale, int causal)
{
    constexpr int L = mma_ld<HD>(), NT = HD / 8, KQ = HD / 16;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *sQ = reinterpret_cast<bf16 *>(smem), *sKV = sQ + 128 * L; /* stage st: K, then V */
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int q0 = blockIdx.x * 128, h = blockIdx.y, b = blockIdx.z, hk = h / (nh / nkv);
    int nkeys = min(kv_len[b], S_kv), kend = nkeys;
    if (causal && q0 + 128 < kend) kend = q0 + 128; /* keys past the block's queries */
    int ntiles = (kend + 63) / 64;
    const bf16 *gk = K + (size_t)b * S_kv * ldk + (size_t)hk * HD;
    const bf16 *gv = V + (size_t)b * S_kv * ldv + (size_t)hk * HD;
    cp_tile<HD, 128>(sQ, L, Q + ((size_t)b * S_q + q0) * ldq + (size_t)h * HD, ldq, n_q - q0);
    if (ntiles > 0) {
        cp_tile<HD, 64>(sKV, L, gk, ldk, nkeys);
        cp_tile<HD, 64>(sKV + 64 * L, L, gv, ldv, nkeys);
    }
    cp_commit();
    float o[NT][4];
#pragma unroll
    for (int n = 0; n < NT; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0;
    uint32_t qf[KQ][4];
    int qa = q0 + warp * 16 + lane / 4;
    mma_stats st = {-INFINITY, -INFINITY, 0, 0};
    const float sl2 = scale * 1.4426950408889634f;
    for (int it = 0; it < ntiles; it++) {
        int k0 = it * 64;
        if (it + 1 < ntiles) { /* the next tile into the other stage */
            bf16 *nk = sKV + ((it + 1) & 1) * 128 * L;
            cp_tile<HD, 64>(nk, L, gk + (size_t)(k0 + 64) * ldk, ldk, nkeys - k0 - 64);
            cp_tile<HD, 64>(nk + 64 * L, L, gv + (size_t)(k0 + 64) * ldv, ldv, nkeys - k0 - 64);
        }
        cp_commit(); /* an empty group on the last tile keeps the count */
        cp_wait<1>(); /* every group but the newest: this tile (and Q) landed */
        __syncthreads();
        if (it == 0)
#pragma unroll
            for (int kq = 0; kq < KQ; kq++) mma_q_frag<HD>(qf[kq], sQ + warp * 16 * L, kq * 16, lane);
        const bf16 *sK = sKV + (it & 1) * 128 * L;
        float s[8][4];
#pragma unroll
        for (int j = 0; j < 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0;
#pragma unroll
        for (int kq = 0; kq < KQ; kq++) mma_scores_kk<HD>(s, qf[kq], sK, kq * 16, lane);
        mma_tile<HD>(o, s, sK + 64 * L, k0, nkeys, causal, qa, sl2, st, lane);
        __syncthreads(); /* this stage is refilled by the next iteration's copy */
    }
    cp_wait<0>();
    mma_store<HD>(O + (size_t)b * S_q * ldo + (size_t)h * HD, ldo, o, st, qa, n_q, lane);
}



/* ----------------------------------------------------------- launching */

/* Every kernel's signature, and how one is launched. */
typedef void (*attn_kernel)(const bf16 *, const bf16 *, const bf16 *, bf16 *, int, int, int, int,
                            int, int, int, const int *, int, int, float, int);
struct kernel_shape {
    attn_kernel fn;
    int bq, threads; /* queries and threads a block */
    size_t smem;     /* dynamic shared memory a block */
};

template <int HD> kernel_shape shape_of(int impl)
{
    if (impl == ZC_ATTN_WMMA) return {k_flash<HD>, FA_BQ, FA_WARPS * 32, fa_smem<HD>()};
    if (impl == ZC_ATTN_MMA2) return {k_flash_mma2<HD>, 128, 256, mma2_smem<HD>()};
    return {k_flash_mma<HD>, 64, 128, mma_smem<HD>()};
}

/* Raises every kernel's shared-memory limit to what it takes. Only the
 * chosen kernel must get it: a GPU with less shared memory per block than
 * an unused kernel wants (sm_86/89: 99 KB) still runs the chosen one (a
 * launch of the other fails, which its bench reports). */
template <int HD> int init_all()
{
    int need = g_impl == ZC_ATTN_CUDNN ? ZC_ATTN_MMA : g_impl; /* cudnn falls back to mma */
    for (int i = 0; i < ZC_ATTN_COUNT; i++) {
        if (i == ZC_ATTN_CUDNN) continue; /* not a kernel of ours */
        kernel_shape k = shape_of<HD>(i);
        int e = (int)cudaFuncSetAttribute(k.fn, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          (int)k.smem);
        if (e && i == need) return e;
        if (e) (void)cudaGetLastError();
    }
    return 0;
}

template <int HD> void launch(zc_stream s, const zc_attn *a, int impl)
{
    kernel_shape k = shape_of<HD>(impl);
    dim3 grid((unsigned)((a->n_q + k.bq - 1) / k.bq), (unsigned)a->n_heads, (unsigned)a->n_items);
    k.fn<<<grid, k.threads, k.smem, s>>>(
        (const bf16 *)a->q, (const bf16 *)a->k, (const bf16 *)a->v, (bf16 *)a->o, a->ldq, a->ldk,
        a->ldv, a->ldo, a->S_q, a->S_kv, a->n_q, a->kv_len, a->n_heads, a->n_kv_heads, a->scale,
        a->causal);
}

const char *const k_names[ZC_ATTN_COUNT] = {"mma", "wmma", "mma2", "cudnn"};

} // namespace

extern "C" {

int zc_attn_init(void)
{
    const char *v = getenv("PX_ZIMAGE_CUDA_ATTN");
    g_impl = ZC_ATTN_CUDNN; /* the DiT's calls; anything else (and all, should cuDNN fail) mma */
    for (int i = 0; v && i < ZC_ATTN_COUNT; i++)
        if (!strcmp(v, k_names[i])) g_impl = i;
    int e;
    if ((e = init_all<16>()) || (e = init_all<32>()) || (e = init_all<64>()) ||
        (e = init_all<128>()))
        return e;
    return 0;
}

const char *zc_attn_impl_name(int impl)
{
    return impl >= 0 && impl < ZC_ATTN_COUNT ? k_names[impl] : "?";
}

const char *zc_attn_name(void) { return zc_attn_impl_name(g_impl); }

int zc_attention_with(zc_stream s, const zc_attn *a, int impl)
{
    if (a->n_q <= 0 || a->n_items <= 0) return 0;
    if (a->n_kv_heads <= 0 || a->n_heads % a->n_kv_heads) return (int)cudaErrorInvalidValue;
    if (a->fp8) /* cuDNN's or none: the caller runs the bf16 attention instead */
        return impl == ZC_ATTN_CUDNN && !zattn_cudnn(s, a) ? 0 : (int)cudaErrorNotSupported;
    if (impl == ZC_ATTN_CUDNN) {
        /* Any nonzero result (out of scope, off, failed: zattn_cudnn.h)
         * leaves nothing to keep in a->o: mma computes the call. */
        if (!zattn_cudnn(s, a)) return 0;
        impl = ZC_ATTN_MMA;
    }
    switch (a->head_dim) {
    case 16: launch<16>(s, a, impl); break;
    case 32: launch<32>(s, a, impl); break;
    case 64: launch<64>(s, a, impl); break;
    case 128: launch<128>(s, a, impl); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

int zc_attention(zc_stream s, const zc_attn *a) { return zc_attention_with(s, a, g_impl); }

} // extern "C"
