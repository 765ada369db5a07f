/*
 * vae.h — the FLUX autoencoder's decoder on the CPU (oneDNN convolutions
 * through the LaMa engine's conv backend, the rest on the zi_ctx's threads): latents
 * (1, C, h, w) fp32 in, an RGB image of (f*h) x (f*w) out, f = 2^(levels-1)
 * (8 for FLUX).
 *
 *   z = latent / scaling_factor + shift_factor
 *   conv_in -> mid [resnet, self-attention (one head over all h*w
 *   positions), resnet] -> up levels (diffusers up_blocks.0 is the deepest:
 *   it runs first, at latent resolution), each layers_per_block+1 resnets
 *   and, but the last, nearest x2 + 3x3 conv -> GroupNorm+SiLU -> conv_out
 *   -> clamp((x+1)/2, 0, 1)
 *
 * Weights are the diffusers names of zweights.h, shapes checked against the
 * zi_vae_config; they are copied (as fp32) so the store may be closed once
 * zi_vae_create returns. A zi_vae is immutable but for the weight layouts
 * the conv backend converts (under its lock, once): threads may decode at
 * once, each with its own zi_ctx.
 */
#ifndef PX_ENGINE_ZIMAGE_VAE_H
#define PX_ENGINE_ZIMAGE_VAE_H

#include "engine/zimage/zconfig.h"
#include "engine/zimage/zops.h"
#include "engine/zimage/zweights.h"
#include "image/image.h"

#include <stddef.h>

typedef struct zi_vae zi_vae;

/* Binds the decoder's weights. Returns 0, PX_ENOTFOUND / PX_ECORRUPT (a tensor
 * missing or of the wrong shape: err names the file, the tensor, expected
 * and found), PX_EINVAL (a config the decoder cannot run) or PX_ENOMEM.
 * Caller destroys *out. */
int zi_vae_create(const zi_weights *w, const zi_vae_config *cfg, zi_vae **out, char *err,
                  size_t errlen);
void zi_vae_destroy(zi_vae *v);

/* The upsampling factor from latent to pixels (8 for FLUX). */
int zi_vae_factor(const zi_vae *v);

/* Bytes of weights the decoder holds. */
size_t zi_vae_weight_bytes(const zi_vae *v);

/* The most memory a band of convolution input rows may take (0: the
 * default, 32 MiB): 3x3 convolutions run on bands of rows of their padded
 * input, so that no whole normalised or upsampled copy of an activation is
 * held. Smaller bands save memory and cost some speed; for tests. Not
 * while a decode runs. */
void zi_vae_set_band_bytes(zi_vae *v, size_t bytes);

/* Whether the convolutions run in oneDNN's blocked layout (the default, 1)
 * or straight on the NHWC activations (0: slower on AVX2, no reorders; for
 * benchmarks). Not while a decode runs. */
void zi_vae_set_blocked(zi_vae *v, int on);

/* Bytes of activation buffers a decode of an h x w latent allocates (the
 * ping-pong plan; oneDNN's scratchpads come on top). 0 on overflow. */
size_t zi_vae_activation_bytes(const zi_vae *v, int h, int w);

/* Decodes latent (C x h x w, NCHW as the sampler holds it) into rgb, a
 * caller array of (f*h) * (f*w) * 3 floats (HWC) in [0, 1]. ctx is the
 * calling thread's workspace (zops.h: the attention, and its threads run the
 * element-wise work). Activation buffers are allocated for the call and
 * freed before it returns. Returns 0, PX_EINVAL (size), PX_ENOMEM or
 * PX_EUNSUP (a backend failure). */
int zi_vae_decode_float(zi_vae *v, zi_ctx *ctx, const float *latent, int h, int w, float *rgb,
                        char *err, size_t errlen);

/* The same into an 8-bit image (round(255*x)), allocated here: the caller
 * frees out with px_image_free. */
int zi_vae_decode(zi_vae *v, zi_ctx *ctx, const float *latent, int h, int w, px_image *out,
                  char *err, size_t errlen);

#endif
