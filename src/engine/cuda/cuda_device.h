/*
 * cuda_device.h — the GPUs a CUDA engine drives: which ones (the --device
 * value against the visible devices), their memory, and a pool of per-device
 * contexts (a stream and the library handles bound to it) that a batch
 * takes and gives back, so several scheduler workers drive several GPUs at
 * once and never two batches one context.
 *
 * The CUDA runtime itself applies CUDA_VISIBLE_DEVICES (ordinals here are
 * CUDA's, renumbered from 0); cuda_devspec.h reads the variable for what
 * the runtime does not say (which host GPU an ordinal is).
 */
#ifndef PX_ENGINE_CUDA_CUDA_DEVICE_H
#define PX_ENGINE_CUDA_CUDA_DEVICE_H

#include "core/buf.h"
#include "engine/cuda/cuda_devspec.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

/* 0 if a CUDA device is visible; else PX_EUNSUP with the reason (tests
 * skip on it). */
int px_cuda_probe(char *err, size_t errlen);

/*
 * The CUDA ordinals an engine's device value names (see
 * px_cuda_devspec_parse): devs has room for PX_CUDA_MAX_DEVICES. Returns 0,
 * or PX_EUNSUP ("<who>: no CUDA device is visible", "<who>: bad device").
 */
int px_cuda_devices(const char *spec, int *devs, int *n, const char *who, char *err, size_t errlen);

/* Free and total memory of device dev, in bytes (it becomes the calling
 * thread's current device). Returns 0 or PX_EIO (both set to 0). */
int px_cuda_mem_info(int dev, size_t *free_bytes, size_t *total_bytes);

/* Device memory in use on dev (total - free, every process's), 0 if the
 * driver does not say: what engines report as a stage's GPU memory. */
uint64_t px_cuda_mem_used(int dev);

/* The device's name into name[len] ("" if CUDA cannot say). */
void px_cuda_device_name(int dev, char *name, size_t len);

/* Which host GPU CUDA ordinal dev is, as CUDA_VISIBLE_DEVICES names it (an
 * index or a UUID), or the ordinal itself when the variable is unset. */
void px_cuda_device_host_id(int dev, char *id, size_t len);

/* ------------------------------------------------------------ the pool */

/* What a context holds besides its stream. */
enum {
    PX_CUDA_CTX_CUDNN = 1 /* a cuDNN handle on the stream */
};

/* One device's context; the fields are the pool's, but `user`, which is
 * the engine's per-device state (weights, caches). */
typedef struct px_cuda_ctx {
    int dev;                 /* CUDA ordinal */
    int index;               /* position in the pool */
    cudaStream_t stream;     /* non-blocking */
    cudnnHandle_t dnn;       /* or NULL */
    cublasLtHandle_t blaslt; /* or NULL: see cuda_blas.h */
    void *user;
} px_cuda_ctx;

typedef struct px_cuda_pool px_cuda_pool;

/*
 * One context per entry of devs (an ordinal may repeat: two contexts on
 * one GPU run two batches there at once), holding what flags ask for.
 * Returns 0 and *out (caller destroys), or a CUDA/library error (nothing
 * left allocated).
 */
int px_cuda_pool_create(const int *devs, int n, unsigned flags, px_cuda_pool **out, char *err,
                        size_t errlen);

int px_cuda_pool_size(const px_cuda_pool *p);

/* Context i (0 <= i < size), for setting up and tearing down `user`. */
px_cuda_ctx *px_cuda_pool_ctx(px_cuda_pool *p, int i);

/* Blocks until a context is free and takes it; the caller makes its device
 * current (cudaSetDevice) and gives it back with px_cuda_pool_give. */
px_cuda_ctx *px_cuda_pool_take(px_cuda_pool *p);
/* The same for context i (0 <= i < size) in particular: warm-up visits
 * every GPU. */
px_cuda_ctx *px_cuda_pool_take_at(px_cuda_pool *p, int i);
void px_cuda_pool_give(px_cuda_pool *p, px_cuda_ctx *c);

/* The least free memory over the pool's devices (what a batch on any of
 * them can count on); 0 if a query fails. */
size_t px_cuda_pool_min_free(const px_cuda_pool *p);

/* Appends the JSON array of the pool's first n devices for an engine's
 * description: [{"index": ordinal, "name": ..., "weight_bytes": ...}],
 * weight_bytes(arg, i) being what the engine holds on context i. Returns
 * 0 or the buffer's error. */
int px_cuda_pool_describe(px_cuda_pool *p, int n, size_t (*weight_bytes)(const void *arg, int i),
                          const void *arg, px_buf *out);

/* Destroys handles and streams (free the `user` state first); NULL is a
 * no-op. */
void px_cuda_pool_destroy(px_cuda_pool *p);

#endif
