/*
 * fft2_host_check.cpp — the LaMa Fourier unit's NHWC transforms
 * (src/engine/lama/cuda/fft2.cu) run on the host: the kernels' own source,
 * compiled as C++ with stand-ins for CUDA's built-ins, on 256 threads that
 * meet at a std::barrier where the GPU's meet at __syncthreads (a kernel's
 * __shared__ arrays become statics all of them see; blocks run one after
 * another). What it checks, against plain DFTs in double, for every side
 * pair the kernels take (32, 64, 128) and channel counts that give the
 * widest groups (64) and narrow ones (24, 2):
 *   - the forward R2C of random activations with a large mean (LaMa's
 *     spectra are dominated by their DC term), bin by bin in NHWC;
 *   - the inverse of a random spectrum (the 1x1 convolution's output, not
 *     Hermitian) as a 2-D C2R computes it once columns 0 and w/2 are made
 *     Hermitian along h, times a scale plus an addend, and that it leaves
 *     the bias channel's slots alone;
 *   - a round trip, inverse(forward(x)) / (h w) = x.
 * An index in the wrong order or a wrong twiddle moves values by far more
 * than the bounds (1e-5 of the largest magnitude; fp32 with twiddles from
 * sincospif, as on the GPU). Needs no GPU and no CUDA headers.
 */
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

/* ---- CUDA's built-ins, for fft2.cu's device code ---- */
struct float2 {
    float x, y;
};
struct float4 {
    float x, y, z, w;
};
static inline float2 make_float2(float x, float y)
{
    return float2{x, y};
}
static inline float4 make_float4(float x, float y, float z, float w)
{
    return float4{x, y, z, w};
}
static inline void sincospif(float x, float *s, float *c)
{
    /* Exact at the quarter turns, like CUDA's: the kernels' tables rely on it. */
    double r = (double)x * M_PI;
    *s = (float)std::sin(r);
    *c = (float)std::cos(r);
    if (std::fmod((double)x, 1.0) == 0.0) *s = 0.0f;
    if (std::fmod((double)x - 0.5, 1.0) == 0.0) *c = 0.0f;
}
struct dim3_ {
    unsigned x, y, z;
};
static thread_local dim3_ threadIdx, blockIdx;
static std::barrier<> *g_bar;
static inline void __syncthreads()
{
    g_bar->arrive_and_wait();
}
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__      static
#define __launch_bounds__(n)
#define PX_FFT2_EMULATE 1

#include "engine/lama/cuda/fft2.cu"

static int g_fail;
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            std::printf("FAIL %s:%d: ", __FILE__, __LINE__);                                       \
            std::printf(__VA_ARGS__);                                                              \
            std::printf("\n");                                                                     \
            g_fail = 1;                                                                            \
        }                                                                                          \
    } while (0)

/* Runs body for every block of the grid gx x gy x gz, on THREADS threads
 * that finish each block together before the next starts. */
static void launch(unsigned gx, unsigned gy, unsigned gz, const std::function<void()> &body)
{
    std::barrier<> bar(THREADS);
    g_bar = &bar;
    std::vector<std::thread> ts;
    for (int t = 0; t < THREADS; t++)
        ts.emplace_back([&, t] {
            threadIdx = dim3_{(unsigned)t, 0, 0};
            for (unsigned z = 0; z < gz; z++)
                for (unsigned y = 0; y < gy; y++)
                    for (unsigned x = 0; x < gx; x++) {
                        blockIdx = dim3_{x, y, z};
                        body();
                        bar.arrive_and_wait();
                    }
        });
    for (auto &t : ts) t.join();
}

static unsigned g_seed = 2026u;
static float urand() /* [-1, 1) */
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)(g_seed >> 8) / (float)(1u << 23) - 1.0f;
}

struct cd {
    double re, im;
};

/* e^{sign 2 pi i m / n} for m = 0 .. n-1. */
static std::vector<cd> roots(int n, int sign)
{
    std::vector<cd> r(n);
    for (int m = 0; m < n; m++)
        r[m] = cd{std::cos(2 * M_PI * m / n), sign * std::sin(2 * M_PI * m / n)};
    return r;
}

static cd cmuld(cd a, cd b)
{
    return cd{a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}

/* The DFT along h of each of the wf columns of in ([h][wf]), with the
 * roots e^{sign 2 pi i m / h}: out[ky][k] = sum_y in[y][k] root^(ky y). */
static std::vector<cd> dft_cols(const std::vector<cd> &in, int h, int wf, int sign)
{
    std::vector<cd> rh = roots(h, sign), out((size_t)h * wf);
    for (int k = 0; k < wf; k++)
        for (int ky = 0; ky < h; ky++) {
            cd s{0, 0};
            for (int y = 0; y < h; y++) {
                cd t = cmuld(in[(size_t)y * wf + k], rh[(size_t)ky * y % h]);
                s.re += t.re, s.im += t.im;
            }
            out[(size_t)ky * wf + k] = s;
        }
    return out;
}

/* One plane's R2C, unnormalised, e^-i: out[ky][k], k <= w/2. */
static std::vector<cd> dft_r2c(const std::vector<double> &x, int h, int w)
{
    int wf = w / 2 + 1;
    std::vector<cd> rw = roots(w, -1), rows((size_t)h * wf);
    for (int y = 0; y < h; y++)
        for (int k = 0; k < wf; k++) {
            cd s{0, 0};
            for (int n = 0; n < w; n++) {
                cd t = rw[(size_t)k * n % w];
                s.re += x[(size_t)y * w + n] * t.re, s.im += x[(size_t)y * w + n] * t.im;
            }
            rows[(size_t)y * wf + k] = s;
        }
    return dft_cols(rows, h, wf, -1);
}

/* A 2-D C2R, unnormalised, e^+i, of a spectrum [ky][k] whose columns 0
 * and w/2 are first made Hermitian along h (the Fourier unit's rule):
 * inverse along h per column, then each row's Hermitian extension with the
 * imaginary parts of bins 0 and w/2 dropped. */
static std::vector<double> dft_c2r(std::vector<cd> in, int h, int w)
{
    int wf = w / 2 + 1;
    for (int k : {0, w / 2}) {
        std::vector<cd> col(h);
        for (int y = 0; y < h; y++) {
            cd a = in[(size_t)y * wf + k], b = in[(size_t)((h - y) % h) * wf + k];
            col[y] = cd{0.5 * (a.re + b.re), 0.5 * (a.im - b.im)};
        }
        for (int y = 0; y < h; y++) in[(size_t)y * wf + k] = col[y];
    }
    std::vector<cd> rw = roots(w, 1), cols = dft_cols(in, h, wf, 1);
    std::vector<double> out((size_t)h * w);
    for (int y = 0; y < h; y++)
        for (int n = 0; n < w; n++) {
            const cd *r = &cols[(size_t)y * wf];
            double s = r[0].re + r[w / 2].re * ((n & 1) ? -1 : 1);
            for (int k = 1; k < w / 2; k++) s += 2 * cmuld(r[k], rw[(size_t)k * n % w]).re;
            out[(size_t)y * w + n] = s;
        }
    return out;
}

/* The channels the references check: the first two, one inside, the last. */
static std::vector<int> probe_channels(int c)
{
    std::vector<int> p{0, 1, std::min(c / 2 + 1, c - 1), c - 1};
    std::sort(p.begin(), p.end());
    p.erase(std::unique(p.begin(), p.end()), p.end());
    return p;
}

/* The forward transform of B x H x W x C activations x into spec. */
template <int H, int W> static void forward(const std::vector<float> &x, int B, int C, float *spec)
{
    const int rl = lanes_for(C / 2, ROW_LANES), cl = lanes_for(C, COL_LANES);
    float2 *sp = reinterpret_cast<float2 *>(spec);
    launch(C / 2 / rl, H, B, [&] { rows_fwd_k<W, float>(x.data(), H, C, rl, sp); });
    launch(C / cl, W / 2 + 1, B, [&] { cols_k<H, false>(sp, W, C, cl); });
}

/* The inverse: g (overwritten) to out = scale * C2R + add, OC channels a pixel. */
template <int H, int W>
static void inverse(float *g, float scale, const std::vector<float> &add, int B, int C, int OC,
                    std::vector<float> &out)
{
    const int rl = lanes_for(C / 2, ROW_LANES), cl = lanes_for(C, COL_LANES);
    float2 *gp = reinterpret_cast<float2 *>(g);
    launch(C / cl, W / 2 + 1, B, [&] { cols_k<H, true>(gp, W, C, cl); });
    launch(C / 2 / rl, H, B,
           [&] { rows_inv_k<W, float, float>(gp, H, C, rl, scale, add.data(), OC, out.data()); });
}

template <int H, int W> static void check_sides(int C)
{
    const int WF = W / 2 + 1, B = 2, EXT = 8, OC = C + EXT;
    const size_t np = (size_t)H * W, nf = (size_t)H * WF;
    std::vector<float> x(B * np * C), spec(B * nf * C * 2), g(spec.size()), g0, add(x.size());
    std::vector<float> back(B * np * OC, 7.0f), out(back.size(), 7.0f), zero(x.size(), 0.0f);
    for (auto &v : x) v = 3.0f + urand();
    for (auto &v : g) v = 40.0f * urand();
    for (auto &v : add) v = urand();
    g0 = g;
    forward<H, W>(x, B, C, spec.data());
    const float scale = 0.37f;
    inverse<H, W>(g.data(), scale, add, B, C, OC, out);
    double fe = 0, fmax = 0, ie = 0, imax = 0;
    for (int b = 0; b < B; b++)
        for (int ch : probe_channels(C)) {
            std::vector<double> plane(np);
            for (size_t i = 0; i < np; i++) plane[i] = x[(b * np + i) * C + ch];
            std::vector<cd> ref = dft_r2c(plane, H, W), gin(nf);
            for (size_t i = 0; i < nf; i++) {
                const float *v = &spec[((b * nf + i) * C + ch) * 2];
                fmax = std::max(fmax, std::hypot(ref[i].re, ref[i].im));
                fe = std::max(fe, std::hypot(v[0] - ref[i].re, v[1] - ref[i].im));
                gin[i] = cd{g0[((b * nf + i) * C + ch) * 2], g0[((b * nf + i) * C + ch) * 2 + 1]};
            }
            std::vector<double> inv = dft_c2r(gin, H, W);
            for (size_t i = 0; i < np; i++) {
                double want = scale * inv[i] + add[(b * np + i) * C + ch];
                imax = std::max(imax, std::fabs(want));
                ie = std::max(ie, std::fabs(out[(b * np + i) * OC + ch] - want));
            }
        }
    CHECK(fe <= 1e-5 * fmax, "%dx%d c%d forward: error %.3g of %.3g", H, W, C, fe, fmax);
    CHECK(ie <= 1e-5 * imax, "%dx%d c%d inverse: error %.3g of %.3g", H, W, C, ie, imax);
    /* Round trip over every channel; the bias channel's slots untouched. */
    inverse<H, W>(spec.data(), 1.0f / (float)np, zero, B, C, OC, back);
    double re = 0;
    bool ext_kept = true;
    for (size_t p = 0; p < B * np; p++) {
        for (int ch = 0; ch < C; ch++)
            re = std::max(re, (double)std::fabs(back[p * OC + ch] - x[p * C + ch]));
        for (int e = C; e < OC; e++) ext_kept = ext_kept && back[p * OC + e] == 7.0f;
    }
    CHECK(re <= 1e-5 * 4.0, "%dx%d c%d round trip: error %.3g", H, W, C, re);
    CHECK(ext_kept, "%dx%d c%d: the inverse wrote into the bias channel's slots", H, W, C);
    std::printf("  %3dx%-3d c%-2d forward %.2g, inverse %.2g (of %.3g), round trip %.2g\n", H, W, C,
                fe / fmax, ie / imax, imax, re);
}

template <int H> static void check_row()
{
    check_sides<H, 32>(64);
    check_sides<H, 64>(64);
    check_sides<H, 128>(64);
}

int main()
{
    check_row<32>();
    check_row<64>();
    check_row<128>();
    check_sides<64, 32>(24); /* the tiny model's 24 channels: 4 pairs a row block, 8 a column */
    check_sides<32, 128>(2); /* one pair, two channels a block */
    std::printf("fft2_host_check: %s\n", g_fail ? "FAILED" : "every check passed");
    return g_fail;
}
