/*
 * fft2.cu — the Fourier unit's 2-D real transforms, a plane per block (see
 * fft2.h).
 *
 * A block holds one plane's spectrum, h rows of w/2 + 1 bins (an odd
 * count: a column's bins fall in different banks), in shared memory. Rows
 * go two at a time as one complex transform (row 2j real, row 2j + 1
 * imaginary), split into their two half spectra after it (or, inverse,
 * joined before it); columns are complex transforms of length h. Each 1-D
 * transform of length n = r1 * r2 is two steps of small DFTs held in
 * registers (Cooley-Tukey, natural order in and out): r1 DFTs of length r2
 * over the strided elements, times the twiddles, then r2 DFTs of length r1
 * over contiguous ones. Twiddles come from a table of the n roots made
 * with sincospif (exact at the quarter turns), as accurate as cuFFT's.
 */
#include "engine/lama/cuda/fft2.h"

#ifndef PX_FFT2_EMULATE /* tests/host/fft2_host_check.cpp runs the kernels on threads */
#include <cuda_runtime.h>
#endif

namespace
{

const int THREADS = 256;

__device__ __forceinline__ float2 cmul(float2 a, float2 b)
{
    return make_float2(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

__device__ __forceinline__ float2 conj2(float2 a)
{
    return make_float2(a.x, -a.y);
}

__host__ __device__ constexpr int log2c(int n)
{
    return n <= 1 ? 0 : 1 + log2c(n / 2);
}

__host__ __device__ constexpr int brev(int i, int bits)
{
    int r = 0;
    for (int b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
    return r;
}

/* The root W_n^m of the block's table tw (W_n^m = e^{-2 pi i m / n}),
 * conjugated for the inverse. */
template <bool INV> __device__ __forceinline__ float2 root(const float2 *tw, int m)
{
    float2 w = tw[m];
    return INV ? conj2(w) : w;
}

/* In-place DFT of length R in registers (radix 2, decimation in
 * frequency): natural order in, bin brev(r) out in a[r] (the callers
 * store by that index: a register array's index must be a constant); tw
 * is the table of a length R * TS transform (W_R^m = tw[m * TS]). */
template <int R, int TS, bool INV, int LEN = R>
__device__ __forceinline__ void dft(float2 *a, const float2 *tw)
{
    /* One stage per instantiation: as a loop, nvcc left the 16-point
     * transform's first stage rolled and a[] in local memory. */
#pragma unroll
    for (int i = 0; i < R; i += LEN) {
#pragma unroll
        for (int j = 0; j < LEN / 2; j++) {
            float2 u = a[i + j], v = a[i + j + LEN / 2];
            float2 d = make_float2(u.x - v.x, u.y - v.y);
            a[i + j] = make_float2(u.x + v.x, u.y + v.y);
            a[i + j + LEN / 2] = j ? cmul(d, root<INV>(tw, j * (R / LEN) * TS)) : d;
        }
    }
    if constexpr (LEN > 2) dft<R, TS, INV, LEN / 2>(a, tw);
}

/*
 * COUNT transforms of length N on buf, transform t's element e at
 * buf[t * ts + e * es], in place. Index n = n1 + R1 n2, bin k = k2 + R2 k1:
 * step 1, per n1, the DFT over n2 times W_N^(n1 k2), stored at n1 + R1 k2
 * (where n2 = k2 was); step 2, per k2, the DFT over n1 (contiguous),
 * stored at k2 + R2 k1 once every thread of the round has read. Ends
 * synchronised.
 */
template <int N, int COUNT, bool INV>
__device__ __forceinline__ void fft_many(float2 *buf, int ts, int es, const float2 *tw)
{
    constexpr int R2 = N >= 64 ? 8 : 4, R1 = N / R2;
    for (int task = threadIdx.x; task < COUNT * R1; task += THREADS) {
        int t = task / R1, n1 = task % R1;
        float2 *x = buf + t * ts, a[R2];
#pragma unroll
        for (int n2 = 0; n2 < R2; n2++) a[n2] = x[(n1 + R1 * n2) * es];
        dft<R2, N / R2, INV>(a, tw);
#pragma unroll
        for (int r = 0; r < R2; r++) {
            int k2 = brev(r, log2c(R2));
            x[(n1 + R1 * k2) * es] = k2 && n1 ? cmul(a[r], root<INV>(tw, n1 * k2)) : a[r];
        }
    }
    __syncthreads();
    /* Rounds of THREADS tasks hold whole transforms (THREADS % R2 == 0),
     * so each round reads before any of its transforms is written. */
    constexpr int T2 = COUNT * R2, ROUNDS = (T2 + THREADS - 1) / THREADS;
    static_assert(THREADS % R2 == 0, "a round splits a transform");
    for (int m = 0; m < ROUNDS; m++) {
        int task = threadIdx.x + m * THREADS, k2 = task % R2;
        float2 *x = buf + (task / R2) * ts, b[R1];
        if (task < T2) {
#pragma unroll
            for (int n1 = 0; n1 < R1; n1++) b[n1] = x[(n1 + R1 * k2) * es];
            dft<R1, N / R1, INV>(b, tw);
        }
        __syncthreads();
        if (task < T2) {
#pragma unroll
            for (int r = 0; r < R1; r++) x[(k2 + R2 * brev(r, log2c(R1))) * es] = b[r];
        }
        __syncthreads();
    }
}

/* The tables of W_w and W_h roots, after the plane's H * WF bins. */
template <int H, int W> __device__ __forceinline__ void make_tables(float2 *tww, float2 *twh)
{
    for (int i = threadIdx.x; i < W + H; i += THREADS) {
        int n = i < W ? W : H, m = i < W ? i : i - W;
        float s, c;
        sincospif(-2.0f * (float)m / (float)n, &s, &c);
        (i < W ? tww : twh)[m] = make_float2(c, s);
    }
}

/* The block's shared memory: the plane's H * WF bins, then the tables
 * (made here). */
template <int H, int W>
__device__ __forceinline__ float2 *plane_smem(float2 *sm, const float2 **tww, const float2 **twh)
{
    float2 *w = sm + H * (W / 2 + 1), *h = w + W;
    make_tables<H, W>(w, h);
    *tww = w, *twh = h;
    return sm;
}

template <int H, int W> constexpr size_t smem_bytes()
{
    return (size_t)(H * (W / 2 + 1) + W + H) * sizeof(float2);
}

template <int H, int W>
__global__ void __launch_bounds__(THREADS) rfft2_k(const float *in, float2 *out)
{
    constexpr int WF = W / 2 + 1, NS = H / 2 * WF, MS = (NS + THREADS - 1) / THREADS;
    extern __shared__ float2 sm[];
    const float2 *tww, *twh;
    float2 *buf = plane_smem<H, W>(sm, &tww, &twh);
    const float *src = in + (size_t)blockIdx.x * H * W;
    /* Row pair j (rows 2j and 2j + 1, 2 WF slots) holds their joint row. */
    for (int i = threadIdx.x; i < H / 2 * W; i += THREADS) {
        int j = i / W, x = i % W;
        buf[j * 2 * WF + x] = make_float2(src[2 * j * W + x], src[(2 * j + 1) * W + x]);
    }
    __syncthreads();
    fft_many<W, H / 2, false>(buf, 2 * WF, 1, tww);
    /* Split Z = A + iB: A[k] = (Z[k] + conj Z[-k]) / 2, B[k] = (Z[k] -
     * conj Z[-k]) / 2i, for k = 0 .. w/2; read all, then write. */
    float2 ra[MS], rb[MS];
#pragma unroll
    for (int m = 0; m < MS; m++) {
        int i = threadIdx.x + m * THREADS;
        if (i < NS) {
            int j = i / WF, k = i % WF;
            float2 z = buf[j * 2 * WF + k], zm = buf[j * 2 * WF + (W - k) % W];
            ra[m] = make_float2(0.5f * (z.x + zm.x), 0.5f * (z.y - zm.y));
            rb[m] = make_float2(0.5f * (z.y + zm.y), 0.5f * (zm.x - z.x));
        }
    }
    __syncthreads();
#pragma unroll
    for (int m = 0; m < MS; m++) {
        int i = threadIdx.x + m * THREADS;
        if (i < NS) {
            int j = i / WF, k = i % WF;
            buf[2 * j * WF + k] = ra[m];
            buf[(2 * j + 1) * WF + k] = rb[m];
        }
    }
    __syncthreads();
    fft_many<H, WF, false>(buf, 1, WF, twh);
    float2 *dst = out + (size_t)blockIdx.x * H * WF;
    for (int i = threadIdx.x; i < H * WF; i += THREADS) dst[i] = buf[i];
}

template <int H, int W>
__global__ void __launch_bounds__(THREADS) irfft2_k(const float2 *in, float *out)
{
    constexpr int WF = W / 2 + 1, NJ = H / 2 * W, MJ = (NJ + THREADS - 1) / THREADS;
    extern __shared__ float2 sm[];
    const float2 *tww, *twh;
    float2 *buf = plane_smem<H, W>(sm, &tww, &twh);
    for (int i = threadIdx.x; i < H * WF; i += THREADS)
        buf[i] = in[(size_t)blockIdx.x * H * WF + i];
    __syncthreads();
    fft_many<H, WF, true>(buf, 1, WF, twh);
    /* Join rows 2j and 2j + 1 as Z = A + iB over all w bins (A[-k] = conj
     * A[k]), the imaginary parts of bins 0 and w/2 dropped as a C2R does;
     * read all, then write. */
    float2 rz[MJ];
#pragma unroll
    for (int m = 0; m < MJ; m++) {
        int i = threadIdx.x + m * THREADS;
        if (i < NJ) {
            int j = i / W, k = i % W, kk = k <= W / 2 ? k : W - k;
            float2 a = buf[2 * j * WF + kk], b = buf[(2 * j + 1) * WF + kk];
            if (kk == 0 || kk == W / 2) a.y = b.y = 0.0f;
            if (k != kk) a = conj2(a), b = conj2(b);
            rz[m] = make_float2(a.x - b.y, a.y + b.x);
        }
    }
    __syncthreads();
#pragma unroll
    for (int m = 0; m < MJ; m++) {
        int i = threadIdx.x + m * THREADS;
        if (i < NJ) buf[i / W * 2 * WF + i % W] = rz[m];
    }
    __syncthreads();
    fft_many<W, H / 2, true>(buf, 2 * WF, 1, tww);
    float *dst = out + (size_t)blockIdx.x * H * W;
    for (int i = threadIdx.x; i < H / 2 * W; i += THREADS) {
        int j = i / W, x = i % W;
        float2 z = buf[j * 2 * WF + x];
        dst[2 * j * W + x] = z.x;
        dst[(2 * j + 1) * W + x] = z.y;
    }
}

#ifdef PX_FFT2_EMULATE
} // namespace
#else
template <int H, int W> int init_one()
{
    int e = (int)cudaFuncSetAttribute(rfft2_k<H, W>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      (int)smem_bytes<H, W>());
    if (!e)
        e = (int)cudaFuncSetAttribute(irfft2_k<H, W>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      (int)smem_bytes<H, W>());
    return e;
}

template <int H> int init_row()
{
    int e = init_one<H, 32>();
    if (!e) e = init_one<H, 64>();
    if (!e) e = init_one<H, 128>();
    return e;
}

/* One launch's arguments. */
struct launch_args {
    cudaStream_t s;
    const float *in;
    float *out;
    int planes, inverse;
};

template <int H, int W> int launch(const launch_args &a)
{
    size_t sm = smem_bytes<H, W>();
    if (!a.inverse)
        rfft2_k<H, W><<<a.planes, THREADS, sm, a.s>>>(a.in, reinterpret_cast<float2 *>(a.out));
    else
        irfft2_k<H, W>
            <<<a.planes, THREADS, sm, a.s>>>(reinterpret_cast<const float2 *>(a.in), a.out);
    return (int)cudaGetLastError();
}

template <int H> int launch_w(const launch_args &a, int w)
{
    return w == 32 ? launch<H, 32>(a) : w == 64 ? launch<H, 64>(a) : launch<H, 128>(a);
}

bool side_ok(int n)
{
    return n == 32 || n == 64 || n == 128;
}

int run(const launch_args &a, int h, int w)
{
    if (!side_ok(h) || !side_ok(w)) return (int)cudaErrorInvalidValue;
    return h == 32 ? launch_w<32>(a, w) : h == 64 ? launch_w<64>(a, w) : launch_w<128>(a, w);
}

} // namespace

extern "C" int px_cu_fft2_fits(int h, int w)
{
    return side_ok(h) && side_ok(w);
}

extern "C" int px_cu_fft2_init(void)
{
    int e = init_row<32>();
    if (!e) e = init_row<64>();
    if (!e) e = init_row<128>();
    return e;
}

extern "C" int px_cu_rfft2(px_cu_stream s, const float *in, int planes, int h, int w, float *out)
{
    return run(launch_args{(cudaStream_t)s, in, out, planes, 0}, h, w);
}

extern "C" int px_cu_irfft2(px_cu_stream s, const float *in, int planes, int h, int w, float *out)
{
    return run(launch_args{(cudaStream_t)s, in, out, planes, 1}, h, w);
}
#endif
