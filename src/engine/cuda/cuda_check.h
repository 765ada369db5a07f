/*
 * cuda_check.h — the one way CUDA engines call NVIDIA libraries: every CUDA
 * runtime, cuDNN, cuFFT, cuBLAS/cuBLASLt call and kernel launch goes through
 * a macro that, on failure, writes "file:line: call: reason" into the
 * caller's error buffer and jumps to its `fail` label. Out-of-memory becomes
 * PX_ENOMEM (the scheduler then splits the batch and retries), anything
 * else PX_EIO.
 *
 * The macros expect, in the calling function: `int rc`, `char *err`,
 * `size_t errlen` and a `fail:` label (the project's cleanup convention).
 */
#ifndef PX_ENGINE_CUDA_CUDA_CHECK_H
#define PX_ENGINE_CUDA_CUDA_CHECK_H

#include "core/err.h"

#include <cublasLt.h>
#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <cufft.h>

/* `what` is the call as text, made by the public macro itself so that the
 * message shows the call as written, not macro-expanded. */
#define PX_CUDA_FAIL_(code, what, reason)                                                          \
    do {                                                                                           \
        rc = px_errf(err, errlen, (code), "%s:%d: %s: %s", __FILE__, __LINE__, (what), (reason));  \
        goto fail;                                                                                 \
    } while (0)

/* A CUDA runtime call (cudaError_t). A failed call also leaves its error
 * as the runtime's "last error", which the next kernel launch's
 * cudaGetLastError() check would report as its own: it is reported here
 * and cleared (a sticky error stays, as it must). Without that, a handled
 * out-of-memory (the plan caches' free-and-retry) failed the next launch. */
#define PX_CUDA_CHECK(call)                                                                        \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            (void)cudaGetLastError();                                                              \
            PX_CUDA_FAIL_(e_ == cudaErrorMemoryAllocation ? PX_ENOMEM : PX_EIO, #call,             \
                          cudaGetErrorString(e_));                                                 \
        }                                                                                          \
    } while (0)

/* A cuDNN call (cudnnStatus_t). */
#define PX_CUDNN_CHECK(call)                                                                       \
    do {                                                                                           \
        cudnnStatus_t e_ = (call);                                                                 \
        if (e_ != CUDNN_STATUS_SUCCESS)                                                            \
            PX_CUDA_FAIL_(e_ == CUDNN_STATUS_ALLOC_FAILED ? PX_ENOMEM : PX_EIO, #call,             \
                          cudnnGetErrorString(e_));                                                \
    } while (0)

/* A cuFFT call (cufftResult; cuFFT has no message strings: the number). */
#define PX_CUFFT_CHECK(call)                                                                       \
    do {                                                                                           \
        cufftResult e_ = (call);                                                                   \
        if (e_ != CUFFT_SUCCESS) {                                                                 \
            rc = px_errf(err, errlen, e_ == CUFFT_ALLOC_FAILED ? PX_ENOMEM : PX_EIO,               \
                         "%s:%d: %s: cuFFT error %d", __FILE__, __LINE__, #call, (int)e_);         \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* A cuBLAS or cuBLASLt call (both return cublasStatus_t). */
#define PX_CUBLAS_CHECK(call)                                                                      \
    do {                                                                                           \
        cublasStatus_t e_ = (call);                                                                \
        if (e_ != CUBLAS_STATUS_SUCCESS)                                                           \
            PX_CUDA_FAIL_(e_ == CUBLAS_STATUS_ALLOC_FAILED ? PX_ENOMEM : PX_EIO, #call,            \
                          cublasLtGetStatusString(e_));                                            \
    } while (0)

/* A kernel launcher of our own: it returns 0 or the launch's cudaError_t
 * as an int (launchers are callable from C without CUDA's types). */
#define PX_CUDA_LAUNCH_CHECK(call)                                                                 \
    do {                                                                                           \
        int e_ = (call);                                                                           \
        if (e_) PX_CUDA_FAIL_(PX_EIO, #call, cudaGetErrorString((cudaError_t)e_));                 \
    } while (0)

#endif
