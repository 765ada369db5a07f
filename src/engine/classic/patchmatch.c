/*
 * patchmatch.c — multi-scale PatchMatch completion (see patchmatch.h): the
 * pyramid of levels and the EM iterations over it; the nearest-neighbour
 * field's search is in patchmatch_nnf.c, the vote in patchmatch_vote.c.
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
#include "engine/classic/patchmatch_impl.h"

#include "core/alloc.h"
#include "core/err.h"
#include "engine/classic/telea.h"
#include "image/mask.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A level needs at least this many source patches to be worth searching. */
#define MIN_SOURCES 16
#define MAX_LEVELS 12
/* Random-search radius at every level but the coarsest. */
#define FINE_SEARCH_RADIUS 64

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

/* Coarser levels under lv[0] while some target patch lies entirely in the
 * hole (it has nothing known to match on, so its match would be a guess), as
 * long as a level keeps at least min_side pixels a side and some sources.
 * The window counts of level_maps answer this for free, where a distance
 * transform would cost a pass over the full image that cannot be cancelled.
 * Returns 0, PX_ENOMEM or PX_ECANCELED; *nlev counts the levels kept. */
static int build_pyramid(level *lv, int *nlev, const px_pm_params *prm, px_pool *pool,
                         const atomic_int *cancel)
{
    while (*nlev < MAX_LEVELS && lv[*nlev - 1].blind > 0) {
        level *f = &lv[*nlev - 1];
        if ((f->w + 1) / 2 < prm->min_side || (f->h + 1) / 2 < prm->min_side) break;
        if (is_cancelled(cancel)) return PX_ECANCELED;
        int rc = level_down(f, &lv[*nlev], pool, cancel);
        if (rc) return rc;
        if (lv[*nlev].nsrc < MIN_SOURCES) {
            level_free(&lv[*nlev]);
            break;
        }
        (*nlev)++;
    }
    return is_cancelled(cancel) ? PX_ECANCELED : 0;
}

/* Seeds level li of nlev (randomly at the coarsest, from the coarser level
 * otherwise) and runs its EM iterations: search sweeps, then a vote. Returns
 * 0 or PX_ECANCELED. */
static int complete_level(level *lv, int li, int nlev, const px_pm_params *prm, px_pool *pool,
                          const atomic_int *cancel)
{
    level *l = &lv[li];
    int nbands = nbands_of(l);
    pass ps = {.l = l, .seed = prm->seed, .lvl = li, .cancel = cancel};
    ps.max_radius = l->w > l->h ? l->w : l->h;
    if (li == nlev - 1) {
        px_pool_parallel_for(pool, nbands, 1, pm_init_band, &ps);
    } else {
        /* Long-range matches were found at the coarsest level and arrive
         * with the upsampled field; further jumps across the image mostly
         * miss the cache and rarely win (measured: 30 % of the time at
         * 1280x960, no loss in PSNR). */
        if (ps.max_radius > FINE_SEARCH_RADIUS) ps.max_radius = FINE_SEARCH_RADIUS;
        ps.coarse = &lv[li + 1];
        px_pool_parallel_for(pool, nbands, 1, pm_upsample_band, &ps);
    }
    int iters = em_iterations(prm, li, nlev);
    for (int it = 0; it < iters; it++) {
        ps.iter = it;
        for (int s = 0; s < prm->sweeps; s++) {
            if (is_cancelled(cancel)) return PX_ECANCELED;
            ps.sweep = s;
            ps.backward = (it * prm->sweeps + s) & 1;
            ps.fresh = s == 0; /* the image changed since the last vote */
            memcpy(l->prev, l->nnf, (size_t)l->w * l->h * sizeof *l->nnf);
            px_pool_parallel_for(pool, nbands, 1, pm_search_band, &ps);
        }
        if (is_cancelled(cancel)) return PX_ECANCELED;
        ps.inv_2sigma2 = pm_weight_scale(l);
        px_pool_parallel_for(pool, nbands, 1, pm_weight_band, &ps);
        px_pool_parallel_for(pool, nbands, 1, pm_vote_band, &ps);
    }
    return 0;
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

    rc = build_pyramid(lv, &nlev, prm, pool, cancel);
    if (rc == PX_ENOMEM) goto nomem;
    if (rc) {
        rc = cancelled_err(err, errlen);
        goto done;
    }

    rc = seed_coarsest(&lv[nlev - 1], pool, cancel, err, errlen);
    if (rc) goto done;

    for (int li = nlev - 1; li >= 0; li--) {
        if (complete_level(lv, li, nlev, prm, pool, cancel)) {
            rc = cancelled_err(err, errlen);
            goto done;
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
