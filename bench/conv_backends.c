/*
 * conv_backends.c — why the LaMa CPU engine convolves with oneDNN: times
 * big-lama's convolution shapes at a 512x512 input through the engine's
 * oneDNN backend (conv_dnnl.c) and through the alternative, im2col + OpenBLAS
 * sgemm on the same NHWC tensors, and checks that both agree.
 *
 *   make bench && build/release/bench/conv_backends [repeats]
 *
 * Prints one line per shape: median ms for each backend and the ratio. A
 * benchmark, not a test: it asserts nothing but agreement.
 */
#include "core/clock.h"
#include "engine/conv.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int n);

typedef struct {
    const char *what;
    int h, w, cin, cout, k, stride; /* input already padded */
} shape;

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *rnd(size_t n, unsigned *seed)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = (float)((*seed >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

/* im2col (NHWC, no padding) then one sgemm: dst[P][cout] = col[P][K] x W[cout][K]^T. */
static void blas_conv(const shape *s, const float *src, const float *wt /* cout,kh,kw,cin */,
                      float *col, float *dst)
{
    int oh = (s->h - s->k) / s->stride + 1, ow = (s->w - s->k) / s->stride + 1;
    int K = s->k * s->k * s->cin, P = oh * ow;
    const float *a = src;
    if (s->k != 1 || s->stride != 1) {
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                float *c = col + ((size_t)y * ow + x) * K;
                for (int ky = 0; ky < s->k; ky++)
                    memcpy(c + (size_t)ky * s->k * s->cin,
                           src + (((size_t)(y * s->stride + ky)) * s->w + (size_t)x * s->stride) * s->cin,
                           (size_t)s->k * s->cin * sizeof *c);
            }
        a = col;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, s->cout, K, 1.0f, a, K, wt, K, 0.0f, dst,
                s->cout);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    int threads = argc > 2 ? atoi(argv[2]) : 0;
    if (threads > 0) {
        px_conv_set_threads(threads);
        openblas_set_num_threads(threads);
    }
    /* big-lama at 512x512: trunk 64x64 (reflect-padded to 66x66), Fourier
     * unit at 64x33. */
    static const shape shapes[] = {
        {"trunk 3x3 l2l 128->128", 66, 66, 128, 128, 3, 1},
        {"trunk 3x3 g2l 384->128", 66, 66, 384, 128, 3, 1},
        {"trunk 3x3 l2g 128->384", 66, 66, 128, 384, 3, 1},
        {"spectral 1x1 384->192", 64, 64, 384, 192, 1, 1},
        {"fourier 1x1 384->384", 64, 33, 384, 384, 1, 1},
        {"down 3x3 s2 64->128", 514, 514, 64, 128, 3, 2},
        {"stem 7x7 4->64", 518, 518, 4, 64, 7, 1},
    };
    printf("%-26s %10s %10s %8s %10s\n", "shape", "oneDNN ms", "BLAS ms", "BLAS/dnn", "max |diff|");
    double tot_d = 0, tot_b = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        unsigned seed = 1234 + (unsigned)i;
        int oh = (s->h - s->k) / s->stride + 1, ow = (s->w - s->k) / s->stride + 1;
        size_t K = (size_t)s->k * s->k * s->cin, P = (size_t)oh * ow;
        float *src = rnd((size_t)s->h * s->w * s->cin, &seed);
        float *w_oihw = rnd((size_t)s->cout * K, &seed);
        float *w_ohwi = malloc((size_t)s->cout * K * sizeof(float));
        for (int o = 0; o < s->cout; o++)
            for (int c = 0; c < s->cin; c++)
                for (int kk = 0; kk < s->k * s->k; kk++)
                    w_ohwi[((size_t)o * s->k * s->k + kk) * s->cin + c] =
                        w_oihw[((size_t)o * s->cin + c) * s->k * s->k + kk];
        float *d1 = calloc(P * s->cout, sizeof(float)), *d2 = calloc(P * s->cout, sizeof(float));
        float *col = malloc(P * K * sizeof(float));
        px_conv_spec lc = {s->cout, s->cin, s->k, s->k, s->stride, w_oihw, NULL};
        px_conv_weights *cw;
        px_conv *cv;
        char err[200];
        px_conv_stream *st = px_conv_stream_create();
        if (px_conv_weights_create(&lc, &cw, err, sizeof err) ||
            px_conv_create(cw, &(px_conv_args){.h = s->h, .w = s->w, .src = src, .dst = d1}, &cv, err,
                           sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        void *scratch = malloc(px_conv_scratch_bytes(cv) + 64);
        px_conv_bind_scratch(cv, scratch, err, sizeof err);
        double td[64], tb[64];
        if (reps > 64) reps = 64;
        px_conv_run(cv, st);
        blas_conv(s, src, w_ohwi, col, d2);
        for (int r = 0; r < reps; r++) {
            uint64_t t0 = px_now_ns();
            px_conv_run(cv, st);
            uint64_t t1 = px_now_ns();
            blas_conv(s, src, w_ohwi, col, d2);
            uint64_t t2 = px_now_ns();
            td[r] = (double)(t1 - t0) / 1e6;
            tb[r] = (double)(t2 - t1) / 1e6;
        }
        qsort(td, (size_t)reps, sizeof *td, cmp_dbl);
        qsort(tb, (size_t)reps, sizeof *tb, cmp_dbl);
        double md = 0;
        for (size_t j = 0; j < P * s->cout; j++) md = fmax(md, fabs(d1[j] - d2[j]));
        double a = td[reps / 2], b = tb[reps / 2];
        printf("%-26s %10.2f %10.2f %8.2f %10.2g   (%s)\n", s->what, a, b, b / a, md, px_conv_impl(cv));
        tot_d += a;
        tot_b += b;
        px_conv_destroy(cv);
        px_conv_weights_destroy(cw);
        px_conv_stream_destroy(st);
        free(scratch);
        free(src);
        free(w_ohwi);
        free(d1);
        free(d2);
        free(col);
    }
    printf("%-26s %10.2f %10.2f %8.2f\n", "sum of the shapes above", tot_d, tot_b, tot_b / tot_d);
    return 0;
}
