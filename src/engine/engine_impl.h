/*
 * engine_impl.h — what an engine implementation provides: one const vtable
 * (px_engine_ops) and an instance struct whose first member is px_engine.
 * Only engine.c and the engines include this; callers use engine.h.
 */
#ifndef PX_ENGINE_ENGINE_IMPL_H
#define PX_ENGINE_ENGINE_IMPL_H

#include "engine/engine.h"

typedef struct px_engine_ops {
    const char *name;
    const char *description;
    unsigned caps;
    const char *const *methods; /* NULL-terminated; first is the default */

    /* Builds an instance (which embeds struct px_engine first). */
    int (*create)(const px_engine_config *cfg, px_engine **out, char *err, size_t errlen);
    void (*destroy)(px_engine *e);
    size_t (*mem_estimate)(const px_engine *e, int n, int w, int h);
    /* Free memory of the engine's device; NULL means system RAM (CPU engines). */
    size_t (*free_memory)(const px_engine *e);
    /* Items already validated by px_engine_run. Sets each item's status. */
    int (*run)(px_engine *e, px_engine_item *items, int n);
    /* Appends engine-specific "key": value pairs (without braces) to out;
     * core/jsonw.h has the string escaping. */
    int (*describe_config)(const px_engine *e, px_buf *out);
} px_engine_ops;

struct px_engine {
    const px_engine_ops *ops;
};

/* The registered engines (defined by each engine's .c file). */
extern const px_engine_ops px_engine_classic_ops;
extern const px_engine_ops px_engine_lama_ops;

#endif
