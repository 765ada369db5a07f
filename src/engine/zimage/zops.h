/*
 * zops.h — the CPU operations the Z-Image transformers (Qwen3 text encoder,
 * DiT) and the VAE decoder share: linear layers on oneDNN's matmul (F32 or
 * BF16 weights, the BF16 ones widened block by block into scratch so the
 * 12 GB of bf16 weights are never held twice), RMSNorm / LayerNorm, SiLU,
 * SwiGLU, rotary embeddings (half-split as in Qwen3, interleaved as in the
 * DiT, any number of position axes) and softmax attention with GQA, causal
 * or full with a key mask, computed in query chunks so memory grows with
 * chunk x keys, never keys x keys.
 *
 * Activations are row-major float32 matrices: a token per row, `ld` floats
 * from one row to the next (ld >= the row's width, so views into wider
 * buffers such as the fused q|k|v output work without copies).
 *
 * Threads: oneDNN runs on OpenMP (all cores by default, zi_set_threads);
 * the element-wise ops and the softmax run on the same OpenMP team (or on
 * a px_pool given to the context). Everything that needs
 * memory while running (oneDNN primitives cached per shape, the widened
 * weight blocks, attention scores) lives in a zi_ctx, which ONE thread uses
 * at a time: give each serving worker its own. The ops never allocate once a
 * context has seen the shapes (except oneDNN's own primitive creation the
 * first time a shape is seen).
 */
#ifndef PX_ENGINE_ZIMAGE_ZOPS_H
#define PX_ENGINE_ZIMAGE_ZOPS_H

#include "core/pool.h"
#include "engine/zimage/zweights.h"

#include <stddef.h>
#include <stdint.h>

typedef struct zi_ctx zi_ctx; /* opaque: one thread's workspace */

/* Creates a workspace. pool NULL (recommended): the element-wise ops run
 * on the calling thread's OpenMP team, the same threads as oneDNN's
 * products; a px_pool: they run on it (two sets of threads then take turns
 * on the cores: measured several times slower on a loaded 2-core machine,
 * as OpenMP's idle threads spin while the pool works). Returns 0,
 * PX_EUNSUP (no oneDNN CPU engine) or PX_ENOMEM. Caller destroys *out. */
int zi_ctx_create(px_pool *pool, zi_ctx **out, char *err, size_t errlen);
void zi_ctx_destroy(zi_ctx *c);
px_pool *zi_ctx_pool(const zi_ctx *c);

/* Runs fn over [0, n) in chunks of grain (<= 0: a few chunks per thread)
 * on the context's threads (see zi_ctx_create); returns when all are done.
 * Chunks must write disjoint outputs. */
void zi_parallel_for(zi_ctx *c, int n, int grain, px_range_fn fn, void *ctx);

/* The memory attention may use for the scores of one query chunk (at
 * least 16 queries' worth whatever the cap); 0 = the default, 128 MB, which
 * measured fastest. Smaller caps mean more, smaller chunks. */
void zi_ctx_set_score_bytes(zi_ctx *c, size_t bytes);

/* Bytes the context holds now (scratch and cached primitives' scratch). */
size_t zi_ctx_bytes(const zi_ctx *c);

/* Sets oneDNN's (OpenMP) team size for the calling thread; n <= 0 leaves it. */
void zi_set_threads(int n);

/* A growable float buffer for callers' activations (64-byte aligned). */
typedef struct zi_buf {
    float *p;
    size_t cap; /* floats */
} zi_buf;

/* Ensures room for n floats (contents are not kept). Returns 0 or PX_ENOMEM. */
int zi_buf_reserve(zi_buf *b, size_t n);
void zi_buf_free(zi_buf *b);

/* The context's activation buffers for the modules that run on it (the
 * text encoder, the DiT, the VAE): slot 0..ZI_CTX_SLOTS-1 with room for at
 * least n floats, kept between calls so a steady stream of requests stops
 * allocating. Contents survive only while no call asks the same slot for
 * more room. A module owns every slot during one of its calls (modules do
 * not nest). Returns NULL on allocation failure (the slot keeps its old
 * buffer) or a slot out of range. */
#define ZI_CTX_SLOTS 16
float *zi_ctx_buf(zi_ctx *c, int slot, size_t n);

/* --- conversions ------------------------------------------------------------ */

static inline float zi_bf16_to_f32(uint16_t h)
{
    union { uint32_t u; float f; } v = {.u = (uint32_t)h << 16};
    return v.f;
}

/* Round to nearest even, as PyTorch's .to(torch.bfloat16). */
uint16_t zi_f32_to_bf16(float f);

/* Copies a tensor (F32 or BF16) as nelem floats into dst. */
void zi_tensor_to_f32(const zi_tensor *t, float *dst);

/* A malloc'd F32 copy of a (small) tensor, or NULL on allocation failure.
 * Caller frees. Used for norm weights, biases and pad tokens. */
float *zi_tensor_dup_f32(const zi_tensor *t);

/* --- linear -------------------------------------------------------------------- */

enum {
    ZI_LIN_ACCUM = 1 /* y += x·Wᵀ (+ b) instead of y = ... */
};

/*
 * y[M, N] = x[M, K] · Wᵀ + b with W [N, K] row-major (PyTorch's Linear
 * weight) in dtype F32 (float) or BF16 (uint16_t), bias NULL or N floats.
 * ldx >= K, ldy >= N. BF16 weights are exact in F32, so the result differs
 * from an all-F32 run only by summation order. Returns 0, PX_EINVAL (bad
 * sizes), PX_ENOMEM or PX_EUNSUP (oneDNN refused; err says which step).
 */
int zi_op_matmul(zi_ctx *c, const float *x, int M, int K, int ldx, const void *w, zi_dtype wt,
                 int N, const float *bias, float *y, int ldy, int flags, char *err,
                 size_t errlen);

/* zi_op_matmul with W a 2-D tensor [N, K] (K = shape[1], N = shape[0]). */
int zi_op_linear(zi_ctx *c, const float *x, int M, int ldx, const zi_tensor *w, const float *bias,
                 float *y, int ldy, int flags, char *err, size_t errlen);

/* --- norms and activations (in place when y == x and ldy == ldx) ------------- */

/* y = x / sqrt(mean(x²) + eps) · w over rows of n (w NULL = no weight);
 * the mean is accumulated in double. */
void zi_op_rmsnorm(zi_ctx *c, const float *x, int rows, int n, int ldx, const float *w, float eps,
                   float *y, int ldy);

/* Per-head RMSNorm: every head_dim-wide group of the first n_heads·head_dim
 * columns of each row normalised with the same weight w [head_dim]. */
void zi_op_rmsnorm_heads(zi_ctx *c, float *x, int rows, int n_heads, int head_dim, int ld,
                         const float *w, float eps);

/* y = (x - mean) / sqrt(var + eps) over rows of n, no affine (double sums). */
void zi_op_layernorm(zi_ctx *c, const float *x, int rows, int n, int ldx, float eps, float *y,
                     int ldy);

/* x = x·sigmoid(x) over n contiguous floats. */
void zi_op_silu(zi_ctx *c, float *x, size_t n);

/* out = silu(gate) · up, rows of n (gate, up, out may share rows' storage
 * with strides ldg, ldu, ldo; out may alias gate). */
void zi_op_swiglu(zi_ctx *c, const float *gate, int ldg, const float *up, int ldu, float *out,
                  int ldo, int rows, int n);

/* --- rotary embeddings ----------------------------------------------------------- */

typedef enum zi_rope_mode {
    ZI_ROPE_HALF = 0,       /* pairs (x[i], x[i + d/2]): Qwen3 / NeoX */
    ZI_ROPE_INTERLEAVED = 1 /* pairs (x[2i], x[2i+1]): the DiT */
} zi_rope_mode;

/*
 * The angle table of n_tok tokens: cs[t, j] = (cos a, sin a) with a =
 * pos[t, axis(j)] · θ^(−2i/d_axis), the pairs j of each axis in order
 * (axis 0's d_0/2 pairs first). pos is [n_tok, n_axes] ints; the axes' dims
 * sum to head_dim. cs holds n_tok·head_dim floats. Rounded as diffusers'
 * table: the angle in double, rounded to float, its cos and sin rounded
 * from double (the DiT).
 */
void zi_rope_table(const int *pos, int n_tok, int n_axes, const int *axes_dims, float theta,
                   float *cs);

/* The same for one axis rounded as Hugging Face's Qwen3 in float32: the
 * inverse frequency 1/θ^(2i/d) and the angle pos·freq both in float. */
void zi_rope_table_f32(const int *pos, int n_tok, int head_dim, float theta, float *cs);

/* Rotates the first n_heads·head_dim columns of each of n_tok rows in place
 * with the table of zi_rope_table. */
void zi_op_rope(zi_ctx *c, float *x, int n_tok, int n_heads, int head_dim, int ld,
                const float *cs, zi_rope_mode mode);

/* --- attention ----------------------------------------------------------------- */

typedef struct zi_attn_args {
    const float *q, *k, *v; /* q [n_q, n_heads·head_dim], k, v [n_kv, n_kv_heads·head_dim] */
    int ldq, ldk, ldv;
    float *o; /* [n_q, n_heads·head_dim] (must not overlap q, k, v) */
    int ldo;
    int n_q, n_kv;
    int n_heads, n_kv_heads, head_dim; /* query head h reads kv head h / (n_heads/n_kv_heads) */
    float scale;                       /* usually 1/sqrt(head_dim) */
    int causal;                        /* query i sees keys j <= i + q_pos0 */
    int q_pos0;                        /* position of query 0 among the keys (causal only) */
    const uint8_t *key_mask;           /* NULL, or n_kv bytes: 0 = key masked out */
} zi_attn_args;

/*
 * o = softmax(q·kᵀ·scale, masked) · v per head. A query with every key
 * masked gets zeros. Scores are computed for chunks of queries at a time.
 * Returns 0, PX_EINVAL, PX_ENOMEM or PX_EUNSUP (oneDNN).
 */
int zi_op_attention(zi_ctx *c, const zi_attn_args *a, char *err, size_t errlen);

#endif
