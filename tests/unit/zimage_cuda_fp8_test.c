/*
 * zimage_cuda_fp8_test.c — the Z-Image CUDA backend's fp8 path and fused
 * kernels (split from zimage_cuda_test.c, whose helpers it shares through
 * zimage_cuda_util.h):
 *   - one fp8 GEMM against a host reference built from the device's own
 *     quantized operands, which must be the host rule's (zc_fp8.h) bit for
 *     bit, at odd shapes and at the DiT's K;
 *   - the fp8 engine's stages against the fp32 reference, with bars from
 *     tools/zimage_fp8_emulate.py (t_fp8_stages_against_reference); the
 *     tiny model's heads (32) are not cuDNN's, so its fp8 attention runs at
 *     full size only (PX_ZIMAGE_MODEL: dit.out0 0.174, final latent 0.141,
 *     24 levels against bars of 0.24 / 0.16 / 40 on an H100, 2026-12-06),
 *     and there for items of 4,096 tokens or more (PX_ZIMAGE_SIZE=1024x1024;
 *     zc_dit.c ATTN8_MIN_TOKENS);
 *     the attention's own check is zattn_cuda_bench check;
 *   - the fused and wide kernels against the ones they replace.
 * Skipped on a GPU without e4m3 (fp8) and without a GPU (every test says
 * why and passes). `make test-gpu` runs it on a GPU machine.
 */
#include "zimage_cuda_util.h"

#include "core/buf.h"
#include "core/err.h"
#include "engine/engine.h"
#include "engine/zimage/cuda/zc_fp8.h"
#include "engine/zimage/zimage_cuda.h"
#include "engine/zimage/zops.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ FP8 */

/* The fp8 engine (the DiT blocks' linears in e4m3, zc_fp8.h) against the
 * same reference, and a precision it lacks refused. The bars are twice
 * the worst that tools/zimage_fp8_emulate.py measured with the same
 * quantization in the PyTorch reference (tiny model, 32x64, 3 steps, 12
 * prompts; docs/benchmarks/zimage-cuda.md "FP8"): dit.out0 6.1e-2 -> 0.12,
 * final.latent 3.4e-2 -> 8e-2, image 9 levels -> 20 (of the CPU engine's
 * too); the text encoder is bf16 (bf16's bar), the VAE fp32 (1 level).
 * On the tiny model w1|w3 (340 rows, not a multiple of 16) stays bf16.
 * Full size: twice again (a 30-layer emulation measured dit.out0 0.13). */
TEST(t_fp8_stages_against_reference)
{
    px_engine *e = open_cuda_fp32_vae("fp8");
    if (!e) return;
    char err[512] = "";
    px_engine *bad = NULL;
    px_engine_config cfg = {.weights = g_dir, .device = "cuda", .precision = "fp16"};
    T_EQ_INT(px_engine_open("zimage", &cfg, &bad, err, sizeof err), PX_EUNSUP);
    T_CONTAINS(err, "fp8");
    px_buf b;
    px_buf_init(&b, 1 << 20);
    T_EQ_INT(px_engine_describe(e, &b), 0);
    T_TRUE(b.data && strstr((const char *)b.data, "\"precision\":\"fp8\""));
    /* the tiny model's heads (32) are not cuDNN's: the description says so */
    T_TRUE(strstr((const char *)b.data, g_full ? "\"fp8_attention\":\"enabled for items of 4096"
                                               : "\"fp8_attention\":\"off: head size"));
    /* fast unless PX_ZIMAGE_CUDA_FP8_FASTACC=0 (gpu_session's fastacc step) */
    const char *fa = getenv("PX_ZIMAGE_CUDA_FP8_FASTACC");
    T_TRUE(strstr((const char *)b.data, fa && !strcmp(fa, "0") ? "\"fp8_accumulation\":\"fp32\""
                                                               : "\"fp8_accumulation\":\"fast\""));
    const char *rs = getenv("PX_ZIMAGE_CUDA_RESID"); /* gpu_session's resid step */
    T_TRUE(strstr((const char *)b.data, rs && !strcmp(rs, "fp32") ? "\"residual_stream\":\"fp32\""
                                                                  : "\"residual_stream\":\"bf16\""));
    px_buf_free(&b);
    stage_errs r;
    stage_errors(e, "fp8", &r);
    double k = g_full ? 2.0 : 1.0;
    T_CMP_DBL(r.text, <=, 3e-2);
    T_CMP_DBL(r.dit, <=, 0.12 * k);
    T_CMP_DBL(r.latent, <=, 8e-2 * k);
    T_CMP_INT(r.levels, <=, (int)(20 * k));
    T_CMP_INT(r.cpu, <=, (int)(20 * k));
    T_CMP_INT(r.vae, <=, 1);
    px_engine_close(e);
}

/* One fp8 GEMM's shape: M tokens (x rows of stride ldx), N outputs, K. */
typedef struct fp8_shape {
    int M, N, K, ldx, bias, acc, f32;
    float alpha;
} fp8_shape;

/* Mismatches between the device's quantized rows (q: rows x ld codes,
 * scales sc) of bf16 x [rows, ldx] and the host rule's (zc_fp8.h). */
static int fp8_mismatches(const uint16_t *x, int ldx, int rows, int K, const uint8_t *q,
                          const float *sc)
{
    int ld = zc_fp8_ld(K), bad = 0;
    float *xf = malloc((size_t)K * sizeof *xf);
    uint8_t *qh = malloc((size_t)ld);
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < K; k++) xf[k] = zi_bf16_to_f32(x[(size_t)r * ldx + k]);
        bad += zc_fp8_quant_row(xf, K, ld, qh) != sc[r];
        for (int k = 0; k < ld; k++) bad += qh[k] != q[(size_t)r * ld + k];
    }
    free(xf), free(qh);
    return bad;
}

/* Random bf16 rows (ld elements, K used) of varied amplitude: row 0 zeros
 * (scale 1), row 1 one outlier among tiny values (they land in e4m3's
 * subnormals). */
static void fp8_rows(uint16_t *x, int rows, int ld, int K, unsigned seed)
{
    float *v = malloc((size_t)ld * sizeof *v);
    for (int r = 0; r < rows; r++) {
        fill(v, (size_t)ld, seed + (unsigned)r);
        float amp = r == 0 ? 0.0f : r == 1 ? 1e-3f : ldexpf(1.0f, r % 9 - 4);
        for (int k = 0; k < ld; k++) x[(size_t)r * ld + k] = zi_f32_to_bf16(amp * v[k]);
        if (r == 1) x[(size_t)r * ld + K / 2] = zi_f32_to_bf16(50.0f);
    }
    free(v);
}

/* zi_cuda_fp8_gemm_check on shape f against the host: the quantized
 * operands bit for bit, y against the product of those operands summed in
 * double (+ bias, + y before). Returns max|diff|/max|ref|, or -1 (skipped:
 * no GPU, or one without fp8). */
static double fp8_gemm_case(const fp8_shape *f)
{
    int ld = zc_fp8_ld(f->K);
    size_t M = (size_t)f->M, N = (size_t)f->N;
    uint16_t *x = malloc(M * f->ldx * 2), *w = malloc(N * f->K * 2), *yb = malloc(M * N * 2);
    float *bias = malloc(N * 4), *y0 = malloc(M * N * 4), *y = malloc(M * N * 4);
    zi_cuda_fp8_case c = {.M = f->M,
                          .N = f->N,
                          .K = f->K,
                          .ldx = f->ldx,
                          .x = x,
                          .w = w,
                          .bias = f->bias ? bias : NULL,
                          .alpha = f->alpha,
                          .accumulate = f->acc,
                          .y_f32 = f->f32,
                          .y = f->f32 ? (void *)y : yb,
                          .x8 = malloc(M * ld),
                          .w8 = malloc(N * ld),
                          .x_scale = malloc(M * 4),
                          .w_scale = malloc(N * 4)};
    fp8_rows(x, f->M, f->ldx, f->K, 3), fp8_rows(w, f->N, f->K, f->K, 1000);
    fill(bias, N, 7), fill(y0, M * N, 8);
    for (size_t i = 0; i < M * N; i++) yb[i] = zi_f32_to_bf16(y0[i]), y[i] = y0[i];
    char err[512] = "";
    int rc = zi_cuda_fp8_gemm_check(&c, err, sizeof err);
    double worst = -1;
    if (rc == PX_EUNSUP) {
        printf("    skipped: %s\n", err);
        goto done;
    }
    if (rc) px_tfail(__FILE__, __LINE__, "fp8 GEMM: %s", err);
    T_EQ_INT(fp8_mismatches(x, f->ldx, f->M, f->K, c.x8, c.x_scale), 0);
    T_EQ_INT(fp8_mismatches(w, f->K, f->N, f->K, c.w8, c.w_scale), 0);
    double d = 0, m = 0, alpha = f->alpha != 0 ? f->alpha : 1;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < ld; k++)
                s += (double)zc_fp8_to_float(c.x8[i * ld + k]) * zc_fp8_to_float(c.w8[j * ld + k]);
            double ref =
                alpha * c.x_scale[i] * c.w_scale[j] * s + (f->bias ? bias[j] : 0) +
                (f->acc ? (f->f32 ? y0[i * N + j] : zi_bf16_to_f32(zi_f32_to_bf16(y0[i * N + j])))
                        : 0);
            double got = f->f32 ? y[i * N + j] : zi_bf16_to_f32(((uint16_t *)c.y)[i * N + j]);
            d = fabs(got - ref) > d ? fabs(got - ref) : d;
            m = fabs(ref) > m ? fabs(ref) : m;
        }
    worst = d / m;
done:
    free(x), free(w), free(yb), free(bias), free(y0), free(y);
    free(c.x8), free(c.w8), free(c.x_scale), free(c.w_scale);
    return worst;
}

/* zc_gemm's fp8 path against the host: the product of the quantized
 * operands differs only by the summation order (fp32 output: 1e-3 of
 * max|ref|) and, for bf16 output, its rounding (2^-9 of a value, twice
 * with a bias: the GEMM's, then the bias kernel's; 5e-3). Shapes: the
 * tiny DiT's w2 (K 170 padded to 176, x a strided slice, odd M), bias and
 * accumulate in both output types, one token, a wider K, the full DiT's
 * K (3840 and 10240: the wide quantizer several chunks a thread). */
TEST(t_fp8_gemm_against_host)
{
    char why[300];
    if (zi_cuda_probe(why, sizeof why)) {
        printf("    skipped: %s\n", why);
        return;
    }
    const fp8_shape cases[] = {
        {.M = 37, .N = 64, .K = 170, .ldx = 340},
        {.M = 33, .N = 192, .K = 64, .ldx = 64, .bias = 1, .acc = 1},
        {.M = 1, .N = 48, .K = 256, .ldx = 300, .bias = 1, .acc = 1, .f32 = 1, .alpha = 0.5f},
        {.M = 129, .N = 96, .K = 512, .ldx = 512, .f32 = 1},
        /* the DiT's K (dim, ffn_hidden): the wide quantizer's 2 and 5
         * chunks a thread */
        {.M = 17, .N = 32, .K = 3840, .ldx = 3840, .bias = 1},
        {.M = 5, .N = 16, .K = 10240, .ldx = 10240, .acc = 1, .f32 = 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const fp8_shape *f = &cases[i];
        double e = fp8_gemm_case(f);
        if (e < 0) return;
        printf("  fp8 GEMM M %d N %d K %d (ldx %d)%s%s, %s out: %.2e of max|ref|\n", f->M, f->N,
               f->K, f->ldx, f->bias ? ", bias" : "", f->acc ? ", accumulate" : "",
               f->f32 ? "fp32" : "bf16", e);
        T_CMP_DBL(e, <=, f->f32 ? 1e-3 : 5e-3);
    }
}

/* The fused element-wise kernels against the kernels they replace (to the
 * bit), at the DiT's width and at a size whose rows outnumber a grid's. */
TEST(t_fused_kernels_match)
{
    zi_cuda_kernels_case cases[] = {{.rows = 300, .n = 3840, .rows_per_item = 100, .seed = 1},
                                    {.rows = 70000, .n = 8, .rows_per_item = 35000, .seed = 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zi_cuda_kernels_case *c = &cases[i];
        char err[300];
        int rc = zi_cuda_kernels_check(c, err, sizeof err);
        if (rc == PX_EUNSUP) {
            printf("    skipped: %s\n", err);
            return;
        }
        if (rc) px_tfail(__FILE__, __LINE__, "kernels check: %s", err);
        printf("  rows %d x %d: residual+norm differs in %ld x, %ld y; SwiGLU in %ld; q/k "
               "norm + RoPE: %ld within a bf16 step of their pair, %ld more; VAE "
               "GroupNorm/bias/upsample/softmax "
               "in %ld; wide vs per-value residual+norm: %ld within a rounding, %ld more; "
               "fused fp8 outputs vs quantized bf16: %ld bytes\n",
               c->rows, c->n, c->x_diff, c->y_diff, c->swiglu_diff, c->qk_near, c->qk_far,
               c->vae_diff, c->row_near, c->row_far, c->q8_diff);
        T_EQ_INT(c->q8_diff, 0);
        T_EQ_INT(c->x_diff, 0);
        T_EQ_INT(c->y_diff, 0);
        T_EQ_INT(c->swiglu_diff, 0);
        T_EQ_INT(c->qk_far, 0);
        T_EQ_INT(c->row_far, 0); /* row_near: a row's every x moves with its norm's rounding */
        T_EQ_INT(c->vae_diff, 0);
        /* An fp32 rounding of the norm moves few bf16 values. */
        T_CMP_INT(c->qk_near, <, (long)c->rows * c->n / 100 + 1);
    }
}

TEST_MAIN(t_fp8_gemm_against_host, t_fp8_stages_against_reference, t_fused_kernels_match)
