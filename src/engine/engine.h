/*
 * engine.h — the engine interface, as callers see it.
 *
 * An engine is created by name from the registry, then runs batches of
 * items. Every engine declares its kind (px_engine_kind), which says what
 * its items hold:
 *
 *  - PX_ENGINE_INPAINT: an RGB image with a binary mask of the same size;
 *    the engine writes an RGB output of the same size in which pixels
 *    outside the mask are byte-identical to the input.
 *  - PX_ENGINE_GENERATE: a prompt and the sampling parameters (size, steps,
 *    guidance, seed); the engine writes a width×height RGB output, calling
 *    the item's progress callback after each step and checking its cancel
 *    flag between steps.
 *
 * Engines know nothing of HTTP or of the scheduler; implementations live
 * behind one const vtable (engine_impl.h).
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

/* What an engine's items are (see above). Zero is inpaint, so an engine
 * vtable that does not say is an inpainting one. */
enum px_engine_kind { PX_ENGINE_INPAINT = 0, PX_ENGINE_GENERATE = 1, PX_ENGINE_KIND_COUNT };

/* "inpaint", "generate". */
const char *px_engine_kind_name(enum px_engine_kind k);

/* Capability bits (px_engine_caps). */
enum {
    PX_ENGINE_CAP_BATCH = 1u << 0,         /* gains from batches > 1 */
    PX_ENGINE_CAP_ANY_SIZE = 1u << 1,      /* accepts any w×h (no padding needed) */
    PX_ENGINE_CAP_DETERMINISTIC = 1u << 2, /* same input + seed => same output */
    PX_ENGINE_CAP_GPU = 1u << 3,           /* runs on a GPU */
    PX_ENGINE_CAP_WEIGHTS = 1u << 4,       /* needs a weights file */
    PX_ENGINE_CAP_DEVICES = 1u << 5,       /* px_engine_config.device picks CPU or GPU */
    PX_ENGINE_CAP_JOIN = 1u << 6           /* items join a running batch between steps
                                              (px_engine_run_feed) */
};

typedef struct px_engine_config {
    const char *weights; /* weights file or model directory, for engines that need one */
    const char *device;  /* "cpu", "cuda", "cuda:0", ...; NULL = engine default */
    const char *precision; /* "fp32", "tf32", "bf16", "fp16"; NULL = engine default */
    px_pool *pool;       /* compute threads; NULL = px_pool_default() */
} px_engine_config;

/* Called by an engine after each step of an item (generate engines: each
 * denoising step), from the thread running the batch. Must be quick. */
typedef void (*px_engine_progress_fn)(void *arg, int step, int steps);

/* Step times a generate item keeps (the API allows 50 steps). */
#define PX_ENGINE_GEN_MAX_STEPS 64

/* A LoRA adapter loaded by an engine for its model (px_engine_lora_open).
 * Immutable once open: any number of items may use it at once. */
typedef struct px_engine_lora px_engine_lora; /* opaque */

/* LoRAs one generate item may use at once. */
#define PX_ENGINE_MAX_LORAS 8

/* One LoRA an item uses and the user's scale m in W + m·(α/r)·B·A. Items of
 * one batch may use different LoRAs and scales: engines apply them per item
 * at run time instead of merging them into the shared weights. */
typedef struct px_engine_lora_use {
    const px_engine_lora *lora;
    float scale;
} px_engine_lora_use;

/* The fields of a generate item. */
enum px_gen_mem { PX_GEN_MEM_NONE = 0, PX_GEN_MEM_HOST_RSS = 1, PX_GEN_MEM_GPU = 2 };

typedef struct px_engine_gen {
    const char *prompt;          /* UTF-8, not NULL */
    const char *negative_prompt; /* NULL or "" = none */
    int width, height;           /* of the output */
    int steps;                   /* denoising steps, >= 1 */
    float cfg_scale;             /* guidance weight w: pred = pos + w(pos - neg); 0 = off */
    const float *latents;        /* initial noise in the engine's latent layout,
                                    NULL = drawn from the seed */
    px_engine_lora_use loras[PX_ENGINE_MAX_LORAS]; /* opened by this engine */
    int nloras;
    /* Set by run: time spent per stage. */
    int64_t encode_ns, denoise_ns, decode_ns;
    /* Set by run (engines that know them; 0 otherwise): each denoising
     * step's time (the first PX_ENGINE_GEN_MAX_STEPS), peak memory of the
     * text encoder, denoising and decoding stages in bytes, the prompt's
     * token count and whether it was cut to the encoder's limit. */
    float step_ms[PX_ENGINE_GEN_MAX_STEPS];
    int nstep_ms;
    uint64_t encode_peak_bytes, denoise_peak_bytes, decode_peak_bytes;
    /* What those peaks measure (px_gen_mem): the CPU engine the process's
     * resident memory, the CUDA engine the GPU's memory in use at the end
     * of each stage (its buffers are allocated ahead, per plan). */
    int mem_source;
    int prompt_tokens;
    int prompt_truncated;
} px_engine_gen;

/*
 * One input of a batch: a head common to every kind, then the fields of
 * the engine's kind. The caller owns every pointer. The inpaint fields are
 * anonymous (it->image), the generate ones under it->gen.
 */
typedef struct px_engine_item {
    px_image *out;           /* RGB, c = 3, allocated by the caller (inpaint: the
                                image's size; generate: width×height) */
    uint64_t seed;           /* for engines with randomness */
    const char *method;      /* engine-specific variant, NULL = the default */
    const atomic_int *cancel;/* non-zero: stop early (may be NULL) */
    px_engine_progress_fn progress; /* may be NULL */
    void *progress_arg;
    int status;              /* set by run: 0 or a PX_E* code */
    char err[160];           /* set by run when status != 0 */
    union {
        struct {             /* PX_ENGINE_INPAINT */
            const px_image *image; /* RGB, c = 3 */
            const px_image *mask;  /* binary, c = 1, same w×h */
        };
        px_engine_gen gen;   /* PX_ENGINE_GENERATE */
    };
} px_engine_item;

/* For engines: reports step of steps to the item's progress callback, if any. */
void px_engine_progress(const px_engine_item *it, int step, int steps);

/* The shape of a batch's items, for the memory estimate: w×h pixels, and
 * for generate engines the denoising steps (0 otherwise) and whether the
 * items are guided (CFG: each image is two DiT items, its prompt and its
 * negative, so the denoiser's and the text encoder's memory doubles). */
typedef struct px_engine_shape {
    int w, h, steps;
    int guided;
} px_engine_shape;

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
enum px_engine_kind px_engine_kind_of(const px_engine *e);

/* Where the engine computes, as configured: "cpu", or the --device value of
 * a GPU engine ("cuda", "cuda:1", "cuda:0,1"). Engines with the same string
 * share a device's memory (the scheduler accounts memory per device). */
const char *px_engine_device(const px_engine *e);

/* Checks an item's method name; returns 0 or PX_EINVAL with the accepted
 * names in err. NULL is always accepted. */
int px_engine_check_method(const px_engine *e, const char *method, char *err, size_t errlen);

/* Bytes of working memory a batch of n items of the given shape needs,
 * beyond the inputs and outputs themselves (for admission control); 0 for
 * an empty shape. */
size_t px_engine_mem_estimate(const px_engine *e, int n, px_engine_shape shape);

/* Bytes the engine's device has free now: for CPU engines the system's
 * MemAvailable, for GPU engines the device memory the driver reports free.
 * The scheduler admits batches against it (the memory guard). */
size_t px_engine_free_memory(const px_engine *e);

/* Frees what the engine keeps cached on its devices for later batches (a
 * GPU engine's plans of shapes it ran before, which the free memory above
 * does not count as free), waiting for batches using them; nothing for
 * engines without such caches. The scheduler asks for it before refusing
 * an item that does not fit an idle device. */
void px_engine_release_caches(px_engine *e);

/* Bytes px_engine_release_caches would give back to the device's free
 * memory (for a multi-GPU engine the most any one device holds); 0 for
 * engines without caches. Quick and thread-safe: the scheduler releases
 * only when this could make an item fit. */
size_t px_engine_cached_bytes(const px_engine *e);

/* How many of a batch of n items of this shape can start now without a
 * slow preparation (seconds of a GPU plan's build for a shape nobody
 * built): n, fewer, or 0. What the n items need is then prepared in the
 * background, so a scheduler can run other shapes meanwhile and ask again.
 * Quick and thread-safe; n for engines that prepare nothing. */
int px_engine_ready(px_engine *e, int n, px_engine_shape shape);

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

/*
 * Step-level continuous batching (generate engines with PX_ENGINE_CAP_JOIN).
 * A batch runs step by step; between steps the engine asks join for more
 * items (the caller's queue: items of the first item's size, at most max
 * more, none when join returns 0), and each item leaves the batch when its
 * own steps are done (each carries its own timestep), is cancelled or
 * fails: done is called for it then, exactly once, from the thread running
 * the batch, and the engine touches it no more. Items handed out by join
 * must stay valid until their done.
 */
typedef struct px_engine_feed {
    int (*join)(void *ctx, px_engine_item **items, int max);
    void (*done)(void *ctx, px_engine_item *item);
    void *ctx;
} px_engine_feed;

/*
 * Runs items[0..n) (pointers: the caller's slots) and whatever joins them,
 * until every item is done and join gives no more. Items are validated as
 * px_engine_run does (a joiner of another size fails with PX_EINVAL);
 * invalid ones are done at once. Returns 0, or PX_EUNSUP for an engine
 * without PX_ENGINE_CAP_JOIN (then no item was touched) or PX_EINVAL.
 */
int px_engine_run_feed(px_engine *e, px_engine_item **items, int n, const px_engine_feed *feed);

/* What to warm up before serving: the sizes (w[i], h[i]) that GPU engines
 * build their plans for at every batch size up to max_batch. */
typedef struct px_engine_warmup {
    const int *w, *h;
    int nsizes;
    int max_batch;
} px_engine_warmup;

/*
 * Runs the engine once on a tiny input so that the first real request does
 * not pay for lazy initialisation (caches, page faults), plus what the
 * engine needs for the sizes in wu (NULL = none): GPU inpaint engines run
 * every batch size up to max_batch at each size twice (the plan with its
 * algorithm search, then the CUDA graph capture). Returns 0 or the engine's
 * error with a message.
 */
int px_engine_warm_up(px_engine *e, const px_engine_warmup *wu, char *err, size_t errlen);

/*
 * Loads a LoRA file for the engine's model: every key must map onto one of
 * the model's weights with matching shapes, or nothing loads (PX_ECORRUPT,
 * err lists what did not match — never a silent partial load). Returns 0,
 * PX_EUNSUP (the engine takes no LoRAs), PX_EIO / PX_ENOTFOUND (the file),
 * PX_ECORRUPT / PX_ETRUNC (its contents) or PX_ENOMEM. The engine must
 * outlive *out; close it when no item uses it any more.
 */
int px_engine_lora_open(px_engine *e, const char *path, px_engine_lora **out, char *err,
                        size_t errlen);
void px_engine_lora_close(px_engine_lora *l);

/* Appends the JSON members (without braces) describing an open LoRA: its
 * rank, alpha, targets, key spelling and bytes. Returns 0 or the buffer's
 * error. */
int px_engine_lora_describe(const px_engine_lora *l, px_buf *out);

/* Appends a JSON object describing the engine (name, capabilities, methods,
 * configuration) to out. Returns 0 or the buffer's error. */
int px_engine_describe(const px_engine *e, px_buf *out);

#endif
