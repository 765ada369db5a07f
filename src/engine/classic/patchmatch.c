/*
 * patchmatch.c — multi-scale PatchMatch completion (see patchmatch.h).
 *
 * Layout: every level keeps its image as 4 bytes per pixel (R, G, B, S) so a
 * 7-pixel patch row is 28 contiguous bytes that SSE2 compares in two loads.
 * S is 1 where a source patch is centred (masked out of distances): the
 * random search tests a candidate on the cache line it is about to compare
 * anyway, where a separate map cost a cache miss and a mispredicted branch
 * per candidate. The nearest-neighbour field (NNF) stores, for every target
 * centre, the centre of its source patch.
 *
 * Targets are patches inside the image that overlap the hole; sources are
 * patches inside the image with no hole pixel at all, so the vote only ever
 * reads known pixels and can write the hole in place while other row blocks
 * read: no two threads ever touch the same byte with one of them writing.
 */
#include "engine/classic/patchmatch.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/rng.h"
#include "engine/classic/telea.h"
#include "image/mask.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define HALF (PX_PM_PATCH / 2)
/* Rows of target centres per unit of parallel work. Fixed, so the split (and
 * with it every random stream) is the same for any number of threads. */
#define BAND_ROWS 16
/* Readable bytes after each level image: a patch row load reads 32 bytes
 * where the patch covers 28. */
#define IMG_PAD 16
/* A level needs at least this many source patches to be worth searching. */
#define MIN_SOURCES 16
#define MAX_LEVELS 12
/* Random-search radius at every level but the coarsest. */
#define FINE_SEARCH_RADIUS 64

/* Pixel states of a level. */
enum { LV_KNOWN = 0, LV_HOLE = 1, LV_PARTIAL = 2 };

typedef struct {
    int16_t x, y;
} pt;

typedef struct {
    int w, h;
    uint8_t *img;  /* w*h*4 + IMG_PAD bytes: R, G, B, S (1 = a source patch is centred here) */
    uint8_t *hole; /* LV_KNOWN, LV_HOLE or LV_PARTIAL (see level_down) */
    uint8_t *tgt;  /* 1 = the patch centred here is inside and overlaps the hole */
    int32_t *srcs; /* indices of the source centres */
    int nsrc, ntgt;
    int blind;      /* targets lying entirely in the hole: nothing known to match on */
    pt *nnf, *prev; /* match per target centre; prev = copy from before the sweep */
    uint32_t *dist; /* SSD of each target to its match */
    float *wt;      /* voting weight of each target */
} level;

void px_pm_defaults(px_pm_params *p)
{
    /* Many cheap iterations where the image is small settle the structure;
     * fine levels start from an upsampled field that is already good, so
     * they need few. Two, not one: the first matches against the blurry
     * upsampled fill, and only the second sees the sharp result of its vote
     * (with one, a tiled texture is no longer completed exactly). Two sweeps
     * per EM step let propagation cross each band both ways. */
    p->seed = 0;
    p->em_coarsest = 10;
    p->em_finest = 2;
    p->sweeps = 2;
    /* A 7x7 patch must stay small next to the image: at 32 px a side it
     * spans a fifth of it, the few fully known patches left are whole
     * objects, and EM copies them in (the astronaut's head into the
     * background where the shuttle model was). 64 keeps the coarsest level
     * meaningful; the PSNR of the test photographs did not change. */
    p->min_side = 64;
}

size_t px_pm_mem_estimate(int w, int h)
{
    /* Per pixel at full resolution: image 4, hole and target maps 2, source
     * list 4, NNF and its copy 2x4, distance 4, weight 4 = 26 bytes, and 2
     * more for the window counts while a level is built; the pyramid adds a
     * third.
     * Telea at the coarsest level and the per-band state are small change. */
    size_t n = (size_t)w * (size_t)h;
    return n * 28 * 4 / 3 + (1u << 20);
}

static void level_free(level *l)
{
    free(l->img);
    free(l->hole);
    free(l->tgt);
    free(l->srcs);
    free(l->nnf);
    free(l->prev);
    free(l->dist);
    free(l->wt);
    memset(l, 0, sizeof *l);
}

static int level_alloc(level *l, int w, int h)
{
    size_t n = (size_t)w * (size_t)h;
    l->w = w;
    l->h = h;
    l->img = px_alloc_array(n * 4 + IMG_PAD, 1);
    l->hole = px_alloc_array(n, 1);
    l->tgt = px_alloc_array(n, 1);
    l->srcs = px_alloc_array(n, sizeof *l->srcs);
    l->nnf = px_alloc_array(n, sizeof *l->nnf);
    l->prev = px_alloc_array(n, sizeof *l->prev);
    l->dist = px_alloc_array(n, sizeof *l->dist);
    l->wt = px_alloc_array(n, sizeof *l->wt);
    if (!l->img || !l->hole || !l->tgt || !l->srcs || !l->nnf || !l->prev ||
        !l->dist || !l->wt) {
        level_free(l);
        return PX_ENOMEM;
    }
    memset(l->img + n * 4, 0, IMG_PAD);
    return 0;
}

static bool is_cancelled(const atomic_int *cancel)
{
    return cancel && atomic_load_explicit(cancel, memory_order_relaxed);
}

/* Bands of rows of a level; every pass splits a level the same way. */
static int nbands_of(const level *l)
{
    return (l->h + BAND_ROWS - 1) / BAND_ROWS;
}

static int band_end(const level *l, int b)
{
    return (b + 1) * BAND_ROWS < l->h ? (b + 1) * BAND_ROWS : l->h;
}

/* Context of the parallel passes that build a level. */
typedef struct {
    level *l;
    const level *f;             /* the finer level (level_down) */
    const px_image *img, *mask; /* the input (level 0) */
    uint8_t *rh, *rp;           /* per pixel: holes / not-known pixels in the row window */
    int *nsrc, *ntgt, *nblind;  /* per band; nsrc becomes each band's offset in srcs */
    const atomic_int *cancel;   /* bands are skipped once set; the caller checks after */
} build;

/* Level 0 from the input: holes are zero until seeded. */
static void fill0_band(void *ctx, int begin, int end)
{
    const build *bd = ctx;
    level *l = bd->l;
    for (int b = begin; b < end && !is_cancelled(bd->cancel); b++)
        for (size_t i = (size_t)b * BAND_ROWS * l->w; i < (size_t)band_end(l, b) * l->w; i++) {
            bool hole = bd->mask->px[i] != 0;
            l->hole[i] = hole ? LV_HOLE : LV_KNOWN;
            for (int k = 0; k < 3; k++) l->img[i * 4 + k] = hole ? 0 : bd->img->px[i * 3 + k];
            l->img[i * 4 + 3] = 0;
        }
}

/* Hole and not-known counts in the 7-pixel row window around each centre. */
static void rowsum_band(void *ctx, int begin, int end)
{
    const build *bd = ctx;
    const level *l = bd->l;
    int w = l->w;
    for (int b = begin; b < end && !is_cancelled(bd->cancel); b++)
        for (int y = b * BAND_ROWS; y < band_end(l, b); y++) {
            const uint8_t *hr = l->hole + (size_t)y * w;
            uint8_t *rh = bd->rh + (size_t)y * w, *rp = bd->rp + (size_t)y * w;
            int sh = 0, sp = 0;
            for (int x = 0; x < w; x++) {
                sh += hr[x] == LV_HOLE;
                sp += hr[x] != LV_KNOWN;
                if (x >= PX_PM_PATCH) {
                    sh -= hr[x - PX_PM_PATCH] == LV_HOLE;
                    sp -= hr[x - PX_PM_PATCH] != LV_KNOWN;
                }
                if (x >= PX_PM_PATCH - 1) {
                    rh[x - HALF] = (uint8_t)sh;
                    rp[x - HALF] = (uint8_t)sp;
                }
            }
        }
}

/* Targets (windows with a hole pixel) and sources (windows of known pixels
 * only) from the column sums of the row windows, counted per band. */
static void mark_band(void *ctx, int begin, int end)
{
    const build *bd = ctx;
    level *l = bd->l;
    int w = l->w, h = l->h;
    for (int b = begin; b < end && !is_cancelled(bd->cancel); b++) {
        int nsrc = 0, ntgt = 0, nblind = 0;
        for (int y = b * BAND_ROWS; y < band_end(l, b); y++)
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * w + x;
                l->tgt[i] = 0;
                l->img[i * 4 + 3] = 0;
                if (x < HALF || y < HALF || x >= w - HALF || y >= h - HALF) continue;
                int holes = 0, unknown = 0;
                for (int dy = -HALF; dy <= HALF; dy++) {
                    holes += bd->rh[i + (size_t)((ptrdiff_t)dy * w)];
                    unknown += bd->rp[i + (size_t)((ptrdiff_t)dy * w)];
                }
                if (holes) {
                    l->tgt[i] = 1;
                    ntgt++;
                    nblind += holes == PX_PM_PATCH * PX_PM_PATCH;
                } else if (!unknown) {
                    l->img[i * 4 + 3] = 1;
                    nsrc++;
                }
            }
        bd->nsrc[b] = nsrc;
        bd->ntgt[b] = ntgt;
        bd->nblind[b] = nblind;
    }
}

/* The list of source centres in raster order, each band at its offset. */
static void list_band(void *ctx, int begin, int end)
{
    const build *bd = ctx;
    level *l = bd->l;
    for (int b = begin; b < end && !is_cancelled(bd->cancel); b++) {
        int32_t *o = l->srcs + bd->nsrc[b];
        for (size_t i = (size_t)b * BAND_ROWS * l->w; i < (size_t)band_end(l, b) * l->w; i++)
            if (l->img[i * 4 + 3]) *o++ = (int32_t)i;
    }
}

/* Marks targets and sources of a level whose hole map is set, in parallel.
 * Returns 0, PX_ENOMEM or PX_ECANCELED. */
static int level_maps(level *l, px_pool *pool, const atomic_int *cancel)
{
    size_t n = (size_t)l->w * l->h;
    int nb = nbands_of(l), rc = PX_ENOMEM;
    build bd = {.l = l, .cancel = cancel};
    bd.rh = px_alloc_array(n, 1);
    bd.rp = px_alloc_array(n, 1);
    bd.nsrc = px_alloc_array((size_t)nb, sizeof *bd.nsrc);
    bd.ntgt = px_alloc_array((size_t)nb, sizeof *bd.ntgt);
    bd.nblind = px_alloc_array((size_t)nb, sizeof *bd.nblind);
    if (!bd.rh || !bd.rp || !bd.nsrc || !bd.ntgt || !bd.nblind) goto done;
    px_pool_parallel_for(pool, nb, 1, rowsum_band, &bd);
    rc = PX_ECANCELED;
    if (is_cancelled(cancel)) goto done;
    px_pool_parallel_for(pool, nb, 1, mark_band, &bd);
    if (is_cancelled(cancel)) goto done;
    l->nsrc = l->ntgt = l->blind = 0;
    for (int b = 0; b < nb; b++) {
        int k = bd.nsrc[b];
        bd.nsrc[b] = l->nsrc;
        l->nsrc += k;
        l->ntgt += bd.ntgt[b];
        l->blind += bd.nblind[b];
    }
    if (is_cancelled(cancel)) goto done;
    px_pool_parallel_for(pool, nb, 1, list_band, &bd);
    rc = 0;
done:
    free(bd.rh);
    free(bd.rp);
    free(bd.nsrc);
    free(bd.ntgt);
    free(bd.nblind);
    return rc;
}

/*
 * Next coarser level. A pixel is a hole (to be filled) only if every pixel it
 * covers is one, fully known if every pixel it covers is, and "partial"
 * otherwise: it then keeps the mean of its known pixels, counts as known in
 * the patches it is part of, but no patch containing it is a source (its
 * colour is biased). The plain "any hole" rule swells the holes by a pixel
 * per level, so that at the coarsest level whole objects next to a hole (a
 * saucer among blobs) are gone and get filled from whatever surrounds them:
 * 1-3 dB lost inside the hole on photographs, with wrong-coloured fills.
 * Treating partial pixels as fully known sources instead breaks exact
 * completion of periodic textures.
 */
static void down_band(void *ctx, int begin, int end)
{
    const build *bd = ctx;
    const level *f = bd->f;
    level *c = bd->l;
    int w = c->w;
    for (int b = begin; b < end && !is_cancelled(bd->cancel); b++)
        for (int y = b * BAND_ROWS; y < band_end(c, b); y++)
            for (int x = 0; x < w; x++) {
                int sum[3] = {0, 0, 0}, n = 0, nk = 0, tot = 0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        int u = 2 * x + dx, v = 2 * y + dy;
                        if (u >= f->w || v >= f->h) continue;
                        size_t i = (size_t)v * f->w + u;
                        tot++;
                        if (f->hole[i] == LV_HOLE) continue;
                        nk += f->hole[i] == LV_KNOWN;
                        for (int k = 0; k < 3; k++) sum[k] += f->img[i * 4 + k];
                        n++;
                    }
                size_t o = (size_t)y * w + x;
                c->hole[o] = n == 0 ? LV_HOLE : nk == tot ? LV_KNOWN : LV_PARTIAL;
                for (int k = 0; k < 3; k++)
                    c->img[o * 4 + k] = n ? (uint8_t)((sum[k] + n / 2) / n) : 0;
                c->img[o * 4 + 3] = 0;
            }
}

/* Builds the level under f. Returns 0, PX_ENOMEM or PX_ECANCELED. */
static int level_down(const level *f, level *c, px_pool *pool, const atomic_int *cancel)
{
    int rc = level_alloc(c, (f->w + 1) / 2, (f->h + 1) / 2);
    if (rc) return rc;
    build bd = {.l = c, .f = f, .cancel = cancel};
    px_pool_parallel_for(pool, nbands_of(c), 1, down_band, &bd);
    if (is_cancelled(cancel)) return PX_ECANCELED;
    return level_maps(c, pool, cancel);
}

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

/* State shared by the parallel passes over one level. */
typedef struct {
    level *l;
    uint64_t seed;
    int lvl, iter, sweep;
    int backward; /* scan direction of this sweep */
    int fresh;    /* recompute each target's current distance first */
    const level *coarse; /* for the upsampling pass */
    float inv_2sigma2;   /* voting: weight = exp(-dist * inv_2sigma2) */
    int max_radius;      /* random search starts at this radius */
    const atomic_int *cancel;
} pass;

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
static void init_band(void *ctx, int begin, int end)
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
static void upsample_band(void *ctx, int begin, int end)
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
static void search_band(void *ctx, int begin, int end)
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

/* Voting weights exp(-d / 2 sigma^2), per target of a band. */
static void weight_band(void *ctx, int begin, int end)
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
static void vote_band(void *ctx, int begin, int end)
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
static float weight_scale(const level *l)
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

static int em_iterations(const px_pm_params *prm, int lvl, int nlev)
{
    if (nlev <= 1) return prm->em_coarsest;
    /* Quadratic in the level: the iterations pay off where the image is
     * small, and the levels just above full resolution cost the most. On the
     * benchmark photographs this took a quarter off the time at 1280x960
     * for 0.03 dB less PSNR than a linear schedule. */
    float f = (float)lvl / (float)(nlev - 1);
    f *= f;
    return (int)lrintf((float)prm->em_finest + f * (float)(prm->em_coarsest - prm->em_finest));
}

/* Fills the coarsest level's hole by Telea as the EM starting point. */
static int seed_coarsest(level *l, px_pool *pool, const atomic_int *cancel, char *err,
                         size_t errlen)
{
    size_t n = (size_t)l->w * l->h;
    px_image rgb = {l->w, l->h, 3, px_alloc_array(n, 3)};
    px_image m = {l->w, l->h, 1, px_alloc_array(n, 1)};
    int rc = PX_ENOMEM;
    if (!rgb.px || !m.px) goto done;
    for (size_t i = 0; i < n; i++) {
        m.px[i] = l->hole[i] == LV_HOLE;
        for (int k = 0; k < 3; k++) rgb.px[i * 3 + k] = l->img[i * 4 + k];
    }
    rc = px_telea_inpaint(&rgb, &m, PX_TELEA_RADIUS, pool, cancel, &rgb, err, errlen);
    if (!rc)
        for (size_t i = 0; i < n; i++)
            if (m.px[i])
                for (int k = 0; k < 3; k++) l->img[i * 4 + k] = rgb.px[i * 3 + k];
done:
    free(rgb.px);
    free(m.px);
    if (rc == PX_ENOMEM) px_errf(err, errlen, rc, "patchmatch: out of memory");
    return rc;
}

static int cancelled_err(char *err, size_t errlen)
{
    return px_errf(err, errlen, PX_ECANCELED, "patchmatch: cancelled");
}

int px_patchmatch_inpaint(const px_image *img, const px_image *mask, const px_pm_params *prm,
                          px_pool *pool, const atomic_int *cancel, px_image *out, char *err,
                          size_t errlen)
{
    if (!img || !img->px || img->c != 3 || !mask || !mask->px || mask->c != 1 || !out ||
        !out->px || out->c != 3)
        return px_errf(err, errlen, PX_EINVAL,
                       "patchmatch: need an RGB image, a 1-channel mask and an RGB output");
    if (mask->w != img->w || mask->h != img->h || out->w != img->w || out->h != img->h)
        return px_errf(err, errlen, PX_EINVAL, "patchmatch: image, mask and output sizes differ");
    if (img->w > INT16_MAX || img->h > INT16_MAX)
        return px_errf(err, errlen, PX_EINVAL, "patchmatch: image side above %d", INT16_MAX);
    px_pm_params def;
    if (!prm) {
        px_pm_defaults(&def);
        prm = &def;
    }
    int W = img->w, H = img->h;
    size_t N = (size_t)W * H;
    if (out->px != img->px) memcpy(out->px, img->px, N * 3);
    if (px_mask_count(mask) == 0) return 0;
    if (W < PX_PM_PATCH || H < PX_PM_PATCH)
        return px_telea_inpaint(out, mask, PX_TELEA_RADIUS, pool, cancel, out, err, errlen);

    level lv[MAX_LEVELS];
    memset(lv, 0, sizeof lv);
    int nlev = 0, rc;
    if (level_alloc(&lv[0], W, H)) goto nomem;
    nlev = 1;
    build b0 = {.l = &lv[0], .img = img, .mask = mask, .cancel = cancel};
    px_pool_parallel_for(pool, nbands_of(&lv[0]), 1, fill0_band, &b0);
    rc = is_cancelled(cancel) ? PX_ECANCELED : level_maps(&lv[0], pool, cancel);
    if (rc == PX_ENOMEM) goto nomem;
    if (rc) {
        rc = cancelled_err(err, errlen);
        goto done;
    }
    if (lv[0].nsrc == 0) {
        /* No fully known patch anywhere: nothing to copy from. */
        for (int i = 0; i < nlev; i++) level_free(&lv[i]);
        return px_telea_inpaint(out, mask, PX_TELEA_RADIUS, pool, cancel, out, err, errlen);
    }

    /* Coarser levels while some target patch lies entirely in the hole (it
     * has nothing known to match on, so its match would be a guess), as long
     * as a level keeps at least min_side pixels a side and some sources. The
     * window counts of level_maps answer this for free, where a distance transform
     * would cost a pass over the full image that cannot be cancelled. */
    while (nlev < MAX_LEVELS && lv[nlev - 1].blind > 0) {
        level *f = &lv[nlev - 1];
        if ((f->w + 1) / 2 < prm->min_side || (f->h + 1) / 2 < prm->min_side) break;
        if (is_cancelled(cancel)) {
            rc = cancelled_err(err, errlen);
            goto done;
        }
        rc = level_down(f, &lv[nlev], pool, cancel);
        if (rc == PX_ENOMEM) goto nomem;
        if (rc) {
            rc = cancelled_err(err, errlen);
            goto done;
        }
        if (lv[nlev].nsrc < MIN_SOURCES) {
            level_free(&lv[nlev]);
            break;
        }
        nlev++;
    }
    if (is_cancelled(cancel)) {
        rc = cancelled_err(err, errlen);
        goto done;
    }

    rc = seed_coarsest(&lv[nlev - 1], pool, cancel, err, errlen);
    if (rc) goto done;

    for (int li = nlev - 1; li >= 0; li--) {
        level *l = &lv[li];
        int nbands = nbands_of(l);
        pass ps = {.l = l, .seed = prm->seed, .lvl = li, .cancel = cancel};
        ps.max_radius = l->w > l->h ? l->w : l->h;
        if (li == nlev - 1) {
            px_pool_parallel_for(pool, nbands, 1, init_band, &ps);
        } else {
            /* Long-range matches were found at the coarsest level and arrive
             * with the upsampled field; further jumps across the image mostly
             * miss the cache and rarely win (measured: 30 % of the time at
             * 1280x960, no loss in PSNR). */
            if (ps.max_radius > FINE_SEARCH_RADIUS) ps.max_radius = FINE_SEARCH_RADIUS;
            ps.coarse = &lv[li + 1];
            px_pool_parallel_for(pool, nbands, 1, upsample_band, &ps);
        }
        int iters = em_iterations(prm, li, nlev);
        for (int it = 0; it < iters; it++) {
            ps.iter = it;
            for (int s = 0; s < prm->sweeps; s++) {
                if (is_cancelled(cancel)) {
                    rc = cancelled_err(err, errlen);
                    goto done;
                }
                ps.sweep = s;
                ps.backward = (it * prm->sweeps + s) & 1;
                ps.fresh = s == 0; /* the image changed since the last vote */
                memcpy(l->prev, l->nnf, (size_t)l->w * l->h * sizeof *l->nnf);
                px_pool_parallel_for(pool, nbands, 1, search_band, &ps);
            }
            if (is_cancelled(cancel)) {
                rc = cancelled_err(err, errlen);
                goto done;
            }
            ps.inv_2sigma2 = weight_scale(l);
            px_pool_parallel_for(pool, nbands, 1, weight_band, &ps);
            px_pool_parallel_for(pool, nbands, 1, vote_band, &ps);
        }
        /* The coarser level is no longer needed once this one is seeded. */
        if (li + 1 < nlev) level_free(&lv[li + 1]);
    }
    if (is_cancelled(cancel)) {
        rc = cancelled_err(err, errlen);
        goto done;
    }
    for (size_t i = 0; i < N; i++)
        if (lv[0].hole[i])
            for (int k = 0; k < 3; k++) out->px[i * 3 + k] = lv[0].img[i * 4 + k];
    rc = 0;
done:
    for (int i = 0; i < MAX_LEVELS; i++) level_free(&lv[i]);
    return rc;
nomem:
    for (int i = 0; i < MAX_LEVELS; i++) level_free(&lv[i]);
    return px_errf(err, errlen, PX_ENOMEM, "patchmatch: out of memory for a %dx%d image", W, H);
}
