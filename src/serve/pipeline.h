/*
 * pipeline.h — the life of an inpainting request inside pixserve, from a
 * received body to a reply, independent of HTTP:
 *
 *   prep (CPU pool)   parse the body, admit (per-priority queue and
 *                     per-client caps), decode and validate, plan the engine
 *                     inputs (large-image strategy), queue them on the
 *                     device scheduler
 *   device (sched)    batches of items from any requests run on the engine
 *   finish (CPU pool) assemble the windows, put alpha back, encode, build
 *                     the reply (raw image, base64 JSON, or a stored file)
 *
 * Every task ends exactly once — done, failed, timed out (its deadline
 * fires whatever stage it is in), or cancelled (DELETE, or the client went
 * away) — and its owner's callback runs then. Work still in flight for a
 * task that has ended is cancelled and its results dropped.
 */
#ifndef PX_SERVE_PIPELINE_H
#define PX_SERVE_PIPELINE_H

#include "core/buf.h"
#include "engine/engine.h"
#include "serve/config.h"
#include "serve/metrics.h"
#include "serve/outputs.h"
#include "serve/request.h"
#include "serve/sched.h"

#include <stddef.h>
#include <stdint.h>

typedef struct px_pipeline px_pipeline;
typedef struct px_task px_task;

/* Runs once when the task ends, on whichever thread ended it. */
typedef void (*px_task_done_fn)(px_task *t, void *arg);

typedef struct px_task_spec {
    enum px_dialect dialect;
    int async;                /* keep the result as image bytes for the jobs API */
    const char *content_type; /* the request's Content-Type (copied) */
    uint8_t *body;            /* the request body; ownership moves to the task */
    size_t body_len;
    const char *client;       /* key for the per-client cap (copied); NULL = none */
    int64_t arrival_ns;       /* px_now_ns() when the request arrived */
    int64_t timeout_ms;       /* from a header; 0 = the body's timeout_ms or the default */
    px_task_done_fn done;
    void *done_arg;
} px_task_spec;

/*
 * Starts the CPU pool and the scheduler over the loaded engines (the first
 * is the default). cfg, the engines, outputs and metrics must outlive the
 * pipeline. NULL with a message if threads cannot be started.
 */
px_pipeline *px_pipeline_create(const px_serve_config *cfg, px_engine *const *engines,
                                int nengines, px_outputs *outputs, px_metrics *metrics,
                                char *err, size_t errlen);

/* Stops accepting tasks and waits until every task has ended and all their
 * work has drained. */
void px_pipeline_drain(px_pipeline *p);

/* Drains, then frees. */
void px_pipeline_destroy(px_pipeline *p);

/*
 * Starts a task. Returns 0 with *out (the caller holds one reference), or
 * PX_EBUSY (the CPU queue is full: *retry_after_s says when to come back) or
 * PX_ECANCELED (draining); then the body has been freed and done never runs.
 */
int px_pipeline_submit(px_pipeline *p, px_task_spec *spec, px_task **out, int *retry_after_s);

void px_task_ref(px_task *t);
void px_task_unref(px_task *t);

/* Ends the task as cancelled if it has not ended (its work is dropped).
 * Returns 0, or PX_EINVAL if it had already ended. */
int px_task_cancel(px_task *t);

/* Forgets the done callback (the owner is going away); the task still ends
 * and frees itself normally. */
void px_task_detach(px_task *t);

/* The reply of an ended task; body stays owned by the task. */
typedef struct px_task_reply {
    int http_status;
    int code;                 /* 0 or the PX_E* code of a failure */
    const char *content_type;
    const px_buf *body;
    const char *header_name;  /* an extra header (Retry-After), or NULL */
    char header_value[32];
    char server_timing[320];
} px_task_reply;

/* Fills r; only valid once the task has ended (after done ran). */
void px_task_reply_get(px_task *t, px_task_reply *r);

/* Appends the jobs-API status object of the task (docs/api.md) with the
 * given id to out. Safe at any time. */
int px_task_status_json(px_task *t, const char *id, px_buf *out);

/* Whether the task has ended, and if so whether it succeeded. */
int px_task_ended(px_task *t, int *ok);

typedef struct px_pipeline_stats {
    px_sched_stats sched;
    int pending[PX_PRIO_COUNT]; /* admitted tasks not yet ended, per priority */
    int tasks;                  /* tasks alive (any stage) */
    int cpu_queued, cpu_running;
    int workers;                /* device workers, all engines */
} px_pipeline_stats;

void px_pipeline_stats_get(px_pipeline *p, px_pipeline_stats *s);

#endif
