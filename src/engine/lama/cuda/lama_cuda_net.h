/*
 * lama_cuda_net.h — big-lama on one GPU (px_lcnet_: the LaMa CUDA
 * network): the weights uploaded to a device context of the shared CUDA
 * runtime (src/engine/cuda/), and per (batch, padded height, padded width)
 * a plan that owns one activation arena, the cuDNN convolutions, three
 * cuFFT plans and, from its second run on, a CUDA graph of the whole
 * forward pass. lama_cuda.c, the engine, spreads batches over devices.
 */
#ifndef PX_ENGINE_LAMA_CUDA_LAMA_CUDA_NET_H
#define PX_ENGINE_LAMA_CUDA_LAMA_CUDA_NET_H

#include "engine/cuda/cuda_device.h"
#include "engine/cuda/cuda_prec.h"
#include "engine/lama/cuda/kernels.h"
#include "engine/lama/weights.h"

#include <stddef.h>
#include <stdint.h>

typedef struct px_lcnet px_lcnet;
typedef struct px_lcnet_plan px_lcnet_plan;

/*
 * Uploads W (BatchNorm folded) onto ctx's device to compute in prec; the
 * channel counts must be multiples of 8 (the caller checks). Returns 0 and
 * *out (caller frees with px_lcnet_free, before the context goes), or a
 * CUDA/cuDNN error (PX_ENOMEM when the device is full).
 */
int px_lcnet_create(const px_lama_weights *W, px_cuda_prec prec, px_cuda_ctx *ctx, px_lcnet **out,
                    char *err, size_t errlen);

/* Frees the plans and the weights (makes ctx's device current); NULL is a
 * no-op. */
void px_lcnet_free(px_lcnet *n);

/* Device bytes of the weights. */
size_t px_lcnet_weight_bytes(const px_lcnet *n);

/*
 * The plan for batch B at padded size H x W, from the device's cache
 * (least recently used out first when full; all dropped and built again
 * when the device is out of memory). Only the context's holder calls it.
 * Returns 0 and *out (owned by the cache, valid until the next get), or an
 * error (PX_ENOMEM: the scheduler splits the batch).
 */
int px_lcnet_plan_get(px_lcnet *n, int B, int H, int W, px_lcnet_plan **out, char *err,
                      size_t errlen);

/* Any thread, quick: 1 when a get for (B, H, W) finds its plan (or must
 * report a failed background build), 0 when it would build; with want, a
 * 0 also queues the build on the device's background thread (its own
 * stream and cuDNN handle: batches keep running). */
int px_lcnet_plan_ready(px_lcnet *n, int B, int H, int W, int want);

/* A plan's pinned host mirrors: the caller fills img (B x H x W x 3),
 * mask (B x H x W) and items (B entries) before a run and reads out (as
 * img) after it. Strides are the padded size's. */
typedef struct {
    uint8_t *img, *mask, *out;
    px_cu_item *items;
    int B, H, W;
} px_lcnet_io;

px_lcnet_io px_lcnet_plan_io(px_lcnet_plan *p);

/*
 * Runs the plan on what its host mirrors hold and waits for it: from the
 * second run on through a captured CUDA graph. pred (device memory for
 * B x H x W x 3 floats, or NULL) also receives the float prediction and
 * makes the run direct. Returns 0 or an error with a message.
 */
int px_lcnet_plan_run(px_lcnet *n, px_lcnet_plan *p, float *pred, char *err, size_t errlen);

/* Device bytes a plan for (B, H, W) allocates (its arena and the cuFFT
 * work areas), computed without allocating: the memory estimate. */
size_t px_lcnet_plan_bytes(const px_lama_arch *a, px_cuda_prec prec, int B, int H, int W);

#endif
