/*
 * lora.h — LoRA adapters for the Z-Image DiT: the files users bring, read
 * into low-rank deltas addressed by (block, linear), applied per item at run
 * time by the DiT backends (so one batch can mix LoRAs and scales) or merged
 * into a weight copy (tests, and an optional fast path).
 *
 * A delta changes the output rows [row0, row0 + rows) of one linear:
 *
 *   W' = W + m·(α/r)·B·A      A = "down" [r, in], B = "up" [rows, r]
 *
 * with m the user's scale and α the file's alpha (α = r when absent). With
 * the fused attention.qkv [3D, D] the q/k/v deltas land in the row slices
 * [0, D), [D, 2D), [2D, 3D); a delta on the fused qkv itself covers all.
 *
 * Key spellings read (../shared/specs/zimage.md, "LoRA files"):
 *   PEFT / diffusers  transformer.layers.N.attention.to_q.lora_A.weight,
 *                     .lora_B.weight, optional .alpha (the "transformer."
 *                     prefix may be absent);
 *   ComfyUI / ai-toolkit  the same with a "diffusion_model." prefix (also
 *                     the original checkpoint's module names:
 *                     attention.qkv, attention.out);
 *   kohya / musubi    lora_unet_layers_N_attention_to_q.lora_down.weight,
 *                     .lora_up.weight, .alpha (underscored module paths,
 *                     mapped back through the table of the model's modules).
 * Blocks: layers.N, noise_refiner.N, context_refiner.N. Linears:
 * attention.to_q / to_k / to_v / to_out.0 (or qkv / out),
 * feed_forward.w1 / w2 / w3, adaLN_modulation.0.
 *
 * Nothing loads partially: a key that maps to no linear of the model, an
 * A without its B, or a shape that does not fit is refused (PX_ECORRUPT)
 * with the list of what did not match in err.
 *
 * A zi_lora is immutable once open: any number of threads read it.
 */
#ifndef PX_ENGINE_ZIMAGE_LORA_H
#define PX_ENGINE_ZIMAGE_LORA_H

#include "engine/zimage/zconfig.h"
#include "engine/zimage/zweights.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Which linear of a block a delta changes. */
typedef enum zi_lora_site {
    ZI_LORA_QKV = 0, /* attention.qkv [3D, D] (to_q/to_k/to_v: a row slice) */
    ZI_LORA_OUT,     /* attention.out [D, D] (to_out.0) */
    ZI_LORA_W1,      /* feed_forward.w1 [F, D] */
    ZI_LORA_W2,      /* feed_forward.w2 [D, F] */
    ZI_LORA_W3,      /* feed_forward.w3 [F, D] */
    ZI_LORA_ADA,     /* adaLN_modulation.0 [4D, t_dim] (modulated blocks only) */
    ZI_LORA_NSITES
} zi_lora_site;

/* One low-rank delta (see above). A and B are of dtype (ZI_BF16 when the
 * file stores BF16, else ZI_F32: F16 widens, as F16 -> BF16 would round),
 * both 64-byte aligned, owned by the zi_lora. */
typedef struct zi_lora_delta {
    int block;         /* DiT block in forward order (znames.h zi_names_dit_block) */
    zi_lora_site site;
    int row0, rows;    /* output rows of the base weight it changes */
    int rank, in;      /* r, and the linear's input features */
    float alpha_over_rank; /* α / r */
    zi_dtype dtype;    /* of A and B */
    const void *A;     /* [rank, in] */
    const void *B;     /* [rows, rank] */
} zi_lora_delta;

/* Element i of a delta's A or B (p, of dtype dt) as F32 (exact for BF16). */
static inline float zi_lora_value(zi_dtype dt, const void *p, size_t i)
{
    float f;
    if (dt == ZI_F32) return ((const float *)p)[i];
    uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
    memcpy(&f, &u, sizeof f);
    return f;
}

typedef struct zi_lora zi_lora; /* opaque */

/* Key spellings (zi_lora_spelling). */
typedef enum zi_lora_spelling {
    ZI_LORA_PEFT = 0,    /* lora_A / lora_B, no prefix or "transformer." */
    ZI_LORA_COMFY = 1,   /* lora_A / lora_B under "diffusion_model." */
    ZI_LORA_KOHYA = 2    /* lora_unet_..., lora_down / lora_up */
} zi_lora_spelling;

/*
 * Opens a .safetensors LoRA file (memory-mapped while reading, the values
 * copied out: BF16 kept as BF16, F32 as F32, F16 widened to F32; a file is
 * BF16 only when all its A and B tensors are) for a DiT of configuration cfg. Returns
 * 0, PX_EIO / PX_ENOTFOUND (the file), PX_ECORRUPT / PX_ETRUNC (a bad file
 * or keys that do not match the model: err names them), PX_EUNSUP (a dtype
 * it cannot read) or PX_ENOMEM. Caller frees *out.
 */
int zi_lora_open(const char *path, const zi_dit_config *cfg, zi_lora **out, char *err,
                 size_t errlen);

/* The same from bytes in memory (uploads, fuzzing); name is used in
 * messages. The bytes are copied as needed: the caller keeps data. */
int zi_lora_open_mem(const void *data, size_t len, const char *name, const zi_dit_config *cfg,
                     zi_lora **out, char *err, size_t errlen);

void zi_lora_free(zi_lora *l);

zi_lora_spelling zi_lora_spelling_of(const zi_lora *l);
const char *zi_lora_spelling_name(zi_lora_spelling s); /* "peft", "comfyui", "kohya" */

/* Every delta, sorted by (block, site, row0). */
int zi_lora_count(const zi_lora *l);
const zi_lora_delta *zi_lora_at(const zi_lora *l, int i);

/* The deltas of one linear: *n of them from the returned pointer (NULL and
 * 0 when the LoRA does not touch it). O(1). */
const zi_lora_delta *zi_lora_find(const zi_lora *l, int block, zi_lora_site site, int *n);

/* Largest rank, bytes of A and B held, and a bit (1 << site) per site the
 * LoRA touches anywhere. */
int zi_lora_max_rank(const zi_lora *l);
size_t zi_lora_bytes(const zi_lora *l);
unsigned zi_lora_site_mask(const zi_lora *l);

/* One LoRA an item uses, with the user's scale m. */
typedef struct zi_lora_use {
    const zi_lora *lora;
    float scale;
} zi_lora_use;

#define ZI_MAX_LORAS 8

/*
 * Merges the deltas of n uses for one linear into w, a F32 copy of the base
 * weight [out_rows, in] (row-major, PyTorch's Linear layout):
 * w += Σ m·(α/r)·B·A. Returns 0, or PX_EINVAL when a delta does not fit
 * (out_rows / in differ from what the delta expects).
 */
int zi_lora_merge(const zi_lora_use *u, int n, int block, zi_lora_site site, float *w,
                  int out_rows, int in);

#endif
