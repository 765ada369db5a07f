/*
 * fft2_host_check.cpp — the LaMa Fourier unit's one-pass transforms
 * (src/engine/lama/cuda/fft2.cu) run on the host: the kernels' own source,
 * compiled as C++ with stand-ins for CUDA's built-ins, one block at a time
 * on 256 threads that meet at a std::barrier where the GPU's meet at
 * __syncthreads (shared memory is one array all of them see). What it
 * checks, against plain DFTs in double, for every side pair the kernels
 * take (32, 64, 128):
 *   - the forward R2C of random planes with a large mean (LaMa's spectra
 *     are dominated by their DC term), bin by bin;
 *   - the inverse of a random spectrum whose columns 0 and w/2 are made
 *     Hermitian along h (as px_cu_hermitian_transpose makes the 1x1
 *     convolution's output), as a 2-D C2R computes it;
 *   - a round trip, inverse(forward(x)) = h w x.
 * An index in the wrong order or a wrong twiddle moves values by far more
 * than the bounds (1e-5 of the largest magnitude; fp32 with twiddles from
 * sincospif, as on the GPU). Needs no GPU and no CUDA headers.
 */
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
static inline float2 make_float2(float x, float y)
{
    return float2{x, y};
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
    unsigned x;
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
#define __shared__
#define __launch_bounds__(n)
#define PX_FFT2_EMULATE 1

#include "engine/lama/cuda/fft2.cu"

namespace
{
float2 sm[128 * 65 + 256]; /* the block's dynamic shared memory (fft2.cu's `extern`) */
}

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

/* Runs body for blocks 0 .. nblocks-1, each on THREADS threads. */
static void launch(int nblocks, const std::function<void()> &body)
{
    for (int b = 0; b < nblocks; b++) {
        std::barrier<> bar(THREADS);
        g_bar = &bar;
        std::vector<std::thread> ts;
        for (int t = 0; t < THREADS; t++)
            ts.emplace_back([&, t, b] {
                threadIdx.x = (unsigned)t;
                blockIdx.x = (unsigned)b;
                body();
            });
        for (auto &t : ts) t.join();
    }
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

/* One plane's R2C, unnormalised, e^-i: out[y][k], k <= w/2. */
static void dft_r2c(const float *x, int h, int w, std::vector<cd> &out)
{
    int wf = w / 2 + 1;
    std::vector<cd> rows((size_t)h * wf);
    for (int y = 0; y < h; y++)
        for (int k = 0; k < wf; k++) {
            cd s{0, 0};
            for (int n = 0; n < w; n++) {
                double a = -2 * M_PI * (double)k * n / w;
                s.re += x[y * w + n] * std::cos(a), s.im += x[y * w + n] * std::sin(a);
            }
            rows[(size_t)y * wf + k] = s;
        }
    out.assign((size_t)h * wf, cd{0, 0});
    for (int k = 0; k < wf; k++)
        for (int ky = 0; ky < h; ky++) {
            cd s{0, 0};
            for (int y = 0; y < h; y++) {
                double a = -2 * M_PI * (double)ky * y / h, c = std::cos(a), si = std::sin(a);
                cd v = rows[(size_t)y * wf + k];
                s.re += v.re * c - v.im * si, s.im += v.re * si + v.im * c;
            }
            out[(size_t)ky * wf + k] = s;
        }
}

/* A 2-D C2R, unnormalised, e^+i: inverse along h per column, then each
 * row's Hermitian extension with the imaginary parts of bins 0 and w/2
 * dropped. */
static void dft_c2r(const std::vector<cd> &in, int h, int w, std::vector<double> &out)
{
    int wf = w / 2 + 1;
    std::vector<cd> cols((size_t)h * wf);
    for (int k = 0; k < wf; k++)
        for (int y = 0; y < h; y++) {
            cd s{0, 0};
            for (int ky = 0; ky < h; ky++) {
                double a = 2 * M_PI * (double)ky * y / h, c = std::cos(a), si = std::sin(a);
                cd v = in[(size_t)ky * wf + k];
                s.re += v.re * c - v.im * si, s.im += v.re * si + v.im * c;
            }
            cols[(size_t)y * wf + k] = s;
        }
    out.assign((size_t)h * w, 0);
    for (int y = 0; y < h; y++)
        for (int n = 0; n < w; n++) {
            const cd *r = &cols[(size_t)y * wf];
            double s = r[0].re + r[w / 2].re * ((n & 1) ? -1 : 1);
            for (int k = 1; k < w / 2; k++) {
                double a = 2 * M_PI * (double)k * n / w;
                s += 2 * (r[k].re * std::cos(a) - r[k].im * std::sin(a));
            }
            out[(size_t)y * w + n] = s;
        }
}

/* Columns 0 and w/2 of planar g made Hermitian along h (the GPU rule). */
static std::vector<cd> hermitian(const float *re, const float *im, int h, int w)
{
    int wf = w / 2 + 1;
    std::vector<cd> o((size_t)h * wf);
    for (int y = 0; y < h; y++)
        for (int k = 0; k < wf; k++) {
            size_t i = (size_t)y * wf + k, m = (size_t)((h - y) % h) * wf + k;
            o[i] = (k == 0 || k == w / 2) ? cd{0.5 * (re[i] + re[m]), 0.5 * (im[i] - im[m])}
                                          : cd{re[i], im[i]};
        }
    return o;
}

template <typename F> static double worst(size_t n, F err)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) e = std::max(e, (double)err(i));
    return e;
}

template <int H, int W> static void check_sides()
{
    const int WF = W / 2 + 1, P = 2;
    const size_t nr = (size_t)H * W, nc = (size_t)H * WF;
    std::vector<float> x(P * nr), spec(P * nc * 2), back(P * nr), g(P * nc * 2), out(P * nr);
    for (auto &v : x) v = 3.0f + urand();
    for (auto &v : g) v = 40.0f * urand();
    float2 *sp = reinterpret_cast<float2 *>(spec.data());
    /* Forward. */
    launch(P, [&] { rfft2_k<H, W>(x.data(), sp); });
    double fe = 0, fmax = 0;
    for (int p = 0; p < P; p++) {
        std::vector<cd> ref;
        dft_r2c(&x[p * nr], H, W, ref);
        fmax =
            std::max(fmax, worst(nc, [&](size_t i) { return std::hypot(ref[i].re, ref[i].im); }));
        fe = std::max(fe, worst(nc, [&](size_t i) {
                          float2 v = sp[p * nc + i];
                          return std::hypot(v.x - ref[i].re, v.y - ref[i].im);
                      }));
    }
    CHECK(fe <= 1e-5 * fmax, "%dx%d forward: error %.3g of %.3g", H, W, fe, fmax);
    /* Round trip: the forward's output is Hermitian where it must be. */
    launch(P, [&] { irfft2_k<H, W>(sp, back.data()); });
    double re = worst(P * nr, [&](size_t i) { return std::fabs(back[i] / (double)nr - x[i]); });
    CHECK(re <= 1e-5 * 4.0, "%dx%d round trip: error %.3g", H, W, re);
    /* Inverse of a spectrum whose columns 0 and w/2 are made Hermitian
     * along h from random values (the 1x1 convolution's output, made so by
     * px_cu_hermitian_transpose), against a 2-D C2R in double. */
    std::vector<float> hs(P * nc * 2);
    double ie = 0, imax = 0;
    for (int p = 0; p < P; p++) {
        const float *gre = &g[(size_t)p * 2 * nc], *gim = gre + nc;
        std::vector<cd> hsp = hermitian(gre, gim, H, W);
        for (size_t i = 0; i < nc; i++)
            hs[(p * nc + i) * 2] = (float)hsp[i].re, hs[(p * nc + i) * 2 + 1] = (float)hsp[i].im;
        std::vector<double> ref;
        dft_c2r(hsp, H, W, ref);
        imax = std::max(imax, worst(nr, [&](size_t i) { return std::fabs(ref[i]); }));
        launch(1, [&] {
            irfft2_k<H, W>(reinterpret_cast<const float2 *>(&hs[p * nc * 2]), &out[p * nr]);
        });
        ie = std::max(ie, worst(nr, [&](size_t i) { return std::fabs(out[p * nr + i] - ref[i]); }));
    }
    CHECK(ie <= 1e-5 * imax, "%dx%d inverse: error %.3g of %.3g", H, W, ie, imax);
    std::printf("  %3dx%-3d forward %.2g, round trip %.2g, inverse %.2g (of %.3g)\n", H, W,
                fe / fmax, re, ie / imax, imax);
}

template <int H> static void check_row()
{
    check_sides<H, 32>();
    check_sides<H, 64>();
    check_sides<H, 128>();
}

int main()
{
    check_row<32>();
    check_row<64>();
    check_row<128>();
    std::printf("fft2_host_check: %s\n", g_fail ? "FAILED" : "every check passed");
    return g_fail;
}
