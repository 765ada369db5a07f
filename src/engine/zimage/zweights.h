/*
 * zweights.h — the Z-Image engine's weight store: one component of the
 * model (the DiT, the Qwen3 text encoder or the VAE) as named tensors in ONE
 * internal layout, whatever the user brought (Hugging Face directory with
 * sharded safetensors and an index, a single ComfyUI-style file with or
 * without the `model.diffusion_model.` prefix, FLUX's `ae.safetensors`, or
 * GGUF with quantized types dequantized at load).
 *
 * Canonical names (what zi_weights_find takes; shapes are PyTorch's, rows
 * first, D = model width):
 *   DiT   x_embedder.{weight,bias}, final_layer.linear.{weight,bias},
 *         final_layer.adaLN_modulation.1.{weight,bias},
 *         t_embedder.mlp.{0,2}.{weight,bias}, cap_embedder.0.weight (RMSNorm),
 *         cap_embedder.1.{weight,bias}, x_pad_token, cap_pad_token,
 *         {noise_refiner,context_refiner,layers}.N.attention.qkv.weight [3D, D]
 *         (q, k, v stacked on dim 0, fused whatever the source),
 *         ….attention.out.weight, ….attention.{q_norm,k_norm}.weight,
 *         ….feed_forward.{w1,w2,w3}.weight,
 *         ….{attention_norm1,attention_norm2,ffn_norm1,ffn_norm2}.weight,
 *         ….adaLN_modulation.0.{weight,bias} (not in context_refiner)
 *   text  Hugging Face Qwen3 names without the `model.` prefix:
 *         embed_tokens.weight, norm.weight,
 *         layers.N.self_attn.{q_proj,k_proj,v_proj,o_proj,q_norm,k_norm}.weight,
 *         layers.N.mlp.{gate_proj,up_proj,down_proj}.weight,
 *         layers.N.{input_layernorm,post_attention_layernorm}.weight
 *   VAE   diffusers decoder names: decoder.conv_in.*, decoder.mid_block.
 *         {resnets.{0,1},attentions.0.{group_norm,to_q,to_k,to_v,to_out.0}}.*
 *         (attention projections as 2-D [out, in] linears),
 *         decoder.up_blocks.I.{resnets.J.{norm1,conv1,norm2,conv2,conv_shortcut},
 *         upsamplers.0.conv}.*, decoder.conv_norm_out.*, decoder.conv_out.*
 *
 * Data is F32 or BF16 (as stored, or converted at load: F16 and GGUF
 * quantized types become the load option's dtype). Every tensor's data is
 * aligned to at least 64 bytes and lives until zi_weights_close.
 */
#ifndef PX_ENGINE_ZIMAGE_ZWEIGHTS_H
#define PX_ENGINE_ZIMAGE_ZWEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#define ZI_MAX_DIMS 4

typedef enum zi_dtype { ZI_F32 = 0, ZI_BF16 = 1 } zi_dtype;

typedef enum zi_part { ZI_PART_DIT = 0, ZI_PART_TEXT = 1, ZI_PART_VAE = 2 } zi_part;

typedef struct zi_tensor {
    const char *name; /* canonical name, owned by the store */
    zi_dtype dtype;
    int ndim;
    int64_t shape[ZI_MAX_DIMS];
    size_t nelem;
    const void *data; /* nelem elements of dtype, 64-byte aligned */
} zi_tensor;

typedef struct zi_weights zi_weights; /* opaque */

typedef struct zi_load_opts {
    zi_dtype convert_to; /* dtype for sources that are neither F32 nor BF16 */
    int keep_bf16;       /* 0: BF16 sources become F32; 1: kept as BF16 */
} zi_load_opts;

/*
 * Opens one component. path is a file (.safetensors or .gguf) or a Hugging
 * Face component directory (config.json + one safetensors file or shards
 * with their *.safetensors.index.json). opts NULL = F32 everywhere.
 * Returns 0, PX_EIO (file unreadable), PX_ECORRUPT / PX_ETRUNC (bad file:
 * err names the file and the tensor), PX_EUNSUP (unknown dtype or layout),
 * PX_ENOMEM. Caller closes *out.
 */
int zi_weights_open(const char *path, zi_part part, const zi_load_opts *opts,
                    zi_weights **out, char *err, size_t errlen);

void zi_weights_close(zi_weights *w);

int zi_weights_count(const zi_weights *w);
const zi_tensor *zi_weights_at(const zi_weights *w, int i);

/* Tensor by canonical name, or NULL. */
const zi_tensor *zi_weights_find(const zi_weights *w, const char *name);

/*
 * Tensor by canonical name with its shape checked (ndim entries of shape;
 * an entry < 0 matches any size). Returns 0 with *out, PX_ENOTFOUND
 * ("<file>: tensor <name> is missing") or PX_ECORRUPT ("<file>: tensor
 * <name>: expected [a, b], found [c, d]").
 */
int zi_weights_get(const zi_weights *w, const char *name, int ndim, const int64_t *shape,
                   const zi_tensor **out, char *err, size_t errlen);

/* The file a tensor came from (for error messages), never NULL. */
const char *zi_weights_source(const zi_weights *w, const zi_tensor *t);

/* Bytes of tensor data the store holds in memory (mapped or converted). */
size_t zi_weights_bytes(const zi_weights *w);

#endif
