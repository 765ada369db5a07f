/*
 * patchmatch_vote.c — the reconstruction step of PatchMatch's EM
 * (patchmatch_impl.h): every target's match gets a weight that falls with
 * its distance, scaled by the 75th percentile of the distances (Wexler et
 * al.), and every hole pixel becomes the weighted mean of the pixels the
 * matches of all patches covering it put there.
 */
#include "engine/classic/patchmatch_impl.h"

#include "core/alloc.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Voting weights exp(-d / 2 sigma^2), per target of a band. */
void pm_weight_band(void *ctx, int begin, int end)
{
    const pass *p = ctx;
    level *l = p->l;
    size_t w = (size_t)l->w;
    for (int b = begin; b < end && !is_cancelled(p->cancel); b++) {
        for (size_t i = (size_t)b * BAND_ROWS * w; i < (size_t)band_end(l, b) * w; i++)
            if (l->tgt[i]) l->wt[i] = expf(-(float)l->dist[i] * p->inv_2sigma2);
    }
}

/* Every hole pixel becomes the weighted mean of what the matches of all
 * target patches covering it say it should be. */
void pm_vote_band(void *ctx, int begin, int end)
{
    const pass *p = ctx;
    level *l = p->l;
    int w = l->w, h = l->h;
    for (int b = begin; b < end; b++) {
        if (is_cancelled(p->cancel)) return;
        for (int y = b * BAND_ROWS; y < band_end(l, b); y++)
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * w + x;
                if (l->hole[i] != LV_HOLE) continue;
                float acc[3] = {0, 0, 0}, ws = 0;
                for (int dy = -HALF; dy <= HALF; dy++) {
                    int ty = y - dy;
                    if (ty < HALF || ty >= h - HALF) continue;
                    for (int dx = -HALF; dx <= HALF; dx++) {
                        int tx = x - dx;
                        if (tx < HALF || tx >= w - HALF) continue;
                        size_t t = (size_t)ty * w + tx;
                        pt m = l->nnf[t];
                        float wt = l->wt[t];
                        const uint8_t *s = l->img + ((size_t)(m.y + dy) * w + (size_t)(m.x + dx)) * 4;
                        acc[0] += wt * s[0];
                        acc[1] += wt * s[1];
                        acc[2] += wt * s[2];
                        ws += wt;
                    }
                }
                if (ws <= 0) continue;
                for (int k = 0; k < 3; k++) {
                    float v = acc[k] / ws + 0.5f;
                    l->img[i * 4 + k] = (uint8_t)(v > 255 ? 255 : v);
                }
            }
    }
}

/* k-th smallest of s[0..n) (Hoare's selection; reorders s). */
static uint32_t select_kth(uint32_t *s, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t pivot = s[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (s[i] < pivot) i++;
            while (s[j] > pivot) j--;
            if (i <= j) {
                uint32_t t = s[i];
                s[i] = s[j];
                s[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    return s[k];
}

/* 1 / (2 sigma^2) with sigma^2 the 75th percentile of the match distances
 * (Wexler et al.), estimated from an evenly strided sample of targets. */
float pm_weight_scale(const level *l)
{
    enum { MAX_SAMPLE = 1 << 16 };
    size_t n = (size_t)l->w * l->h;
    size_t stride = (size_t)l->ntgt / MAX_SAMPLE + 1;
    uint32_t *s = px_alloc_array((size_t)l->ntgt / stride + 1, sizeof *s);
    if (!s) return 0.0f; /* degrade to uniform weights rather than fail */
    size_t k = 0, seen = 0;
    for (size_t i = 0; i < n; i++)
        if (l->tgt[i] && seen++ % stride == 0) s[k++] = l->dist[i];
    float scale = 0;
    if (k) {
        uint32_t q = select_kth(s, k, (k * 3) / 4);
        scale = q ? 1.0f / (2.0f * (float)q) : 0.0f;
    }
    free(s);
    /* All matches perfect: every weight becomes exp(0) = 1. */
    return scale;
}
