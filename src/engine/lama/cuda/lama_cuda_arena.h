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
    BF_COUNT = BF_UP + PX_LAMA_MAX_DOWN
};
/* clang-format on */

/* Byte sizes of every buffer for batch B at padded size H x W. */
void px_lca_sizes(const px_lama_arch *a, px_cuda_prec p, int B, int H, int W, size_t sz[BF_COUNT]);

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
 * life[i][1]); a buffer of size 0 is unused. In BF16 the fp32 Fourier
 * buffers live throughout, so they never share memory with the bf16 ones
 * (see px_lca_layout). */
void px_lca_lives(const px_lama_arch *a, px_cuda_prec p, int life[BF_COUNT][2]);

/* Each buffer's byte offset into the arena (off), aligned, such that two
 * buffers whose lives meet never overlap; returns the arena's size. */
size_t px_lca_layout(const px_lama_arch *a, px_cuda_prec p, const size_t sz[BF_COUNT],
                     size_t off[BF_COUNT]);

#endif
