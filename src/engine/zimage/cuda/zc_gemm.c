/*
 * zc_gemm.c — cuBLASLt GEMMs for the Z-Image CUDA backend (see zc_gemm.h).
 *
 * Row-major y[M, N] = x[M, K]·W[N, K]ᵀ is, in cuBLASLt's column-major
 * terms, yᵀ (N x M, ld ldy) = op(W)(N x K) · xᵀ (K x M): A = W stored as
 * K x N with ld K and transposed, B = x stored as K x M with ld ldx. The
 * bias (one value per row of yᵀ, i.e. per output feature) is the BIAS
 * epilogue, with an fp32 bias whatever y's type.
 *
 * Ran on an H200 (2026-12-05): zimage_cuda_test passes, tiny and full size.
 */
#include "engine/zimage/cuda/zc_gemm.h"

#include "core/alloc.h"
#include "core/err.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_plan.h"

#include <stdint.h>
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
    int M, N, K, ldx, ldy, yt, bias, acc, f32_in, w_kn, align_x, align_w, align_y;
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

static int descs_make(const zc_gemm *g, const zc_gemm_args *a, gemm_descs *d, char *err,
                      size_t errlen)
{
    int rc = 0;
    cublasOperation_t ta = a->w_kn ? CUBLAS_OP_N : CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cudaDataType_t yt = a->yt == ZC_F32 ? CUDA_R_32F : CUDA_R_16BF;
    cudaDataType_t it = a->f32_in ? CUDA_R_32F : CUDA_R_16BF;
    PX_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    PX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta,
                                                   sizeof ta));
    PX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb,
                                                   sizeof tb));
    if (a->bias) {
        cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
        cudaDataType_t bt = CUDA_R_32F;
        PX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep,
                                                       sizeof ep));
        PX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
            d->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
        PX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
            d->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &a->bias, sizeof a->bias));
    }
    /* W [N, K] row-major is K x N column-major (op T); W [K, N] is N x K
     * column-major (op N). */
    if (a->w_kn)
        PX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d->la, it, (uint64_t)a->N, (uint64_t)a->K,
                                                   (int64_t)a->N));
    else
        PX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d->la, it, (uint64_t)a->K, (uint64_t)a->N,
                                                   (int64_t)a->K));
    PX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d->lb, it, (uint64_t)a->K,
                                               (uint64_t)a->M, (int64_t)a->ldx));
    PX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d->lc, yt, (uint64_t)a->N, (uint64_t)a->M,
                                               (int64_t)a->ldy));
    PX_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&d->pref));
    PX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        d->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &g->ws_bytes, sizeof g->ws_bytes));
    /* cuBLASLt's A is our w, B our x, C and D our y. */
    uint32_t al[4] = {(uint32_t)align_of(a->w), (uint32_t)align_of(a->x),
                      (uint32_t)align_of(a->y), (uint32_t)align_of(a->y)};
    const cublasLtMatmulPreferenceAttributes_t at[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; i++)
        PX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d->pref, at[i], &al[i], sizeof al[i]));
fail:
    return rc;
}

int zc_gemm_run(zc_gemm *g, const zc_gemm_args *a, char *err, size_t errlen)
{
    int rc = 0;
    gemm_descs d;
    memset(&d, 0, sizeof d);
    if (a->M <= 0) return 0;
    if (a->N <= 0 || a->K <= 0 || a->ldx < a->K || a->ldy < a->N || (a->f32_in && a->yt != ZC_F32))
        return px_errf(err, errlen, PX_EINVAL, "zimage-cuda: GEMM %dx%dx%d (ldx %d, ldy %d)",
                       a->M, a->N, a->K, a->ldx, a->ldy);
    if ((rc = descs_make(g, a, &d, err, errlen))) goto fail;
    gemm_key key;
    memset(&key, 0, sizeof key);
    key = (gemm_key){a->M, a->N, a->K, a->ldx, a->ldy, (int)a->yt, a->bias != NULL,
                     a->accumulate, a->f32_in, a->w_kn, align_of(a->x), align_of(a->w),
                     align_of(a->y)};
    cublasLtMatmulAlgo_t algo;
    if (!px_cuda_algos_get(g->algos, &key, &algo)) {
        cublasLtMatmulHeuristicResult_t res;
        int found = 0;
        PX_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(g->ctx->blaslt, d.op, d.la, d.lb, d.lc,
                                                       d.lc, d.pref, 1, &res, &found));
        if (found < 1) {
            rc = px_errf(err, errlen, PX_EINVAL,
                         "zimage-cuda: cuBLASLt has no algorithm for GEMM M=%d N=%d K=%d", a->M,
                         a->N, a->K);
            goto fail;
        }
        algo = res.algo;
        px_cuda_algos_put(g->algos, &key, &algo);
    }
    float alpha = a->alpha != 0.0f ? a->alpha : 1.0f, beta = a->accumulate ? 1.0f : 0.0f;
    PX_CUBLAS_CHECK(cublasLtMatmul(g->ctx->blaslt, d.op, &alpha, a->w, d.la, a->x, d.lb, &beta,
                                   a->y, d.lc, a->y, d.lc, &algo, g->ws, g->ws_bytes,
                                   g->ctx->stream));
fail:
    descs_free(&d);
    return rc;
}
