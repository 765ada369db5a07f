/*
 * lama_cuda_arena.h — the activation buffers of a LaMa CUDA plan (px_lca_):
 * their sizes per (batch, padded H, W) and their places in the plan's one
 * arena, where buffers whose lives do not meet share memory. The same
 * numbers size the arena (lama_cuda_net.c) and the engine's memory
 * estimate (px_lcnet_plan_bytes).
 */
#ifndef PX_ENGINE_LAMA_CUDA_LAMA_CUDA_ARENA_H
#define PX_ENGINE_LAMA_CUDA_LAMA_CUDA_ARENA_H

#include "engine/cuda/cuda_prec.h"
#include "engine/lama/weights.h"

#include <stddef.h>

/* cuDNN workspace a convolution may use. Not in the arena: a plan holds
 * this much while it is built (cuDNN's search), then only what its chosen
 * algorithms use (lama_cuda_net.c plan_create). */
#define PX_LCA_WS_LIMIT ((size_t)256 << 20)

/* The activation buffers of a plan. */
/* clang-format off */
enum {
    BF_IMG, BF_MASK, BF_OUT, BF_ITEMS,
    BF_BIG,   /* the stem's output */
    BF_LAST,  /* the last upsampling's output, the head's input */
    BF_DOWN,  /* down-sampling outputs 1..n_down-1 (BF_DOWN + i - 1) */
    BF_PD = BF_DOWN + PX_LAMA_MAX_DOWN, /* padded copy for a down-sampling conv */
    BF_XL0, BF_XL1, BF_XG0, BF_XG1, BF_YL, BF_YG, BF_ZL, BF_ZG,
    BF_PCAT, BF_PL, BF_S, BF_U, BF_PLANAR, BF_SPEC, BF_SPECT, BF_G,
    BF_CAT, BF_UP,  /* upsampling outputs but the last (BF_UP + j) */
    BF_XG32 = BF_UP + PX_LAMA_MAX_DOWN, /* FP16: the global input of an FFC's second half, fp32 */
    BF_COUNT
};
/* clang-format on */

/*
 * FP16 keeps what its accuracy needs in fp32 (docs/benchmarks/lama-cuda.md,
 * "Which reduced precision could pass"): the trunk's residual stream
 * (XL0/XG0/XL1/XG1) and the st1 output that feeds the Fourier unit (S),
 * with st1 in TF32 reading fp32 (the residual, or XG32, a widened copy of
 * the second half's input). Everything else is fp16. BF16 keeps every
 * activation in bf16.
 */
static inline int px_lca_wide(px_cuda_prec p)
{
    return p == PX_CUDA_FP16;
}

/* What buffer b holds in precision p, for the arena's sharing rule: fp32
 * values (the Fourier unit's transforms always), 16-bit values, or bytes
 * (image, mask, output, items; in FP32 and TF32 these count as fp32, so
 * that layout is what it was before the rule). */
enum { PX_LCA_16BIT, PX_LCA_F32, PX_LCA_BYTES };
int px_lca_class(px_cuda_prec p, int b);

/* Byte sizes of every buffer for batch B at padded size H x W; ext: the
 * bias channel's width (lama_cuda_weights.h) in PD, PCAT and U. */
void px_lca_sizes(const px_lama_arch *a, px_cuda_prec p, int ext, int B, int H, int W,
                  size_t sz[BF_COUNT]);

/* The steps of the forward pass (lama_cuda_net.c forward()) in the order
 * they run, for the buffers' lives: the upload, the stem, per down level
 * the reflection pad and the convolution, the trunk, its concatenation,
 * per up level the transposed convolution, the head, the download. */
static inline int px_lca_step_pad(int i) { return 2 + 2 * i; }
static inline int px_lca_step_down(int i) { return 3 + 2 * i; }
static inline int px_lca_step_trunk(int nd) { return 2 + 2 * nd; }
static inline int px_lca_step_concat(int nd) { return 3 + 2 * nd; }
static inline int px_lca_step_up(int nd, int j) { return 4 + 2 * nd + j; }
static inline int px_lca_step_head(int nd) { return 4 + 3 * nd; }
static inline int px_lca_step_end(int nd) { return 5 + 3 * nd; }

/* Each buffer's life: the first and the last step that use it (life[i][0],
 * life[i][1]); a buffer of size 0 is unused. */
void px_lca_lives(const px_lama_arch *a, px_cuda_prec p, int life[BF_COUNT][2]);

/* Each buffer's byte offset into the arena (off), aligned, such that two
 * buffers whose lives meet never overlap, nor two of different classes
 * (see px_lca_layout); returns the arena's size. */
size_t px_lca_layout(const px_lama_arch *a, px_cuda_prec p, const size_t sz[BF_COUNT],
                     size_t off[BF_COUNT]);

#endif
