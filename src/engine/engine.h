/*
 * engine.h — the inpainting engine interface, as callers see it.
 *
 * An engine is created by name from the registry, then runs batches of
 * items. Each item is an RGB image with a binary mask of the same size; the
 * engine writes an RGB output of the same size in which pixels outside the
 * mask are byte-identical to the input. Engines know nothing of HTTP or of
 * the scheduler; implementations live behind one const vtable (engine_impl.h).
 */
#ifndef PX_ENGINE_ENGINE_H
#define PX_ENGINE_ENGINE_H

#include "core/buf.h"
#include "core/pool.h"
#include "image/image.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct px_engine px_engine; /* opaque */

/* Capability bits (px_engine_caps). */
enum {
    PX_ENGINE_CAP_BATCH = 1u << 0,         /* gains from batches > 1 */
    PX_ENGINE_CAP_ANY_SIZE = 1u << 1,      /* accepts any w×h (no padding needed) */
    PX_ENGINE_CAP_DETERMINISTIC = 1u << 2, /* same input + seed => same output */
    PX_ENGINE_CAP_GPU = 1u << 3,           /* runs on a GPU */
    PX_ENGINE_CAP_WEIGHTS = 1u << 4,       /* needs a weights file */
    PX_ENGINE_CAP_DEVICES = 1u << 5        /* px_engine_config.device picks CPU or GPU */
};

typedef struct px_engine_config {
    const char *weights; /* weights file, for engines that need one */
    const char *device;  /* "cpu", "cuda", "cuda:0", ...; NULL = engine default */
    const char *precision; /* "fp32", "tf32", "bf16"; NULL = engine default */
    px_pool *pool;       /* compute threads; NULL = px_pool_default() */
} px_engine_config;

/* One image of a batch. The caller owns every pointer. */
typedef struct px_engine_item {
    const px_image *image;   /* RGB, c = 3 */
    const px_image *mask;    /* binary, c = 1, same w×h */
    px_image *out;           /* RGB, c = 3, same w×h, allocated by the caller */
    uint64_t seed;           /* for engines with randomness */
    const char *method;      /* engine-specific variant, NULL = the default */
    const atomic_int *cancel;/* non-zero: stop early (may be NULL) */
    int status;              /* set by run: 0 or a PX_E* code */
    char err[160];           /* set by run when status != 0 */
} px_engine_item;

/* Names of the registered engines, NULL-terminated. */
const char *const *px_engine_names(void);

/* Creates an engine by name. Returns 0, PX_ENOTFOUND (unknown name, listing
 * the known ones in err), or the engine's own error. Caller closes *out. */
int px_engine_open(const char *name, const px_engine_config *cfg, px_engine **out, char *err,
                   size_t errlen);

/* Capability bits of a registered engine before opening it (0 for an
 * unknown name): the server passes --device only to PX_ENGINE_CAP_DEVICES
 * engines. An open engine's px_engine_caps may add bits (gpu). */
unsigned px_engine_caps_of(const char *name);

/* Destroys the engine. NULL is allowed. */
void px_engine_close(px_engine *e);

const char *px_engine_name(const px_engine *e);
unsigned px_engine_caps(const px_engine *e);

/* Checks an item's method name; returns 0 or PX_EINVAL with the accepted
 * names in err. NULL is always accepted. */
int px_engine_check_method(const px_engine *e, const char *method, char *err, size_t errlen);

/* Bytes of working memory a batch of n w×h items needs, beyond the inputs
 * and outputs themselves (for admission control). */
size_t px_engine_mem_estimate(const px_engine *e, int n, int w, int h);

/* Bytes the engine's device has free now: for CPU engines the system's
 * MemAvailable, for GPU engines the device memory the driver reports free.
 * The scheduler admits batches against it (the memory guard). */
size_t px_engine_free_memory(const px_engine *e);

/* How many batches the engine runs well at the same time: the number of
 * GPUs a GPU engine drives, 1 for CPU engines (their threads are shared).
 * The scheduler's default worker count per engine. */
int px_engine_parallelism(const px_engine *e);

/*
 * Runs a batch. Items are validated first (PX_EINVAL for wrong channel counts
 * or sizes). Returns 0 when every item succeeded, else the first failing
 * item's code; each item's own status/err say which. Thread-safe: several
 * threads may run batches on one engine at once.
 */
int px_engine_run(px_engine *e, px_engine_item *items, int n);

/* Appends a JSON object describing the engine (name, capabilities, methods,
 * configuration) to out. Returns 0 or the buffer's error. */
int px_engine_describe(const px_engine *e, px_buf *out);

#endif
