/*
 * hd.c — ORIGINAL, RESIZE and CROP plans and their assembly (see hd.h).
 */
#include "serve/hd.h"

#include "core/alloc.h"
#include "core/err.h"
#include "image/mask.h"
#include "image/resize.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *px_hd_name(enum px_hd_strategy s)
{
    static const char *names[] = {"Original", "Resize", "Crop"};
    return (unsigned)s < 3 ? names[s] : "Original";
}

int px_hd_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcasecmp(s, px_hd_name((enum px_hd_strategy)i)) == 0) return i;
    return -1;
}

void px_hd_defaults(px_hd_params *p)
{
    p->strategy = PX_HD_CROP;
    p->crop_trigger = 800;
    p->crop_margin = 128;
    p->resize_limit = 1280;
    p->crop_bucket = 0;
    p->crop_merge = 1;
}

void px_hd_free(px_hd_plan *plan)
{
    for (int i = 0; i < plan->nwin; i++) {
        px_image_free(&plan->win[i].image);
        px_image_free(&plan->win[i].mask);
        px_image_free(&plan->win[i].out);
    }
    free(plan->win);
    free(plan->labels);
    memset(plan, 0, sizeof *plan);
}

/* Copies the w×h region at (x, y) of src into a new image. */
/* The side a CROP window wants on one axis: the blob plus margin. */
static int window_want(int b0, int b1, int margin)
{
    return (b1 - b0) + 2 * margin;
}

/*
 * One axis of a CROP window of length want around the blob starting at b0
 * with margin: [lo, lo + len), kept inside [0, n): where it would stick out
 * on one side it is moved in and extended on the other, so windows at
 * borders get as much context.
 */
static void window_axis(int b0, int want, int margin, int n, int *lo, int *len)
{
    if (want >= n) {
        *lo = 0;
        *len = n;
        return;
    }
    int start = b0 - margin;
    if (start < 0) start = 0;
    if (start + want > n) start = n - want;
    *lo = start;
    *len = want;
}

/* The bucketed side: a square of the larger wanted side rounded up to a
 * multiple of bucket (bucket 0: the wanted side itself). */
static int bucket_side(int want, int bucket)
{
    return bucket > 0 ? (want + bucket - 1) / bucket * bucket : want;
}

int px_hd_window_shapes(const px_hd_params *p, int w, int h, int *ws, int *hs, int max)
{
    int longest = w > h ? w : h, n = 0;
    if (p->strategy != PX_HD_CROP || p->crop_bucket <= 0 || longest <= p->crop_trigger) return 0;
    for (int side = p->crop_bucket;; side += p->crop_bucket) {
        int sw = side < w ? side : w, sh = side < h ? side : h;
        int dup = 0;
        for (int i = 0; i < n; i++) dup |= ws[i] == sw && hs[i] == sh;
        if (!dup && n < max) ws[n] = sw, hs[n] = sh, n++;
        if (side >= longest) break;
    }
    return n;
}

/* A CROP region: the bounding box of one or more blobs and the label the
 * window pastes (merged blobs are relabelled to it). */
typedef struct region {
    int x0, y0, x1, y1, label;
} region;

/* The side lengths of the window around r in a w x h image. */
static void region_window(const region *r, const px_hd_params *p, int w, int h, int *ww, int *wh)
{
    *ww = window_want(r->x0, r->x1, p->crop_margin);
    *wh = window_want(r->y0, r->y1, p->crop_margin);
    if (p->crop_bucket > 0) *ww = *wh = bucket_side(*ww > *wh ? *ww : *wh, p->crop_bucket);
    if (*ww > w) *ww = w;
    if (*wh > h) *wh = h;
}

/* Pixels the engine runs for r's window: the cost merging compares. */
static long long region_cost(const region *r, const px_hd_params *p, int w, int h)
{
    int ww, wh;
    region_window(r, p, w, h, &ww, &wh);
    return (long long)ww * wh;
}

static region region_union(const region *a, const region *b)
{
    region u = *a;
    if (b->x0 < u.x0) u.x0 = b->x0;
    if (b->y0 < u.y0) u.y0 = b->y0;
    if (b->x1 > u.x1) u.x1 = b->x1;
    if (b->y1 > u.y1) u.y1 = b->y1;
    return u;
}

/* Follows the merge links of label l to the label its window pastes. */
static int label_root(const int *to, int l)
{
    while (to[l] != l) l = to[l];
    return l;
}

/* Pairwise merging is quadratic per pass and a pass may merge only one
 * pair (at most n passes: ~n^3 / 2 cost evaluations, ~1 ms at 64); past
 * this many blobs (a speckled mask) only the all-in-one merge is tried. */
#define PAIRWISE_MAX 64

/*
 * Merges regions while running one window for two (or for all) costs no
 * more pixels than running them apart: overlapping windows around the
 * strokes of one brush mask otherwise run the same pixels several times
 * (issue 16: the seed's 15-30 % masks on 1024² gave ~4.5 windows a
 * request, 3x the work of the whole image). to[label] links each merged
 * label to its region's. Returns the number of regions left.
 */
static int merge_regions(region *r, int n, int *to, const px_hd_params *p, int w, int h)
{
    for (int merged = n <= PAIRWISE_MAX; merged;) {
        merged = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) {
                region u = region_union(&r[i], &r[j]);
                if (region_cost(&u, p, w, h) > region_cost(&r[i], p, w, h) + region_cost(&r[j], p, w, h))
                    continue;
                to[r[j].label] = r[i].label;
                r[i] = u;
                r[j--] = r[--n];
                merged = 1;
            }
    }
    long long apart = 0;
    region all = r[0];
    for (int i = 0; i < n; i++) {
        apart += region_cost(&r[i], p, w, h);
        all = region_union(&all, &r[i]);
    }
    if (n > 1 && region_cost(&all, p, w, h) <= apart) {
        for (int i = 1; i < n; i++) to[r[i].label] = all.label;
        r[0] = all;
        n = 1;
    }
    return n;
}

/*
 * CROP: the regions of mask's blobs (merged when p says so), their labels
 * in *labels (merged blobs relabelled), into *out; their count or -1.
 */
static int crop_regions(const px_image *mask, const px_hd_params *p, int w, int h, int **labels,
                        region **out)
{
    px_blob *blobs = NULL;
    int nb = 0;
    *out = NULL;
    if (px_mask_blobs(mask, &blobs, &nb, labels)) return -1;
    region *r = px_alloc_array((size_t)nb, sizeof *r);
    int *to = px_alloc_array((size_t)nb + 1, sizeof *to);
    if (!r || !to) {
        free(blobs), free(r), free(to);
        return -1;
    }
    for (int b = 0; b < nb; b++)
        r[b] = (region){blobs[b].x0, blobs[b].y0, blobs[b].x1, blobs[b].y1, blobs[b].label};
    free(blobs);
    for (int l = 0; l <= nb; l++) to[l] = l;
    int n = nb;
    if (p->crop_merge && nb > 1) n = merge_regions(r, nb, to, p, w, h);
    if (n < nb) { /* flatten the links once, then one lookup per pixel */
        for (int l = 0; l <= nb; l++) to[l] = label_root(to, l);
        for (size_t i = 0; i < (size_t)w * h; i++) (*labels)[i] = to[(*labels)[i]];
    }
    free(to);
    *out = r;
    return n;
}

int px_hd_plan_make(const px_image *rgb, const px_image *mask, const px_hd_params *p,
                    px_hd_plan *plan, char *err, size_t errlen)
{
    memset(plan, 0, sizeof *plan);
    if (p->crop_trigger < 1 || p->crop_margin < 0 || p->resize_limit < 8 || p->crop_bucket < 0)
        return px_errf(err, errlen, PX_EINVAL, "bad large-image parameters");
    if (px_mask_count(mask) == 0) return 0; /* nothing to inpaint */
    int longest = rgb->w > rgb->h ? rgb->w : rgb->h;
    enum px_hd_strategy used = p->strategy;
    if (used == PX_HD_CROP && longest <= p->crop_trigger) used = PX_HD_ORIGINAL;
    if (used == PX_HD_RESIZE && longest <= p->resize_limit) used = PX_HD_ORIGINAL;
    plan->used = used;

    if (used == PX_HD_CROP) {
        region *r = NULL;
        int n = crop_regions(mask, p, rgb->w, rgb->h, &plan->labels, &r);
        if (n < 0) goto nomem;
        plan->win = px_alloc_array((size_t)n, sizeof *plan->win);
        if (!plan->win) {
            free(r);
            goto nomem;
        }
        memset(plan->win, 0, (size_t)n * sizeof *plan->win);
        for (int b = 0; b < n; b++) {
            px_hd_window *w = &plan->win[plan->nwin];
            int ww, wh;
            region_window(&r[b], p, rgb->w, rgb->h, &ww, &wh);
            window_axis(r[b].x0, ww, p->crop_margin, rgb->w, &w->x, &w->w);
            window_axis(r[b].y0, wh, p->crop_margin, rgb->h, &w->y, &w->h);
            w->label = r[b].label;
            plan->nwin++;
            if (px_image_crop(rgb, w->x, w->y, w->w, w->h, &w->image) ||
                px_image_crop(mask, w->x, w->y, w->w, w->h, &w->mask) ||
                px_image_alloc(&w->out, w->w, w->h, 3, NULL, NULL, 0)) {
                free(r);
                goto nomem;
            }
        }
        free(r);
        return 0;
    }

    plan->win = px_xcalloc(1, sizeof *plan->win);
    plan->nwin = 1;
    px_hd_window *w = &plan->win[0];
    w->w = rgb->w;
    w->h = rgb->h;
    if (used == PX_HD_RESIZE) {
        double s = (double)p->resize_limit / longest;
        int sw = (int)(rgb->w * s + 0.5), sh = (int)(rgb->h * s + 0.5);
        if (sw < 1) sw = 1;
        if (sh < 1) sh = 1;
        if (px_resize(rgb, sw, sh, &w->image) || px_resize_mask(mask, sw, sh, &w->mask)) goto nomem;
    } else if (px_image_copy(rgb, &w->image) || px_image_copy(mask, &w->mask)) {
        goto nomem;
    }
    if (px_image_alloc(&w->out, w->image.w, w->image.h, 3, NULL, NULL, 0)) goto nomem;
    return 0;
nomem:
    px_hd_free(plan);
    return px_errf(err, errlen, PX_ENOMEM, "out of memory planning a %dx%d image", rgb->w, rgb->h);
}

int px_hd_assemble(const px_hd_plan *plan, const px_image *rgb, const px_image *mask,
                   px_image *out)
{
    size_t npx = (size_t)rgb->w * rgb->h;
    if (out->px != rgb->px) memcpy(out->px, rgb->px, npx * 3);
    if (plan->nwin == 0) return 0;
    if (plan->used == PX_HD_CROP) {
        for (int i = 0; i < plan->nwin; i++) {
            const px_hd_window *w = &plan->win[i];
            for (int r = 0; r < w->h; r++)
                for (int c = 0; c < w->w; c++) {
                    size_t o = (size_t)(w->y + r) * rgb->w + (size_t)(w->x + c);
                    if (plan->labels[o] != w->label) continue;
                    memcpy(out->px + o * 3, w->out.px + ((size_t)r * w->w + c) * 3, 3);
                }
        }
        return 0;
    }
    const px_hd_window *w = &plan->win[0];
    px_image big = {0};
    const px_image *fill = &w->out;
    if (plan->used == PX_HD_RESIZE) {
        if (px_resize(&w->out, rgb->w, rgb->h, &big)) return PX_ENOMEM;
        fill = &big;
    }
    px_image_compose(rgb, fill, mask, out);
    px_image_free(&big);
    return 0;
}
