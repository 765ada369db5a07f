/*
 * fft2.cu — the Fourier unit's 2-D real transforms on NHWC tensors (see
 * fft2.h).
 *
 * Four kernels, two a direction. Forward: rows_fwd (a block per image
 * row and group of channel pairs: channels 2j and 2j + 1 go as the real
 * and imaginary parts of one complex row, transformed together and split
 * into their two half spectra after) writes the spectrum's rows; cols (a
 * block per spectrum column and group of channels) transforms them along
 * h in place. Inverse: cols along h in place, then rows_inv joins each
 * channel pair's half rows into one complex row (dropping the imaginary
 * parts of columns 0 and w/2 as a C2R does: the same as making those
 * columns Hermitian along h first), transforms it and writes the scaled
 * result plus the addend in the activation type.
 *
 * In shared memory a block's transforms are interleaved, element e of
 * lane (transform) l at buf[e * lanes + l], so the threads of a warp, which
 * take consecutive lanes, read consecutive words: no bank conflicts, and
 * the global reads and writes are whole channel runs. Each transform of
 * length n = r1 * r2 is two steps of small DFTs held in registers
 * (Cooley-Tukey, natural order in and out): r1 DFTs of length r2 over the
 * strided elements, times the twiddles, then r2 DFTs of length r1 over
 * contiguous ones. Twiddles come from a table of the n roots made with
 * sincospif (exact at the quarter turns), as accurate as cuFFT's.
 */
#include "engine/lama/cuda/fft2.h"

#ifndef PX_FFT2_EMULATE /* tests/host/fft2_host_check.cpp runs the kernels on threads */
#include "engine/lama/cuda/lama_dev.cuh"
#endif

namespace
{

const int THREADS = 256;
/* Channel pairs a row block takes, channels a column block takes (at
 * most: fewer where the channel count asks, see lanes_for). */
const int ROW_LANES = 16, COL_LANES = 32;

__device__ __forceinline__ float2 cmul(float2 a, float2 b)
{
    return make_float2(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

__device__ __forceinline__ float2 conj2(float2 a)
{
    return make_float2(a.x, -a.y);
}

/* Two neighbouring activations as floats, and back (i even). */
__device__ __forceinline__ float2 ld2(const float *p, size_t i)
{
    return *reinterpret_cast<const float2 *>(p + i);
}
__device__ __forceinline__ void st2(float *p, size_t i, float2 v)
{
    *reinterpret_cast<float2 *>(p + i) = v;
}
#ifndef PX_FFT2_EMULATE
__device__ __forceinline__ float2 ld2(const pxcu::f16_t *p, size_t i)
{
    return pxlama::pair_f2(*reinterpret_cast<const __half2 *>(p + i));
}
__device__ __forceinline__ float2 ld2(const pxcu::bf16_t *p, size_t i)
{
    return pxlama::pair_f2(*reinterpret_cast<const __nv_bfloat162 *>(p + i));
}
__device__ __forceinline__ void st2(pxcu::f16_t *p, size_t i, float2 v)
{
    *reinterpret_cast<__half2 *>(p + i) = __floats2half2_rn(v.x, v.y);
}
__device__ __forceinline__ void st2(pxcu::bf16_t *p, size_t i, float2 v)
{
    *reinterpret_cast<__nv_bfloat162 *>(p + i) = __floats2bfloat162_rn(v.x, v.y);
}
#endif

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

/* The table of the N roots W_N^m, made by the block. */
template <int N> __device__ __forceinline__ void make_table(float2 *tw)
{
    for (int m = threadIdx.x; m < N; m += THREADS) {
        float s, c;
        sincospif(-2.0f * (float)m / (float)N, &s, &c);
        tw[m] = make_float2(c, s);
    }
}

/* This thread's lane and first row in a loop over [rows][lanes] by the
 * whole block (lanes divides THREADS), and the rows' step. */
struct walk {
    int l, n0, dn;
};
__device__ __forceinline__ walk walk_of(int lanes)
{
    return walk{(int)threadIdx.x % lanes, (int)threadIdx.x / lanes, THREADS / lanes};
}

/*
 * `lanes` transforms of length N on buf (element e of lane l at buf[e *
 * lanes + l]), in place. Index n = n1 + R1 n2, bin k = k2 + R2 k1: step 1,
 * per n1, the DFT over n2 times W_N^(n1 k2), stored at n1 + R1 k2 (where
 * n2 = k2 was); step 2, per k2, the DFT over n1 (contiguous), stored at
 * k2 + R2 k1 once every thread has read (lanes * R2 <= THREADS: one
 * round). Starts and ends synchronised.
 */
template <int N, bool INV>
__device__ __forceinline__ void fft_lanes(float2 *buf, int lanes, const float2 *tw)
{
    constexpr int R2 = N >= 64 ? 8 : 4, R1 = N / R2;
    walk t = walk_of(lanes);
    float2 *x = buf + t.l;
    for (int n1 = t.n0; n1 < R1; n1 += t.dn) {
        float2 a[R2];
#pragma unroll
        for (int n2 = 0; n2 < R2; n2++) a[n2] = x[(n1 + R1 * n2) * lanes];
        dft<R2, N / R2, INV>(a, tw);
#pragma unroll
        for (int r = 0; r < R2; r++) {
            int k2 = brev(r, log2c(R2));
            x[(n1 + R1 * k2) * lanes] = k2 && n1 ? cmul(a[r], root<INV>(tw, n1 * k2)) : a[r];
        }
    }
    __syncthreads();
    int k2 = t.n0;
    float2 b[R1];
    if (k2 < R2) {
#pragma unroll
        for (int n1 = 0; n1 < R1; n1++) b[n1] = x[(n1 + R1 * k2) * lanes];
        dft<R1, N / R1, INV>(b, tw);
    }
    __syncthreads();
    if (k2 < R2) {
#pragma unroll
        for (int r = 0; r < R1; r++) x[(k2 + R2 * brev(r, log2c(R1))) * lanes] = b[r];
    }
    __syncthreads();
}

/* A row kernel's block (g, y, b): this thread's walk, its first channel
 * (of the pair g * lanes + its lane) and the row's index among all images'
 * (h rows an image). */
struct rowb {
    walk t;
    int ch;
    size_t row;
};
__device__ __forceinline__ rowb row_block(int h, int lanes)
{
    walk t = walk_of(lanes);
    return rowb{t, (int)(blockIdx.x * lanes + t.l) * 2, (size_t)blockIdx.z * h + blockIdx.y};
}

/* Forward along w: block (g, y, b) takes channel pairs g * lanes .. of row
 * y of image b; h rows, c channels. */
template <int W, typename Ti>
__global__ void __launch_bounds__(THREADS)
    rows_fwd_k(const Ti *x, int h, int c, int lanes, float2 *spec)
{
    constexpr int WF = W / 2 + 1;
    __shared__ float2 buf[W * ROW_LANES], tw[W];
    make_table<W>(tw);
    rowb r = row_block(h, lanes);
    for (int n = r.t.n0; n < W; n += r.t.dn)
        buf[n * lanes + r.t.l] = ld2(x, (r.row * W + n) * c + r.ch);
    __syncthreads();
    fft_lanes<W, false>(buf, lanes, tw);
    /* Split Z = A + iB: A[k] = (Z[k] + conj Z[-k]) / 2, B[k] = (Z[k] -
     * conj Z[-k]) / 2i, for k = 0 .. w/2, written as channels ch, ch + 1. */
    for (int k = r.t.n0; k < WF; k += r.t.dn) {
        float2 z = buf[k * lanes + r.t.l], zm = buf[((W - k) % W) * lanes + r.t.l];
        *reinterpret_cast<float4 *>(spec + (r.row * WF + k) * c + r.ch) = make_float4(
            0.5f * (z.x + zm.x), 0.5f * (z.y - zm.y), 0.5f * (z.y + zm.y), 0.5f * (zm.x - z.x));
    }
}

/* Along h, in place: block (g, k, b) takes channels g * lanes .. of
 * spectrum column k of image b (wf columns of a width w, c channels). */
template <int H, bool INV>
__global__ void __launch_bounds__(THREADS) cols_k(float2 *spec, int w, int c, int lanes)
{
    __shared__ float2 buf[H * COL_LANES], tw[H];
    make_table<H>(tw);
    walk t = walk_of(lanes);
    int wf = w / 2 + 1, k = blockIdx.y;
    size_t stride = (size_t)wf * c;
    float2 *col = spec + ((size_t)blockIdx.z * H * wf + k) * c + blockIdx.x * lanes + t.l;
    for (int n = t.n0; n < H; n += t.dn) buf[n * lanes + t.l] = col[n * stride];
    __syncthreads();
    fft_lanes<H, INV>(buf, lanes, tw);
    for (int n = t.n0; n < H; n += t.dn) col[n * stride] = buf[n * lanes + t.l];
}

/* Inverse along w and the unit's end: block (g, y, b) as in rows_fwd;
 * out (oc channels a pixel) = scale * the row + add (c a pixel). */
template <int W, typename Ta, typename To>
__global__ void __launch_bounds__(THREADS) rows_inv_k(const float2 *g, int h, int c, int lanes,
                                                      float scale, const Ta *add, int oc, To *out)
{
    constexpr int WF = W / 2 + 1;
    __shared__ float2 buf[W * ROW_LANES], tw[W];
    make_table<W>(tw);
    rowb r = row_block(h, lanes);
    /* Join channels ch, ch + 1 as Z = A + iB over all w bins (A[-k] = conj
     * A[k]), the imaginary parts of bins 0 and w/2 dropped as a C2R does. */
    for (int k = r.t.n0; k < W; k += r.t.dn) {
        int kk = k <= W / 2 ? k : W - k;
        float4 v = *reinterpret_cast<const float4 *>(g + (r.row * WF + kk) * c + r.ch);
        float2 a = make_float2(v.x, v.y), b = make_float2(v.z, v.w);
        if (kk == 0 || kk == W / 2) a.y = b.y = 0.0f;
        if (k != kk) a = conj2(a), b = conj2(b);
        buf[k * lanes + r.t.l] = make_float2(a.x - b.y, a.y + b.x);
    }
    __syncthreads();
    fft_lanes<W, true>(buf, lanes, tw);
    for (int n = r.t.n0; n < W; n += r.t.dn) {
        float2 z = buf[n * lanes + r.t.l], s = ld2(add, (r.row * W + n) * c + r.ch);
        st2(out, (r.row * W + n) * oc + r.ch, make_float2(scale * z.x + s.x, scale * z.y + s.y));
    }
}

/* The most lanes, a power of two up to most, that divide n. */
int lanes_for(int n, int most)
{
    int l = most;
    while (n % l) l /= 2;
    return l;
}

} // namespace

#ifndef PX_FFT2_EMULATE
namespace
{

using pxcu::bf16_t; /* WITH_ELEM's type names */
using pxcu::f16_t;

bool side_ok(int n)
{
    return n == 32 || n == 64 || n == 128;
}

/* Runs F::go<N>() for the side n (32, 64 or 128). */
template <typename F> int by_side(int n, const F &f)
{
    return n == 32 ? f.template go<32>() : n == 64 ? f.template go<64>() : f.template go<128>();
}

struct fwd_rows {
    cudaStream_t s;
    int et;
    const void *x;
    int B, h, w, c;
    float *spec;
    template <int W> int go() const
    {
        int lanes = lanes_for(c / 2, ROW_LANES);
        dim3 grid(c / 2 / lanes, h, B);
        WITH_ELEM(et, rows_fwd_k<W, T><<<grid, THREADS, 0, s>>>((const T *)x, h, c, lanes,
                                                                reinterpret_cast<float2 *>(spec)));
        return pxlama::launched();
    }
};

template <bool INV> struct along_h {
    cudaStream_t s;
    float *spec;
    int B, w, c;
    template <int H> int go() const
    {
        int lanes = lanes_for(c, COL_LANES);
        dim3 grid(c / lanes, w / 2 + 1, B);
        cols_k<H, INV><<<grid, THREADS, 0, s>>>(reinterpret_cast<float2 *>(spec), w, c, lanes);
        return pxlama::launched();
    }
};

struct inv_rows {
    cudaStream_t s;
    const float *g;
    float scale;
    int eta;
    const void *add;
    int et, B, h, w, c, ext;
    void *out;
    template <int W> int go() const
    {
        int lanes = lanes_for(c / 2, ROW_LANES);
        dim3 grid(c / 2 / lanes, h, B);
        WITH_ELEM2(eta, et,
                   rows_inv_k<W, Tx, T>
                   <<<grid, THREADS, 0, s>>>(reinterpret_cast<const float2 *>(g), h, c, lanes,
                                             scale, (const Tx *)add, c + ext, (T *)out));
        return pxlama::launched();
    }
};

} // namespace

extern "C" int px_cu_fu_fits(int h, int w, int c)
{
    return side_ok(h) && side_ok(w) && c > 0 && c % 2 == 0;
}

extern "C" int px_cu_fu_rfft2(px_cu_stream s, int et, const void *x, int B, int h, int w, int c,
                              float *spec)
{
    if (!px_cu_fu_fits(h, w, c)) return (int)cudaErrorInvalidValue;
    cudaStream_t st = (cudaStream_t)s;
    int e = by_side(w, fwd_rows{st, et, x, B, h, w, c, spec});
    return e ? e : by_side(h, along_h<false>{st, spec, B, w, c});
}

extern "C" int px_cu_fu_irfft2(px_cu_stream s, float *g, float scale, int eta, const void *add,
                               int et, int B, int h, int w, int c, int ext, void *out)
{
    if (!px_cu_fu_fits(h, w, c)) return (int)cudaErrorInvalidValue;
    cudaStream_t st = (cudaStream_t)s;
    int e = by_side(h, along_h<true>{st, g, B, w, c});
    if (!e) e = by_side(w, inv_rows{st, g, scale, eta, add, et, B, h, w, c, ext, out});
    if (!e && ext) e = px_cu_bias_channel(s, et, out, (size_t)B * h * w, c, ext);
    return e;
}
#endif
