/*
 * cuda_blas.h — cuBLASLt for a device context, for the engines whose work
 * is GEMMs (Z-Image's transformer): one handle per context, made at the
 * engine's setup and released before the pool goes.
 *
 * Kept apart from the pool (cuda_device.c) so that a binary whose engines
 * never call it does not load cuBLAS at all: the Makefile links cuBLAS
 * --as-needed, and libcublasLt is half a gigabyte to carry to a GPU host.
 */
#ifndef PX_ENGINE_CUDA_CUDA_BLAS_H
#define PX_ENGINE_CUDA_CUDA_BLAS_H

#include "engine/cuda/cuda_device.h"

#include <stddef.h>

/* Creates c->blaslt unless it exists (on c's device). Returns 0, or
 * PX_ENOMEM/PX_EIO with a message. */
int px_cuda_blaslt_acquire(px_cuda_ctx *c, char *err, size_t errlen);

/* Destroys c->blaslt if there is one (call before px_cuda_pool_destroy). */
void px_cuda_blaslt_release(px_cuda_ctx *c);

/* cuBLAS's version (major * 10000 + minor * 100 + patch), for descriptions. */
int px_cuda_blaslt_version(void);

#endif
