/*
 * zc_join.h — step-level continuous batching of the Z-Image DiT on one GPU
 * (px_engine_run_feed for the zimage CUDA engine): requests of one size
 * join the running batch at the next step boundary and leave it when their
 * own steps are done, each image at its own point of its own schedule.
 *
 * Between membership changes the batch runs on one DiT plan (zc_net.h)
 * like a plain batch; at a change, the survivors' latents are copied out
 * of the plan into their own device buffers, the new members' prompts are
 * encoded (only theirs: every image keeps its encoder features on the
 * device), and the batch is bound to the plan of its new shape, whose
 * zc_plan_begin re-runs the context refiner over the kept features (two
 * unmodulated blocks over the text rows: a small part of one step). An
 * image's result does not depend on its batchmates (each DiT item attends
 * within itself; see zc_dit.c), which zimage_cuda_test checks.
 *
 * Internal to src/engine/zimage/cuda/ (zimage_cuda.c calls it with a held
 * pool context).
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZC_JOIN_H
#define PX_ENGINE_ZIMAGE_CUDA_ZC_JOIN_H

#include "engine/engine.h"
#include "engine/zimage/cuda/zc_net.h"
#include "engine/zimage/zimage.h"

#include <stddef.h>
#include <stdint.h>

/* What a continuous batch runs on: the model (tokenizer, sampler, the CPU
 * VAE), the held context's device, and its GPU VAE (NULL: decode on the
 * CPU with vae_ctx, PX_ZIMAGE_CUDA_CPU_VAE=1). */
typedef struct zc_join_env {
    const zi_model *model;
    px_cuda_ctx *ctx;
    zc_dev *d;
    zc_vae *vae;
    zi_ctx *vae_ctx;
} zc_join_env;

/* Runs items[0..n) (validated, one size) and every joiner feed gives,
 * calling feed->done once per item as it ends. Returns 0 or the first
 * error that ended the whole batch (its items are done with it). */
int zc_join_run(const zc_join_env *env, px_engine_item **items, int n,
                const px_engine_feed *feed);

/*
 * One image's DiT inputs, shared with the plain batch path: its prompt
 * (and, when guided, its negative prompt) tokenized into ids[0..1]
 * (allocated here, ZI_TOK_MAX_PROMPT each; the caller frees them) with
 * their lengths, its LoRAs into uses (PX_ENGINE_MAX_LORAS) and *nl, and its
 * initial latents (per floats) into lat: the item's own or drawn from its
 * seed. Sets the item's prompt_tokens and prompt_truncated. Returns the
 * number of DiT items (1, or 2 when guided) or a negative error with err.
 */
int zc_item_prepare(const zi_model *m, px_engine_item *it, int32_t *ids[2], int len[2],
                    zi_lora_use *uses, int *nl, float *lat, size_t per, char *err,
                    size_t errlen);

/* Plan text rows for a prompt of len tokens: the padded length rounded up
 * to a power of two (>= 32), so that a few plans serve every length. */
int zc_text_bucket(int len);

#endif
