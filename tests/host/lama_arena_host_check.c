/*
 * lama_arena_host_check.c — the LaMa CUDA plan's arena layout
 * (lama_cuda_arena.c) on the host: buffers that one phase of the forward
 * pass uses together never overlap, every buffer lies inside the arena,
 * the fp32 Fourier buffers share memory with nothing (a fused convolution
 * reads its output times 0 first, and fp32 bytes read as bf16 can be NaN),
 * and the sharing saves what it should (issue 16: 1.18 GiB per 1024² image
 * in TF32 before). The phases are read from lama_cuda_net.c's forward():
 * a change there that uses a buffer in another phase must change them here.
 */
#include "engine/lama/cuda/lama_cuda_arena.h"

#include <stdio.h>
#include <stdlib.h>

static int g_fail;

#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            g_fail = 1;                                                                            \
        }                                                                                          \
    } while (0)

/* Buffers in use together (0-terminated lists of BF_ + 1). */
enum { MAXP = 40 };
static int phases[3][MAXP];

static void add(int ph, int b)
{
    int n = 0;
    while (phases[ph][n]) n++;
    phases[ph][n] = b + 1;
}

static void make_phases(void)
{
    /* The uploaded inputs, the items and the workspace live throughout. */
    static const int always[] = {BF_IMG, BF_MASK, BF_ITEMS, BF_WS};
    for (int ph = 0; ph < 3; ph++)
        for (unsigned i = 0; i < sizeof always / sizeof always[0]; i++) add(ph, always[i]);
    /* stem and down-sampling: BIG -> PD -> DOWN[i] -> PD ... -> XL0/XG0 */
    add(0, BF_BIG), add(0, BF_PD), add(0, BF_XL0), add(0, BF_XG0);
    for (int i = 0; i < PX_LAMA_MAX_DOWN; i++) add(0, BF_DOWN + i);
    /* the trunk, then its concatenation into CAT */
    static const int trunk[] = {BF_XL0,    BF_XG0,  BF_XL1,   BF_XG1, BF_YL, BF_YG,
                                BF_ZL,     BF_ZG,   BF_PCAT,  BF_PL,  BF_S,  BF_U,
                                BF_PLANAR, BF_SPEC, BF_SPECT, BF_G,   BF_CAT};
    for (unsigned i = 0; i < sizeof trunk / sizeof trunk[0]; i++) add(1, trunk[i]);
    /* up-sampling: CAT -> UP[0] -> ... -> BIG, the head -> OUT */
    add(2, BF_CAT), add(2, BF_BIG), add(2, BF_OUT);
    for (int i = 0; i < PX_LAMA_MAX_DOWN; i++) add(2, BF_UP + i);
}

static int overlap(const size_t *off, const size_t *sz, int a, int b)
{
    if (!sz[a] || !sz[b]) return 0;
    return off[a] < off[b] + sz[b] && off[b] < off[a] + sz[a];
}

static void check(const px_lama_arch *a, px_cuda_prec p, int B, int H, int W)
{
    size_t sz[BF_COUNT], off[BF_COUNT], sum = 0;
    px_lca_sizes(a, p, B, H, W, sz);
    size_t total = px_lca_layout(sz, off);
    for (int i = 0; i < BF_COUNT; i++) {
        CHECK(off[i] % 256 == 0, "buffer %d unaligned", i);
        CHECK(off[i] + sz[i] <= total, "buffer %d ends past the arena (%dx%dx%d)", i, B, H, W);
        sum += (sz[i] + 255) / 256 * 256;
    }
    for (int ph = 0; ph < 3; ph++)
        for (int i = 0; phases[ph][i]; i++)
            for (int j = i + 1; phases[ph][j]; j++) {
                int x = phases[ph][i] - 1, y = phases[ph][j] - 1;
                CHECK(!overlap(off, sz, x, y), "phase %d: buffers %d and %d overlap (%dx%dx%d)", ph,
                      x, y, B, H, W);
            }
    static const int fp32[] = {BF_PLANAR, BF_SPEC, BF_SPECT, BF_G};
    for (unsigned k = 0; k < sizeof fp32 / sizeof fp32[0]; k++)
        for (int j = 0; j < BF_COUNT; j++)
            CHECK(j == fp32[k] || !overlap(off, sz, fp32[k], j), "fp32 buffer %d shares with %d",
                  fp32[k], j);
    CHECK(total < sum, "no buffer shares memory (%zu of %zu bytes)", total, sum);
    if (B == 16 && H == 1024 && W == 1024 && p == PX_CUDA_TF32) {
        double gib = (double)total / B / (1 << 30);
        printf("big-lama 1024² TF32 batch 16: %.3f GiB per image (%.3f without sharing)\n", gib,
               (double)sum / B / (1 << 30));
        CHECK(gib < 0.85, "%.3f GiB per image", gib);
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
    make_phases();
    static const int sizes[][2] = {{1024, 1024}, {512, 512}, {256, 768}, {1280, 960}, {64, 64}};
    static const int batches[] = {1, 2, 8, 16};
    static const px_cuda_prec precs[] = {PX_CUDA_FP32, PX_CUDA_TF32, PX_CUDA_BF16};
    for (unsigned s = 0; s < 5; s++)
        for (unsigned b = 0; b < 4; b++)
            for (unsigned q = 0; q < 3; q++)
                check(&a, precs[q], batches[b], sizes[s][0], sizes[s][1]);
    printf("lama_arena_host_check: %s\n", g_fail ? "FAILED" : "ok");
    return g_fail;
}
