/*
 * engines.h — the server's engines from its configuration: each --engine
 * checked before anything starts, then opened with its own settings (or
 * the global --weights/--device/--precision) and warmed up.
 */
#ifndef PX_SERVE_ENGINES_H
#define PX_SERVE_ENGINES_H

#include "core/pool.h"
#include "engine/engine.h"
#include "serve/config.h"

#include <stddef.h>

/* Checks the engine names and that only engines that can choose a device
 * name one. Returns 0, PX_ENOTFOUND or PX_EINVAL with a message. */
int px_engines_check(const px_serve_config *cfg, char *err, size_t errlen);

/*
 * Opens and warms up the configured engines in order into engines[] (at
 * least PX_MAX_ENGINES slots), counting them in *n as they open (so the
 * caller closes those on failure too). Returns 0 or the first error with a
 * message naming the engine.
 */
int px_engines_load(const px_serve_config *cfg, px_pool *pool, px_engine **engines, int *n,
                    char *err, size_t errlen);

#endif
