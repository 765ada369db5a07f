/*
 * engines.c — checking, opening and warming the configured engines (see
 * engines.h). Runs on the server's loader thread, after the socket is
 * bound, so /healthz answers while big weights load.
 */
#include "serve/engines.h"

#include "serve/hd.h"
#include "serve/kind_inpaint.h"

#include "core/err.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int px_engines_check(const px_serve_config *cfg, char *err, size_t errlen)
{
    for (int i = 0; i < cfg->nengines; i++) {
        const px_engine_spec *sp = &cfg->engines[i];
        int known = 0;
        for (const char *const *n = px_engine_names(); *n; n++) known |= !strcmp(*n, sp->name);
        if (!known)
            return px_errf(err, errlen, PX_ENOTFOUND, "unknown engine '%s' (see pixserve engines)",
                           sp->name);
        if (sp->device && !(px_engine_caps_of(sp->name) & PX_ENGINE_CAP_DEVICES))
            return px_errf(err, errlen, PX_EINVAL, "engine '%s' cannot choose a device (device=%s)",
                           sp->name, sp->device);
    }
    return 0;
}

/* An engine's settings: its own from --engine NAME:..., else the global
 * flags (--device and --precision only for engines that can choose). */
static px_engine_config engine_config(const px_serve_config *cfg, const px_engine_spec *sp,
                                      px_pool *pool)
{
    bool dev = px_engine_caps_of(sp->name) & PX_ENGINE_CAP_DEVICES;
    return (px_engine_config){
        .weights = sp->weights ? sp->weights : cfg->weights,
        .device = sp->device ? sp->device
                  : dev      ? cfg->device
                             : NULL,
        .precision = sp->precision ? sp->precision
                     : dev         ? cfg->precision
                                   : NULL,
        .pool = pool,
    };
}

/* The sizes engine e warms up for: each --warm-sizes size and the CROP
 * window shapes (hd.h) an image of that size gives with e's window bucket,
 * so that common window shapes never build plans on a request's path.
 * Returns how many (at most max). */
static int warm_sizes(const px_serve_config *cfg, const px_engine *e, int *ws, int *hs, int max)
{
    int w8[8], h8[8], n = 0;
    int nw = cfg->warm_sizes ? px_config_warm_sizes(cfg->warm_sizes, w8, h8, 8) : 0;
    px_hd_params hd = cfg->hd;
    hd.crop_bucket = px_kind_inpaint_crop_bucket(e, hd.crop_bucket);
    for (int i = 0; i < nw; i++) {
        int bw[32], bh[32];
        int nb = px_hd_window_shapes(&hd, w8[i], h8[i], bw, bh, 31);
        bw[nb] = w8[i], bh[nb] = h8[i], nb++;
        for (int k = 0; k < nb; k++) {
            int dup = 0;
            for (int j = 0; j < n; j++) dup |= ws[j] == bw[k] && hs[j] == bh[k];
            if (!dup && n < max) ws[n] = bw[k], hs[n] = bh[k], n++;
        }
    }
    return n;
}

int px_engines_load(const px_serve_config *cfg, px_pool *pool, px_engine **engines, int *n,
                    char *err, size_t errlen)
{
    char inner[256];
    /* --device and --precision go to the engines that can choose. */
    bool placed = !cfg->device || !strcmp(cfg->device, "cpu");
    for (int i = 0; i < cfg->nengines; i++)
        placed |= (px_engine_caps_of(cfg->engines[i].name) & PX_ENGINE_CAP_DEVICES) != 0;
    if (!placed)
        return px_errf(err, errlen, PX_EINVAL,
                       "--device %.40s: none of the engines can run there (lama can)", cfg->device);
    for (int i = 0; i < cfg->nengines && i < PX_MAX_ENGINES; i++) {
        const px_engine_spec *sp = &cfg->engines[i];
        px_engine_config ec = engine_config(cfg, sp, pool);
        int rc = px_engine_open(sp->name, &ec, &engines[*n], inner, sizeof inner);
        if (rc) return px_errf(err, errlen, rc, "engine '%.40s': %.200s", sp->name, inner);
        (*n)++;
        /* What GPU engines plan for before serving. */
        int ws[32], hs[32];
        px_engine_warmup wu = {.w = ws,
                               .h = hs,
                               .nsizes = warm_sizes(cfg, engines[*n - 1], ws, hs, 32),
                               .max_batch = cfg->max_batch};
        if ((rc = px_engine_warm_up(engines[*n - 1], &wu, inner, sizeof inner)))
            return px_errf(err, errlen, rc, "%s", inner);
    }
    return 0;
}
