/*
 * conv_narrow.c — direct convolution for LaMa's RGB output layer (see
 * conv_narrow.h). AVX-512F intrinsics inside functions compiled for that ISA
 * alone, so the rest of the build keeps its baseline and the kernel runs
 * only when the CPU has the instructions. Four output pixels at a time share
 * every weight load: 12 accumulators (4 pixels x 3 channels) of 16 input
 * channels each, reduced at the end.
 */
#include "engine/conv_narrow.h"

#include <immintrin.h>

bool px_narrow_supported(int cout, int cin, int stride, int pad_b, int pad_r)
{
    if (cout != 3 || cin < 16 || cin % 16 || cin > PX_NARROW_MAX_CIN || stride != 1 || pad_b || pad_r)
        return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

typedef struct {
    const float *src, *wt, *bias;
    float *dst;
    int w, cin, kh, kw, ow;
    bool acc, relu;
} job;

#define NPX 4 /* output pixels per step */

/* n (1..NPX) output pixels of row y starting at x. */
__attribute__((target("avx512f"))) static void pixels(const job *j, int y, int x, int n)
{
    __m512 acc[NPX][3];
    for (int p = 0; p < NPX; p++)
        for (int o = 0; o < 3; o++) acc[p][o] = _mm512_setzero_ps();
    int taps = j->kh * j->kw, cin = j->cin;
    size_t row = (size_t)j->w * cin;
    for (int ky = 0; ky < j->kh; ky++)
        for (int kx = 0; kx < j->kw; kx++) {
            int t = ky * j->kw + kx;
            const float *s = j->src + (size_t)(y + ky) * row + (size_t)(x + kx) * cin;
            const float *w0 = j->wt + (size_t)t * cin, *w1 = w0 + (size_t)taps * cin,
                        *w2 = w1 + (size_t)taps * cin;
            for (int c = 0; c < cin; c += 16) {
                __m512 a = _mm512_loadu_ps(w0 + c), b = _mm512_loadu_ps(w1 + c),
                       d = _mm512_loadu_ps(w2 + c);
                if (n == NPX) {
                    for (int p = 0; p < NPX; p++) {
                        __m512 v = _mm512_loadu_ps(s + (size_t)p * cin + c);
                        acc[p][0] = _mm512_fmadd_ps(v, a, acc[p][0]);
                        acc[p][1] = _mm512_fmadd_ps(v, b, acc[p][1]);
                        acc[p][2] = _mm512_fmadd_ps(v, d, acc[p][2]);
                    }
                } else {
                    for (int p = 0; p < n; p++) {
                        __m512 v = _mm512_loadu_ps(s + (size_t)p * cin + c);
                        acc[p][0] = _mm512_fmadd_ps(v, a, acc[p][0]);
                        acc[p][1] = _mm512_fmadd_ps(v, b, acc[p][1]);
                        acc[p][2] = _mm512_fmadd_ps(v, d, acc[p][2]);
                    }
                }
            }
        }
    for (int p = 0; p < n; p++) {
        float *dd = j->dst + ((size_t)y * j->ow + x + p) * 3;
        for (int o = 0; o < 3; o++) {
            float sum = _mm512_reduce_add_ps(acc[p][o]);
            if (j->bias) sum += j->bias[o];
            if (j->acc) sum += dd[o];
            dd[o] = j->relu && sum < 0 ? 0 : sum;
        }
    }
}

static void rows(void *ctx, int y0, int y1)
{
    const job *j = ctx;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < j->ow; x += NPX) pixels(j, y, x, j->ow - x < NPX ? j->ow - x : NPX);
}

void px_narrow_conv(px_pool *pool, const float *src, int h, int w, int cin, const float *wt,
                    const float *bias, int cout, int kh, int kw, float *dst, bool accumulate,
                    bool relu)
{
    (void)cout; /* 3: px_narrow_supported */
    job j = {src, wt, bias, dst, w, cin, kh, kw, w - kw + 1, accumulate, relu};
    px_pool_parallel_for(pool, h - kh + 1, 0, rows, &j);
}
