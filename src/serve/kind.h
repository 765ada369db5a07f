/*
 * kind.h — request kinds: what a route's requests are (inpaint, generate,
 * ...), as one const vtable per kind. The task lifecycle (task.h) is
 * kind-neutral — references, admission, deadline, ending exactly once, the
 * reply, the jobs-API status — and calls a kind's hooks at fixed points:
 *
 *   CPU pool   parse    body -> request object, plus the options the
 *                       lifecycle needs (engine, priority, timeout)
 *              check    the request against the chosen engine (optional;
 *                       before admission, so a bad option is a 400, not a
 *                       queue slot)
 *              prepare  after admission: decode, tokenise, plan; says how
 *                       many engine items the request needs
 *              make_items  fills each scheduler item's payload, batch key
 *                       and shape
 *   device     run      the run adapter: a batch of this kind's items (one
 *                       key) through the engine (sched.h px_sched_run_fn);
 *              run_join its continuous form, where items join between steps
 *   any thread release  the engine is done with the items: drop what only
 *                       they needed
 *   CPU pool   finish   after every item succeeded: assemble, encode, build
 *                       the reply of the route's dialect
 *   any time   status_json  fields of a done job's "result" object
 *
 * Request-kind knowledge lives only in the kind's own file
 * (kind_inpaint.c, ...); routes.c maps paths to kinds.
 */
#ifndef PX_SERVE_KIND_H
#define PX_SERVE_KIND_H

#include "core/buf.h"
#include "engine/engine.h"
#include "image/image.h"
#include "serve/config.h"
#include "serve/loras.h"
#include "serve/metrics.h"
#include "serve/outputs.h"
#include "serve/routes.h"
#include "serve/sched.h"

#include <stddef.h>
#include <stdint.h>

typedef struct px_task px_task;

/* The server's settings and shared parts, the same for every request. */
typedef struct px_kind_env {
    const px_serve_config *cfg;
    px_outputs *outputs;
    px_metrics *metrics;
    px_img_limits limits;
    px_sched *sched; /* px_sched_batches, for batch keys */
    px_loras *loras; /* the LoRA registry (--lora-dir); NULL = none */
} px_kind_env;

/* Options every kind's request carries, read by the lifecycle after parse. */
typedef struct px_kind_opts {
    char engine[32];    /* "" = the first loaded engine of the kind's engine kind */
    int priority;       /* enum px_priority; -1 = normal */
    int64_t timeout_ms; /* > 0: the request's own deadline from its arrival */
} px_kind_opts;

/* What one request's hooks see. */
typedef struct px_kind_ctx {
    const px_kind_env *env;
    px_task *task;     /* for px_task_timings_get and px_task_note_* */
    px_engine *engine; /* the request's engine; NULL during parse */
    enum px_dialect dialect;
    int async;                /* jobs API: the reply is the bare result bytes */
    const char *content_type; /* the request's Content-Type ("" if none) */
    const char *host;         /* the request's Host header ("" if none), for absolute URLs */
} px_kind_ctx;

/* A task's stage times so far, in milliseconds, and the largest batch its
 * items ran in (px_task_timings_get). */
typedef struct px_task_timings {
    double queue_ms, decode_ms, infer_ms, encode_ms, save_ms, total_ms;
    int batch_size;
} px_task_timings;

/* A finished request's reply: body and its media type (a static string). */
typedef struct px_kind_reply {
    px_buf body;
    const char *content_type;
    const char *header_name; /* an extra header (IOPaint's X-Seed), or NULL */
    char header_value[32];
} px_kind_reply;

struct px_kind {
    const char *name;                /* "inpaint": routes and labels */
    enum px_engine_kind engine_kind; /* the engines its requests run on */
    const char *prepare_stage;       /* jobs-API stage names while prepare, */
    const char *infer_stage;         /* the device (NULL = "infer") and */
    int step_stages;                 /* on the device the stage follows the engine's
                                        steps instead: "text_encode" before the first,
                                        "denoise", "vae_decode" after the last */
    const char *finish_stage;        /* finish run: "decode", "encode" */
    int unknown_engine_code;         /* a named engine not loaded: 0 = PX_EINVAL
                                        (400), or PX_ENOTFOUND (404) */

    /* Parses the body into a new request object (*req, released with
     * free) and fills opts. Returns 0, or a PX_E* code with a message; on
     * failure *req may be set (it is freed). */
    int (*parse)(const px_kind_ctx *c, const uint8_t *body, size_t len, void **req,
                 px_kind_opts *opts, char *err, size_t errlen);
    /* Optional: checks the request against c->engine. 0 or PX_E*. */
    int (*check)(const px_kind_ctx *c, void *req, char *err, size_t errlen);
    /* Decodes/tokenises/plans; *nitems = engine items needed (0: nothing
     * to run, finish at once). 0 or PX_E* with a message. */
    int (*prepare)(const px_kind_ctx *c, void *req, int *nitems, char *err, size_t errlen);
    /* Fills items[0..n) (zeroed): payload, key (the batch key: items with
     * equal keys may share an engine call) and shape (for the memory
     * estimate). The lifecycle sets the rest. */
    void (*make_items)(const px_kind_ctx *c, void *req, px_sched_item *items, int n);
    /* The device worker's run adapter for this kind's items. */
    px_sched_run_fn run;
    /* Optional: its continuous-batching form (sched.h), for engines whose
     * items join running batches between steps. */
    px_sched_run_join_fn run_join;
    /* Builds the reply after every item succeeded. 0 or PX_E*. */
    int (*finish)(const px_kind_ctx *c, void *req, px_kind_reply *r, char *err, size_t errlen);
    void (*free)(void *req);
    /* Optional: the engine is done with the request's items (the last one
     * ended, or they were never queued), so what only they needed (LoRA
     * holds) goes now rather than when the task is freed (a done job is
     * kept for --job-ttl). May be called again; free must let go of what
     * is left. */
    void (*release)(void *req);

    /* Optional: appends top-level ,"name":value pairs of what the request
     * asked for (only fields fixed once it was parsed), to the status of a
     * job that is queued or running (a done job's status_extra says it). */
    int (*status_request)(const void *req, px_buf *b);

    /* Optional presentation hooks, for done tasks (req is valid): */
    /* appends ,"name":value pairs inside a job's "result" object; */
    int (*status_result)(const void *req, px_buf *b);
    /* appends top-level ,"name":value pairs after "result" (seeds, the
     * kind's own timings); when set, the generic "timings" are left out; */
    int (*status_extra)(const void *req, const px_task_timings *tm, px_buf *b);
    /* result k of a job (GET /api/v1/jobs/{id}/result?index=k): 0, or
     * PX_ENOTFOUND past the last; without it, the reply body is result 0; */
    int (*result)(const void *req, int index, const uint8_t **data, size_t *len,
                  const char **content_type);
    /* the Server-Timing header value (without it: queue, decode, infer,
     * encode, save, total). Must not call back into the task. */
    void (*server_timing)(const void *req, const px_task_timings *tm, char *out, size_t n);
    /* Optional, any time: the error body of a dialect (e.g. OpenAI's
     * shape); without it {"error": {"code", "message"}}. */
    void (*error_body)(enum px_dialect d, int code, const char *msg, px_buf *out);
};

/*
 * A run adapter for kinds whose payload is a px_engine_item (filled by
 * make_items): runs the batch as one px_engine_run with each item's cancel
 * flag and progress wired to its scheduler item, then copies the results
 * back into the payloads (generate timings included) and the status and
 * err into the scheduler items.
 */
void px_kind_run_engine_items(px_engine *e, px_sched_item *const *items, int n);

/* Its continuous-batching form (px_sched_run_join_fn): the items and every
 * joiner through px_engine_run_feed, each item's results copied back and
 * the item finished (px_sched_finish) as the engine says it is done. */
void px_kind_run_engine_items_join(px_engine *e, px_sched_item *const *items, int n,
                                   px_sched_run *run);

/* A batch key from three small non-negative numbers (21 bits each kept):
 * e.g. (w, h, steps). */
uint64_t px_kind_key3(int a, int b, int c);

/* Appends pixserve's error body: {"error": {"code", "message"}, "errors":
 * message} — the top-level string is what IOPaint's and lama-cleaner's
 * clients show. Returns 0 or the buffer's error. */
int px_kind_error_json(int code, const char *msg, px_buf *out);

/* Finds a kind by name among the built-in ones; NULL if unknown. */
const px_kind *px_kind_find(const char *name);

/* The built-in kinds, NULL-terminated. */
extern const px_kind *const px_kinds[];

/* A kind's position in px_kinds (its metrics index); 0 for NULL or a kind
 * not built in. */
int px_kind_index(const px_kind *k);

/* Names every built-in kind and its stage labels in the metrics. */
void px_kind_register_metrics(px_metrics *m);

#endif
