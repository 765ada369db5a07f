/*
 * zc_fp8_check.c — zi_cuda_fp8_gemm_check (zimage_cuda.h): the fp8 GEMM
 * path of zc_gemm on its own, on a context of its own on the first GPU, so
 * that zimage_cuda_test can hold it against a host reference without an
 * engine (and in every build: zimage_cuda_none.c answers it without CUDA).
 * The weight goes through zc_fp8_quant_rows as zc_weights.c's upload does,
 * the activations through zc_gemm_run's own quantization.
 *
 * Not yet run on a GPU (written 2026-12).
 */
#include "engine/zimage/zimage_cuda.h"

#include "core/err.h"
#include "engine/cuda/cuda_blas.h"
#include "engine/cuda/cuda_check.h"
#include "engine/zimage/cuda/zc_fp8.h"
#include "engine/zimage/cuda/zc_gemm.h"

#include <string.h>

enum { M_X, M_W, M_W8, M_WS, M_X8, M_XS, M_Y, M_BIAS, M_N };

/* Device copies of the case's inputs (and room for its outputs). */
static int upload(const zi_cuda_fp8_case *c, void **m, char *err, size_t errlen)
{
    int rc = 0;
    size_t ld = (size_t)zc_fp8_ld(c->K), M = (size_t)c->M, N = (size_t)c->N;
    size_t sz[M_N] = {[M_X] = M * c->ldx * 2, [M_W] = N * c->K * 2, [M_W8] = N * ld,
                      [M_WS] = N * 4, [M_X8] = M * ld, [M_XS] = M * 4,
                      [M_Y] = M * N * (c->y_f32 ? 4 : 2), [M_BIAS] = N * 4};
    const void *from[M_N] = {[M_X] = c->x, [M_W] = c->w, [M_Y] = c->y, [M_BIAS] = c->bias};
    for (int i = 0; i < M_N; i++) {
        PX_CUDA_CHECK(cudaMalloc(&m[i], sz[i]));
        if (from[i]) PX_CUDA_CHECK(cudaMemcpy(m[i], from[i], sz[i], cudaMemcpyHostToDevice));
    }
fail:
    return rc;
}

static int download(const zi_cuda_fp8_case *c, void *const *m, char *err, size_t errlen)
{
    int rc = 0;
    size_t ld = (size_t)zc_fp8_ld(c->K), M = (size_t)c->M, N = (size_t)c->N;
    PX_CUDA_CHECK(cudaMemcpy(c->y, m[M_Y], M * N * (c->y_f32 ? 4 : 2), cudaMemcpyDeviceToHost));
    PX_CUDA_CHECK(cudaMemcpy(c->x8, m[M_X8], M * ld, cudaMemcpyDeviceToHost));
    PX_CUDA_CHECK(cudaMemcpy(c->w8, m[M_W8], N * ld, cudaMemcpyDeviceToHost));
    PX_CUDA_CHECK(cudaMemcpy(c->x_scale, m[M_XS], M * 4, cudaMemcpyDeviceToHost));
    PX_CUDA_CHECK(cudaMemcpy(c->w_scale, m[M_WS], N * 4, cudaMemcpyDeviceToHost));
fail:
    return rc;
}

int zi_cuda_fp8_gemm_check(zi_cuda_fp8_case *c, char *err, size_t errlen)
{
    int rc = 0, dev = 0;
    void *m[M_N] = {0};
    px_cuda_pool *pool = NULL;
    px_cuda_ctx *ctx = NULL;
    zc_gemm *g = NULL;
    if (c->M < 1 || c->K < 1 || c->ldx < c->K || !zc_fp8_fits(c->N))
        return px_errf(err, errlen, PX_EINVAL, "fp8 check: M %d, N %d, K %d, ldx %d", c->M, c->N,
                       c->K, c->ldx);
    if ((rc = px_cuda_pool_create(&dev, 1, 0, &pool, err, errlen))) return rc;
    ctx = px_cuda_pool_ctx(pool, 0);
    PX_CUDA_CHECK(cudaSetDevice(ctx->dev));
    if ((rc = px_cuda_blaslt_acquire(ctx, err, errlen)) ||
        (rc = zc_gemm_create(ctx, (size_t)32 << 20, &g, err, errlen)) ||
        (rc = zc_gemm_fp8_probe(g, err, errlen)) || (rc = upload(c, m, err, errlen)))
        goto fail;
    PX_CUDA_LAUNCH_CHECK(zc_fp8_quant_rows(ctx->stream, m[M_W], c->K, c->N, c->K,
                                           zc_fp8_ld(c->K), m[M_W8], m[M_WS]));
    zc_gemm_args a = {.x = m[M_X], .ldx = c->ldx, .M = c->M, .K = c->K, .N = c->N,
                      .bias = c->bias ? m[M_BIAS] : NULL, .y = m[M_Y], .ldy = c->N,
                      .yt = c->y_f32 ? ZC_F32 : ZC_BF16, .accumulate = c->accumulate,
                      .alpha = c->alpha, .w8 = m[M_W8], .w_scale = m[M_WS], .x8 = m[M_X8],
                      .x_scale = m[M_XS]};
    if ((rc = zc_gemm_run(g, &a, err, errlen))) goto fail;
    PX_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    rc = download(c, m, err, errlen);
fail:
    for (int i = 0; i < M_N; i++)
        if (m[i]) cudaFree(m[i]);
    zc_gemm_free(g);
    if (ctx) px_cuda_blaslt_release(ctx);
    px_cuda_pool_destroy(pool);
    return rc;
}
