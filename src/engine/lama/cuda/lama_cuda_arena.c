/*
 * lama_cuda_arena.c — sizes and places of a LaMa CUDA plan's buffers (see
 * lama_cuda_arena.h).
 */
#include "engine/lama/cuda/lama_cuda_arena.h"

#include "engine/lama/cuda/kernels.h"

#include <string.h>

#define ALIGN 256

/* Byte sizes of every buffer for a (batch, padded H, W); the same numbers
 * size the arena and the memory estimate. */
void px_lca_sizes(const px_lama_arch *a, px_cuda_prec p, int B, int H, int W, size_t sz[BF_COUNT])
{
    size_t E = px_cuda_prec_size(p), b = (size_t)B;
    int nd = a->n_down, h8 = H >> nd, w8 = W >> nd, wf = w8 / 2 + 1;
    memset(sz, 0, sizeof(size_t) * BF_COUNT);
    sz[BF_IMG] = sz[BF_OUT] = b * H * W * 3;
    sz[BF_MASK] = b * H * W;
    sz[BF_ITEMS] = b * sizeof(px_cu_item);
    sz[BF_BIG] = b * H * W * a->ngf * E;
    for (int i = 1; i < nd; i++) sz[BF_DOWN + i - 1] = b * (H >> i) * (W >> i) * a->ch[i] * E;
    for (int i = 0; i < nd; i++) {
        size_t s = b * ((H >> i) + 2) * ((W >> i) + 2) * a->ch[i] * E;
        if (s > sz[BF_PD]) sz[BF_PD] = s;
    }
    size_t px8 = b * h8 * w8;
    sz[BF_XL0] = sz[BF_XL1] = sz[BF_YL] = sz[BF_ZL] = px8 * a->cl * E;
    sz[BF_XG0] = sz[BF_XG1] = sz[BF_YG] = sz[BF_ZG] = px8 * a->cg * E;
    size_t pad8 = b * (h8 + 2) * (w8 + 2);
    sz[BF_PCAT] = pad8 * a->dim * E;
    sz[BF_PL] = pad8 * a->cl * E;
    /* The Fourier unit: see fourier_unit(). */
    sz[BF_S] = sz[BF_U] = px8 * a->cs * E;
    sz[BF_PLANAR] = px8 * a->cs * sizeof(float);
    sz[BF_SPEC] = sz[BF_SPECT] = b * a->cs * h8 * wf * 2 * sizeof(float);
    sz[BF_G] = b * h8 * wf * 2 * a->cs * sizeof(float);
    sz[BF_CAT] = px8 * a->dim * E;
    for (int j = 0; j + 1 < nd; j++)
        sz[BF_UP + j] = b * (h8 << (j + 1)) * (w8 << (j + 1)) * a->ch[nd - 1 - j] * E;
    sz[BF_WS] = PX_LCA_WS_LIMIT;
}

static size_t aligned(size_t n)
{
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

/* Places buffers list[0..n) one after another from base; their end. */
static size_t place(const size_t sz[BF_COUNT], const int *list, int n, size_t base,
                    size_t off[BF_COUNT])
{
    for (int k = 0; k < n; k++) {
        off[list[k]] = base;
        base += aligned(sz[list[k]]);
    }
    return base;
}

/*
 * The arena's layout: offsets into off[], the total returned. Buffers whose
 * lives do not meet share memory (issue 16: 1.18 GiB per 1024² image in
 * TF32 against torch.compile's 0.58): the down-sampling's padded copy (PD)
 * lives only before the trunk and the trunk's buffers only in it, so one
 * region holds either; the down-sampling's outputs die before the
 * up-sampling's are written, so another region holds either. XL0/XG0 (the
 * last down conv writes them from PD), the stem/last-up buffer and the I/O
 * stay apart, and so do the Fourier unit's fp32 buffers: a region only
 * ever holds values of the activation type, because a fused convolution
 * reads its output (times 0) before writing it and stale fp32 bytes read as
 * bf16 can be NaN (plan_create zeroes the arena once for the same reason).
 */
size_t px_lca_layout(const size_t sz[BF_COUNT], size_t off[BF_COUNT])
{
    static const int own[] = {BF_IMG, BF_MASK,   BF_OUT,  BF_ITEMS, BF_BIG, BF_XL0,
                              BF_XG0, BF_PLANAR, BF_SPEC, BF_SPECT, BF_G,   BF_WS};
    static const int pd[] = {BF_PD};
    static const int trunk[] = {BF_XL1,  BF_XG1, BF_YL, BF_YG, BF_ZL, BF_ZG,
                                BF_PCAT, BF_PL,  BF_S,  BF_U,  BF_CAT};
    _Static_assert(sizeof own / sizeof own[0] + 1 + sizeof trunk / sizeof trunk[0] +
                           2 * PX_LAMA_MAX_DOWN ==
                       BF_COUNT,
                   "every buffer in exactly one list");
    int down[PX_LAMA_MAX_DOWN], up[PX_LAMA_MAX_DOWN];
    for (int i = 0; i < PX_LAMA_MAX_DOWN; i++) down[i] = BF_DOWN + i, up[i] = BF_UP + i;
    size_t t = place(sz, own, (int)(sizeof own / sizeof own[0]), 0, off);
    size_t a = place(sz, pd, 1, t, off);
    size_t b = place(sz, trunk, (int)(sizeof trunk / sizeof trunk[0]), t, off);
    t = a > b ? a : b;
    a = place(sz, down, PX_LAMA_MAX_DOWN, t, off);
    b = place(sz, up, PX_LAMA_MAX_DOWN, t, off);
    return a > b ? a : b;
}
