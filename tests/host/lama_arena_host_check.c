/*
 * lama_arena_host_check.c — the LaMa CUDA plan's arena layout
 * (lama_cuda_arena.c) on the host: two buffers that hold values at the
 * same step of the forward pass never overlap, every buffer lies inside
 * the arena, in 16 bits an fp32 buffer shares memory with no 16-bit one (a
 * fused convolution reads its output times 0 first, and fp32 bytes read as
 * 16-bit values can be NaN), nor do the image bytes in any precision (for
 * the same reason: a run's output stays until the next run), and the
 * sharing saves what it should (issue 16: 1.18
 * GiB per 1024² image in TF32 at first). The steps are read from
 * lama_cuda_net.c's forward(): a change there that uses a buffer at
 * another step must change make_uses here.
 */
#include "engine/lama/cuda/lama_cuda_arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_check.h"

/* The buffers each step of forward() uses, written from lama_cuda_net.c's
 * forward() and trunk() (not from px_lca_lives): a buffer holds a value
 * from the first step that uses it to the last. */
enum { MAXS = 64 };
static int uses[MAXS][BF_COUNT];
static int nsteps;

static void use(int step, int b)
{
    uses[step][b] = 1;
    if (step + 1 > nsteps) nsteps = step + 1;
}

static void make_uses(const px_lama_arch *a, int wide)
{
    int nd = a->n_down, st = 0;
    memset(uses, 0, sizeof uses);
    nsteps = 0;
    use(st, BF_IMG), use(st, BF_MASK), use(st, BF_ITEMS); /* upload */
    st++;
    use(st, BF_IMG), use(st, BF_MASK), use(st, BF_ITEMS), use(st, BF_BIG); /* stem */
    for (int i = 0; i < nd; i++) {
        st++; /* reflection pad of the level's input */
        use(st, i ? BF_DOWN + i - 1 : BF_BIG), use(st, BF_PD);
        st++; /* the strided convolution */
        use(st, BF_PD);
        if (i + 1 < nd) use(st, BF_DOWN + i);
        else use(st, BF_XL0), use(st, BF_XG0);
        if (i + 1 == nd && wide) use(st, BF_YL), use(st, BF_YG); /* fp16, then widened */
    }
    st++; /* the trunk: x alternates between the two pairs */
    static const int trunk[] = {BF_XL0, BF_XG0, BF_XL1, BF_XG1,    BF_YL,   BF_YG,    BF_ZL, BF_ZG,
                                BF_PCAT, BF_PL, BF_S,   BF_U, BF_PLANAR, BF_SPEC, BF_SPECT, BF_G};
    for (unsigned k = 0; k < sizeof trunk / sizeof trunk[0]; k++) use(st, trunk[k]);
    if (wide) use(st, BF_XG32);
    st++; /* the concatenation reads the last x (either pair) and z */
    use(st, BF_XL0), use(st, BF_XG0), use(st, BF_XL1), use(st, BF_XG1);
    use(st, BF_ZL), use(st, BF_ZG), use(st, BF_CAT);
    for (int j = 0; j < nd; j++) {
        st++; /* transposed convolutions */
        use(st, j ? BF_UP + j - 1 : BF_CAT), use(st, j + 1 < nd ? BF_UP + j : BF_LAST);
    }
    st++; /* the head composes with the inputs */
    use(st, BF_LAST), use(st, BF_IMG), use(st, BF_MASK), use(st, BF_ITEMS), use(st, BF_OUT);
    st++;
    use(st, BF_OUT); /* download */
}

static void life_of(int b, int *first, int *last)
{
    *first = -1, *last = -1;
    for (int st = 0; st < nsteps; st++)
        if (uses[st][b]) {
            if (*first < 0) *first = st;
            *last = st;
        }
}

static int overlap(const size_t *off, const size_t *sz, int a, int b)
{
    if (!sz[a] || !sz[b]) return 0;
    return off[a] < off[b] + sz[b] && off[b] < off[a] + sz[a];
}

static void check(const px_lama_arch *a, px_cuda_prec p, int ext, int B, int H, int W)
{
    size_t sz[BF_COUNT], off[BF_COUNT], sum = 0, peak = 0;
    px_lca_sizes(a, p, ext, B, H, W, sz);
    size_t total = px_lca_layout(a, p, sz, off);
    int first[BF_COUNT], last[BF_COUNT];
    for (int i = 0; i < BF_COUNT; i++) {
        life_of(i, &first[i], &last[i]);
        CHECK(!sz[i] || first[i] >= 0, "buffer %d has a size but no step uses it", i);
        CHECK(off[i] % 256 == 0, "buffer %d unaligned", i);
        CHECK(off[i] + sz[i] <= total, "buffer %d ends past the arena (%dx%dx%d)", i, B, H, W);
        sum += (sz[i] + 255) / 256 * 256;
    }
    for (int st = 0; st < nsteps; st++) {
        size_t alive = 0;
        for (int x = 0; x < BF_COUNT; x++) {
            if (!sz[x] || first[x] > st || last[x] < st) continue;
            alive += sz[x];
            for (int y = x + 1; y < BF_COUNT; y++)
                if (sz[y] && first[y] <= st && st <= last[y])
                    CHECK(!overlap(off, sz, x, y), "step %d: buffers %d and %d overlap (%dx%dx%d)",
                          st, x, y, B, H, W);
        }
        if (alive > peak) peak = alive;
    }
    for (int x = 0; x < BF_COUNT; x++)
        for (int y = 0; y < BF_COUNT; y++)
            CHECK(px_lca_class(p, x) == px_lca_class(p, y) || !overlap(off, sz, x, y),
                  "%s: buffer %d (class %d) shares with %d (class %d)", px_cuda_prec_name(p), x,
                  px_lca_class(p, x), y, px_lca_class(p, y));
    /* The classes, written here from forward() apart from px_lca_class:
     * which buffers hold fp32 in each precision, and their sizes' element
     * bytes agree. */
    static const int always32[] = {BF_PLANAR, BF_SPEC, BF_SPECT, BF_G};
    static const int wide32[] = {BF_XL0, BF_XL1, BF_XG0, BF_XG1, BF_S, BF_XG32};
    static const int half16[] = {BF_YL, BF_YG, BF_ZL, BF_ZG, BF_U, BF_PCAT, BF_CAT, BF_BIG};
    int is16 = px_cuda_prec_size(p) == 2, wide = p == PX_CUDA_FP16;
    for (unsigned k = 0; k < 4; k++) CHECK(px_lca_class(p, always32[k]) == PX_LCA_F32, "fp32 FFT");
    for (unsigned k = 0; k < 6; k++)
        CHECK(px_lca_class(p, wide32[k]) == (is16 && !wide ? PX_LCA_16BIT : PX_LCA_F32),
              "%s: buffer %d's class", px_cuda_prec_name(p), wide32[k]);
    for (unsigned k = 0; k < 8; k++)
        CHECK(px_lca_class(p, half16[k]) == (is16 ? PX_LCA_16BIT : PX_LCA_F32),
              "%s: buffer %d's class", px_cuda_prec_name(p), half16[k]);
    size_t px8 = (size_t)B * (H >> a->n_down) * (W >> a->n_down);
    CHECK(sz[BF_S] == px8 * a->cs * (is16 && !wide ? 2 : 4), "S's size");
    CHECK(sz[BF_U] == px8 * (a->cs + ext) * (is16 ? 2 : 4), "U's size");
    /* The bias channel widens the fused 16-bit convolutions' inputs. */
    size_t pad8 = (size_t)B * ((H >> a->n_down) + 2) * ((W >> a->n_down) + 2);
    CHECK(sz[BF_PCAT] == pad8 * (a->dim + ext) * (is16 ? 2 : 4), "PCAT's size");
    CHECK(sz[BF_PD] == (size_t)B * (H + 2) * (W + 2) * (a->ch[0] + ext) * (is16 ? 2 : 4),
          "PD's size (level 0 is the largest)");
    CHECK(sz[BF_XG32] == (wide ? px8 * a->cg * 4 : 0), "XG32's size");
    CHECK(px_lca_class(p, BF_OUT) == (is16 ? PX_LCA_BYTES : PX_LCA_F32), "OUT's class");
    /* The image bytes share with nothing: a run's output stays in the
     * arena until the next run's fused convolutions read their outputs. */
    static const int bytes[] = {BF_IMG, BF_MASK, BF_OUT, BF_ITEMS};
    for (unsigned k = 0; k < sizeof bytes / sizeof bytes[0]; k++)
        for (int j = 0; j < BF_COUNT; j++)
            CHECK(j == bytes[k] || !overlap(off, sz, bytes[k], j), "byte buffer %d shares with %d",
                  bytes[k], j);
    CHECK(total < sum, "no buffer shares memory (%zu of %zu bytes)", total, sum);
    CHECK(total >= peak, "the arena is smaller than the bytes alive at one step");
    if (B == 16 && H == 1024 && W == 1024 && p != PX_CUDA_TF32)
        printf("big-lama 1024² %s%s batch 16: %.3f GiB per image\n", px_cuda_prec_name(p),
               ext ? " with the bias channel" : "", (double)total / B / (1 << 30));
    if (B == 16 && H == 1024 && W == 1024 && p == PX_CUDA_TF32) {
        double gib = (double)total / B / (1 << 30);
        printf("big-lama 1024² TF32 batch 16: %.3f GiB per image (%.3f alive at the busiest "
               "step, %.3f without sharing)\n",
               gib, (double)peak / B / (1 << 30), (double)sum / B / (1 << 30));
        /* torch.compile's run took 0.58 GiB per image, its weights included
         * (issue 16); ours add 0.02 for weights and cuFFT at batch 16 and
         * the workspace its convolutions chose. */
        CHECK(gib < 0.52, "%.3f GiB per image", gib);
    }
}

int main(void)
{
    px_lama_arch a;
    char err[200];
    if (px_lama_arch_init(&a, 64, 3, 18, 0.75, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    static const int sizes[][2] = {{1024, 1024}, {512, 512}, {256, 768}, {1280, 960}, {64, 64}};
    static const int batches[] = {1, 2, 8, 16};
    static const px_cuda_prec precs[] = {PX_CUDA_FP32, PX_CUDA_TF32, PX_CUDA_BF16, PX_CUDA_FP16};
    for (unsigned s = 0; s < 5; s++)
        for (unsigned b = 0; b < 4; b++)
            for (unsigned q = 0; q < 4; q++)
                for (int ext = 0; ext <= (px_cuda_prec_half(precs[q]) ? 8 : 0); ext += 8) {
                    make_uses(&a, px_lca_wide(precs[q]));
                    check(&a, precs[q], ext, batches[b], sizes[s][0], sizes[s][1]);
                }
    printf("lama_arena_host_check: %s\n", g_fail ? "FAILED" : "ok");
    return g_fail;
}
