/*
 * zc_net.h — the Z-Image networks on one GPU: the weights uploaded once
 * per device (bf16 GEMM weights, fp32 norms / biases / pad tokens), the
 * Qwen3 text encoder batched over prompts, and the DiT's per-shape plans
 * (buffers + the CUDA graph of one denoising step) for a batch of items,
 * each with its own timestep and text length.
 *
 * Internal to src/engine/zimage/cuda/ (zimage_cuda.c drives it). One
 * zc_dev per pool context; whoever holds the context uses it (not
 * thread-safe).
 *
 * Checked by tests/unit/zimage_cuda_test.c (passed on an H200, 2026-12-05;
 * docs/benchmarks/zimage-cuda.md).
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZC_NET_H
#define PX_ENGINE_ZIMAGE_CUDA_ZC_NET_H

#include "engine/cuda/cuda_device.h"
#include "engine/cuda/cuda_graph.h"
#include "engine/cuda/cuda_plan.h"
#include "engine/zimage/cuda/zc_gemm.h"
#include "engine/zimage/cuda/zc_lora.h"
#include "engine/zimage/zconfig.h"
#include "engine/zimage/zweights.h"

#include <stddef.h>
#include <stdint.h>

#define ZC_MAX_ITEMS 64 /* DiT items of one batch (CFG counts two per image) */

/* One of a DiT block's big linears (a Linear weight [N, K]): bf16 w, or
 * on an fp8 device, where N allows it (zc_fp8_fits), e4m3 w8 ([N,
 * zc_fp8_ld(K)], zc_fp8.h) with an fp32 scale per output row, and then w
 * NULL: the bf16 copy is freed at upload (the memory is the point). */
typedef struct zc_lin {
    void *w, *w8;
    float *scale;
} zc_lin;

typedef struct zc_dblock {
    zc_lin qkv, out, w13, w2; /* w13 = [w1; w3] */
    void *ada_w;              /* bf16; NULL: unmodulated */
    float *ada_b, *q_norm, *k_norm, *n1, *n2, *f1, *f2;
    /* fp8 devices: the static e4m3 scales of q and k for the fp8 attention
     * (zattn_q8.h), and their inverses on the device (zc_attn.descale_qk) */
    float qk8[2];
    float *qk8_dev;
} zc_dblock;

typedef struct zc_qlayer {
    void *qkv, *o, *gu, *down; /* bf16; qkv = [q; k; v], gu = [gate; up] */
    float *in_norm, *post_norm, *q_norm, *k_norm;
} zc_qlayer;

/* Growable device buffers of the text encoder (it runs outside graphs). */
typedef struct zc_text_bufs {
    size_t rows; /* capacity in rows (items x Lmax) */
    int cs_rows; /* rows of the RoPE table */
    float *x;    /* [rows, H] residual, and the features after the run */
    void *hb, *qkv, *att, *ff;
    float *cs;
    int *ids, *kv_len;
} zc_text_bufs;

typedef struct zc_dev {
    px_cuda_ctx *ctx;
    zc_gemm *gemm;
    zi_dit_config dc;
    zi_qwen3_config qc;
    int hd, pf, nblocks, nqrun;
    int fp8;      /* the blocks' big linears in e4m3 where they fit (zc_dev_create) */
    int xbf;      /* the residual streams in bf16 (zc_resid_bf16 at zc_dev_create) */
    int glu;      /* w1|w3 and SwiGLU as one GEMM of ours (zc_glu_fused at zc_dev_create) */
    int nlin_fp8; /* how many of them are (of 4 per block) */
    /* DiT */
    void *x_w, *cap_w, *t0_w, *t2_w, *fin_w, *fin_ada_w;
    float *x_b, *cap_norm, *cap_b, *t0_b, *t2_b, *fin_b, *fin_ada_b, *x_pad, *cap_pad;
    zc_dblock *blocks;
    /* Qwen3 */
    void *embed;
    zc_qlayer *qlayers;
    zc_text_bufs tb;
    px_cuda_plans *plans; /* DiT plans by zc_plan_key */
    zc_lora_dev *lora;    /* the LoRA cache (set by the engine; zc_dev_free frees it) */
    void **allocs;        /* every weight allocation, for freeing */
    int nalloc, capalloc;
    size_t weight_bytes;
} zc_dev;

/* Uploads the model's DiT and text-encoder weights to c's device (current)
 * and sets up the GEMMs; fp8: the DiT blocks' qkv, out, w13 and w2 as e4m3
 * (zc_lin; adaLN, embedders, final layer and text encoder stay bf16).
 * Returns 0, PX_ENOMEM (device memory), PX_EIO, PX_EUNSUP (fp8 on a GPU
 * or cuBLASLt without it: zc_gemm_fp8_probe) or the store's errors (a
 * missing tensor). Caller frees with zc_dev_free (also on failure: *out is
 * set when anything was allocated). */
int zc_dev_create(px_cuda_ctx *c, const zi_weights *dit, const zi_dit_config *dc,
                  const zi_weights *text, const zi_qwen3_config *qc, int fp8, zc_dev **out,
                  char *err, size_t errlen);
void zc_dev_free(zc_dev *d);

/* Internal to the module's files: the DiT plan cache (zc_dit.c) and the
 * text buffers grown to rows x cs_rows (zc_weights.c). */
px_cuda_plans *zc_plans_create(zc_dev *d);
int zc_text_bufs_reserve(zc_dev *d, size_t rows, int cs_rows, char *err, size_t errlen);

/* ------------------------------------------------------- text encoder */

/*
 * Encodes n prompts (ids[i] with len[i] tokens, 1..512) as one padded
 * batch of n x Lmax rows, Lmax = max len: after it, d->tb.x holds item i's
 * features (hidden_states[-2]) in rows [i·Lmax, i·Lmax + len[i]). Causal
 * attention with a key length per item, so padding never reaches the real
 * tokens. Synchronous. Returns 0 or an error.
 */
int zc_text_encode(zc_dev *d, const int32_t *const *ids, const int *len, int n, int *lmax,
                   char *err, size_t errlen);

/* ------------------------------------------------------------- the DiT */

/* A plan's shape: DiT items, images (items without or with their CFG
 * half: the graph's sampler step is built for this count), patch grid,
 * padded text rows per item. */
typedef struct zc_plan_key {
    int B, n_images, ht, wt, T;
} zc_plan_key;

typedef struct zc_plan zc_plan;

/* Bytes of device memory a plan of this shape allocates (the admission
 * estimate uses it). */
size_t zc_plan_bytes(const zi_dit_config *c, const zc_plan_key *k);

/* What a plan of an fp8 device allocates on top of zc_plan_bytes: the
 * activations' e4m3 copy and scales (the largest block GEMM's rows x K). */
size_t zc_plan_fp8_bytes(const zi_dit_config *c, const zc_plan_key *k);

/* Whether a device made now keeps the DiT's residual streams in bf16 (the
 * default) rather than fp32 (PX_ZIMAGE_CUDA_RESID=fp32, read at each
 * call): 1 or 0. zc_dev.xbf holds a device's. */
int zc_resid_bf16(void);

/* Whether a device made now on GPU dev runs the feed-forward's w1|w3 GEMM
 * and SwiGLU as one (zhgemm.h: our Hopper GEMM, SwiGLU in its epilogue;
 * PX_ZIMAGE_CUDA_HGEMM=1 where the GPU has it, not yet the default):
 * 1 or 0. zc_dev.glu holds a device's; blocks in fp8 keep the two steps. */
int zc_glu_fused(int dev);

/* The plan for k (built on first use, cached per device). */
int zc_plan_get(zc_dev *d, const zc_plan_key *k, zc_plan **out, char *err, size_t errlen);

/* What one batch's items are: DiT item b reads text item b of the last
 * zc_text_encode (len[b] tokens; rows of Lmax) and image lat_of[b]; image
 * i's prediction is item pos_of[i] (and neg_of[i] >= 0 with weight w[i]). */
typedef struct zc_batch {
    int n_items, n_images;
    int text_len[ZC_MAX_ITEMS], lat_of[ZC_MAX_ITEMS];
    int pos_of[ZC_MAX_ITEMS], neg_of[ZC_MAX_ITEMS];
    float cfg_w[ZC_MAX_ITEMS];
    int lmax; /* the text encoder's row stride per item */
    /* Item b's LoRAs: loras[b][0 .. nloras[b]) (NULL / 0: none). */
    const zi_lora_use *loras[ZC_MAX_ITEMS];
    int nloras[ZC_MAX_ITEMS];
    /* Image i's latents on the device (fp32 C x H x W), read by
     * zc_plan_begin when it is given no host latents. */
    const float *lat_dev[ZC_MAX_ITEMS];
} zc_batch;

/* Binds a batch to plan p: uploads positions, key lengths and the
 * initial latents (host, n_images x C x H x W; NULL: copied from each
 * image's b->lat_dev on the device, in stream order), binds the items' LoRAs
 * (uploaded into the device's cache and pinned until zc_plan_end), embeds
 * the text and runs the context refiner (the text stream does not depend
 * on the timestep, so once per generation, not per step). */
int zc_plan_begin(zc_dev *d, zc_plan *p, const zc_batch *b, const float *latents, char *err,
                  size_t errlen);

/* One Euler step for every image i: sigma[i] -> sigma_next[i] (each image
 * at its own point of its own schedule: continuous batching; the items of
 * an image take its timestep). As a CUDA graph after the first run (direct when
 * `direct`, e.g. to profile, and whenever the batch has LoRAs: a graph
 * would bake in the LoRAs' device addresses, which the cache may move
 * between generations, and their scales). pred_out: NULL or device fp32
 * for the tests (n_images x C x H x W: the positive prediction). Enqueued,
 * not waited. */
int zc_plan_step(zc_dev *d, zc_plan *p, const float *sigma, const float *sigma_next, int direct,
                 float *pred_out, char *err, size_t errlen);

/* The latents now (device, n_images x C x H x W fp32). */
const float *zc_plan_latents(const zc_plan *p);

/* Ends the generation bound by zc_plan_begin: waits for the stream and
 * unpins its LoRAs (the cache may then drop them). Safe to call twice. */
void zc_plan_end(zc_dev *d, zc_plan *p);

/* ------------------------------------------------------------- the VAE */

typedef struct zc_vae zc_vae;

/* The VAE decoder's weights (an F32 store: zi_weights_open without
 * keep_bf16) uploaded to c's device (fp32), GEMMs through g (c's). c needs
 * its cuDNN handle. Returns 0 or an error; *out is set either way (free
 * it with zc_vae_free). */
int zc_vae_create(px_cuda_ctx *c, zc_gemm *g, const zi_weights *w, const zi_vae_config *cfg,
                  zc_vae **out, char *err, size_t errlen);
void zc_vae_free(zc_vae *v);
size_t zc_vae_weight_bytes(const zc_vae *v);

/* The decoder's precision: "bf16" (the default, PX_ZIMAGE_CUDA_VAE=bf16:
 * the up blocks in bf16, the rest TF32), "tf32" (=tf32: fp32 activations)
 * or "fp32" (=fp32: FMA math too). */
const char *zc_vae_precision(const zc_vae *v);

/* Device bytes the decoder's plan takes for latents of lh x lw. */
size_t zc_vae_bytes(const zi_vae_config *c, int lh, int lw);

/* Decodes one latent (device fp32 [C, lh, lw]) into rgb (host, 8lh x 8lw
 * x 3 bytes, round(255·x) as the CPU VAE). Synchronous. Returns 0 or an
 * error. */
int zc_vae_decode(zc_vae *v, const float *lat, int lh, int lw, uint8_t *rgb, char *err,
                  size_t errlen);

#endif
