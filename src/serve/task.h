/*
 * task.h — the life of a request inside pixserve, from a received body to a
 * reply, independent of HTTP and of the request's kind (kind.h):
 *
 *   prep (CPU pool)   the kind parses the body; the engine is chosen; the
 *                     request is admitted (per-priority queue and
 *                     per-client caps, else 429 with Retry-After from the
 *                     engine's own service rate); the kind prepares it and
 *                     makes its engine items, which go to the scheduler
 *   device (sched)    batches of items from any requests of one kind run on
 *                     the engine; start and progress events are pushed to
 *                     the task
 *   finish (CPU pool) the kind builds the reply
 *
 * Every task ends exactly once — done, failed, timed out (its deadline
 * fires whatever stage it is in), or cancelled (DELETE, or the client went
 * away) — and its owner's callback runs then. Work still in flight for a
 * task that has ended is cancelled and its results dropped.
 */
#ifndef PX_SERVE_TASK_H
#define PX_SERVE_TASK_H

#include "core/buf.h"
#include "engine/engine.h"
#include "serve/config.h"
#include "serve/kind.h"
#include "serve/metrics.h"
#include "serve/outputs.h"
#include "serve/sched.h"

#include <stddef.h>
#include <stdint.h>

typedef struct px_tasks px_tasks;

/* Runs once when the task ends, on whichever thread ended it. */
typedef void (*px_task_done_fn)(px_task *t, void *arg);

typedef struct px_task_spec {
    const px_kind *kind; /* the route's request kind */
    enum px_dialect dialect;
    int async;                /* keep the result as bare bytes for the jobs API */
    const char *content_type; /* the request's Content-Type (copied) */
    uint8_t *body;            /* the request body; ownership moves to the task */
    size_t body_len;
    const char *client; /* key for the per-client cap (copied); NULL = none */
    const char *host;   /* the Host header (copied); NULL = none */
    const char *default_engine; /* the engine when the body names none (copied; the
                                   server's current model); NULL = the kind's first */
    int64_t arrival_ns; /* px_now_ns() when the request arrived */
    int64_t timeout_ms; /* from a header; 0 = the body's timeout_ms or the default */
    px_task_done_fn done;
    void *done_arg;
} px_task_spec;

/*
 * Starts the CPU pool and the scheduler over the loaded engines (the first
 * of each engine kind is that kind's default). cfg, the engines, outputs and
 * metrics must outlive the tasks. NULL with a message if threads cannot be started.
 */
px_tasks *px_tasks_create(const px_serve_config *cfg, px_engine *const *engines, int nengines,
                          px_outputs *outputs, px_metrics *metrics, char *err, size_t errlen);

/* The LoRA registry requests may use (kind env's loras); set before the
 * first task is submitted. It must outlive the tasks. */
void px_tasks_set_loras(px_tasks *p, px_loras *loras);

/* Stops accepting tasks and waits until every task has ended and all their
 * work has drained. */
void px_tasks_drain(px_tasks *p);

/* Drains, then frees. */
void px_tasks_destroy(px_tasks *p);

/*
 * Starts a task. Returns 0 with *out (the caller holds one reference), or
 * PX_EBUSY (the CPU queue is full: *retry_after_s says when to come back) or
 * PX_ECANCELED (draining); then the body has been freed and done never runs.
 */
int px_tasks_submit(px_tasks *p, px_task_spec *spec, px_task **out, int *retry_after_s);

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
    int code; /* 0 or the PX_E* code of a failure */
    const char *content_type;
    const px_buf *body;
    const char *header_name; /* an extra header (Retry-After), or NULL */
    char header_value[32];
    char server_timing[320];
} px_task_reply;

/* Fills r; only valid once the task has ended (after done ran). */
void px_task_reply_get(px_task *t, px_task_reply *r);

/* Appends the jobs-API status object of the task (docs/api.md) with the
 * given id to out; "progress": {"step", "steps"} while an engine reports
 * steps. Safe at any time. */
int px_task_status_json(px_task *t, const char *id, px_buf *out);

/* The status object for the reply that accepts a job (202): "queued"
 * (the job was just accepted, whatever its work has started on) unless it
 * has already ended. */
int px_task_accepted_json(px_task *t, const char *id, px_buf *out);

/* What a follower of the task needs (the event stream): the jobs-API
 * status name, the queue position (1 = next; 0 = not queued), the engine's
 * last step report, how many step changes it has reported (ticks, see
 * px_task_ticks) and whether the task has ended. */
typedef struct px_task_progress {
    const char *status; /* static */
    int position;
    int step, steps;
    int ticks;
    int ended;
} px_task_progress;

void px_task_progress_get(px_task *t, px_task_progress *p);

/* Step reports a task keeps for followers that read late. */
#define PX_TASK_TICK_LOG 128

/*
 * The task's step reports from tick `from` on (0 = its first; each change
 * of step, in order across the request's images), at most max of them into
 * step[] and steps[]. *first is the tick of the first one returned: later
 * than `from` when older ones have left the log (PX_TASK_TICK_LOG). Returns
 * how many.
 */
int px_task_ticks(px_task *t, int from, int *first, int *step, int *steps, int max);

/*
 * Watches the task: fn(arg) runs after every change a client may follow
 * (stage, start on the device, each engine step, the end), on the thread
 * that made it and never under the task's lock; returning non-zero stops
 * the watch. After the task ends (and fn has run for that), or when fn
 * stops it, release(arg) runs once. Returns 0, PX_EINVAL if the task has
 * already ended (nothing registered), PX_EBUSY if it has
 * PX_TASK_MAX_WATCHERS watchers.
 */
#define PX_TASK_MAX_WATCHERS 8
typedef int (*px_task_watch_fn)(void *arg);
int px_task_watch(px_task *t, px_task_watch_fn fn, void (*release)(void *arg), void *arg);

/* Whether the task has ended, and if so whether it succeeded. */
int px_task_ended(px_task *t, int *ok);

/*
 * Result k of a task that ended done (the jobs API's /result?index=k):
 * its bytes (owned by the task) and media type. Returns 0, PX_EINVAL if
 * the task has not ended done, or PX_ENOTFOUND past the last result.
 */
int px_task_result(px_task *t, int index, const uint8_t **data, size_t *len,
                   const char **content_type);

/* Whether the task's kind keeps its results apart from the reply (a
 * px_kind.result hook): then results are served through px_task_result. */
int px_task_has_results(const px_task *t);

/* ---- for kinds (kind.h hooks get the task in px_kind_ctx) */

/* The stage times so far (px_task_timings is in kind.h). */
void px_task_timings_get(px_task *t, px_task_timings *tm);

/* Records a stage's duration measured by the kind (PX_STAGE_DECODE: the
 * part of prepare, PX_STAGE_ENCODE: the part of finish that the stage
 * names); without it the whole hook's time is used. Also observed in the
 * stage histogram. */
void px_task_note_stage(px_task *t, enum px_stage stage, int64_t ns);

/* Records the time spent storing the result (outputs/). */
void px_task_note_save(px_task *t, int64_t ns);

typedef struct px_tasks_stats {
    px_sched_stats sched;
    int pending[PX_PRIO_COUNT]; /* admitted tasks not yet ended, per priority */
    int tasks;                  /* tasks alive (any stage) */
    int cpu_queued, cpu_running;
    int workers; /* device workers, all engines */
} px_tasks_stats;

void px_tasks_stats_get(px_tasks *p, px_tasks_stats *s);

#endif
