/*
 * classic.c — the "classic" engine's vtable: method dispatch, the "auto"
 * plan (thin blobs to Telea, thick ones to PatchMatch), memory estimate and
 * self-description. The algorithms live in telea.c and patchmatch.c.
 */
#include "engine/classic/classic.h"

#include "core/alloc.h"
#include "core/err.h"
#include "engine/classic/patchmatch.h"
#include "engine/classic/telea.h"
#include "engine/engine_impl.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    px_engine base; /* first: the registry sees a px_engine */
    px_pool *pool;
    int telea_radius;
    px_pm_params pm; /* seed comes from each item */
} classic;

static const char *const g_methods[] = {"auto", "patchmatch", "telea", NULL};

int px_classic_plan(const px_image *mask, px_blob **blobs, int *nblobs, int **labels,
                    uint8_t **choice)
{
    *blobs = NULL;
    *nblobs = 0;
    *choice = NULL;
    if (labels) *labels = NULL;
    if (!mask || !mask->px || mask->c != 1) return PX_EINVAL;
    int *lab = NULL;
    float *dist = NULL;
    float *maxd = NULL;
    int rc = px_mask_blobs(mask, blobs, nblobs, &lab);
    if (rc) return rc;
    if (*nblobs == 0) {
        free(lab);
        return 0;
    }
    rc = PX_ENOMEM;
    if (px_mask_distance(mask, &dist)) goto fail;
    maxd = calloc((size_t)*nblobs, sizeof *maxd);
    *choice = malloc((size_t)*nblobs);
    if (!maxd || !*choice) goto fail;
    size_t n = (size_t)mask->w * mask->h;
    for (size_t i = 0; i < n; i++)
        if (lab[i] && dist[i] > maxd[lab[i] - 1]) maxd[lab[i] - 1] = dist[i];
    for (int b = 0; b < *nblobs; b++)
        (*choice)[b] = maxd[b] <= PX_CLASSIC_THIN_RADIUS ? PX_CLASSIC_TELEA : PX_CLASSIC_PATCHMATCH;
    free(dist);
    free(maxd);
    if (labels) *labels = lab;
    else free(lab);
    return 0;
fail:
    free(lab);
    free(dist);
    free(maxd);
    free(*blobs);
    free(*choice);
    *blobs = NULL;
    *choice = NULL;
    *nblobs = 0;
    return rc;
}

/* "auto": Telea on the thin blobs, then PatchMatch on a mask of the thick
 * ones over the Telea result. */
static int run_auto(const classic *c, px_engine_item *it, const px_pm_params *pm)
{
    char *err = it->err;
    size_t errlen = sizeof it->err;
    px_blob *blobs;
    int nblobs, *labels;
    uint8_t *choice;
    int rc = px_classic_plan(it->mask, &blobs, &nblobs, &labels, &choice);
    if (rc) return px_errf(err, errlen, rc, "classic: out of memory planning the mask");
    const px_image *img = it->image;
    px_image *out = it->out;
    size_t n = (size_t)img->w * img->h;
    if (out->px != img->px) memcpy(out->px, img->px, n * 3);
    int nthin = 0;
    for (int b = 0; b < nblobs; b++) nthin += choice[b] == PX_CLASSIC_TELEA;
    uint8_t *sel = NULL;
    px_image thick = {0};
    if (nthin > 0) {
        sel = malloc((size_t)nblobs);
        if (!sel) goto nomem;
        for (int b = 0; b < nblobs; b++) sel[b] = choice[b] == PX_CLASSIC_TELEA;
        rc = px_telea_inpaint_blobs(img, it->mask, labels, blobs, nblobs, sel, c->telea_radius,
                                    c->pool, it->cancel, out, err, errlen);
        if (rc) goto done;
    }
    if (nthin < nblobs) {
        thick = (px_image){img->w, img->h, 1, malloc(n)};
        if (!thick.px) goto nomem;
        for (size_t i = 0; i < n; i++)
            thick.px[i] = labels[i] && choice[labels[i] - 1] == PX_CLASSIC_PATCHMATCH ? 255 : 0;
        rc = px_patchmatch_inpaint(out, &thick, pm, c->pool, it->cancel, out, err, errlen);
    }
    goto done;
nomem:
    rc = px_errf(err, errlen, PX_ENOMEM, "classic: out of memory");
done:
    free(thick.px);
    free(sel);
    free(blobs);
    free(labels);
    free(choice);
    return rc;
}

static int run_one(const classic *c, px_engine_item *it)
{
    px_pm_params pm = c->pm;
    pm.seed = it->seed;
    const char *m = it->method ? it->method : g_methods[0];
    char *err = it->err;
    size_t errlen = sizeof it->err;
    if (it->cancel && atomic_load(it->cancel))
        return px_errf(err, errlen, PX_ECANCELED, "classic: cancelled before start");
    int rc;
    if (strcmp(m, "telea") == 0)
        rc = px_telea_inpaint(it->image, it->mask, c->telea_radius, c->pool, it->cancel, it->out,
                              err, errlen);
    else if (strcmp(m, "patchmatch") == 0)
        rc = px_patchmatch_inpaint(it->image, it->mask, &pm, c->pool, it->cancel, it->out, err,
                                   errlen);
    else
        rc = run_auto(c, it, &pm);
    /* Every method already leaves known pixels alone; composing once more at
     * the engine's edge makes that the interface's guarantee, not each
     * algorithm's. */
    if (!rc) px_image_compose(it->image, it->out, it->mask, it->out);
    return rc;
}

static int classic_run(px_engine *e, px_engine_item *items, int n)
{
    const classic *c = (const classic *)e;
    int first = 0;
    /* One item at a time: each already spreads over the whole pool. */
    for (int i = 0; i < n; i++) {
        items[i].err[0] = 0;
        items[i].status = run_one(c, &items[i]);
        if (items[i].status && !first) first = items[i].status;
    }
    return first;
}

static int classic_create(const px_engine_config *cfg, px_engine **out, char *err, size_t errlen)
{
    if (cfg->device && strcmp(cfg->device, "cpu") != 0)
        return px_errf(err, errlen, PX_EUNSUP, "classic engine runs on the CPU only, not \"%s\"",
                       cfg->device);
    classic *c = px_xcalloc(1, sizeof *c);
    c->base.ops = &px_engine_classic_ops;
    c->pool = cfg->pool ? cfg->pool : px_pool_default();
    c->telea_radius = PX_TELEA_RADIUS;
    px_pm_defaults(&c->pm);
    *out = &c->base;
    return 0;
}

static void classic_destroy(px_engine *e)
{
    free(e);
}

static size_t classic_mem_estimate(const px_engine *e, int n, const px_engine_shape *s)
{
    (void)e;
    int w = s->w, h = s->h;
    (void)n; /* items run one after another, so the peak is one item's */
    size_t px = (size_t)w * (size_t)h;
    /* The plan (labels 4 + distances 4 + thick mask 1 bytes per pixel), then
     * the larger of PatchMatch and Telea on one blob as big as the image
     * (flags 2, T 4, colour 12, heap about 16 bytes per pixel). */
    size_t plan = px * 9, telea = px * 34, pm = px_pm_mem_estimate(w, h);
    return plan + (pm > telea ? pm : telea);
}

static int classic_describe_config(const px_engine *e, px_buf *out)
{
    const classic *c = (const classic *)e;
    return px_buf_printf(out,
                         "\"telea_radius\":%d,\"patch_size\":%d,\"thin_radius\":%.1f,"
                         "\"em_iterations_coarsest\":%d,\"em_iterations_finest\":%d,"
                         "\"sweeps_per_iteration\":%d,\"min_level_side\":%d,\"threads\":%d",
                         c->telea_radius, PX_PM_PATCH, (double)PX_CLASSIC_THIN_RADIUS,
                         c->pm.em_coarsest, c->pm.em_finest, c->pm.sweeps, c->pm.min_side,
                         px_pool_threads(c->pool));
}

const px_engine_ops px_engine_classic_ops = {
    .name = "classic",
    .description = "Weights-free inpainting on the CPU: PatchMatch completion for large holes, "
                   "Telea fast marching for thin strokes; \"auto\" picks per blob by thickness.",
    .caps = PX_ENGINE_CAP_ANY_SIZE | PX_ENGINE_CAP_DETERMINISTIC,
    .methods = g_methods,
    .create = classic_create,
    .destroy = classic_destroy,
    .mem_estimate = classic_mem_estimate,
    .run = classic_run,
    .describe_config = classic_describe_config,
};
