/*
 * zattn_cudnn.h — the DiT's attention (zattn.h's contract) through cuDNN's
 * fused flash attention, built with the cuDNN 9 backend (graph) API from C:
 * an operation graph Q·Kᵀ → ·scale → padding mask → softmax → ·V that
 * cuDNN's heuristics hand to its fused SDPA engine.
 *
 * Scope: non-causal, head size 64 or 128, n_heads == n_kv_heads, n_q ==
 * S_q (the DiT). Anything else is ZATTN_CUDNN_UNSUPPORTED and the caller
 * (zc_attention_with) runs the mma kernel instead.
 *
 * Plans are built on the first call of a shape (outside stream capture,
 * with their workspace allocated then) and cached per device for the
 * process: a captured CUDA graph keeps pointing at a plan's workspace, so
 * plans are never evicted (a full cache means mma for new shapes). Each
 * new plan checks itself once against the mma kernel on that call's
 * inputs; a mismatch or any cuDNN failure logs one warning and turns cuDNN
 * off for the process (zattn_cudnn_disabled says why).
 *
 * fp8 calls (zc_attn.fp8: e4m3 Q, K, V and O, zattn_q8.h) build the fp8
 * spellings and check a new plan on two runs against a host reference
 * instead (zattn_q8_check.h); a shape whose fp8 plans all fail is refused
 * alone (ZATTN_CUDNN_UNSUPPORTED for it from then on: the caller runs the
 * bf16 attention for that shape, the others keep fp8), and only a failure
 * without a plan turns the fp8 attention off (zattn_cudnn_fp8_disabled).
 * On an H100: 0.313 ms at 1024² against the bf16 graph's 0.441
 * (2026-12-06).
 *
 * Which spelling of the graph cuDNN's engines take is only known on a GPU:
 * the one-node SDPA operation of cuDNN 9.15+ is tried first, then the
 * decomposed pattern in the frontend's inference and training forms and
 * older variants (zattn_cudnn.c's k_spell); zattn_cudnn_spelling says which
 * one won. Written 2026-12-05 without a GPU (every spelling's operation
 * graph finalizes with cuDNN 9.19 on the host; heuristics need the GPU).
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZATTN_CUDNN_H
#define PX_ENGINE_ZIMAGE_CUDA_ZATTN_CUDNN_H

#include "engine/zimage/cuda/zattn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Negative so that no cudaError_t (all >= 0) is taken for them. */
enum {
    ZATTN_CUDNN_UNSUPPORTED = -1, /* shape outside the scope, cache full, capturing a new
                                     shape, an fp8 shape refused, or cuDNN turned off:
                                     run another kernel */
    ZATTN_CUDNN_FAILED = -2,      /* a cuDNN call failed or the self-check did not match
                                     (logged; cuDNN is off from now on) */
};

/* Whether a call of this shape is in scope (no device work, no cuDNN). */
int zattn_cudnn_supports(const zc_attn *a);

/* softmax(scale·q·kᵀ)·v into a->o on stream s: 0, a cudaError_t, or one of
 * the ZATTN_CUDNN_ codes (nothing was written to a->o that the caller may
 * keep: on any nonzero result run another kernel). Thread-safe. */
int zattn_cudnn(zc_stream s, const zc_attn *a);

/* NULL while cuDNN attention is usable, else why it was turned off (for
 * a graph no engine took: each spelling tried and what it failed at). */
const char *zattn_cudnn_disabled(void);

/* The same for the fp8 attention (zc_attn.fp8): NULL while usable, else
 * why not (its own failure, or cuDNN attention off altogether). */
const char *zattn_cudnn_fp8_disabled(void);

/* Which spelling of the graph the last plan built was taken in (names as
 * zattn_cudnn.c's k_spell), or NULL before the first plan. */
const char *zattn_cudnn_spelling(void);

#ifdef __cplusplus
}
#endif

#endif
