/*
 * cuda_blas.c — a cuBLASLt handle per device context (see cuda_blas.h).
 */
#include "engine/cuda/cuda_blas.h"

#include "core/err.h"
#include "engine/cuda/cuda_check.h"

int px_cuda_blaslt_acquire(px_cuda_ctx *c, char *err, size_t errlen)
{
    int rc = 0;
    if (c->blaslt) return 0;
    PX_CUDA_CHECK(cudaSetDevice(c->dev));
    PX_CUBLAS_CHECK(cublasLtCreate(&c->blaslt));
fail:
    return rc;
}

void px_cuda_blaslt_release(px_cuda_ctx *c)
{
    if (!c->blaslt) return;
    cudaSetDevice(c->dev);
    cublasLtDestroy(c->blaslt);
    c->blaslt = NULL;
}

int px_cuda_blaslt_version(void)
{
    return (int)cublasLtGetVersion();
}
