/*
 * patchmatch_nnf.c — the nearest-neighbour field of PatchMatch
 * (patchmatch_impl.h): the 7×7 patch distance (SSE2 where there is one),
 * the field's seeding (random at the coarsest level, upsampled from the
 * coarser level's matches elsewhere) and the search sweeps of Barnes et al.
 *
 * Each band draws from its own random stream, derived from the seed, the
 * level, the iteration, the sweep and the band, so the field does not depend
 * on how many threads run the bands.
 */
#include "engine/classic/patchmatch_impl.h"

#include "core/rng.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Sum of squared differences of the 7×7 patches whose top-left bytes are a
 * and b; once the partial sum reaches `bound` it may stop and return any
 * value >= bound (the caller only wants to know it lost). */
#if defined(__SSE2__)
static inline uint32_t hsum4(__m128i v)
{
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return (uint32_t)_mm_cvtsi128_si32(v);
}

static inline uint32_t patch_ssd(const uint8_t *a, const uint8_t *b, size_t stride, uint32_t bound)
{
    const __m128i z = _mm_setzero_si128();
    /* R, G, B of pixels 0..3, and of 4..6 in the second load. */
    const __m128i keep0 = _mm_set1_epi32(0x00ffffff);
    const __m128i keep1 = _mm_setr_epi32(0x00ffffff, 0x00ffffff, 0x00ffffff, 0);
    __m128i acc = z;
    for (int r = 0; r < PX_PM_PATCH; r++) {
        __m128i a0 = _mm_loadu_si128((const __m128i *)(const void *)a);
        __m128i b0 = _mm_loadu_si128((const __m128i *)(const void *)b);
        __m128i a1 = _mm_loadu_si128((const __m128i *)(const void *)(a + 16));
        __m128i b1 = _mm_loadu_si128((const __m128i *)(const void *)(b + 16));
        /* |a - b| in bytes, widened to 16 bits; madd squares and adds pairs. */
        __m128i d0 = _mm_and_si128(_mm_or_si128(_mm_subs_epu8(a0, b0), _mm_subs_epu8(b0, a0)), keep0);
        __m128i d1 = _mm_and_si128(_mm_or_si128(_mm_subs_epu8(a1, b1), _mm_subs_epu8(b1, a1)), keep1);
        __m128i l0 = _mm_unpacklo_epi8(d0, z), h0 = _mm_unpackhi_epi8(d0, z);
        __m128i l1 = _mm_unpacklo_epi8(d1, z), h1 = _mm_unpackhi_epi8(d1, z);
        acc = _mm_add_epi32(acc, _mm_add_epi32(_mm_madd_epi16(l0, l0), _mm_madd_epi16(h0, h0)));
        acc = _mm_add_epi32(acc, _mm_add_epi32(_mm_madd_epi16(l1, l1), _mm_madd_epi16(h1, h1)));
        a += stride;
        b += stride;
        if (r & 1) {
            uint32_t s = hsum4(acc);
            if (s >= bound) return s;
        }
    }
    return hsum4(acc);
}
#else
static inline uint32_t patch_ssd(const uint8_t *a, const uint8_t *b, size_t stride, uint32_t bound)
{
    uint32_t s = 0;
    for (int r = 0; r < PX_PM_PATCH; r++) {
        for (int k = 0; k < PX_PM_PATCH * 4; k++) {
            if (k % 4 == 3) continue; /* the source flag */
            int d = (int)a[k] - (int)b[k];
            s += (uint32_t)(d * d);
        }
        a += stride;
        b += stride;
        if ((r & 1) && s >= bound) return s;
    }
    return s;
}
#endif

/* Whether a source patch is centred at (x, y), which must be inside. */
static inline bool is_source(const level *l, int x, int y)
{
    return l->img[((size_t)y * l->w + (size_t)x) * 4 + 3] != 0;
}

/* Distance between the patches centred at t and s of level l. */
static inline uint32_t dist_at(const level *l, int tx, int ty, int sx, int sy, uint32_t bound)
{
    size_t stride = (size_t)l->w * 4;
    const uint8_t *a = l->img + ((size_t)(ty - HALF) * l->w + (size_t)(tx - HALF)) * 4;
    const uint8_t *b = l->img + ((size_t)(sy - HALF) * l->w + (size_t)(sx - HALF)) * 4;
    return patch_ssd(a, b, stride, bound);
}


static void band_rng(const pass *p, int band, uint32_t kind, px_rng *r)
{
    uint64_t stream = px_hash64(((uint64_t)p->lvl << 56) ^ ((uint64_t)kind << 52) ^
                                ((uint64_t)(uint32_t)p->iter << 24) ^
                                ((uint64_t)(uint32_t)p->sweep << 16) ^ (uint64_t)(uint32_t)band);
    px_rng_seed(r, p->seed, stream);
}

static inline pt random_source(const level *l, px_rng *r)
{
    int32_t i = l->srcs[px_rng_below(r, (uint32_t)l->nsrc)];
    return (pt){(int16_t)(i % l->w), (int16_t)(i / l->w)};
}

/* Random initial field of the coarsest level. */
void pm_init_band(void *ctx, int begin, int end)
{
    const pass *p = ctx;
    level *l = p->l;
    for (int b = begin; b < end && !is_cancelled(p->cancel); b++) {
        px_rng r;
        band_rng(p, b, 1, &r);
        for (int y = b * BAND_ROWS; y < band_end(l, b); y++)
            for (int x = 0; x < l->w; x++)
                if (l->tgt[(size_t)y * l->w + x]) l->nnf[(size_t)y * l->w + x] = random_source(l, &r);
    }
}

/* Seeds level l from the coarser level: hole pixels by bilinear upsampling
 * of the coarse result, matches by doubling the coarse offsets. */
void pm_upsample_band(void *ctx, int begin, int end)
{
    const pass *p = ctx;
    level *l = p->l;
    const level *c = p->coarse;
    int w = l->w, h = l->h;
    for (int b = begin; b < end && !is_cancelled(p->cancel); b++) {
        px_rng r;
        band_rng(p, b, 2, &r);
        for (int y = b * BAND_ROWS; y < band_end(l, b); y++)
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * w + x;
                if (l->hole[i] == LV_HOLE) {
                    float fx = (x + 0.5f) * 0.5f - 0.5f, fy = (y + 0.5f) * 0.5f - 0.5f;
                    fx = fx < 0 ? 0 : fx;
                    fy = fy < 0 ? 0 : fy;
                    int x0 = (int)fx, y0 = (int)fy;
                    int x1 = x0 + 1 < c->w ? x0 + 1 : c->w - 1, y1c = y0 + 1 < c->h ? y0 + 1 : c->h - 1;
                    float ax = fx - (float)x0, ay = fy - (float)y0;
                    const uint8_t *p00 = c->img + ((size_t)y0 * c->w + x0) * 4;
                    const uint8_t *p01 = c->img + ((size_t)y0 * c->w + x1) * 4;
                    const uint8_t *p10 = c->img + ((size_t)y1c * c->w + x0) * 4;
                    const uint8_t *p11 = c->img + ((size_t)y1c * c->w + x1) * 4;
                    for (int k = 0; k < 3; k++) {
                        float v = (1 - ay) * ((1 - ax) * p00[k] + ax * p01[k]) +
                                  ay * ((1 - ax) * p10[k] + ax * p11[k]);
                        l->img[i * 4 + k] = (uint8_t)(v + 0.5f);
                    }
                }
                if (!l->tgt[i]) continue;
                /* The coarse centre nearest to this one, kept inside the
                 * coarse range of centres. */
                int cx = x / 2, cy = y / 2;
                cx = cx < HALF ? HALF : cx > c->w - 1 - HALF ? c->w - 1 - HALF : cx;
                cy = cy < HALF ? HALF : cy > c->h - 1 - HALF ? c->h - 1 - HALF : cy;
                size_t ci = (size_t)cy * c->w + cx;
                pt m = random_source(l, &r);
                if (c->tgt[ci]) {
                    int sx = x + 2 * (c->nnf[ci].x - cx), sy = y + 2 * (c->nnf[ci].y - cy);
                    if (sx >= HALF && sy >= HALF && sx < w - HALF && sy < h - HALF &&
                        is_source(l, sx, sy))
                        m = (pt){(int16_t)sx, (int16_t)sy};
                }
                l->nnf[i] = m;
            }
    }
}

/* One PatchMatch sweep over a band: propagation from the two neighbours
 * already visited in scan order, then random search around the best match
 * with a halving radius. Neighbours in other bands are read from `prev`. */
void pm_search_band(void *ctx, int begin, int end)
{
    const pass *p = ctx;
    level *l = p->l;
    int w = l->w, h = l->h;
    int step = p->backward ? -1 : 1;
    int maxr = p->max_radius;
    for (int b = begin; b < end; b++) {
        if (is_cancelled(p->cancel)) return;
        px_rng r;
        band_rng(p, b, 3, &r);
        int ylo = b * BAND_ROWS, yhi = band_end(l, b);
        for (int k = 0; k < yhi - ylo; k++) {
            int y = p->backward ? yhi - 1 - k : ylo + k;
            for (int j = 0; j < w; j++) {
                int x = p->backward ? w - 1 - j : j;
                size_t t = (size_t)y * w + x;
                if (!l->tgt[t]) continue;
                pt best = l->nnf[t];
                uint32_t bd = p->fresh ? dist_at(l, x, y, best.x, best.y, UINT32_MAX) : l->dist[t];

                /* Propagation: the neighbour's match, shifted by one. */
                int nx = x - step;
                if (nx >= 0 && nx < w && l->tgt[t - step]) {
                    pt m = l->nnf[t - step];
                    int sx = m.x + step, sy = m.y;
                    if (sx >= HALF && sx < w - HALF && is_source(l, sx, sy) &&
                        (sx != best.x || sy != best.y)) {
                        uint32_t d = dist_at(l, x, y, sx, sy, bd);
                        if (d < bd) {
                            bd = d;
                            best = (pt){(int16_t)sx, (int16_t)sy};
                        }
                    }
                }
                int ny = y - step;
                if (ny >= 0 && ny < h && l->tgt[(size_t)ny * w + x]) {
                    size_t n = (size_t)ny * w + x;
                    pt m = ny >= ylo && ny < yhi ? l->nnf[n] : l->prev[n];
                    int sx = m.x, sy = m.y + step;
                    if (sy >= HALF && sy < h - HALF && is_source(l, sx, sy) &&
                        (sx != best.x || sy != best.y)) {
                        uint32_t d = dist_at(l, x, y, sx, sy, bd);
                        if (d < bd) {
                            bd = d;
                            best = (pt){(int16_t)sx, (int16_t)sy};
                        }
                    }
                }

                /* Random search in windows of radius maxr, maxr/2, ..., 1. */
                for (int rad = maxr; rad >= 1; rad /= 2) {
                    int sx = best.x + (int)px_rng_below(&r, (uint32_t)(2 * rad + 1)) - rad;
                    int sy = best.y + (int)px_rng_below(&r, (uint32_t)(2 * rad + 1)) - rad;
                    sx = sx < HALF ? HALF : sx > w - 1 - HALF ? w - 1 - HALF : sx;
                    sy = sy < HALF ? HALF : sy > h - 1 - HALF ? h - 1 - HALF : sy;
                    if (!is_source(l, sx, sy) || (sx == best.x && sy == best.y)) continue;
                    uint32_t d = dist_at(l, x, y, sx, sy, bd);
                    if (d < bd) {
                        bd = d;
                        best = (pt){(int16_t)sx, (int16_t)sy};
                    }
                }
                l->nnf[t] = best;
                l->dist[t] = bd;
            }
        }
    }
}
