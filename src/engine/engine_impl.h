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
    enum px_engine_kind kind;   /* what the items hold (0 = inpaint) */
    const char *const *methods; /* NULL-terminated; first is the default */

    /* Builds an instance (which embeds struct px_engine first). */
    int (*create)(const px_engine_config *cfg, px_engine **out, char *err, size_t errlen);
    void (*destroy)(px_engine *e);
    /* Working memory of a batch of n items of shape s (s->w, s->h > 0). */
    size_t (*mem_estimate)(const px_engine *e, int n, const px_engine_shape *s);
    /* Free memory of the engine's device; NULL means system RAM (CPU engines). */
    size_t (*free_memory)(const px_engine *e);
    /* Frees what the engine keeps cached on its devices for later batches
     * (GPU plans), waiting for batches using it; NULL: nothing to free. */
    void (*release_caches)(px_engine *e);
    /* Bytes release_caches would give back on one device (the most of
     * any device's); NULL: 0. Called under the scheduler's lock: quick. */
    size_t (*cached_bytes)(const px_engine *e);
    /* Batches worth running at once (one per GPU); NULL means 1. */
    int (*parallelism)(const px_engine *e);
    /* How many of a batch of n items of shape s can start without a slow
     * preparation first (a GPU plan for a shape nobody built): n, fewer,
     * or 0; what n would need is prepared in the background meanwhile.
     * Called under the scheduler's lock: must be quick. NULL: always n. */
    int (*ready)(px_engine *e, int n, const px_engine_shape *s);
    /* Items already validated by px_engine_run. Sets each item's status. */
    int (*run)(px_engine *e, px_engine_item *items, int n);
    /* Continuous batching (PX_ENGINE_CAP_JOIN engines): items validated, of
     * one size; feed's join already validates joiners (engine.c wraps it).
     * Calls feed->done once per item. */
    int (*run_feed)(px_engine *e, px_engine_item **items, int n, const px_engine_feed *feed);
    /* Warm-up (px_engine_warm_up); NULL runs the default of the engine's
     * kind (engine.c: a tiny inpaint batch, the --warm-sizes plans on GPUs). */
    int (*warmup)(px_engine *e, const px_engine_warmup *wu, char *err, size_t errlen);
    /* Appends engine-specific "key": value pairs (without braces) to out;
     * core/jsonw.h has the string escaping. */
    int (*describe_config)(const px_engine *e, px_buf *out);
    /* LoRAs (px_engine_lora_open); NULL: the engine takes none. The engine
     * allocates the px_engine_lora, which embeds struct px_engine_lora_head
     * first so engine.c can find the engine's ops to close and describe it. */
    int (*lora_open)(px_engine *e, const char *path, px_engine_lora **out, char *err,
                     size_t errlen);
    void (*lora_close)(px_engine_lora *l);
    int (*lora_describe)(const px_engine_lora *l, px_buf *out);
} px_engine_ops;

/* The first member of every engine's px_engine_lora. */
struct px_engine_lora_head {
    const px_engine_ops *ops;
};

/* Instances are zero-initialised by create (calloc): px_engine_open fills
 * ops when create leaves it NULL, and device always. */
struct px_engine {
    const px_engine_ops *ops;
    char device[32]; /* px_engine_device */
};

/* The registered engines (defined by each engine's .c file). */
extern const px_engine_ops px_engine_classic_ops;
extern const px_engine_ops px_engine_lama_ops;
extern const px_engine_ops px_engine_zimage_ops;

#endif
