/*
 * lama_fft_cuda_bench.c — the LaMa CUDA engine's Fourier-unit transforms,
 * timed at the trunk's shapes: fft2's (the default since 2026-12-07), the
 * planar cuFFT path it replaced (unit-stride cuFFT calls between
 * transposes, still the engine's for shapes fft2 does not take) and the
 * channel-strided cuFFT calls that one replaced, kept to show why:
 *
 *   forward nhwc    R2C 2D with istride = C, one call per image
 *   forward planar  R2C 2D over [B*C][h][w], one call (the cuFFT path's;
 *                   a transpose before and after)
 *   inverse nhwc    C2C along H in place with stride wf*C, one call per
 *                   image, then (after a transpose) C2R along W over
 *                   [B*C*h][wf], one call
 *   inverse planar  C2R 2D over [B*C][h][wf], one call, after the same
 *                   transpose (the engine's where fft2 does not fit)
 *   fft2 forward    fft2.h's NHWC transforms (the engine's default since
 *                   2026-12-07): rows from fp32 activations, then columns
 *   fft2 inverse    columns, then rows into fp16 u plus the 32-wide bias
 *                   channel (what the fp16 engine runs), with the rate
 *                   of the bytes each direction must move
 *
 *   lama_fft_cuda_bench [--iters N]
 *
 * Prints, per shape (1024² batch 8 and 512² batch 16 of big-lama: h = w =
 * 128 or 64 at 1/8 scale, C = 192 spectral channels), the median ms of
 * each and of one transpose pass (px_cu_hermitian_transpose, both
 * cuFFT layouts' inverse take one). The data are uninitialised device
 * memory: the kernels' time does not depend on the values.
 *
 * On an H100 (2026-12-07): fft2 forward 0.176 ms and inverse 0.204 ms at
 * 1024² batch 8, 2.0-2.3 TB/s, against cuFFT's 0.157 / 0.159 ms plus
 * 0.101 ms a transpose (lama-cuda.md, "twenty-seventh session").
 */
#include "engine/cuda/cuda_check.h"
#include "engine/lama/cuda/fft2.h"
#include "engine/lama/cuda/kernels.h"

#include <cuda_runtime.h>
#include <cufft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape {
    int B, h, w, C;
} shape;

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median ms of iters runs of fn(arg) on stream st. */
typedef int (*run_fn)(void *arg);

static float time_it(run_fn fn, void *arg, cudaStream_t st, int iters)
{
    float *t = calloc((size_t)iters, sizeof *t), med = -1.0f;
    cudaEvent_t a, b;
    cudaEventCreate(&a), cudaEventCreate(&b);
    if (fn(arg)) goto out; /* warm-up */
    for (int i = 0; i < iters; i++) {
        cudaEventRecord(a, st);
        if (fn(arg)) goto out;
        cudaEventRecord(b, st);
        cudaEventSynchronize(b);
        cudaEventElapsedTime(&t[i], a, b);
    }
    qsort(t, (size_t)iters, sizeof *t, cmp_f);
    med = t[iters / 2];
out:
    cudaEventDestroy(a), cudaEventDestroy(b);
    free(t);
    return med;
}

typedef struct ctx {
    shape s;
    cudaStream_t st;
    float *real, *real2;
    cufftComplex *spec;
    void *u16;                   /* fft2 inverse's output: fp16, C + EXT channels */
    cufftHandle fwd, invh, invw; /* nhwc */
    cufftHandle pfwd, pinv;      /* planar */
} ctx;

static int fwd_nhwc(void *arg)
{
    ctx *c = arg;
    int wf = c->s.w / 2 + 1;
    size_t rp = (size_t)c->s.h * c->s.w * c->s.C, cp = (size_t)c->s.h * wf * c->s.C;
    for (int i = 0; i < c->s.B; i++)
        if (cufftExecR2C(c->fwd, c->real + i * rp, c->spec + i * cp)) return 1;
    return 0;
}

static int inv_nhwc(void *arg)
{
    ctx *c = arg;
    int wf = c->s.w / 2 + 1;
    size_t cp = (size_t)c->s.h * wf * c->s.C;
    for (int i = 0; i < c->s.B; i++)
        if (cufftExecC2C(c->invh, c->spec + i * cp, c->spec + i * cp, CUFFT_INVERSE)) return 1;
    return cufftExecC2R(c->invw, c->spec, c->real2) != CUFFT_SUCCESS;
}

static int fwd_planar(void *arg)
{
    ctx *c = arg;
    return cufftExecR2C(c->pfwd, c->real, c->spec) != CUFFT_SUCCESS;
}

static int inv_planar(void *arg)
{
    ctx *c = arg;
    return cufftExecC2R(c->pinv, c->spec, c->real2) != CUFFT_SUCCESS;
}

static int run_transpose(void *arg)
{
    ctx *c = arg;
    int wf = c->s.w / 2 + 1;
    return px_cu_hermitian_transpose((px_cu_stream)c->st, (const float *)c->spec, c->s.B, c->s.C,
                                     c->s.h, wf, c->s.w, (float *)c->real2);
}

enum { EXT = 32 }; /* the bias channel's width (lama_cuda_weights.h) */

static int fwd_fft2(void *arg)
{
    ctx *c = arg;
    return px_cu_fu_rfft2((px_cu_stream)c->st, PX_CU_F32, c->real, c->s.B, c->s.h, c->s.w, c->s.C,
                          (float *)c->spec);
}

static int inv_fft2(void *arg)
{
    ctx *c = arg;
    return px_cu_fu_irfft2((px_cu_stream)c->st, (float *)c->spec, 0.01f, PX_CU_F32, c->real,
                           PX_CU_F16, c->s.B, c->s.h, c->s.w, c->s.C, EXT, c->u16);
}

static int plans(ctx *c)
{
    int B = c->s.B, h = c->s.h, w = c->s.w, C = c->s.C, wf = w / 2 + 1;
    int n2[2] = {h, w}, in2[2] = {h, w}, on2[2] = {h, wf}, nh[1] = {h}, nw[1] = {w};
    int r = cufftPlanMany(&c->fwd, 2, n2, in2, C, 1, on2, C, 1, CUFFT_R2C, C);
    r |= cufftPlanMany(&c->invh, 1, nh, nh, wf * C, 1, nh, wf * C, 1, CUFFT_C2C, wf * C);
    r |= cufftPlanMany(&c->invw, 1, nw, NULL, 1, 0, NULL, 1, 0, CUFFT_C2R, B * C * h);
    r |= cufftPlanMany(&c->pfwd, 2, n2, NULL, 1, 0, NULL, 1, 0, CUFFT_R2C, B * C);
    r |= cufftPlanMany(&c->pinv, 2, n2, NULL, 1, 0, NULL, 1, 0, CUFFT_C2R, B * C);
    cufftHandle all[5] = {c->fwd, c->invh, c->invw, c->pfwd, c->pinv};
    for (int i = 0; i < 5; i++) r |= cufftSetStream(all[i], c->st);
    return r;
}

static int bench_shape(shape s, int iters)
{
    ctx c = {.s = s};
    int wf = s.w / 2 + 1, rc = 1;
    size_t rn = (size_t)s.B * s.h * s.w * s.C, cn = (size_t)s.B * s.h * wf * s.C;
    if (cudaStreamCreate(&c.st) || cudaMalloc((void **)&c.real, rn * 4) ||
        cudaMalloc((void **)&c.real2, cn * 8) || cudaMalloc((void **)&c.spec, cn * 8) ||
        cudaMalloc(&c.u16, rn / s.C * (s.C + EXT) * 2) || cudaMemset(c.real, 0, rn * 4) ||
        plans(&c)) {
        fprintf(stderr, "lama_fft_cuda_bench: setup failed at %dx%d batch %d\n", s.h, s.w, s.B);
        return 1;
    }
    float fn = time_it(fwd_nhwc, &c, c.st, iters), fp = time_it(fwd_planar, &c, c.st, iters);
    float in = time_it(inv_nhwc, &c, c.st, iters), ip = time_it(inv_planar, &c, c.st, iters);
    float tt = time_it(run_transpose, &c, c.st, iters);
    float f2 = time_it(fwd_fft2, &c, c.st, iters), i2 = -1.0f;
    if (cudaMemset(c.spec, 0, cn * 8) == cudaSuccess) i2 = time_it(inv_fft2, &c, c.st, iters);
    if (fn >= 0 && fp >= 0 && in >= 0 && ip >= 0 && tt >= 0 && f2 >= 0 && i2 >= 0) {
        /* Bytes each fft2 direction must move: the activations once, the
         * spectrum three times (written, then read and written along h),
         * and the inverse's u and bias channel in fp16. */
        double fb = rn * 4.0 + cn * 8.0 * 3,
               ib = cn * 8.0 * 3 + rn * 4.0 + rn / s.C * (s.C + EXT) * 2.0;
        printf("fourier unit %3dx%-3d C %d batch %2d: forward nhwc %.3f ms, planar %.3f ms; "
               "inverse nhwc %.3f ms, planar %.3f ms; one transpose pass %.3f ms; "
               "fft2 forward %.3f ms (%.0f GB/s), inverse %.3f ms (%.0f GB/s)\n",
               s.h, s.w, s.C, s.B, fn, fp, in, ip, tt, f2, fb / f2 / 1e6, i2, ib / i2 / 1e6);
        rc = 0;
    }
    cufftDestroy(c.fwd), cufftDestroy(c.invh), cufftDestroy(c.invw);
    cufftDestroy(c.pfwd), cufftDestroy(c.pinv);
    cudaFree(c.real), cudaFree(c.real2), cudaFree(c.spec), cudaFree(c.u16);
    cudaStreamDestroy(c.st);
    return rc;
}

int main(int argc, char **argv)
{
    int iters = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: lama_fft_cuda_bench [--iters N]\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (iters < 1) iters = 1;
    shape shapes[] = {{8, 128, 128, 192}, {16, 64, 64, 192}, {1, 128, 128, 192}};
    int rc = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) rc |= bench_shape(shapes[i], iters);
    return rc;
}
