/*
 * dit.h — the Z-Image diffusion transformer (S3-DiT, diffusers'
 * ZImageTransformer2DModel) on the CPU: one forward pass over a batch of
 * items that share an image size and may differ in prompt length and
 * timestep.
 *
 * Per item: the latent [C, H, W] is cut into p×p patches (features ordered
 * (ph, pw, c), channel fastest) and embedded; the caption features are
 * RMS-normed and embedded; each run is padded with its learned pad token to
 * a multiple of 32 (the pads are attended); the noise refiner blocks see the
 * item's image tokens, the context refiner blocks (unmodulated) its text
 * tokens, the joint blocks [image, text]; the final layer and unpatchify
 * give the raw model output, which is the NEGATIVE velocity (the sampler
 * steps with −output). Attention never crosses items, so an item's output
 * does not depend on what it was batched with (up to the summation order of
 * the matrix products, which may change with the batch's row count).
 *
 * A zi_dit binds a weight store (borrowed) and is immutable: threads may run
 * forwards at once, each with its own zi_ctx (which keeps the activations
 * between calls).
 */
#ifndef PX_ENGINE_ZIMAGE_DIT_H
#define PX_ENGINE_ZIMAGE_DIT_H

#include "engine/zimage/lora.h"
#include "engine/zimage/zconfig.h"
#include "engine/zimage/zops.h"
#include "engine/zimage/zweights.h"

#include <stdatomic.h>
#include <stddef.h>

typedef struct zi_dit zi_dit; /* opaque */

/*
 * Binds every DiT tensor by canonical name (fused attention.qkv [3D, D]),
 * checking shapes against cfg (t_dim, t_hidden, t_freq, ffn_hidden,
 * cap_feat_dim, axes_dims included). Returns 0, PX_EINVAL (a config that
 * cannot run: dim not divisible by n_heads, axes_dims not summing to the
 * head dim or odd), PX_ENOTFOUND / PX_ECORRUPT (missing tensor or wrong
 * shape, err names the file and tensor) or PX_ENOMEM. Caller frees *out; w
 * must outlive it.
 */
int zi_dit_bind(const zi_weights *w, const zi_dit_config *cfg, zi_dit **out, char *err,
                size_t errlen);
void zi_dit_free(zi_dit *d);

const zi_dit_config *zi_dit_config_of(const zi_dit *d);

/* t_in of a noise level σ: t_scale·(1 − σ), rounded as the reference (both
 * steps in float). */
float zi_dit_t_in(const zi_dit_config *cfg, float sigma);

typedef struct zi_dit_input {
    const float *latent; /* [in_channels, lat_h, lat_w] */
    float t_in;          /* zi_dit_t_in(σ): 0 at σ = 1 (pure noise) */
    const float *text;   /* [text_len, cap_feat_dim]: the encoder's features */
    int text_len;        /* >= 1 */
    const zi_lora_use *loras; /* NULL or nloras LoRAs applied to this item only */
    int nloras;               /* 0..ZI_MAX_LORAS */
} zi_dit_input;

#define ZI_DIT_MAX_ITEMS 64

/*
 * One forward of n items (1..ZI_DIT_MAX_ITEMS; latents lat_h x lat_w,
 * multiples of the patch; text_len 1..65536)
 * into out: n consecutive [in_channels, lat_h, lat_w] arrays (caller-
 * allocated), the raw model output. cancel (may be NULL) is polled between
 * blocks. Each item's LoRAs are added after the base linears of every block
 * to that item's rows only (lora_apply.h). Returns 0, PX_EINVAL (sizes, or
 * LoRA uses that do not fit this model), PX_ECANCELED, PX_ENOMEM or an op's
 * error (message in err).
 */
int zi_dit_forward(const zi_dit *d, zi_ctx *c, const zi_dit_input *items, int n, int lat_h,
                   int lat_w, float *out, const atomic_int *cancel, char *err, size_t errlen);

/* Floating-point operations of one forward of one item (for benchmarks). */
double zi_dit_flops(const zi_dit_config *cfg, int lat_h, int lat_w, int text_len);

#endif
