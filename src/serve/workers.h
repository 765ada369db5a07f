/*
 * workers.h — jobs, a bounded FIFO queue and the worker threads that run them,
 * with deadlines and cancellation.
 *
 * A job wraps a work function and its context. Submitting puts it on the
 * queue or fails at once with PX_EBUSY when the queue is full (the caller
 * answers 429). Each job ends exactly once in a final state — done (with the
 * work's return code), timed out, or cancelled — and its notify callback runs
 * then, on whichever thread decided it. A job whose deadline passes while it
 * runs is answered as timed out immediately; its cancel flag is raised so the
 * work stops at its next check, and whatever it produces is discarded.
 *
 * Jobs are reference counted: the submitter holds one reference, the pool
 * holds one while the job is queued or running; the context is freed with the
 * last reference, so late-finishing work never writes into freed memory.
 */
#ifndef PX_SERVE_WORKERS_H
#define PX_SERVE_WORKERS_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct px_job px_job;
typedef struct px_workers px_workers;

/* The work: runs on a worker thread, should poll *cancel, returns 0 or PX_E*. */
typedef int (*px_job_fn)(void *ctx, const atomic_int *cancel);

/* Final-state callback; must not block for long nor call back into the pool
 * with the same job. */
typedef void (*px_job_notify_fn)(px_job *job, void *arg);

enum px_job_state {
    PX_JOB_NEW,       /* created, not submitted */
    PX_JOB_QUEUED,
    PX_JOB_RUNNING,
    PX_JOB_DONE,      /* the work returned; px_job_result() is its code */
    PX_JOB_TIMEDOUT,  /* deadline passed while queued or running */
    PX_JOB_CANCELLED
};

/*
 * Creates a job with one reference (the caller's). ctx is freed with
 * ctx_free (may be NULL) when the last reference goes. deadline_ns is on the
 * px_now_ns() clock; 0 means none. Never returns NULL (aborts on OOM).
 */
px_job *px_job_new(px_job_fn fn, void *ctx, void (*ctx_free)(void *), int64_t deadline_ns,
                   px_job_notify_fn notify, void *notify_arg);

void px_job_ref(px_job *job);
void px_job_unref(px_job *job);

void *px_job_ctx(const px_job *job);
enum px_job_state px_job_state(const px_job *job);

/* Final code: the work's return for DONE, PX_ETIMEDOUT, PX_ECANCELED, or 0
 * while not final. */
int px_job_result(const px_job *job);

/* Nanoseconds spent queued, and running (so far, or until the final state). */
int64_t px_job_queue_ns(const px_job *job);
int64_t px_job_run_ns(const px_job *job);

typedef struct px_workers_stats {
    int workers;
    int queue_capacity;
    int queued;
    int running;        /* jobs whose work is executing (timed-out ones included) */
    uint64_t submitted, rejected, completed, timed_out, cancelled;
    double mean_service_ms; /* moving average of the work's run time */
} px_workers_stats;

/* Starts nworkers threads (>= 1) over a queue of queue_cap (>= 0) slots.
 * NULL if threads cannot be created. */
px_workers *px_workers_create(int nworkers, int queue_cap);

/*
 * Queues the job (taking the pool's reference). Returns 0, PX_EBUSY if the
 * queue is full, PX_ECANCELED if the pool is draining. On failure the job is
 * untouched and its notify is not called.
 */
int px_workers_submit(px_workers *w, px_job *job);

/* Queues the job ahead of all others and past the capacity: for work that
 * completes requests already admitted (and frees what they hold), which must
 * never be refused. Accepted while draining. Returns 0, or PX_ECANCELED once
 * the pool is being destroyed. */
int px_workers_submit_urgent(px_workers *w, px_job *job);

/* Cancels a queued or running job (the notify runs with CANCELLED). Returns 0,
 * or PX_EINVAL if the job had already reached a final state. */
int px_workers_cancel(px_workers *w, px_job *job);

void px_workers_stats_get(px_workers *w, px_workers_stats *s);

/* Seconds a client refused with 429 should wait: the time the queue ahead
 * needs at the measured service rate, at least 1. */
int px_workers_retry_after_s(px_workers *w);

/* Stops accepting jobs and waits until the queued and running ones finish. */
void px_workers_drain(px_workers *w);

/* Drains, then joins the threads and frees the pool. */
void px_workers_destroy(px_workers *w);

#endif
