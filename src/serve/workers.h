/*
 * workers.h — the CPU pool: units of work (px_work), a bounded FIFO queue
 * and the worker threads that run them, with deadlines and cancellation.
 * ("Job" is the async jobs API's word, and "task" a request's whole life;
 * a px_work is one step of a task run on this pool: parse, prepare, finish.)
 *
 * A work item wraps a work function and its context. Submitting puts it on the
 * queue or fails at once with PX_EBUSY when the queue is full (the caller
 * answers 429). Each work item ends exactly once in a final state — done (with the
 * work's return code), timed out, or cancelled — and its notify callback runs
 * then, on whichever thread decided it. A work item whose deadline passes while it
 * runs is answered as timed out immediately; its cancel flag is raised so the
 * work stops at its next check, and whatever it produces is discarded.
 *
 * Work items are reference counted: the submitter holds one reference, the pool
 * holds one while the work item is queued or running; the context is freed with the
 * last reference, so late-finishing work never writes into freed memory.
 */
#ifndef PX_SERVE_WORKERS_H
#define PX_SERVE_WORKERS_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct px_work px_work;
typedef struct px_workers px_workers;

/* The work: runs on a worker thread, should poll *cancel, returns 0 or PX_E*. */
typedef int (*px_work_fn)(void *ctx, const atomic_int *cancel);

/* Final-state callback; must not block for long nor call back into the pool
 * with the same work item. */
typedef void (*px_work_notify_fn)(px_work *wk, void *arg);

enum px_work_state {
    PX_WORK_NEW,       /* created, not submitted */
    PX_WORK_QUEUED,
    PX_WORK_RUNNING,
    PX_WORK_DONE,      /* the work returned; px_work_result() is its code */
    PX_WORK_TIMEDOUT,  /* deadline passed while queued or running */
    PX_WORK_CANCELLED
};

/*
 * Creates a work item with one reference (the caller's). ctx is freed with
 * ctx_free (may be NULL) when the last reference goes. deadline_ns is on the
 * px_now_ns() clock; 0 means none. Never returns NULL (aborts on OOM).
 */
px_work *px_work_new(px_work_fn fn, void *ctx, void (*ctx_free)(void *), int64_t deadline_ns,
                   px_work_notify_fn notify, void *notify_arg);

void px_work_ref(px_work *wk);
void px_work_unref(px_work *wk);

void *px_work_ctx(const px_work *wk);
enum px_work_state px_work_state(const px_work *wk);

/* Final code: the work's return for DONE, PX_ETIMEDOUT, PX_ECANCELED, or 0
 * while not final. */
int px_work_result(const px_work *wk);

/* Nanoseconds spent queued, and running (so far, or until the final state). */
int64_t px_work_queue_ns(const px_work *wk);
int64_t px_work_run_ns(const px_work *wk);

typedef struct px_workers_stats {
    int workers;
    int queue_capacity;
    int queued;
    int running;        /* work items whose work is executing (timed-out ones included) */
    uint64_t submitted, rejected, completed, timed_out, cancelled;
    double mean_service_ms; /* moving average of the work's run time */
} px_workers_stats;

/* Starts nworkers threads (>= 1) over a queue of queue_cap (>= 0) slots.
 * NULL if threads cannot be created. */
px_workers *px_workers_create(int nworkers, int queue_cap);

/*
 * Queues the work item (taking the pool's reference). Returns 0, PX_EBUSY if the
 * queue is full, PX_ECANCELED if the pool is draining. On failure the work item is
 * untouched and its notify is not called.
 */
int px_workers_submit(px_workers *w, px_work *wk);

/* Queues the work item ahead of all others and past the capacity: for work that
 * completes requests already admitted (and frees what they hold), which must
 * never be refused. Accepted while draining. Returns 0, or PX_ECANCELED once
 * the pool is being destroyed. */
int px_workers_submit_urgent(px_workers *w, px_work *wk);

/* Cancels a queued or running work item (the notify runs with CANCELLED). Returns 0,
 * or PX_EINVAL if the work item had already reached a final state. */
int px_workers_cancel(px_workers *w, px_work *wk);

void px_workers_stats_get(px_workers *w, px_workers_stats *s);

/* Seconds a client refused with 429 should wait: the time the queue ahead
 * needs at the measured service rate, at least 1. */
int px_workers_retry_after_s(px_workers *w);

/* Stops accepting work items and waits until the queued and running ones finish. */
void px_workers_drain(px_workers *w);

/* Drains, then joins the threads and frees the pool. */
void px_workers_destroy(px_workers *w);

#endif
