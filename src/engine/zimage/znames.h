/*
 * znames.h — the tensor names of the Z-Image components: which source names
 * each layout users bring (diffusers / Hugging Face, ComfyUI single files,
 * FLUX's BFL `ae.safetensors`, llama.cpp-style Qwen3 GGUF) map to which
 * canonical name of zweights.h, which names are known but unused (skipped),
 * and which are unknown (the loader refuses them rather than ignore weights
 * it does not understand).
 */
#ifndef PX_ENGINE_ZIMAGE_ZNAMES_H
#define PX_ENGINE_ZIMAGE_ZNAMES_H

#include "engine/zimage/zweights.h"

#include <stddef.h>

typedef enum zi_name_kind {
    ZI_NAME_KEEP = 0,    /* load as out->name */
    ZI_NAME_SKIP = 1,    /* known but unused by the engine (VAE encoder, norm_final, lm_head) */
    ZI_NAME_UNKNOWN = 2, /* not a tensor of this part */
} zi_name_kind;

#define ZI_NAME_MAX 160

typedef struct zi_name_map {
    char name[ZI_NAME_MAX]; /* canonical name (KEEP) */
    int qkv_slot;           /* 0, 1, 2: a separate q, k or v weight fused into name; else -1 */
    int squeeze;            /* 1: a 1x1 convolution [o, i, 1, 1] stored as the linear [o, i] */
} zi_name_map;

/* The highest up-level index K of a BFL VAE name "decoder.up.K....", or -1
 * for other names: the loader takes the maximum + 1 as the number of levels,
 * because BFL counts levels from the output end and diffusers from the
 * input end (up_blocks.I = up.(levels - 1 - I)). */
int zi_names_bfl_up_level(const char *src);

/* Maps a source name of one part. vae_levels is the number of BFL up levels
 * (ignored for other parts and names). Returns the kind. */
zi_name_kind zi_names_map(zi_part part, const char *src, int vae_levels, zi_name_map *out);

/* Whether a name is one of the part's canonical names. */
int zi_names_is_canonical(zi_part part, const char *name);

/* "DiT", "text encoder", "VAE". */
const char *zi_names_part(zi_part part);

/* The canonical prefix of the DiT's i-th block in forward order (the
 * n_refiner noise refiners, then as many context refiners, then the joint
 * layers: "noise_refiner.0", "context_refiner.0", "layers.0", ...) into
 * buf. Returns 1 if that block is modulated by the timestep (all but the
 * context refiners), else 0. */
int zi_names_dit_block(int i, int n_refiner, char *buf, size_t n);

#endif
