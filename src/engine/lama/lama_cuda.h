/*
 * lama_cuda.h — the CUDA backend of the "lama" engine, behind the same
 * vtable name: `--engine lama --device cuda` (or cuda:N, cuda:0,2) gives an
 * engine instance whose ops run big-lama on NVIDIA GPUs with cuDNN and
 * cuFFT. Built only with `make CUDA=1` (src/engine/lama/cuda/, on the
 * shared CUDA runtime of src/engine/cuda/); other builds link
 * lama_cuda_none.c, which refuses with a clear message.
 */
#ifndef PX_ENGINE_LAMA_LAMA_CUDA_H
#define PX_ENGINE_LAMA_LAMA_CUDA_H

#include "engine/engine.h"

#include <stddef.h>

/* Precisions the backend offers (px_engine_config.precision). */
#define PX_LAMA_CUDA_PRECISIONS "fp32, tf32, fp16"

/* 0 if this build has the CUDA backend and a GPU is visible; else
 * PX_EUNSUP with the reason (tests skip on it). */
int px_lama_cuda_probe(char *err, size_t errlen);

/*
 * Creates the CUDA engine: loads cfg->weights onto every device cfg->device
 * names ("cuda" = all visible), precision cfg->precision (NULL = the
 * default). Returns 0, PX_EUNSUP (no CUDA in this build, no device, bad
 * device or precision name), the weights loader's errors, or PX_ENOMEM.
 */
int px_lama_cuda_create(const px_engine_config *cfg, px_engine **out, char *err, size_t errlen);

/*
 * For tests and benchmarks: runs n equal-size items like px_engine_run and
 * also returns the network's float prediction (after the sigmoid, before
 * quantisation) at the padded size: *pred receives n x H x W x 3 floats
 * (malloc'd, caller frees), *H and *W the padded size. Returns 0 or an
 * error with a message.
 */
int px_lama_cuda_run_float(px_engine *e, px_engine_item *items, int n, float **pred, int *H,
                           int *W, char *err, size_t errlen);

#endif
