/*
 * cuda_fakes.c — host stand-ins for the few CUDA runtime calls the CUDA
 * backends' bookkeeping makes (allocation, copies, synchronisation), so a
 * host check (tests/host/..._check.c) can link a backend object built by
 * `make CUDA=1` and run its logic on a machine without a GPU: "device"
 * memory is host memory and every call completes at once, in order.
 */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

cudaError_t cudaMalloc(void **p, size_t n)
{
    *p = malloc(n ? n : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFree(void *p)
{
    free(p);
    return cudaSuccess;
}

/* Called after every copy; a check that tracks what its buffers hold
 * (zc_vae_host_check.c: each one's element type) defines its own. */
__attribute__((weak)) void fake_copied(void *d, const void *s, size_t n)
{
    (void)d, (void)s, (void)n;
}

cudaError_t cudaMemcpy(void *d, const void *s, size_t n, enum cudaMemcpyKind k)
{
    (void)k;
    memmove(d, s, n);
    fake_copied(d, s, n);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind k,
                            cudaStream_t st)
{
    (void)st;
    return cudaMemcpy(d, s, n, k);
}

cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t st)
{
    (void)st;
    memset(d, v, n);
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int d)
{
    (void)d;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    (void)s;
    return cudaSuccess;
}

const char *cudaGetErrorString(cudaError_t e)
{
    (void)e;
    return "fake";
}

/* The fakes never fail but cudaMalloc's refusal: nothing to clear. */
cudaError_t cudaGetLastError(void)
{
    return cudaSuccess;
}
