/*
 * zc_gemm.c — cuBLASLt GEMMs for the Z-Image CUDA backend (see zc_gemm.h).
 *
 * Row-major y[M, N] = x[M, K]·W[N, K]ᵀ is, in cuBLASLt's column-major
 * terms, yᵀ (N x M, ld ldy) = op(W)(N x K) · xᵀ (K x M): A = W stored as
 * K x N with ld K and transposed, B = x stored as K x M with ld ldx. The
 * bias (one value per row of yᵀ, i.e. per output feature) is the BIAS
 * epilogue, with an fp32 bias, where y is fp32; for a bf16 y cuBLASLt
 * wants a bf16 bias (an H100, 2026-12-06: the heuristic answered "an
 * unsupported value" for the embedders' bf16 outputs of the bf16 residual
 * stream), so a kernel adds it after the GEMM, as for fp8 below (one
 * more bf16 rounding of y, one more pass over it: the embedders' only).
 *
 * FP8 is the same "TN" form, which is the one cuBLASLt's e4m3 kernels take
 * on Hopper (A transposed, B not): A = W8 (K' x N, ld K'), B = x8 (K' x M,
 * ld K'), K' = zc_fp8_ld(K) (rows padded with zeros to 16 bytes), both
 * CUDA_R_8F_E4M3 with OUTER_VEC_32F scales: A's vector has an entry per
 * row of op(A) (our output features), B's per column of B (our tokens),
 * and D[n, m] = alpha · a_scale[n] · b_scale[m] · Σ_k A·B (+ beta · C).
 * The bias is not the epilogue there: for fp8 inputs cuBLASLt wants a
 * bf16 bias for both bf16 and fp32 outputs (its type table), where our
 * biases are fp32, so a kernel adds it after the GEMM, in fp32
 * (zc_fp8_add_bias); the accumulate stays cuBLASLt's beta = 1 (C = D = y,
 * C of D's type, which the fp8 table allows for bf16 and fp32 outputs).
 * The DiT's fp8 linears use neither; the GEMM test covers both.
 *
 * Ran on an H200 (2026-12-05): zimage_cuda_test passes, tiny and full size
 * (bf16; the fp8 path's tests passed on H200 and H100s the same day).
 */
#include "engine/zimage/cuda/zc_gemm.h"

#include "core/alloc.h"
#include "core/env.h"
#include "core/err.h"
#include "engine/cuda/cuda_blas.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_plan.h"
#include "engine/zimage/cuda/zc_fp8.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct zc_gemm {
    px_cuda_ctx *ctx;
    void *ws;
    size_t ws_bytes;
    px_cuda_algos *algos;
};

/* The algorithm cache's key: everything the heuristic looks at (ints
 * only: no padding). */
typedef struct {
    int M, N, K, ldx, ldy, yt, bias, acc, f32_in, w_kn, fp8, align_x, align_w, align_y;
} gemm_key;

/* The alignment of p in bytes, up to the 256 cuBLASLt assumes unless told
 * (a slice of y or of an operand may start anywhere). */
static int align_of(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    int n = 256;
    while (n > 1 && a % (uintptr_t)n) n /= 2;
    return n;
}

int zc_gemm_create(px_cuda_ctx *c, size_t ws_bytes, zc_gemm **out, char *err, size_t errlen)
{
    int rc = 0;
    zc_gemm *g = px_xcalloc(1, sizeof *g);
    g->ctx = c;
    g->ws_bytes = ws_bytes;
    if (!c->blaslt) {
        rc = px_errf(err, errlen, PX_EINVAL, "zimage-cuda: the context has no cuBLASLt handle");
        goto fail;
    }
    PX_CUDA_CHECK(cudaMalloc(&g->ws, ws_bytes));
    g->algos = px_cuda_algos_create(sizeof(gemm_key), sizeof(cublasLtMatmulAlgo_t), 512);
    *out = g;
    return 0;
fail:
    zc_gemm_free(g);
    *out = NULL;
    return rc;
}

void zc_gemm_free(zc_gemm *g)
{
    if (!g) return;
    if (g->ws) cudaFree(g->ws);
    px_cuda_algos_destroy(g->algos);
    free(g);
}

double zc_gemm_flops(const zc_gemm_args *a)
{
    return 2.0 * a->M * (double)a->N * a->K;
}

typedef struct {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulPreference_t pref;
} gemm_descs;

static void descs_free(gemm_descs *d)
{
    if (d->pref) cublasLtMatmulPreferenceDestroy(d->pref);
    if (d->lc) cublasLtMatrixLayoutDestroy(d->lc);
    if (d->lb) cublasLtMatrixLayoutDestroy(d->lb);
    if (d->la) cublasLtMatrixLayoutDestroy(d->la);
    if (d->op) cublasLtMatmulDescDestroy(d->op);
}

/* Whether a's bias is cuBLASLt's epilogue (an fp32 bias: bf16 operands,
 * fp32 y) or zc_fp8_add_bias's, after the GEMM (the file's head says why). */
static bool bias_epilogue(const zc_gemm_args *a)
{
    return a->bias && !a->w8 && a->yt == ZC_F32;
}

/* The bias epilogue (bias_epilogue's case). */
static int set_bias(cublasLtMatmulDesc_t op, const float *bias, char *err, size_t errlen)
{
    int rc = 0;
    cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
    cudaDataType_t bt = CUDA_R_32F;
    PX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
    PX_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
    PX_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
fail:
    return rc;
}

/* The fp8 GEMMs accumulate in the tensor cores' own precision (cuBLASLt's
 * FAST_ACCUM) instead of promoting the partial sums to fp32 every few
 * k-blocks, as inference forward passes commonly do: the promotion costs
 * issue slots, and the error it saves is far under e4m3's own rounding.
 * On an H100 (2026-12-06) the DiT's fp8 GEMMs went 38.9 -> 33.8 ms a
 * 1024² step, 0.532 -> 0.504 s an image, and the fp8 gate against bf16
 * was unchanged (min 38.38 dB, worst step 7.6e-2; zimage-cuda.md).
 * PX_ZIMAGE_CUDA_FP8_FASTACC=0 promotes, to compare. */
int zc_gemm_fp8_fast_accum(void)
{
    static int on = -1;
    return px_env_on_unless_0("PX_ZIMAGE_CUDA_FP8_FASTACC", &on);
}

/* FP8's per-row scales: A's (W's rows) and B's (x's rows, B's columns). */
static int set_fp8_scales(cublasLtMatmulDesc_t op, const zc_gemm_args *a, char *err,
                          size_t errlen)
{
    int rc = 0;
    int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    PX_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode));
    PX_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode));
    PX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                   &a->w_scale, sizeof a->w_scale));
    PX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                   &a->x_scale, sizeof a->x_scale));
    int8_t fast = (int8_t)zc_gemm_fp8_fast_accum();
    PX_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast));
fail:
    return rc;
}

/* The workspace cap and every operand's alignment (A w, B x, C and D y). */
static int prefs_make(const zc_gemm *g, const void *pa, const void *pb, const void *py,
                      gemm_descs *d, char *err, size_t errlen)
{
    int rc = 0;
    PX_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&d->pref));
    PX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        d->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &g->ws_bytes, sizeof g->ws_bytes));
    uint32_t al[4] = {(uint32_t)align_of(pa), (uint32_t)align_of(pb), (uint32_t)align_of(py),
                      (uint32_t)align_of(py)};
    const cublasLtMatmulPreferenceAttributes_t at[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; i++)
        PX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d->pref, at[i], &al[i], sizeof al[i]));
fail:
    return rc;
}

/* cuBLASLt's A and B operands of a: w and x, or their fp8 copies. */
static const void *op_a(const zc_gemm_args *a)
{
    return a->w8 ? a->w8 : a->w;
}

static const void *op_b(const zc_gemm_args *a)
{
    return a->w8 ? a->x8 : a->x;
}

static int descs_make(const zc_gemm *g, const zc_gemm_args *a, gemm_descs *d, char *err,
                      size_t errlen)
{
    int rc = 0, fp8 = a->w8 != NULL;
    cublasOperation_t ta = a->w_kn ? CUBLAS_OP_N : CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cudaDataType_t yt = a->yt == ZC_F32 ? CUDA_R_32F : CUDA_R_16BF;
    cudaDataType_t it = fp8 ? CUDA_R_8F_E4M3 : a->f32_in ? CUDA_R_32F : CUDA_R_16BF;
    /* fp8 operands: rows of K' bytes, x8 contiguous. */
    uint64_t K = (uint64_t)(fp8 ? zc_fp8_ld(a->K) : a->K);
    int64_t ldb = fp8 ? (int64_t)K : (int64_t)a->ldx;
    cublasComputeType_t ct = a->f32_in == ZC_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    PX_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d->op, ct, CUDA_R_32F));
    PX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta,
                                                   sizeof ta));
    PX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb,
                                                   sizeof tb));
    if (fp8 && (rc = set_fp8_scales(d->op, a, err, errlen))) goto fail;
    if (bias_epilogue(a) && (rc = set_bias(d->op, a->bias, err, errlen))) goto fail;
    /* W [N, K] row-major is K x N column-major (op T); W [K, N] is N x K
     * column-major (op N). */
    if (a->w_kn)
        PX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d->la, it, (uint64_t)a->N, K, (int64_t)a->N));
    else
        PX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d->la, it, K, (uint64_t)a->N, (int64_t)K));
    PX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d->lb, it, K, (uint64_t)a->M, ldb));
    PX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d->lc, yt, (uint64_t)a->N, (uint64_t)a->M,
                                               (int64_t)a->ldy));
    rc = prefs_make(g, op_a(a), op_b(a), a->y, d, err, errlen);
fail:
    return rc;
}

#define TUNE_MAX 8 /* candidates PX_ZIMAGE_CUDA_GEMM_TUNE times */

/* Milliseconds of 3 runs of candidate algo on a (after one untimed), into
 * scratch output y; a candidate cuBLASLt refuses counts as never. */
static int time_algo(zc_gemm *g, const zc_gemm_args *a, const gemm_descs *d,
                     const cublasLtMatmulAlgo_t *algo, void *y, cudaEvent_t ev[2], float *ms,
                     char *err, size_t errlen)
{
    int rc = 0;
    cudaStream_t s = g->ctx->stream;
    float alpha = 1.0f, beta = a->accumulate ? 1.0f : 0.0f;
    *ms = 1e30f;
    for (int r = 0; r < 4; r++) {
        if (r == 1) PX_CUDA_CHECK(cudaEventRecord(ev[0], s));
        if (cublasLtMatmul(g->ctx->blaslt, d->op, &alpha, op_a(a), d->la, op_b(a), d->lb, &beta,
                           y, d->lc, y, d->lc, algo, g->ws, g->ws_bytes, s) != CUBLAS_STATUS_SUCCESS)
            return 0;
    }
    PX_CUDA_CHECK(cudaEventRecord(ev[1], s));
    PX_CUDA_CHECK(cudaEventSynchronize(ev[1]));
    PX_CUDA_CHECK(cudaEventElapsedTime(ms, ev[0], ev[1]));
fail:
    return rc;
}

/* PX_ZIMAGE_CUDA_GEMM_TUNE=1: the heuristic's first `found` candidates
 * timed on a scratch output (the real one may be an accumulator) and the
 * fastest kept in *best; stderr says how far the heuristic's first choice
 * was from it. A diagnosis of whether cuBLASLt's first choice is its best
 * at the DiT's shapes: off by default, since every new shape then runs
 * ~4 x TUNE_MAX GEMMs on the request's path. Never while the stream is
 * being captured into a graph (the plan's first step runs direct). */
static int tune(zc_gemm *g, const zc_gemm_args *a, const gemm_descs *d,
                const cublasLtMatmulHeuristicResult_t *res, int found, int *best, char *err,
                size_t errlen)
{
    int rc = 0;
    enum cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
    void *y = NULL;
    cudaEvent_t ev[2] = {NULL, NULL};
    size_t esz = a->yt == ZC_F32 ? 4 : 2, bytes = ((size_t)(a->M - 1) * a->ldy + a->N) * esz;
    float t[TUNE_MAX];
    *best = 0;
    PX_CUDA_CHECK(cudaStreamIsCapturing(g->ctx->stream, &cap));
    if (cap != cudaStreamCaptureStatusNone || found < 2) return 0;
    if (cudaMalloc(&y, bytes) != cudaSuccess) {
        (void)cudaGetLastError(); /* no room for a scratch output: keep the first */
        return 0;
    }
    PX_CUDA_CHECK(cudaMemsetAsync(y, 0, bytes, g->ctx->stream));
    PX_CUDA_CHECK(cudaEventCreate(&ev[0]));
    PX_CUDA_CHECK(cudaEventCreate(&ev[1]));
    for (int k = 0; k < found; k++) {
        if ((rc = time_algo(g, a, d, &res[k].algo, y, ev, &t[k], err, errlen))) goto fail;
        if (t[k] < t[*best]) *best = k;
    }
    fprintf(stderr,
            "zimage-cuda gemm tune %s M=%d N=%d K=%d: heuristic's first %.3f ms, best #%d of %d "
            "%.3f ms\n",
            a->w8 ? "fp8" : a->f32_in ? "fp32" : "bf16", a->M, a->N, a->K, t[0] / 3, *best, found,
            t[*best] / 3);
fail:
    for (int i = 0; i < 2; i++)
        if (ev[i]) cudaEventDestroy(ev[i]);
    cudaFree(y); /* synchronous: the timed runs are done with it */
    return rc;
}

static bool tuning(void)
{
    static int on = -1;
    if (on < 0) on = px_env_is("PX_ZIMAGE_CUDA_GEMM_TUNE", "1");
    return on;
}

/* The heuristic's algorithm for a's shape (asked once per key), or with
 * may_tune and PX_ZIMAGE_CUDA_GEMM_TUNE=1 the fastest of its first few. */
static int pick_algo(zc_gemm *g, const zc_gemm_args *a, const gemm_descs *d, bool may_tune,
                     cublasLtMatmulAlgo_t *algo, char *err, size_t errlen)
{
    int rc = 0;
    gemm_key key;
    memset(&key, 0, sizeof key);
    key = (gemm_key){a->M, a->N, a->K, a->ldx, a->ldy, (int)a->yt, a->bias != NULL,
                     a->accumulate, a->f32_in, a->w_kn, a->w8 != NULL, align_of(op_b(a)),
                     align_of(op_a(a)), align_of(a->y)};
    if (px_cuda_algos_get(g->algos, &key, algo)) return 0;
    cublasLtMatmulHeuristicResult_t res[TUNE_MAX];
    int found = 0, best = 0, want = may_tune && tuning() ? TUNE_MAX : 1;
    PX_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(g->ctx->blaslt, d->op, d->la, d->lb, d->lc,
                                                   d->lc, d->pref, want, res, &found));
    if (found < 1)
        return px_errf(err, errlen, PX_EINVAL,
                       "zimage-cuda: cuBLASLt has no algorithm for %sGEMM M=%d N=%d K=%d",
                       a->w8 ? "the fp8 " : "", a->M, a->N, a->K);
    if (want > 1 && (rc = tune(g, a, d, res, found, &best, err, errlen))) goto fail;
    *algo = res[best].algo;
    px_cuda_algos_put(g->algos, &key, algo);
fail:
    return rc;
}

/* What an fp8 GEMM needs besides a bf16 one's (zc_gemm.h). */
static int fp8_args_ok(const zc_gemm_args *a)
{
    return !a->f32_in && !a->w_kn && a->w_scale && a->x8 && a->x_scale && zc_fp8_fits(a->N);
}

int zc_gemm_run(zc_gemm *g, const zc_gemm_args *a, char *err, size_t errlen)
{
    int rc = 0;
    gemm_descs d;
    memset(&d, 0, sizeof d);
    cudaStream_t s = g->ctx->stream;
    if (a->M <= 0) return 0;
    if (a->N <= 0 || a->K <= 0 || a->ldx < a->K || a->ldy < a->N || (a->f32_in && a->yt != ZC_F32) ||
        (a->w8 && !fp8_args_ok(a)))
        return px_errf(err, errlen, PX_EINVAL, "zimage-cuda: %sGEMM %dx%dx%d (ldx %d, ldy %d)",
                       a->w8 ? "fp8 " : "", a->M, a->N, a->K, a->ldx, a->ldy);
    if (a->w8 && !a->x8_ready)
        PX_CUDA_LAUNCH_CHECK(zc_fp8_quant_rows(s, a->x, a->ldx, a->M, a->K, zc_fp8_ld(a->K),
                                               a->x8, a->x_scale));
    cublasLtMatmulAlgo_t algo;
    if ((rc = descs_make(g, a, &d, err, errlen)) ||
        (rc = pick_algo(g, a, &d, true, &algo, err, errlen)))
        goto fail;
    float alpha = a->alpha != 0.0f ? a->alpha : 1.0f, beta = a->accumulate ? 1.0f : 0.0f;
    PX_CUBLAS_CHECK(cublasLtMatmul(g->ctx->blaslt, d.op, &alpha, op_a(a), d.la, op_b(a), d.lb,
                                   &beta, a->y, d.lc, a->y, d.lc, &algo, g->ws, g->ws_bytes, s));
    if (a->bias && !bias_epilogue(a))
        PX_CUDA_LAUNCH_CHECK(
            zc_fp8_add_bias(s, a->y, a->yt == ZC_BF16, a->ldy, a->M, a->N, a->bias));
fail:
    descs_free(&d);
    return rc;
}

int zc_gemm_fp8_probe(zc_gemm *g, char *err, size_t errlen)
{
    int rc = 0, major = 0, minor = 0, dev = g->ctx->dev;
    gemm_descs d;
    memset(&d, 0, sizeof d);
    PX_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    PX_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    if (major * 10 + minor < 90)
        return px_errf(err, errlen, PX_EUNSUP,
                       "zimage-cuda: precision fp8 needs a GPU of compute capability 9.0 or "
                       "later (cuBLASLt's per-row fp8 scales); device %d is %d.%d",
                       dev, major, minor);
    /* A DiT-like shape with both outputs the DiT's linears write (qkv and
     * w13 bf16, out and w2 fp32). The heuristic reads no memory: any
     * device addresses do, the workspace's. */
    for (int yt = ZC_BF16; yt <= ZC_F32 && !rc; yt++) {
        zc_gemm_args a = {.x = g->ws, .ldx = 256, .M = 256, .K = 256, .w = g->ws, .N = 256,
                          .y = g->ws, .ldy = 256, .yt = (zc_type)yt, .w8 = g->ws,
                          .w_scale = g->ws, .x8 = g->ws, .x_scale = g->ws};
        cublasLtMatmulAlgo_t algo;
        char why[256] = "";
        descs_free(&d);
        memset(&d, 0, sizeof d);
        if ((rc = descs_make(g, &a, &d, why, sizeof why)) ||
            (rc = pick_algo(g, &a, &d, false, &algo, why, sizeof why)))
            rc = px_errf(err, errlen, PX_EUNSUP,
                         "zimage-cuda: precision fp8: cuBLASLt %d offers no e4m3 GEMM with "
                         "per-row scales (outer-vector scaling) and %s output on device %d "
                         "(compute capability %d.%d): %s",
                         px_cuda_blaslt_version(), yt == ZC_F32 ? "fp32" : "bf16", dev, major,
                         minor, why);
    }
fail:
    descs_free(&d);
    return rc;
}
