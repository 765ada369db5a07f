/*
 * zhgemm.cu — zhgemm.h's kernel: TMA + wgmma, the PTX of the "Asynchronous
 * Warpgroup Level Matrix Multiply-Accumulate" and "cp.async.bulk.tensor"
 * sections of the PTX ISA. wgmma exists only in the sm_90a target: the
 * Makefile builds this file for sm_90a and sm_80 alone (no plain sm_90
 * code a Hopper GPU could pick instead); the sm_80 kernel body traps, and
 * zc_hgemm_available keeps it from being launched.
 *
 * Checked against cuBLASLt by bench/zgemm_cuda_bench.c check (scripts/
 * test_gpu runs it). Its first version (one tile a block, register
 * stores) passed on an H100 on 2026-12-07; this one (persistent, TMA
 * stores, the addend) has not yet run on a GPU.
 *
 * Shared memory per stage: the A tile (128 × 64 bf16, 16 KB) and the B tile
 * (256 × 64, 32 KB), each row 128 bytes in TMA's 128-byte swizzle, which is
 * the layout wgmma's "K-major, 128B swizzle" descriptor reads: rows in
 * groups of 8 at 1,024 bytes (the descriptor's stride offset), the 16-byte
 * chunks of row r at chunk ^ (r % 8). A k16 slice of a tile starts 32 bytes
 * further in its row, which is 2 in the descriptor's address field.
 *
 * Barriers: full[s] completes when TMA has written stage s's bytes (one
 * arrival with the expected byte count, then the transactions); empty[s]
 * when each of the 8 consumer warps is done reading it.
 */
#include "engine/zimage/cuda/zhgemm.h"

#include "engine/zimage/cuda/zkernels.h"

#include <cuda.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <string.h>

#define HG_BM          128
#define HG_BN          256
#define HG_BK          64
#define HG_A_BYTES     (HG_BM * HG_BK * 2)
#define HG_B_BYTES     (HG_BN * HG_BK * 2)
#define HG_STAGE_BYTES (HG_A_BYTES + HG_B_BYTES)
#define HG_THREADS     384

/* A kernel variant: SwiGLU or not, the output through shared memory and TMA
 * stores (TS) or straight from the registers (needs no 16-byte rows). The
 * staged output takes shared memory from the pipeline: 64 KB for a plain
 * tile (3 stages left), 32 KB for a SwiGLU one (4 stages). */
template <bool GLU, bool TS> struct hg_cfg {
    static constexpr int ncol = GLU ? HG_BN / 2 : HG_BN; /* output columns a tile */
    static constexpr int stages = TS && !GLU ? 3 : 4;
    static constexpr int c_bytes = TS ? HG_BM * ncol * 2 : 0;
    /* + 1,024 to align the tiles (the swizzle's period) + the barriers */
    static constexpr int smem = stages * HG_STAGE_BYTES + c_bytes + 1024 + 2 * stages * 8;
};

struct hg_params {
    int M, N, K, ldy, glu_off, m_tiles, tiles, ld_add;
    __nv_bfloat16 *y;
    const __nv_bfloat16 *add;
};

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define HG_SM90A 1

static __device__ __forceinline__ uint32_t smem_u32(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

static __device__ __forceinline__ void mbar_init(uint64_t *b, unsigned count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(b)), "r"(count));
}

static __device__ __forceinline__ void mbar_expect_tx(uint64_t *b, unsigned bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(b)),
                 "r"(bytes)
                 : "memory");
}

static __device__ __forceinline__ void mbar_arrive(uint64_t *b)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(b)) : "memory");
}

static __device__ __forceinline__ void mbar_wait(uint64_t *b, unsigned parity)
{
    asm volatile("{\n"
                 ".reg .pred p;\n"
                 "WAIT_%=:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
                 "@!p bra WAIT_%=;\n"
                 "}\n" ::"r"(smem_u32(b)),
                 "r"(parity)
                 : "memory");
}

/* A 2-D box of the tensor map at (c0 = the column, c1 = the row). */
static __device__ __forceinline__ void tma_load(void *dst, const CUtensorMap *map, int c0, int c1,
                                                uint64_t *bar)
{
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(smem_u32(dst)),
                 "l"((uint64_t)map), "r"(c0), "r"(c1), "r"(smem_u32(bar))
                 : "memory");
}

static __device__ __forceinline__ void tma_store(const CUtensorMap *map, int c0, int c1,
                                                 const void *src)
{
    asm volatile(
        "cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];\n" ::"l"(
            (uint64_t)map),
        "r"(c0), "r"(c1), "r"(smem_u32(src))
        : "memory");
}

/* wgmma's shared-memory descriptor: K-major, 128-byte swizzle, groups of 8
 * rows 1,024 bytes apart; the leading offset is unused in this mode. */
static __device__ __forceinline__ uint64_t desc_of(const void *p)
{
    uint64_t d = (uint64_t)((smem_u32(p) & 0x3FFFF) >> 4);
    d |= (uint64_t)1 << 16;
    d |= (uint64_t)(1024 >> 4) << 32;
    d |= (uint64_t)1 << 62;
    return d;
}

/* d[64 × 256 fragment] += A(64 × 16) · B(256 × 16)ᵀ */
static __device__ __forceinline__ void wgmma_256(float *d, uint64_t da, uint64_t db)
{
#define F8(i)                                                                                      \
    "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]),    \
        "+f"(d[i + 6]), "+f"(d[i + 7])
    asm volatile(
        "{\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
        "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
        "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
        "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, "
        "%111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, "
        "%125, %126, %127}, %128, %129, 1, 1, 1, 0, 0;\n"
        "}\n"
        : F8(0), F8(8), F8(16), F8(24), F8(32), F8(40), F8(48), F8(56), F8(64), F8(72), F8(80),
          F8(88), F8(96), F8(104), F8(112), F8(120)
        : "l"(da), "l"(db));
#undef F8
}

static __device__ __forceinline__ void wgmma_fence(void)
{
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}

static __device__ __forceinline__ void wgmma_commit(void)
{
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

template <int N> static __device__ __forceinline__ void wgmma_wait(void)
{
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

/* The 128 threads of consumer warpgroup cw (barrier 0 is __syncthreads'). */
static __device__ __forceinline__ void wg_sync(int cw)
{
    asm volatile("bar.sync %0, 128;\n" ::"r"(1 + cw) : "memory");
}

/* The producer thread: every tile's K tiles, each into its stage once the
 * consumers freed it; `it` counts stage fills across tiles (stage it % S,
 * round it / S), as the consumers do. */
template <bool GLU, bool TS>
static __device__ void produce(unsigned char *sm, uint64_t *full, uint64_t *empty,
                               const CUtensorMap *ta, const CUtensorMap *tb, const hg_params &p)
{
    constexpr int S = hg_cfg<GLU, TS>::stages, NC = hg_cfg<GLU, TS>::ncol;
    int kt_n = (p.K + HG_BK - 1) / HG_BK, it = 0;
    for (int t = blockIdx.x; t < p.tiles; t += gridDim.x) {
        int m0 = (t % p.m_tiles) * HG_BM, n0 = (t / p.m_tiles) * NC;
        for (int kt = 0; kt < kt_n; kt++, it++) {
            int s = it % S, r = it / S;
            if (r > 0) mbar_wait(&empty[s], (r - 1) & 1);
            unsigned char *a = sm + s * HG_STAGE_BYTES, *b = a + HG_A_BYTES;
            mbar_expect_tx(&full[s], HG_STAGE_BYTES);
            tma_load(a, ta, kt * HG_BK, m0, &full[s]);
            tma_load(b, tb, kt * HG_BK, n0, &full[s]);
            if (GLU) tma_load(b + HG_B_BYTES / 2, tb, kt * HG_BK, p.glu_off + n0, &full[s]);
        }
    }
}

/* One consumer warpgroup's 64 rows of a tile: the main loop, one wgmma group
 * in flight while the next stage's wait runs; each stage freed (one
 * arrival a warp) once the group that read it is done. */
template <int S>
static __device__ void consume(float *d, unsigned char *sm, uint64_t *full, uint64_t *empty, int cw,
                               int K, int &it)
{
    int kt_n = (K + HG_BK - 1) / HG_BK, lane = threadIdx.x % 32;
#pragma unroll
    for (int i = 0; i < 128; i++) d[i] = 0.f;
    for (int kt = 0; kt < kt_n; kt++, it++) {
        int s = it % S;
        mbar_wait(&full[s], (it / S) & 1);
        unsigned char *a = sm + s * HG_STAGE_BYTES, *b = a + HG_A_BYTES;
        uint64_t da = desc_of(a + cw * 64 * 128), db = desc_of(b);
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < HG_BK / 16; k++) wgmma_256(d, da + 2 * k, db + 2 * k);
        wgmma_commit();
        wgmma_wait<1>();
        if (kt > 0) {
            __syncwarp();
            if (lane == 0) mbar_arrive(&empty[(it - 1) % S]);
        }
    }
    wgmma_wait<0>();
    __syncwarp();
    if (lane == 0) mbar_arrive(&empty[(it - 1) % S]);
}

/* Output pair (columns col, col + 1 of y, at `row`) from fragment pair i,
 * h: SwiGLU's gate is tile column c, its up column c + 128; p.add's values
 * (the LoRAs' deltas) join the accumulators before SwiGLU. */
template <bool GLU>
static __device__ __forceinline__ __nv_bfloat162 out_pair(const float *d, int i, int h,
                                                          const hg_params &p, int row, int col)
{
    float v0 = d[4 * i + 2 * h], v1 = d[4 * i + 2 * h + 1];
    const float *u = d + 4 * (i + HG_BN / 16) + 2 * h;
    float u0 = GLU ? u[0] : 0.f, u1 = GLU ? u[1] : 0.f;
    if (p.add && row < p.M && col < p.N) {
        const __nv_bfloat16 *a = p.add + (size_t)row * p.ld_add + col;
        float2 g = __bfloat1622float2(*(const __nv_bfloat162 *)a);
        v0 += g.x, v1 += g.y;
        if (GLU) {
            float2 up = __bfloat1622float2(*(const __nv_bfloat162 *)(a + p.glu_off));
            u0 += up.x, u1 += up.y;
        }
    }
    if (GLU) {
        v0 = zc_swiglu1(v0, u0);
        v1 = zc_swiglu1(v1, u1);
    }
    return __floats2bfloat162_rn(v0, v1);
}

/* Fragment (m64nNk16, fp32): register 4i + 2h + j of lane l in warp w holds
 * row 16w + l/4 + 8h, column 8i + 2(l%4) + j. Straight to global memory. */
template <bool GLU>
static __device__ void store_direct(const float *d, const hg_params &p, int m0, int n0, int cw)
{
    constexpr int NC = GLU ? HG_BN / 2 : HG_BN;
    int w = (threadIdx.x % 128) / 32, l = threadIdx.x % 32;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        int row = m0 + cw * 64 + 16 * w + l / 4 + 8 * h;
        if (row >= p.M) continue;
        __nv_bfloat16 *yr = p.y + (size_t)row * p.ldy;
#pragma unroll
        for (int i = 0; i < NC / 8; i++) {
            int c = 8 * i + 2 * (l % 4);
            if (n0 + c < p.N)
                *(__nv_bfloat162 *)(yr + n0 + c) = out_pair<GLU>(d, i, h, p, row, n0 + c);
        }
    }
}

/* Through shared memory: the warpgroup's 64 rows as boxes of 64 columns in
 * TMA's 128-byte swizzle (row r's 16-byte chunk j at j ^ (r % 8): the 8 rows
 * a store instruction touches land in 8 different chunks, no bank
 * conflicts), then TMA stores, which skip what lies past M and N. The
 * stores run on while the next tile's main loop does; the buffer is
 * reused only once the last ones have read it. */
template <bool GLU>
static __device__ void store_tma(const float *d, unsigned char *cs, const CUtensorMap *tc,
                                 const hg_params &p, int m0, int n0, int cw)
{
    constexpr int NC = GLU ? HG_BN / 2 : HG_BN;
    int t = threadIdx.x % 128, w = t / 32, l = t % 32;
    if (t == 0) asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
    wg_sync(cw);
#pragma unroll
    for (int h = 0; h < 2; h++) {
        int r = 16 * w + l / 4 + 8 * h;
#pragma unroll
        for (int i = 0; i < NC / 8; i++) {
            unsigned char *box = cs + (i / 8) * (64 * 128);
            int chunk = (i % 8) ^ (r % 8);
            *(__nv_bfloat162 *)(box + r * 128 + chunk * 16 + 4 * (l % 4)) =
                out_pair<GLU>(d, i, h, p, m0 + 64 * cw + r, n0 + 8 * i + 2 * (l % 4));
        }
    }
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    wg_sync(cw);
    if (t == 0) {
        for (int b = 0; b < NC / 64; b++) tma_store(tc, n0 + 64 * b, m0 + 64 * cw, cs + b * 8192);
        asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
    }
}
#endif

/* Persistent: one block per SM (grid = min(tiles, SMs)) walks tiles
 * blockIdx.x, + gridDim.x, ... in M-fastest order, so that the blocks
 * running at once share their weight tiles in L2, and the producer fills
 * the next tile's stages while the consumers store the last one. */
template <bool GLU, bool TS>
__global__ void __launch_bounds__(HG_THREADS, 1)
    hg_kernel(const __grid_constant__ CUtensorMap ta, const __grid_constant__ CUtensorMap tb,
              const __grid_constant__ CUtensorMap tc, hg_params p)
{
#ifdef HG_SM90A
    typedef hg_cfg<GLU, TS> C;
    extern __shared__ unsigned char hg_smem[];
    unsigned char *sm = (unsigned char *)(((uintptr_t)hg_smem + 1023) & ~(uintptr_t)1023);
    unsigned char *cbuf = sm + C::stages * HG_STAGE_BYTES;
    uint64_t *full = (uint64_t *)(cbuf + C::c_bytes), *empty = full + C::stages;
    int wg = threadIdx.x / 128;
    if (threadIdx.x == 0) {
        for (int s = 0; s < C::stages; s++) {
            mbar_init(&full[s], 1);
            mbar_init(&empty[s], 8);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    if (wg == 0) {
        if (threadIdx.x == 0) produce<GLU, TS>(sm, full, empty, &ta, &tb, p);
        return;
    }
    int cw = wg - 1, it = 0;
    float d[128];
    for (int t = blockIdx.x; t < p.tiles; t += gridDim.x) {
        int m0 = (t % p.m_tiles) * HG_BM, n0 = (t / p.m_tiles) * C::ncol;
        consume<C::stages>(d, sm, full, empty, cw, p.K, it);
        if (TS)
            store_tma<GLU>(d, cbuf + cw * (C::c_bytes / 2), &tc, p, m0, n0, cw);
        else
            store_direct<GLU>(d, p, m0, n0, cw);
    }
    if (TS && threadIdx.x % 128 == 0) asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
#else
    __trap();
#endif
}

/* ------------------------------------------------------------------ host */

typedef CUresult (*encode_fn)(CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *,
                              const cuuint64_t *, const cuuint64_t *, const cuuint32_t *,
                              const cuuint32_t *, CUtensorMapInterleave, CUtensorMapSwizzle,
                              CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

/* The driver's cuTensorMapEncodeTiled, without linking libcuda. */
static encode_fn encoder(void)
{
    static encode_fn fn;
    static int tried;
    if (!tried) {
        cudaDriverEntryPointQueryResult q;
        void *f = NULL;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault,
                                             &q) == cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            fn = (encode_fn)f;
        tried = 1;
    }
    return fn;
}

/* A row-major bf16 matrix of `rows` × `cols` (row stride ld) in boxes of
 * box_rows × 64, 128-byte swizzled; zeros past its edges (a store skips
 * them). */
static int tensor_map(CUtensorMap *m, const void *base, int rows, int cols, int ld, int box_rows)
{
    cuuint64_t dim[2] = {(cuuint64_t)cols, (cuuint64_t)rows};
    cuuint64_t stride[1] = {(cuuint64_t)ld * 2};
    cuuint32_t box[2] = {HG_BK, (cuuint32_t)box_rows}, es[2] = {1, 1};
    CUresult r = encoder()(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, (void *)base, dim, stride, box,
                           es, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                           CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    return r == CUDA_SUCCESS ? 0 : (int)cudaErrorInvalidValue;
}

template <bool GLU, bool TS> static int raise_one(void)
{
    return cudaFuncSetAttribute(hg_kernel<GLU, TS>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                hg_cfg<GLU, TS>::smem) == cudaSuccess;
}

/* The variants' dynamic shared memory above the default 48 KB: once. */
static int raise_smem(void)
{
    static int done;
    if (!done)
        done = raise_one<false, false>() && raise_one<false, true>() && raise_one<true, false>() &&
               raise_one<true, true>();
    return done;
}

#define HG_MAX_DEV 64
static int sm_count[HG_MAX_DEV]; /* per device, from zc_hgemm_available */

extern "C" int zc_hgemm_available(int dev)
{
    cudaDeviceProp pr;
    if (dev < 0 || dev >= HG_MAX_DEV || cudaGetDeviceProperties(&pr, dev) != cudaSuccess) return 0;
    sm_count[dev] = pr.multiProcessorCount;
    return pr.major == 9 && encoder() != NULL && raise_smem();
}

extern "C" int zc_hgemm_fits(const zc_hgemm_args *a)
{
    int align = ((uintptr_t)a->x | (uintptr_t)a->w) % 16 == 0 && (uintptr_t)a->y % 4 == 0;
    int n_ok = a->N % 2 == 0 && (!a->glu || a->glu_off >= a->N);
    int add_ok = !a->add || ((uintptr_t)a->add % 4 == 0 && a->ld_add % 2 == 0 &&
                             a->ld_add >= (a->glu ? a->glu_off : 0) + a->N);
    return align && n_ok && add_ok && a->M > 0 && a->N > 0 && a->K > 0 && a->K % 8 == 0 && a->ldx % 8 == 0 &&
           a->ldx >= a->K && a->ldy % 2 == 0 && a->ldy >= a->N;
}

template <bool GLU, bool TS>
static void launch(cudaStream_t s, int grid, const CUtensorMap &ta, const CUtensorMap &tb,
                   const CUtensorMap &tc, const hg_params &p)
{
    hg_kernel<GLU, TS><<<grid, HG_THREADS, hg_cfg<GLU, TS>::smem, s>>>(ta, tb, tc, p);
}

extern "C" int zc_hgemm_run(cudaStream_t s, const zc_hgemm_args *a)
{
    int dev = 0;
    if (!encoder() || !zc_hgemm_fits(a) || cudaGetDevice(&dev) != cudaSuccess ||
        dev >= HG_MAX_DEV || !sm_count[dev] || !raise_smem())
        return (int)cudaErrorInvalidValue;
    /* TMA stores need 16-byte rows */
    bool ts = !a->direct_store && (uintptr_t)a->y % 16 == 0 && a->ldy % 8 == 0;
    int ncol = a->glu ? HG_BN / 2 : HG_BN, wrows = a->glu ? a->glu_off + a->N : a->N;
    CUtensorMap ta, tb, tc;
    memset(&tc, 0, sizeof tc);
    if (tensor_map(&ta, a->x, a->M, a->K, a->ldx, HG_BM) ||
        tensor_map(&tb, a->w, wrows, a->K, a->K, ncol) ||
        (ts && tensor_map(&tc, a->y, a->M, a->N, a->ldy, 64)))
        return (int)cudaErrorInvalidValue;
    int m_tiles = (a->M + HG_BM - 1) / HG_BM, tiles = m_tiles * ((a->N + ncol - 1) / ncol);
    int grid = tiles < sm_count[dev] ? tiles : sm_count[dev];
    hg_params p = {a->M,  a->N,      a->K,  a->ldy, a->glu_off, m_tiles,
                   tiles, a->ld_add, (__nv_bfloat16 *)a->y, (const __nv_bfloat16 *)a->add};
    if (a->glu)
        ts ? launch<true, true>(s, grid, ta, tb, tc, p)
           : launch<true, false>(s, grid, ta, tb, tc, p);
    else
        ts ? launch<false, true>(s, grid, ta, tb, tc, p)
           : launch<false, false>(s, grid, ta, tb, tc, p);
    return (int)cudaGetLastError();
}
