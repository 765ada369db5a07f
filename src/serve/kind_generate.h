/*
 * kind_generate.h — the text-to-image request kind: POST /api/v1/generate
 * (sync), POST /api/v1/generate_async (the jobs API) and OpenAI's POST
 * /v1/images/generations, on engines of kind PX_ENGINE_GENERATE
 * (docs/api.md "Text to image").
 *
 * A request of n images is n engine items with seeds seed, seed+1, ...; the
 * reply carries every image (base64, or /outputs URLs), the seeds, per-stage
 * timings (each step's too), stage peak memory and the prompt's token count.
 */
#ifndef PX_SERVE_KIND_GENERATE_H
#define PX_SERVE_KIND_GENERATE_H

#include "serve/kind.h"

/* Limits of a request (the pixel cap is --max-gen-pixels). */
#define PX_GEN_MAX_PROMPT 4000 /* characters of prompt and negative prompt */
#define PX_GEN_MAX_STEPS 50
#define PX_GEN_MAX_IMAGES 4
#define PX_GEN_MAX_CFG 30.0
#define PX_GEN_MAX_BODY (64 * 1024)
#define PX_GEN_MIN_SIDE 16
#define PX_GEN_MAX_SIDE 4096

extern const px_kind px_kind_generate;

#endif
