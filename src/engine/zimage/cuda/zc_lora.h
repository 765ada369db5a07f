/*
 * zc_lora.h — LoRAs in the Z-Image CUDA DiT, applied per item at run time
 * next to the base GEMMs, so one batch mixes LoRAs and scales:
 *
 *   T = X_items·Aᵀ                                   one GEMM
 *   Y_items[:, col + row0 .. + rows] += m·(α/r)·T_d·B_dᵀ   one GEMM per delta
 *
 * over the rows of a run of consecutive items that use the same LoRA at
 * the same scale (CFG's two halves of an image are such a run). A holds
 * the A's of every delta of the linear stacked ([Σr, in]: q, k and v of
 * the fused qkv, or w1 and w3, which read the same input, in one GEMM);
 * T_d is delta d's column slice of T; the second GEMM adds into the base
 * output through cuBLASLt's alpha and beta = 1. bf16 operands (X is the
 * base GEMM's bf16 input, so A must be bf16 too; T is rounded to bf16),
 * fp32 accumulation, Y as the base GEMM wrote it (bf16 or fp32).
 *
 * Each device context keeps a cache of uploaded LoRAs (lora_cache.h: a
 * byte cap, least recently used out, pinned while a batch is bound),
 * keyed by the zi_lora pointer: the engine evicts a LoRA before freeing
 * it. Internal to src/engine/zimage/cuda/.
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZC_LORA_H
#define PX_ENGINE_ZIMAGE_CUDA_ZC_LORA_H

#include "engine/cuda/cuda_device.h"
#include "engine/zimage/cuda/zc_gemm.h"
#include "engine/zimage/lora.h"
#include "engine/zimage/lora_cache.h"
#include "engine/zimage/zconfig.h"

#include <stddef.h>

/* The linears of a block by input: one T GEMM per group. */
typedef enum zc_lora_group {
    ZC_LORA_QKV = 0, /* attention.qkv (q, k, v slices) */
    ZC_LORA_OUT,     /* attention.out */
    ZC_LORA_W13,     /* feed_forward.w1 (columns [0, F)) and w3 ([F, 2F)) */
    ZC_LORA_W2,      /* feed_forward.w2 */
    ZC_LORA_ADA,     /* adaLN_modulation.0 (one row per item) */
    ZC_LORA_NGROUPS
} zc_lora_group;

/* The default cap of a device's LoRA cache (PX_ZIMAGE_CUDA_LORA_MB). */
#define ZC_LORA_CACHE_DEFAULT_MB 2048

typedef struct zc_lora_dev zc_lora_dev;

/* A device context's LoRA state for a DiT of configuration dc: the cache
 * (cap_bytes) and the T scratch (grown on demand). No device work yet.
 * Aborts when host memory is missing. Caller frees. */
zc_lora_dev *zc_lora_dev_create(px_cuda_ctx *c, const zi_dit_config *dc, size_t cap_bytes);

/* Frees every cached LoRA and the scratch (no batch may be bound). NULL
 * is a no-op. */
void zc_lora_dev_free(zc_lora_dev *ld);

/* Forgets l on this device (any thread): see lora_cache.h. */
void zc_lora_dev_evict(zc_lora_dev *ld, const zi_lora *l);

void zc_lora_dev_stats(zc_lora_dev *ld, zi_lora_cache_stats *s);

/* The device bytes l takes in the cache (bf16 A's and B's, 256-aligned),
 * 0 when it does not fit the model. */
size_t zc_lora_bytes(const zc_lora_dev *ld, const zi_lora *l);

typedef struct zc_lora_bind zc_lora_bind;

/*
 * Binds the LoRAs of n DiT items (item b uses uses[b][0 .. nuses[b]);
 * uses NULL or every nuses 0: no LoRA) for a generation on the context's
 * holder thread: uploads what the cache lacks, pins it, groups runs of
 * items with the same LoRA and scale, and grows the scratch for GEMMs of
 * up to max_rows rows. *out is NULL when no item uses a LoRA with a
 * non-zero scale (then nothing is added anywhere). Returns 0, PX_EINVAL
 * (a LoRA opened for another model: err says which linear does not fit),
 * PX_ENOMEM or PX_EIO. Free with zc_lora_bind_free.
 */
int zc_lora_bind_create(zc_lora_dev *ld, const zi_lora_use *const *uses, const int *nuses, int n,
                        size_t max_rows, zc_lora_bind **out, char *err, size_t errlen);

/* Waits for the context's stream (the GEMMs read the LoRAs), unpins,
 * frees. NULL is a no-op. */
void zc_lora_bind_free(zc_lora_dev *ld, zc_lora_bind *b);

/*
 * Adds the bound LoRAs' deltas of one block's group after its base GEMM:
 * x is the GEMM's bf16 input (ld ldx), y its output (ld ldy, type yt),
 * S rows per item (items laid out one after another), col_hi the column
 * where the group's second linear starts (ZC_LORA_W13: F; else unused).
 * Enqueued on the context's stream. b NULL: nothing. Returns 0 or a
 * GEMM's error.
 */
int zc_lora_apply(zc_lora_dev *ld, zc_gemm *g, const zc_lora_bind *b, int block, zc_lora_group grp,
                  const void *x, int ldx, int S, void *y, int ldy, zc_type yt, int col_hi,
                  char *err, size_t errlen);

/* GEMMs one zc_lora_apply of (block, grp) enqueues (benchmarks, tests). */
int zc_lora_gemms(const zc_lora_bind *b, int block, zc_lora_group grp);

#endif
