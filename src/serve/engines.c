/*
 * engines.c — checking, opening and warming the configured engines (see
 * engines.h). Runs on the server's loader thread, after the socket is
 * bound, so /healthz answers while big weights load.
 */
#include "serve/engines.h"

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
    /* What GPU engines plan for before serving. */
    int ws[8], hs[8], nw = cfg->warm_sizes ? px_config_warm_sizes(cfg->warm_sizes, ws, hs, 8) : 0;
    px_engine_warmup wu = {
        .w = ws, .h = hs, .nsizes = nw > 0 ? nw : 0, .max_batch = cfg->max_batch};
    for (int i = 0; i < cfg->nengines && i < PX_MAX_ENGINES; i++) {
        const px_engine_spec *sp = &cfg->engines[i];
        px_engine_config ec = engine_config(cfg, sp, pool);
        int rc = px_engine_open(sp->name, &ec, &engines[*n], inner, sizeof inner);
        if (rc) return px_errf(err, errlen, rc, "engine '%.40s': %.200s", sp->name, inner);
        (*n)++;
        if ((rc = px_engine_warm_up(engines[*n - 1], &wu, inner, sizeof inner)))
            return px_errf(err, errlen, rc, "%s", inner);
    }
    return 0;
}
