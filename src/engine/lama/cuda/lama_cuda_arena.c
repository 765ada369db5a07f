/*
 * lama_cuda_arena.c — sizes and places of a LaMa CUDA plan's buffers (see
 * lama_cuda_arena.h).
 */
#include "engine/lama/cuda/lama_cuda_arena.h"

#include "engine/lama/cuda/kernels.h"

#include <string.h>

#define ALIGN 256

int px_lca_class(px_cuda_prec p, int b)
{
    int wide = px_cuda_prec_size(p) == 4; /* every activation fp32 */
    switch (b) {
    case BF_PLANAR:
    case BF_SPEC:
    case BF_SPECT:
    case BF_G:
        return PX_LCA_F32;
    case BF_XL0:
    case BF_XL1:
    case BF_XG0:
    case BF_XG1:
    case BF_S:
    case BF_XG32:
        return wide || px_lca_wide(p) ? PX_LCA_F32 : PX_LCA_16BIT;
    case BF_IMG:
    case BF_MASK:
    case BF_OUT:
    case BF_ITEMS:
        return wide ? PX_LCA_F32 : PX_LCA_BYTES;
    default:
        return wide ? PX_LCA_F32 : PX_LCA_16BIT;
    }
}

/* Byte sizes of every buffer for a (batch, padded H, W); the same numbers
 * size the arena and the memory estimate. */
void px_lca_sizes(const px_lama_arch *a, px_cuda_prec p, int ext, int B, int H, int W,
                  size_t sz[BF_COUNT])
{
    size_t E = px_cuda_prec_size(p), b = (size_t)B;
    size_t X = px_lca_wide(p) ? sizeof(float) : E; /* residual stream and S */
    int nd = a->n_down, h8 = H >> nd, w8 = W >> nd, wf = w8 / 2 + 1;
    memset(sz, 0, sizeof(size_t) * BF_COUNT);
    sz[BF_IMG] = sz[BF_OUT] = b * H * W * 3;
    sz[BF_MASK] = b * H * W;
    sz[BF_ITEMS] = b * sizeof(px_cu_item);
    sz[BF_BIG] = sz[BF_LAST] = b * H * W * a->ngf * E;
    for (int i = 1; i < nd; i++) sz[BF_DOWN + i - 1] = b * (H >> i) * (W >> i) * a->ch[i] * E;
    for (int i = 0; i < nd; i++) {
        size_t s = b * ((H >> i) + 2) * ((W >> i) + 2) * (a->ch[i] + ext) * E;
        if (s > sz[BF_PD]) sz[BF_PD] = s;
    }
    size_t px8 = b * h8 * w8;
    sz[BF_XL0] = sz[BF_XL1] = px8 * a->cl * X;
    sz[BF_XG0] = sz[BF_XG1] = px8 * a->cg * X;
    sz[BF_YL] = sz[BF_ZL] = px8 * a->cl * E;
    sz[BF_YG] = sz[BF_ZG] = px8 * a->cg * E;
    if (px_lca_wide(p)) sz[BF_XG32] = px8 * a->cg * sizeof(float);
    size_t pad8 = b * (h8 + 2) * (w8 + 2);
    sz[BF_PCAT] = pad8 * (a->dim + ext) * E;
    sz[BF_PL] = pad8 * a->cl * E;
    /* The Fourier unit: see fourier_unit(). */
    sz[BF_S] = px8 * a->cs * X;
    sz[BF_U] = px8 * (a->cs + ext) * E;
    sz[BF_PLANAR] = px8 * a->cs * sizeof(float);
    sz[BF_SPEC] = sz[BF_SPECT] = b * a->cs * h8 * wf * 2 * sizeof(float);
    sz[BF_G] = b * h8 * wf * 2 * a->cs * sizeof(float);
    sz[BF_CAT] = px8 * a->dim * E;
    for (int j = 0; j + 1 < nd; j++)
        sz[BF_UP + j] = b * (h8 << (j + 1)) * (w8 << (j + 1)) * a->ch[nd - 1 - j] * E;
}

static size_t aligned(size_t n)
{
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

static void live(int life[BF_COUNT][2], int b, int first, int last)
{
    life[b][0] = first;
    life[b][1] = last;
}

void px_lca_lives(const px_lama_arch *a, px_cuda_prec p, int life[BF_COUNT][2])
{
    int nd = a->n_down, end = px_lca_step_end(nd), head = px_lca_step_head(nd);
    int trunk = px_lca_step_trunk(nd), concat = px_lca_step_concat(nd);
    /* The inputs and the output live throughout: a run's output bytes stay
     * in the plan's arena until the next run, whose fused convolutions
     * read their outputs (times 0) before writing them — image bytes read
     * as floats can be NaN (four bytes of 255 are), and 0 * NaN is NaN. */
    for (int b = 0; b < BF_COUNT; b++) live(life, b, 0, end);
    live(life, BF_BIG, 1, px_lca_step_pad(0));
    /* One padded copy for every down level (from the stem on: with
     * PX_LAMA_CUDA_STEM_PD the stem writes the first itself; the layout
     * is the same, since only BIG, which meets PD anyway, lives at the
     * stem alone), each level's input until it is padded, and the last
     * level's two outputs until the concatenation (the trunk's residual
     * stream alternates between them and XL1/XG1). */
    live(life, BF_PD, 1, px_lca_step_down(nd - 1));
    for (int i = 0; i + 1 < nd; i++)
        live(life, BF_DOWN + i, px_lca_step_down(i), px_lca_step_pad(i + 1));
    live(life, BF_XL0, px_lca_step_down(nd - 1), concat);
    live(life, BF_XG0, px_lca_step_down(nd - 1), concat);
    static const int in_trunk[] = {BF_XL1, BF_XG1,  BF_YL,     BF_YG,   BF_ZL,
                                   BF_ZG,  BF_PCAT, BF_PL,     BF_S,    BF_U,
                                   BF_G,   BF_XG32, BF_PLANAR, BF_SPEC, BF_SPECT};
    for (unsigned k = 0; k < sizeof in_trunk / sizeof in_trunk[0]; k++)
        live(life, in_trunk[k], trunk, concat);
    live(life, BF_CAT, concat, px_lca_step_up(nd, 0));
    for (int j = 0; j + 1 < nd; j++)
        live(life, BF_UP + j, px_lca_step_up(nd, j), px_lca_step_up(nd, j + 1));
    live(life, BF_LAST, px_lca_step_up(nd, nd - 1), head);
    /* FP16: the last down-sampling writes fp16 into YL/YG, widened into
     * XL0/XG0 (lama_cuda_net.c forward()). */
    if (px_lca_wide(p)) {
        live(life, BF_YL, px_lca_step_down(nd - 1), concat);
        live(life, BF_YG, px_lca_step_down(nd - 1), concat);
    }
}

/* Where b goes: the lowest aligned offset at which it overlaps no placed
 * buffer whose life meets its own or whose class (px_lca_class) differs.
 * The candidates are 0 and the ends of those buffers (the lowest free
 * offset is always one of them). Why classes: a fused convolution reads
 * its output (times 0) before writing it, and bytes of another type read
 * as 16-bit values can be NaN (image bytes often are: a high byte of
 * 124-127 or 252-255); so in 16 bits each class shares only within
 * itself. (TF32 and FP32 keep one class, as they always ran: plan_create
 * zeroes the arena once, and no NaN has been seen from image bytes read
 * as fp32.) */
static size_t lowest_fit(const size_t sz[BF_COUNT], const size_t off[BF_COUNT],
                         const int placed[BF_COUNT], int life[BF_COUNT][2], const int cls[BF_COUNT],
                         int b)
{
    size_t best = (size_t)-1, need = aligned(sz[b]);
    for (int c = -1; c < BF_COUNT; c++) {
        if (c >= 0 && !placed[c]) continue;
        size_t at = c < 0 ? 0 : off[c] + aligned(sz[c]);
        if (at >= best) continue;
        int free = 1;
        for (int o = 0; o < BF_COUNT && free; o++)
            if (placed[o] &&
                ((life[o][0] <= life[b][1] && life[b][0] <= life[o][1]) || cls[o] != cls[b]))
                free = at + need <= off[o] || off[o] + aligned(sz[o]) <= at;
        if (free) best = at;
    }
    return best;
}

/*
 * The arena's layout (issue 16: a 1024² image took 1.18 GiB in TF32, 0.79
 * with three fixed shared regions, against torch.compile's 0.58): buffers
 * placed largest first, each as low as the buffers alive with it allow —
 * the usual greedy answer to packing intervals, within a few percent of
 * the peak of the bytes alive at one step on LaMa's buffers.
 */
size_t px_lca_layout(const px_lama_arch *a, px_cuda_prec p, const size_t sz[BF_COUNT],
                     size_t off[BF_COUNT])
{
    int life[BF_COUNT][2], placed[BF_COUNT] = {0}, order[BF_COUNT], cls[BF_COUNT], n = 0;
    px_lca_lives(a, p, life);
    for (int b = 0; b < BF_COUNT; b++) {
        off[b] = 0;
        cls[b] = px_lca_class(p, b);
        if (!sz[b]) continue;
        int k = n++;
        /* Insertion sort, largest first; equal sizes in enum order. */
        while (k > 0 && sz[order[k - 1]] < sz[b]) order[k] = order[k - 1], k--;
        order[k] = b;
    }
    size_t total = 0;
    for (int k = 0; k < n; k++) {
        int b = order[k];
        off[b] = lowest_fit(sz, off, placed, life, cls, b);
        placed[b] = 1;
        if (off[b] + aligned(sz[b]) > total) total = off[b] + aligned(sz[b]);
    }
    return total;
}
