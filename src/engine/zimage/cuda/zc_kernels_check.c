/*
 * zc_kernels_check.c — zi_cuda_kernels_check (zimage_cuda.h): the fused
 * element-wise kernels of zkernels.cu against the kernels they replace,
 * which the stage tests have held against the reference since 2026-12-05.
 * Both paths run on the same device inputs and must agree to the bit: the
 * fused residual-and-norm kernel does the two kernels' arithmetic in their
 * order, and the 8-wide SwiGLU the per-element one's. The wide (16-byte)
 * residual + norm and the 8-wide q/k norm add their sums in another order
 * than the per-value kernels, so they may be a rounding off, never more
 * (q/k: one bf16 step of the RoPE pair's scale). The VAE's 16-byte
 * GroupNorm, bias and upsample kernels (ninth session) against their
 * per-value ones, to the bit, in fp32 and bf16. The fp8 copies the fused
 * residual + norm and SwiGLU write for fp8 GEMMs (thirteenth session)
 * against the bf16 output quantized after, to the bit. The VAE's bf16
 * softmax against the fp32 one rounded (thirty-third session).
 *
 * Written 2026-12-05 (eighth to tenth sessions); passed on H100s (tenth).
 */
#include "engine/zimage/zimage_cuda.h"

#include "core/err.h"
#include "engine/cuda/cuda_check.h"
#include "engine/zimage/cuda/zc_fp8.h"
#include "engine/zimage/cuda/zkernels.h"
#include "engine/zimage/cuda/zvae_kernels.h"
#include "engine/zimage/zops.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Uniform in [-2, 2) from a 32-bit LCG: inputs only need to be varied. */
static float rnd(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 24) * 4.0f - 2.0f;
}

/* n bf16 values (bits), uniform in [-2·scale, 2·scale). */
static void fill_bf16(uint16_t *h, size_t n, uint32_t *s, float scale)
{
    for (size_t k = 0; k < n; k++) {
        float f = rnd(s) * scale;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        h[k] = (uint16_t)(bits >> 16);
    }
}

static long count_diff(const void *a, const void *b, size_t n, size_t elem)
{
    long d = 0;
    const char *x = a, *y = b;
    for (size_t i = 0; i < n; i++) d += memcmp(x + i * elem, y + i * elem, elem) != 0;
    return d;
}

/* The residual and norm: x1 through the two kernels, x2 through the fused,
 * as the DiT calls them (gate and scale rows inside one 4n-wide modulation
 * buffer, at mod + n and mod + 2n), then once more without modulation (the
 * context refiner's blocks); with an fp32 h, then a bf16 one; rounds 4-7
 * again with x in bf16 (the default residual stream: x1
 * and x2 are the bf16 copies XB1 and XB2 of the same values). */
enum { B_X1, B_X2, B_H, B_WH, B_W, B_MOD, B_Y1, B_Y2, B_XB1, B_XB2, B_N };

static int residual_norm(zi_cuda_kernels_case *c, char *err, size_t errlen)
{
    int rc = 0, rows = c->rows, n = c->n, rpi = c->rows_per_item;
    int items = (rows + rpi - 1) / rpi;
    size_t rn = (size_t)rows * n;
    size_t cnt[B_N] = {rn, rn, rn, (size_t)n, (size_t)n, (size_t)items * 4 * n, rn, rn, rn, rn};
    size_t esz[B_N] = {4, 4, 4, 4, 4, 4, 2, 2, 2, 2};
    void *d[B_N] = {0}, *h[B_N] = {0}, *hb = NULL;
    uint32_t s = c->seed;
    for (int i = 0; i < B_N; i++) {
        h[i] = malloc(cnt[i] * esz[i]);
        if (!h[i]) {
            rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
            goto fail;
        }
        if (esz[i] == 4 && i != B_X2)
            for (size_t k = 0; k < cnt[i]; k++) ((float *)h[i])[k] = rnd(&s);
        PX_CUDA_CHECK(cudaMalloc(&d[i], cnt[i] * esz[i]));
    }
    c->x_diff = c->y_diff = 0;
    PX_CUDA_CHECK(cudaMalloc(&hb, rn * 2));
    /* h in fp32, then bf16 (the projections' default output type) */
    for (int round = 0; round < 8; round++) {
        int modulated = !(round & 1), hbf = (round >> 1) & 1, xbf = round >> 2;
        const float *mod = d[B_MOD];
        const float *gate = modulated ? mod + n : NULL, *mul = modulated ? mod + 2 * n : NULL;
        float eps = 1e-5f;
        memcpy(h[B_X2], h[B_X1], rn * 4);
        for (int i = B_X1; i <= B_MOD; i++)
            PX_CUDA_CHECK(cudaMemcpy(d[i], h[i], cnt[i] * esz[i], cudaMemcpyHostToDevice));
        PX_CUDA_LAUNCH_CHECK(zc_f32_to_bf16(NULL, d[B_H], hb, rn));
        PX_CUDA_LAUNCH_CHECK(zc_f32_to_bf16(NULL, d[B_X1], d[B_XB1], rn));
        PX_CUDA_LAUNCH_CHECK(zc_f32_to_bf16(NULL, d[B_X2], d[B_XB2], rn));
        const void *hv = hbf ? hb : d[B_H];
        void *x1 = xbf ? d[B_XB1] : d[B_X1], *x2 = xbf ? d[B_XB2] : d[B_X2];
        PX_CUDA_LAUNCH_CHECK(zc_gated_residual(NULL, x1, xbf, n, hv, hbf, n, rows, n, d[B_WH], eps,
                                               gate, 4 * n, rpi));
        PX_CUDA_LAUNCH_CHECK(
            zc_rmsnorm_mod(NULL, x1, xbf, n, rows, n, d[B_W], eps, mul, 4 * n, rpi, d[B_Y1], n));
        PX_CUDA_LAUNCH_CHECK(zc_gated_residual_norm(NULL, x2, xbf, n, hv, hbf, n, rows, n, d[B_WH],
                                                    eps, gate, 4 * n, rpi, d[B_W], mul, 4 * n,
                                                    d[B_Y2], n, NULL));
        PX_CUDA_CHECK(cudaDeviceSynchronize());
        int xa = xbf ? B_XB1 : B_X1, xb = xbf ? B_XB2 : B_X2;
        const int back[] = {xa, xb, B_Y1, B_Y2};
        for (int k = 0; k < 4; k++)
            PX_CUDA_CHECK(cudaMemcpy(h[back[k]], d[back[k]], cnt[back[k]] * esz[back[k]],
                                     cudaMemcpyDeviceToHost));
        c->x_diff += count_diff(h[xa], h[xb], rn, esz[xa]);
        c->y_diff += count_diff(h[B_Y1], h[B_Y2], rn, 2);
        /* h[B_X1] may hold a result now: new inputs for the next round. */
        for (size_t k = 0; k < rn; k++) ((float *)h[B_X1])[k] = rnd(&s);
    }
fail:
    for (int i = 0; i < B_N; i++) {
        if (d[i]) cudaFree(d[i]);
        free(h[i]);
    }
    if (hb) cudaFree(hb);
    return rc;
}

/* Counts where the wide path's x (xa) and y (ya) and the per-value
 * path's (xb, yb) are apart: a rounding (row_near) or more (row_far). */
static void count_row_diffs(zi_cuda_kernels_case *c, const float *xa, const float *xb,
                            const uint16_t *ya, const uint16_t *yb, size_t rn)
{
    for (size_t k = 0; k < rn; k++) {
        /* x0 + gate · v with |x0|, |gate|, |v| of a few units: 1e-5 is
         * ~100 fp32 steps of the update, far under any real mistake. */
        float dx = fabsf(xa[k] - xb[k]);
        int ys = abs((int)(ya[k] & 0x7fffu) - (int)(yb[k] & 0x7fffu));
        if ((ya[k] ^ yb[k]) & 0x8000u) ys = (ya[k] | yb[k]) & 0x7fffu ? 2 : 0;
        int far = dx > 1e-5f * (1.0f + fabsf(xa[k])) || ys > 1;
        c->row_far += far;
        c->row_near += !far && (dx > 0 || ys == 1);
    }
}

/* The fused residual + norm through the wide kernel (16-byte aligned
 * rows) and the per-value one (x and y one element further), same inputs:
 * their norms add in other orders, so x may move by an fp32 rounding of
 * its update and y by one bf16 step; more is a bug in one of them. With
 * an fp32 h, then a bf16 one (8-byte loads in the wide kernel). */
static int row_paths(zi_cuda_kernels_case *c, char *err, size_t errlen)
{
    int rc = 0, rows = c->rows, n = c->n, rpi = c->rows_per_item;
    size_t rn = (size_t)rows * n, nmod = (size_t)((rows + rpi - 1) / rpi) * 4 * n;
    size_t fl = 2 * (rn + 4) + rn + 2 * (size_t)n + nmod;
    float *hf = malloc(fl * 4), *xa = malloc(rn * 4), *xb = malloc(rn * 4), *dev = NULL;
    uint16_t *ya = malloc(rn * 2), *yb = malloc(rn * 2), *hb = NULL;
    char *dy = NULL;
    uint32_t s = c->seed ^ 0x27d4eb2fu;
    if (!hf || !xa || !xb || !ya || !yb) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t k = 0; k < fl; k++) hf[k] = rnd(&s);
    PX_CUDA_CHECK(cudaMalloc((void **)&dev, fl * 4));
    PX_CUDA_CHECK(cudaMalloc((void **)&dy, 2 * (rn + 8) * 2));
    /* dev: x (aligned) | x (one further) | h | wh | w | mod */
    float *x1 = dev, *x2 = dev + rn + 4 + 1, *h = dev + 2 * (rn + 4), *wh = h + rn, *w = wh + n;
    float *mod = w + n;
    memcpy(hf + rn + 4 + 1, hf, rn * 4); /* the same x in both */
    PX_CUDA_CHECK(cudaMemcpy(dev, hf, fl * 4, cudaMemcpyHostToDevice));
    uint16_t *y1 = (uint16_t *)dy, *y2 = (uint16_t *)dy + rn + 8 + 1;
    PX_CUDA_CHECK(cudaMalloc((void **)&hb, rn * 2));
    PX_CUDA_LAUNCH_CHECK(zc_f32_to_bf16(NULL, h, hb, rn));
    c->row_far = c->row_near = 0;
    for (int hbf = 0; hbf < 2; hbf++) {
        if (hbf) /* x was updated in place: both copies from the start again */
            PX_CUDA_CHECK(cudaMemcpy(dev, hf, 2 * (rn + 4) * 4, cudaMemcpyHostToDevice));
        for (int path = 0; path < 2; path++)
            PX_CUDA_LAUNCH_CHECK(zc_gated_residual_norm(
                NULL, path ? x2 : x1, 0, n, hbf ? (const void *)hb : h, hbf, n, rows, n, wh, 1e-5f,
                mod + n, 4 * n, rpi, w, mod + 2 * n, 4 * n, path ? y2 : y1, n, NULL));
        PX_CUDA_CHECK(cudaDeviceSynchronize());
        PX_CUDA_CHECK(cudaMemcpy(xa, x1, rn * 4, cudaMemcpyDeviceToHost));
        PX_CUDA_CHECK(cudaMemcpy(xb, x2, rn * 4, cudaMemcpyDeviceToHost));
        PX_CUDA_CHECK(cudaMemcpy(ya, y1, rn * 2, cudaMemcpyDeviceToHost));
        PX_CUDA_CHECK(cudaMemcpy(yb, y2, rn * 2, cudaMemcpyDeviceToHost));
        count_row_diffs(c, xa, xb, ya, yb, rn);
    }
fail:
    if (dev) cudaFree(dev);
    if (dy) cudaFree(dy);
    if (hb) cudaFree(hb);
    free(hf), free(xa), free(xb), free(ya), free(yb);
    return rc;
}

/* SwiGLU on the same rows twice: from a 16-byte aligned base (the 8-wide
 * path) and from a base one element further (the per-element path). */
static int swiglu(zi_cuda_kernels_case *c, char *err, size_t errlen)
{
    int rc = 0, rows = c->rows, n = c->n;
    size_t cnt = (size_t)rows * 2 * n;
    uint16_t *h = malloc(cnt * 2), *a = malloc(cnt * 2), *b = malloc(cnt * 2);
    char *d1 = NULL, *d2 = NULL;
    uint32_t s = c->seed ^ 0x9e3779b9u;
    if (!h || !a || !b) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
        goto fail;
    }
    fill_bf16(h, cnt, &s, 3.0f);
    PX_CUDA_CHECK(cudaMalloc((void **)&d1, cnt * 2));
    PX_CUDA_CHECK(cudaMalloc((void **)&d2, cnt * 2 + 16));
    PX_CUDA_CHECK(cudaMemcpy(d1, h, cnt * 2, cudaMemcpyHostToDevice));
    PX_CUDA_CHECK(cudaMemcpy(d2 + 2, h, cnt * 2, cudaMemcpyHostToDevice));
    PX_CUDA_LAUNCH_CHECK(zc_swiglu(NULL, d1, 2 * n, rows, n));
    PX_CUDA_LAUNCH_CHECK(zc_swiglu(NULL, d2 + 2, 2 * n, rows, n));
    PX_CUDA_CHECK(cudaDeviceSynchronize());
    PX_CUDA_CHECK(cudaMemcpy(a, d1, cnt * 2, cudaMemcpyDeviceToHost));
    PX_CUDA_CHECK(cudaMemcpy(b, d2 + 2, cnt * 2, cudaMemcpyDeviceToHost));
    c->swiglu_diff = count_diff(a, b, cnt, 2);
    /* Each output must have been written: an input left as it was would
     * mean rows or columns the kernel skipped (both paths alike). */
    long same = 0;
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < n; k++) same += a[(size_t)r * 2 * n + k] == h[(size_t)r * 2 * n + k];
    if (same > (long)rows * n / 4) c->swiglu_diff += same;
fail:
    if (d1) cudaFree(d1);
    if (d2) cudaFree(d2);
    free(h);
    free(a);
    free(b);
    return rc;
}

/* Device memory for fp8_outputs, carved: x (3 copies), h, wh, w, mod (fp32
 * rows x n / n / n / items x 4n), y (bf16), g (bf16 rows x 2n, 2 copies),
 * q (3 x rows x ld bytes), sc (3 x rows). */
typedef struct q8_mem {
    float *x[3], *h, *wh, *w, *mod, *sc[3];
    uint16_t *y, *g[2];
    uint8_t *q[3];
} q8_mem;

static size_t q8_carve(const zi_cuda_kernels_case *c, char *base, q8_mem *m)
{
    size_t rn = (size_t)c->rows * c->n, ld = (size_t)zc_fp8_ld(c->n);
    size_t items = (size_t)(c->rows + c->rows_per_item - 1) / c->rows_per_item, at = 0;
#define TAKE(ptr, bytes)                                                                           \
    (ptr = (void *)(base ? base + at : NULL), at += ((bytes) + 255) / 256 * 256)
    for (int i = 0; i < 3; i++)
        TAKE(m->x[i], rn * 4), TAKE(m->q[i], c->rows * ld), TAKE(m->sc[i], (size_t)c->rows * 4);
    TAKE(m->h, rn * 4), TAKE(m->wh, (size_t)c->n * 4), TAKE(m->w, (size_t)c->n * 4);
    TAKE(m->mod, items * 4 * c->n * 4), TAKE(m->y, rn * 2);
    TAKE(m->g[0], rn * 4), TAKE(m->g[1], rn * 4);
#undef TAKE
    return at;
}

/* Bytes of a and b apart, both on the device (n bytes). */
static int dev_diff(const void *a, const void *b, size_t n, long *diff, char *err, size_t errlen)
{
    int rc = 0;
    char *ha = malloc(n), *hb = malloc(n);
    if (!ha || !hb) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
        goto fail;
    }
    PX_CUDA_CHECK(cudaMemcpy(ha, a, n, cudaMemcpyDeviceToHost));
    PX_CUDA_CHECK(cudaMemcpy(hb, b, n, cudaMemcpyDeviceToHost));
    *diff += count_diff(ha, hb, n, 1);
fail:
    free(ha), free(hb);
    return rc;
}

/* The fp8 copies the fused kernels write (zc_q8) against the bf16 output
 * quantized after (zc_fp8_quant_rows): the same bytes and scales. The
 * residual + norm with y and q8, then q8 alone (x must move alike);
 * SwiGLU keeping its bf16 result (which must equal zc_swiglu's), then not. */
static int fp8_outputs(zi_cuda_kernels_case *c, char *err, size_t errlen)
{
    int rc = 0, rows = c->rows, n = c->n, rpi = c->rows_per_item, ld = zc_fp8_ld(n);
    size_t rn = (size_t)rows * n, bytes = q8_carve(c, NULL, &(q8_mem){0});
    char *dev = NULL;
    float *hf = malloc(bytes);
    uint32_t s = c->seed ^ 0x85ebca6bu;
    q8_mem m;
    c->q8_diff = 0;
    if (!hf) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    for (size_t k = 0; k < bytes / 4; k++) hf[k] = rnd(&s);
    PX_CUDA_CHECK(cudaMalloc((void **)&dev, bytes));
    PX_CUDA_CHECK(cudaMemcpy(dev, hf, bytes, cudaMemcpyHostToDevice));
    q8_carve(c, dev, &m);
    PX_CUDA_CHECK(cudaMemcpy(m.x[1], m.x[0], rn * 4, cudaMemcpyDeviceToDevice));
    PX_CUDA_CHECK(cudaMemcpy(m.x[2], m.x[0], rn * 4, cudaMemcpyDeviceToDevice));
    PX_CUDA_LAUNCH_CHECK(zc_f32_to_bf16(NULL, m.h, m.g[0], rn)); /* h in bf16, in g[0] */
    for (int v = 0; v < 3; v++) { /* v 0: the reference; 1: y and q8; 2: q8 alone */
        zc_q8 q = {.q = m.q[v], .scale = m.sc[v], .ld = ld};
        PX_CUDA_LAUNCH_CHECK(zc_gated_residual_norm(
            NULL, m.x[v], 0, n, m.g[0], 1, n, rows, n, m.wh, 1e-5f, m.mod + n, 4 * n, rpi, m.w,
            m.mod + 2 * n, 4 * n, v == 2 ? NULL : m.y, n, v ? &q : NULL));
        if (!v) PX_CUDA_LAUNCH_CHECK(zc_fp8_quant_rows(NULL, m.y, n, rows, n, ld, m.q[0], m.sc[0]));
    }
    for (int v = 1; v < 3 && !rc; v++)
        if ((rc = dev_diff(m.q[0], m.q[v], (size_t)rows * ld, &c->q8_diff, err, errlen)) ||
            (rc = dev_diff(m.sc[0], m.sc[v], (size_t)rows * 4, &c->q8_diff, err, errlen)) ||
            (rc = dev_diff(m.x[0], m.x[v], rn * 4, &c->q8_diff, err, errlen)))
            goto fail;
    /* SwiGLU: g[0] through zc_swiglu then quantized, g[1] fused (kept,
     * then not); gh: their input (bf16 rows x 2n), in hf's room */
    uint16_t *gh = (uint16_t *)hf;
    fill_bf16(gh, 2 * rn, &s, 3.0f);
    PX_CUDA_CHECK(cudaMemcpy(m.g[0], gh, rn * 4, cudaMemcpyHostToDevice));
    PX_CUDA_CHECK(cudaMemcpy(m.g[1], gh, rn * 4, cudaMemcpyHostToDevice));
    PX_CUDA_LAUNCH_CHECK(zc_swiglu(NULL, m.g[0], 2 * n, rows, n));
    PX_CUDA_LAUNCH_CHECK(zc_fp8_quant_rows(NULL, m.g[0], 2 * n, rows, n, ld, m.q[0], m.sc[0]));
    for (int keep = 1; keep >= 0 && !rc; keep--) {
        zc_q8 q = {.q = m.q[1 + keep], .scale = m.sc[1 + keep], .ld = ld};
        PX_CUDA_LAUNCH_CHECK(zc_fp8_swiglu(NULL, m.g[1], 2 * n, rows, n, keep, &q));
        if ((rc = dev_diff(m.q[0], q.q, (size_t)rows * ld, &c->q8_diff, err, errlen)) ||
            (rc = dev_diff(m.sc[0], q.scale, (size_t)rows * 4, &c->q8_diff, err, errlen)) ||
            (keep && (rc = dev_diff(m.g[0], m.g[1], rn * 4, &c->q8_diff, err, errlen))))
            goto fail;
        /* the kept result over the gate half: g[1] again from the start */
        PX_CUDA_CHECK(cudaMemcpy(m.g[1], gh, rn * 4, cudaMemcpyHostToDevice));
    }
fail:
    if (dev) cudaFree(dev);
    free(hf);
    return rc;
}

/* q/k norm + RoPE on the k third of rows x 3n: 8-wide (a block a row)
 * from a 16-byte aligned base, per element from a base one element
 * further. */
static int qknorm(zi_cuda_kernels_case *c, char *err, size_t errlen)
{
    /* period 0 as the DiT calls it; 7 to take rows modulo a table. */
    int rc = 0, rows = c->rows, n = c->n, hd = n % 128 ? n : 128, period = c->seed & 1 ? 7 : 0;
    size_t cnt = (size_t)rows * 3 * n;
    uint16_t *h = malloc(cnt * 2), *a = malloc(cnt * 2), *b = malloc(cnt * 2);
    int tab = period ? period : rows;
    float *hw = malloc((size_t)hd * 4), *hcs = malloc((size_t)tab * hd * 4);
    char *d1 = NULL, *d2 = NULL;
    float *dw = NULL, *dcs = NULL;
    uint32_t s = c->seed ^ 0x85ebca6bu;
    if (!h || !a || !b || !hw || !hcs) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
        goto fail;
    }
    fill_bf16(h, cnt, &s, 2.0f);
    for (int k = 0; k < hd; k++) hw[k] = 1.0f + 0.25f * rnd(&s);
    for (size_t k = 0; k < (size_t)tab * hd; k++) hcs[k] = 0.5f * rnd(&s);
    PX_CUDA_CHECK(cudaMalloc((void **)&d1, cnt * 2));
    PX_CUDA_CHECK(cudaMalloc((void **)&d2, cnt * 2 + 16));
    PX_CUDA_CHECK(cudaMalloc((void **)&dw, (size_t)hd * 4));
    PX_CUDA_CHECK(cudaMalloc((void **)&dcs, (size_t)tab * hd * 4));
    PX_CUDA_CHECK(cudaMemcpy(d1, h, cnt * 2, cudaMemcpyHostToDevice));
    PX_CUDA_CHECK(cudaMemcpy(d2 + 2, h, cnt * 2, cudaMemcpyHostToDevice));
    PX_CUDA_CHECK(cudaMemcpy(dw, hw, (size_t)hd * 4, cudaMemcpyHostToDevice));
    PX_CUDA_CHECK(cudaMemcpy(dcs, hcs, (size_t)tab * hd * 4, cudaMemcpyHostToDevice));
    PX_CUDA_LAUNCH_CHECK(
        zc_qknorm_rope(NULL, d1, 3 * n, n, rows, n / hd, hd, dw, 1e-6f, dcs, period, 1));
    PX_CUDA_LAUNCH_CHECK(
        zc_qknorm_rope(NULL, d2 + 2, 3 * n, n, rows, n / hd, hd, dw, 1e-6f, dcs, period, 1));
    PX_CUDA_CHECK(cudaDeviceSynchronize());
    PX_CUDA_CHECK(cudaMemcpy(a, d1, cnt * 2, cudaMemcpyDeviceToHost));
    PX_CUDA_CHECK(cudaMemcpy(b, d2 + 2, cnt * 2, cudaMemcpyDeviceToHost));
    c->qk_far = c->qk_near = 0;
    for (size_t k = 0; k < cnt; k++) {
        if (a[k] == b[k]) continue;
        /* The two paths' norms round apart by an fp32 step; the rotation
         * a·cos − b·sin can cancel, so an output near 0 moves by many of its
         * own bf16 steps. The pair's scale bounds the move: one bf16 step of
         * the larger of the pair's two outputs (RoPE keeps the pair's norm). */
        float m = fmaxf(fmaxf(fabsf(zi_bf16_to_f32(a[k])), fabsf(zi_bf16_to_f32(a[k ^ 1]))),
                        fmaxf(fabsf(zi_bf16_to_f32(b[k])), fabsf(zi_bf16_to_f32(b[k ^ 1]))));
        float step = m > 0 ? ldexpf(1.0f, ilogbf(m) - 7) : 0;
        int near = fabsf(zi_bf16_to_f32(a[k]) - zi_bf16_to_f32(b[k])) <= step;
        c->qk_far += !near;
        c->qk_near += near;
    }
    /* The k third must have changed (both paths alike otherwise). */
    long same = 0;
    for (int r = 0; r < rows; r++)
        for (int k = n; k < 2 * n; k++)
            same += a[(size_t)r * 3 * n + k] == h[(size_t)r * 3 * n + k];
    if (same > (long)rows * n / 4) c->qk_far += same;
fail:
    if (d1) cudaFree(d1);
    if (d2) cudaFree(d2);
    if (dw) cudaFree(dw);
    if (dcs) cudaFree(dcs);
    free(h);
    free(a);
    free(b);
    free(hw);
    free(hcs);
    return rc;
}

/* bf16 only: GroupNorm statistics of the bf16 tensor x (hw x C) against
 * those of its fp32 copy (bf16 -> fp32 is exact, so to the bit), and fp32
 * -> bf16 against the host's rounding (zops.h); differences into *diff.
 * f32 is scratch of hw x C floats, x8 of as many bf16 values. */
static int vae_bf16_more(const void *x, int hw, int C, int G, void *f32, void *x8, uint32_t *s,
                         long *diff, char *err, size_t errlen)
{
    int rc = 0;
    size_t n = (size_t)hw * C;
    double *part = NULL;
    float *st = NULL, hs[2][64], *hf = malloc(n * 4);
    uint16_t *hb = malloc(n * 2), *db = malloc(n * 2);
    if (!hf || !hb || !db || G > 32) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
        goto fail;
    }
    PX_CUDA_CHECK(cudaMalloc((void **)&part, (size_t)256 * C * 2 * sizeof *part));
    PX_CUDA_CHECK(cudaMalloc((void **)&st, (size_t)4 * G * sizeof *st));
    PX_CUDA_LAUNCH_CHECK(zc_vae_convert(NULL, x, 1, f32, 0, n));
    PX_CUDA_LAUNCH_CHECK(zc_gn_stats(NULL, x, NULL, 1, hw, C, G, 1e-6f, 256 * C, part, st));
    PX_CUDA_LAUNCH_CHECK(
        zc_gn_stats(NULL, f32, NULL, 0, hw, C, G, 1e-6f, 256 * C, part, st + 2 * G));
    PX_CUDA_CHECK(cudaMemcpy(hs[0], st, (size_t)2 * G * 4, cudaMemcpyDeviceToHost));
    PX_CUDA_CHECK(cudaMemcpy(hs[1], st + 2 * G, (size_t)2 * G * 4, cudaMemcpyDeviceToHost));
    *diff += count_diff(hs[0], hs[1], (size_t)2 * G, 4);
    for (size_t k = 0; k < n; k++) hf[k] = rnd(s) * 1000.0f, hb[k] = zi_f32_to_bf16(hf[k]);
    PX_CUDA_CHECK(cudaMemcpy(f32, hf, n * 4, cudaMemcpyHostToDevice));
    PX_CUDA_LAUNCH_CHECK(zc_vae_convert(NULL, f32, 0, x8, 1, n));
    PX_CUDA_CHECK(cudaMemcpy(db, x8, n * 2, cudaMemcpyDeviceToHost));
    *diff += count_diff(hb, db, n, 2);
fail:
    if (part) cudaFree(part);
    if (st) cudaFree(st);
    free(hf);
    free(hb);
    free(db);
    return rc;
}

/* GroupNorm statistics of the same values from a 16-byte aligned base
 * (8 channels a thread) and from one a value further (a channel a
 * thread), with a pending bias xb: their sums add in other orders, so the
 * mean and 1/σ may be a rounding apart (1e-6 relative), never more.
 * (With PX_ZIMAGE_CUDA_FUSE=0 both are the per-value path.) */
static int gn_stats_paths(const void *x1, const void *x2, int bf, int hw, int C, int G,
                          const float *xb, long *diff, char *err, size_t errlen)
{
    int rc = 0;
    double *part = NULL;
    float *st = NULL, h[2][64];
    if (G > 32) return px_errf(err, errlen, PX_EINVAL, "kernels check: %d groups", G);
    PX_CUDA_CHECK(cudaMalloc((void **)&part, (size_t)256 * C * 2 * sizeof *part));
    PX_CUDA_CHECK(cudaMalloc((void **)&st, (size_t)4 * G * sizeof *st));
    PX_CUDA_LAUNCH_CHECK(zc_gn_stats(NULL, x1, xb, bf, hw, C, G, 1e-6f, 256 * C, part, st));
    PX_CUDA_LAUNCH_CHECK(zc_gn_stats(NULL, x2, xb, bf, hw, C, G, 1e-6f, 256 * C, part, st + 2 * G));
    PX_CUDA_CHECK(cudaMemcpy(h[0], st, (size_t)2 * G * 4, cudaMemcpyDeviceToHost));
    PX_CUDA_CHECK(cudaMemcpy(h[1], st + 2 * G, (size_t)2 * G * 4, cudaMemcpyDeviceToHost));
    for (int k = 0; k < 2 * G; k++)
        *diff += fabsf(h[0][k] - h[1][k]) > 1e-6f * fmaxf(fabsf(h[0][k]), 1e-3f);
fail:
    if (part) cudaFree(part);
    if (st) cudaFree(st);
    return rc;
}

/* The VAE kernels on hw x C values of type bf (bf16 or fp32), from a
 * 16-byte aligned base (16 bytes a thread) and from one a value further (a
 * value a thread): GroupNorm with and without SiLU, then the bias, and the
 * upsample, whose copies must also land where nearest sampling says. */
static int vae_type(zi_cuda_kernels_case *c, int bf, char *err, size_t errlen)
{
    int rc = 0, C = c->n > 512 ? 512 : c->n, hw = c->rows > 16384 ? 16384 : c->rows;
    int G = C % 32 ? 8 : 32, w = 4, h = hw / w;
    size_t es = bf ? 2 : 4, n = (size_t)hw * C, up = (size_t)4 * h * w * C;
    size_t np = (size_t)2 * G + 2 * C;
    char *hx = malloc(n * es), *a = malloc(up * es), *b = malloc(up * es);
    float *hp = malloc(np * 4);
    char *d1 = NULL, *d2 = NULL, *u1 = NULL, *u2 = NULL;
    float *dp = NULL;
    uint32_t s = c->seed ^ (bf ? 0x27d4eb2fu : 0xc2b2ae35u);
    if (!hx || !hp || !a || !b) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
        goto fail;
    }
    if (bf)
        fill_bf16((uint16_t *)hx, n, &s, 1.0f);
    else
        for (size_t k = 0; k < n; k++) ((float *)hx)[k] = rnd(&s);
    for (size_t k = 0; k < np; k++) hp[k] = rnd(&s);
    for (int g = 0; g < G; g++) hp[2 * g + 1] = 0.5f + 0.25f * hp[2 * g + 1]; /* 1/σ > 0 */
    PX_CUDA_CHECK(cudaMalloc((void **)&d1, n * es));
    PX_CUDA_CHECK(cudaMalloc((void **)&d2, n * es + 16));
    PX_CUDA_CHECK(cudaMalloc((void **)&u1, up * es));
    PX_CUDA_CHECK(cudaMalloc((void **)&u2, up * es + 16));
    PX_CUDA_CHECK(cudaMalloc((void **)&dp, np * 4));
    PX_CUDA_CHECK(cudaMemcpy(dp, hp, np * 4, cudaMemcpyHostToDevice));
    const float *stats = dp, *gamma = dp + 2 * G, *beta = gamma + C;
    char *x1 = d1, *x2 = d2 + es, *y1 = u1, *y2 = u2 + es;
    /* silu 1 also with a pending bias (gamma's values) and the bias into
     * another buffer (the residual copy's form) */
    for (int silu = 0; silu < 2; silu++) {
        const float *xb = silu ? gamma : NULL;
        PX_CUDA_CHECK(cudaMemcpy(x1, hx, n * es, cudaMemcpyHostToDevice));
        PX_CUDA_CHECK(cudaMemcpy(x2, hx, n * es, cudaMemcpyHostToDevice));
        PX_CUDA_LAUNCH_CHECK(zc_gn_apply(NULL, x1, xb, bf, hw, C, G, stats, gamma, beta, silu, y1));
        PX_CUDA_LAUNCH_CHECK(zc_gn_apply(NULL, x2, xb, bf, hw, C, G, stats, gamma, beta, silu, y2));
        PX_CUDA_LAUNCH_CHECK(zc_bias_add(NULL, y1, silu ? x1 : y1, bf, beta, (size_t)hw, C));
        PX_CUDA_LAUNCH_CHECK(zc_bias_add(NULL, y2, silu ? x2 : y2, bf, beta, (size_t)hw, C));
        PX_CUDA_CHECK(cudaMemcpy(a, y1, n * es, cudaMemcpyDeviceToHost));
        PX_CUDA_CHECK(cudaMemcpy(b, y2, n * es, cudaMemcpyDeviceToHost));
        c->vae_diff += count_diff(a, b, n, es);
        PX_CUDA_CHECK(cudaMemcpy(a, x1, n * es, cudaMemcpyDeviceToHost));
        PX_CUDA_CHECK(cudaMemcpy(b, x2, n * es, cudaMemcpyDeviceToHost));
        c->vae_diff += count_diff(a, b, n, es);
    }
    if (bf && (rc = vae_bf16_more(x1, hw, C, G, y1, y2, &s, &c->vae_diff, err, errlen))) goto fail;
    /* both from hx again (the bias may have written them) */
    PX_CUDA_CHECK(cudaMemcpy(x1, hx, n * es, cudaMemcpyHostToDevice));
    PX_CUDA_CHECK(cudaMemcpy(x2, hx, n * es, cudaMemcpyHostToDevice));
    if ((rc = gn_stats_paths(x1, x2, bf, hw, C, G, gamma, &c->vae_diff, err, errlen))) goto fail;
    PX_CUDA_LAUNCH_CHECK(zc_upsample2(NULL, x1, bf, h, w, C, y1));
    PX_CUDA_LAUNCH_CHECK(zc_upsample2(NULL, x2, bf, h, w, C, y2));
    PX_CUDA_CHECK(cudaMemcpy(a, y1, up * es, cudaMemcpyDeviceToHost));
    PX_CUDA_CHECK(cudaMemcpy(b, y2, up * es, cudaMemcpyDeviceToHost));
    c->vae_diff += count_diff(a, b, up, es);
    /* Nearest: output pixel (2, 3)'s channels are input pixel (1, 1)'s. */
    if (h >= 2 &&
        memcmp(a + ((size_t)2 * 2 * w + 3) * C * es, hx + ((size_t)w + 1) * C * es, (size_t)C * es))
        c->vae_diff += 1;
fail:
    if (d1) cudaFree(d1);
    if (d2) cudaFree(d2);
    if (u1) cudaFree(u1);
    if (u2) cudaFree(u2);
    if (dp) cudaFree(dp);
    free(hx);
    free(hp);
    free(a);
    free(b);
    return rc;
}

/* The mid attention's bf16 softmax (zc_vae_softmax_bf16) against the fp32
 * one rounded here, on rows of n scores: rows of n % 4 == 0 (one read into
 * registers; its sums add in another order, so a probability may be the
 * next bf16 value, never further) and others (the fp32 kernel and a
 * conversion: to the bit). Differences into *diff. */
static int vae_softmax(int rows, int n, uint32_t *s, long *diff, char *err, size_t errlen)
{
    int rc = 0;
    size_t cnt = (size_t)rows * n;
    float *h = malloc(cnt * 4), *d = NULL;
    uint16_t *a = malloc(cnt * 2), *dy = NULL;
    if (!h || !a) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t k = 0; k < cnt; k++) h[k] = rnd(s) * 20.0f;
    PX_CUDA_CHECK(cudaMalloc((void **)&d, cnt * 4));
    PX_CUDA_CHECK(cudaMalloc((void **)&dy, cnt * 2));
    PX_CUDA_CHECK(cudaMemcpy(d, h, cnt * 4, cudaMemcpyHostToDevice));
    PX_CUDA_LAUNCH_CHECK(zc_vae_softmax_bf16(NULL, d, rows, n, 0.3f, dy));
    PX_CUDA_CHECK(cudaMemcpy(d, h, cnt * 4, cudaMemcpyHostToDevice));
    PX_CUDA_LAUNCH_CHECK(zc_softmax_rows(NULL, d, rows, n, 0.3f));
    PX_CUDA_CHECK(cudaMemcpy(a, dy, cnt * 2, cudaMemcpyDeviceToHost));
    PX_CUDA_CHECK(cudaMemcpy(h, d, cnt * 4, cudaMemcpyDeviceToHost));
    for (size_t k = 0; k < cnt; k++) {
        int want = zi_f32_to_bf16(h[k]), got = a[k]; /* probabilities: >= 0, bits ordered */
        *diff += n % 4 ? got != want : abs(got - want) > 1;
    }
fail:
    if (d) cudaFree(d);
    if (dy) cudaFree(dy);
    free(h);
    free(a);
    return rc;
}

/* Both element types; at most 16,384 x 512 values, at least 4 rows (the
 * upsample's image is rows / 4 pixels high); the bf16 softmax at the
 * longest row it reads at once, a short one and one of n % 4 != 0. */
static int vae(zi_cuda_kernels_case *c, char *err, size_t errlen)
{
    c->vae_diff = 0;
    if (c->rows < 4) return 0;
    uint32_t s = c->seed ^ 0x165667b1u;
    int rc = vae_type(c, 0, err, errlen);
    if (!rc) rc = vae_type(c, 1, err, errlen);
    if (!rc) rc = vae_softmax(4, 16384, &s, &c->vae_diff, err, errlen);
    if (!rc) rc = vae_softmax(8, 1000, &s, &c->vae_diff, err, errlen);
    return rc ? rc : vae_softmax(3, 4093, &s, &c->vae_diff, err, errlen);
}

int zi_cuda_kernels_check(zi_cuda_kernels_case *c, char *err, size_t errlen)
{
    int n_dev = 0, rc = 0;
    if (c->rows < 1 || c->n < 8 || c->n % 8 || c->rows_per_item < 1)
        return px_errf(err, errlen, PX_EINVAL, "kernels check: rows %d, n %d, rows per item %d",
                       c->rows, c->n, c->rows_per_item);
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev < 1) {
        (void)cudaGetLastError();
        return px_errf(err, errlen, PX_EUNSUP, "no CUDA device");
    }
    if (!zc_wide_kernels())
        return px_errf(err, errlen, PX_EUNSUP,
                       "PX_ZIMAGE_CUDA_FUSE=0 turns the wide kernels off: nothing to compare");
    PX_CUDA_CHECK(cudaSetDevice(0));
    if ((rc = residual_norm(c, err, errlen)) || (rc = row_paths(c, err, errlen)) ||
        (rc = swiglu(c, err, errlen)) || (rc = qknorm(c, err, errlen)) ||
        (rc = fp8_outputs(c, err, errlen)))
        return rc;
    rc = vae(c, err, errlen);
fail:
    return rc;
}
