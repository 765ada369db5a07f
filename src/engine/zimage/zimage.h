/*
 * zimage.h — Z-Image-Turbo text-to-image as a library: open a model (a
 * Hugging Face directory or separate component files), then generate images
 * from prompts. One generation runs
 *
 *   tokenizer (chat template, 512-token cap) -> Qwen3 features
 *   -> `steps` flow-matching Euler steps of the DiT from noise (or the
 *      caller's latents), with classifier-free guidance when cfg_scale > 0
 *   -> VAE decode -> RGB8 image
 *
 * on the CPU (oneDNN on all cores unless zi_set_threads says otherwise).
 *
 * cfg_scale is the guidance weight w of pred = pos + w*(pos - neg), where
 * pos and neg are the DiT's outputs for the prompt and the negative prompt
 * (run as one batch of 2, doubling the DiT's cost). 0 turns guidance off
 * and is Turbo's default: the model is distilled to work without it.
 *
 * Seeds: the initial latents are standard normal from PCG32 + Box-Muller
 * (sampler.h), not PyTorch's generator: a seed gives the same image here
 * every time, but not the image another implementation gives for that seed.
 * To reproduce another implementation, pass its initial latents.
 *
 * A zi_model is immutable once open: threads may generate at once, each
 * with its own zi_ctx (zops.h) — or NULL for a temporary one per call.
 */
#ifndef PX_ENGINE_ZIMAGE_ZIMAGE_H
#define PX_ENGINE_ZIMAGE_ZIMAGE_H

#include "core/pool.h"
#include "engine/zimage/lora.h"
#include "engine/zimage/zconfig.h"
#include "engine/zimage/zops.h"
#include "image/image.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zi_model zi_model; /* opaque */

/* Where the model is: a Hugging Face directory (model_index.json,
 * transformer/, text_encoder/, tokenizer/, vae/, scheduler/ with their
 * config.json), or, with dir NULL, the four components as separate files
 * (or component directories): the DiT (.safetensors/.gguf, ComfyUI names
 * accepted), the Qwen3 text encoder, the VAE (diffusers or FLUX's
 * ae.safetensors) and the tokenizer (tokenizer.json, or a directory with it
 * or with vocab.json + merges.txt). Without config files the shapes come
 * from the tensors and the constants are Z-Image-Turbo's. */
typedef struct zi_model_paths {
    const char *dir;
    const char *dit, *text_encoder, *vae, *tokenizer;
} zi_model_paths;

typedef struct zi_model_opts {
    int keep_bf16; /* 1: BF16 weights stay BF16 (half the memory; exact) */
    px_pool *pool; /* element-wise work of temporary contexts (NULL, best: OpenMP) */
} zi_model_opts;

/* Opens every component and checks configs against tensors. opts may be
 * NULL. Returns 0, PX_EINVAL (paths incomplete), PX_EIO / PX_ENOTFOUND (a
 * file or directory missing: err names it), PX_ECORRUPT / PX_ETRUNC /
 * PX_EUNSUP (a bad file: err names the file and tensor, expected and found),
 * PX_ENOMEM. Caller closes *out. */
int zi_model_open(const zi_model_paths *paths, const zi_model_opts *opts, zi_model **out, char *err,
                  size_t errlen);
void zi_model_close(zi_model *m);

/* The configurations in use. */
const zi_dit_config *zi_model_dit_config(const zi_model *m);
const zi_vae_config *zi_model_vae_config(const zi_model *m);

/* Width and height must be multiples of this (16: the VAE's 8 x the patch 2). */
int zi_model_size_multiple(const zi_model *m);

/* Bytes of weights the model holds in memory. */
size_t zi_model_weight_bytes(const zi_model *m);

/* --- for other backends (the CUDA one) that run the stages themselves --- */

/* The DiT's or the text encoder's weight store (owned by the model), or
 * NULL for ZI_PART_VAE: the CPU VAE copies its weights and closes its
 * store. */
const zi_weights *zi_model_weights(const zi_model *m, zi_part part);
const zi_qwen3_config *zi_model_text_config(const zi_model *m);
const zi_sampler_config *zi_model_sampler_config(const zi_model *m);

/* The prompt templated and tokenized as zi_generate does (at most
 * ZI_TOK_MAX_PROMPT ids into ids[cap]); see zi_tok_encode_prompt. */
int zi_model_tokenize(const zi_model *m, const char *prompt, int32_t *ids, size_t cap, size_t *n,
                      bool *truncated, char *err, size_t errlen);

/* The CPU VAE decode of [C, lat_h, lat_w] latents into an RGB8 image
 * (allocated here; px_image_free). Returns as zi_vae_decode. */
int zi_model_vae_decode(const zi_model *m, zi_ctx *ctx, const float *latent, int lat_h, int lat_w,
                        px_image *out, char *err, size_t errlen);

/* Called after each denoising step (1-based) with its duration. */
typedef void (*zi_progress_fn)(void *user, int step, int steps, double step_ms);

#define ZI_MAX_SIDE 4096

typedef struct zi_gen_params {
    const char *prompt;          /* UTF-8, required */
    const char *negative_prompt; /* used when cfg_scale > 0 (NULL = "") */
    int width, height;           /* multiples of zi_model_size_multiple, <= ZI_MAX_SIDE */
    int steps;                   /* >= 1 (Turbo: 8) */
    int64_t seed;                /* -1: a random one (reported in the stats) */
    float cfg_scale;             /* w in pos + w*(pos - neg); 0 = off */
    const float *latents;        /* NULL, or [C, height/8, width/8] initial latents */
    const zi_lora_use *loras;    /* NULL or nloras LoRAs (lora.h) applied to the DiT */
    int nloras;                  /* 0..ZI_MAX_LORAS */
    zi_progress_fn progress;     /* NULL or called after each step */
    void *progress_user;
    const atomic_int *cancel; /* NULL, or non-zero to stop (checked between steps) */
} zi_gen_params;

typedef struct zi_gen_stats {
    int64_t seed; /* the seed used (meaningless with latents) */
    int prompt_tokens, negative_tokens;
    bool prompt_truncated, negative_truncated; /* cut to 512 tokens */
    int steps;
    double text_ms, denoise_ms, vae_ms, total_ms;
    double *step_ms; /* steps durations, owned by the result */
    /* Peak resident memory (VmHWM) during each stage, bytes; 0 unknown.
     * When peak_per_stage is false the kernel refused to reset the peak and
     * these are the process's peak up to the end of each stage. */
    uint64_t peak_rss_text, peak_rss_denoise, peak_rss_vae;
    bool peak_per_stage;
} zi_gen_stats;

typedef struct zi_gen_result {
    px_image image; /* width x height RGB8 */
    zi_gen_stats stats;
} zi_gen_result;

/*
 * Generates one image. ctx: the calling thread's workspace, or NULL for one
 * made for this call. Returns 0 with *out filled (free with
 * zi_gen_result_free), PX_EINVAL (a bad parameter: size, steps, prompt not
 * UTF-8, ...), PX_ECANCELED, PX_ENOMEM or a backend error, with err set; on
 * failure *out is zeroed.
 */
int zi_generate(const zi_model *m, zi_ctx *ctx, const zi_gen_params *p, zi_gen_result *out,
                char *err, size_t errlen);

void zi_gen_result_free(zi_gen_result *r);

#endif
