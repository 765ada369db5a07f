/*
 * sched.h — the device scheduler: per-engine queues by priority, a dynamic
 * batcher, the memory guard, and device workers that run the batches.
 *
 * An item is one engine input, opaque to the scheduler: a payload, the
 * request kind's run adapter that turns a batch of payloads into an engine
 * call, a batch key the kind computed, and the shape the engine's memory
 * estimate is asked about. Items of one engine, run adapter and key are
 * batched together (engines with PX_ENGINE_CAP_BATCH), up to max_batch
 * items and as many as the engine's memory estimate lets fit in its
 * device's free memory. A batch leaves the queue when it is full, or when
 * its oldest item has waited max_delay, or at once when nothing else is
 * queued that could join it. If the engine still reports out-of-memory,
 * the batch is split in halves and retried; a single item that cannot fit
 * fails with PX_ENOMEM. Items are cancellable in every state; expired items
 * are dropped before they run and checked again when their batch returns.
 *
 * Continuous batching: on engines with PX_ENGINE_CAP_JOIN (config.join,
 * on by default) items that carry a run_join adapter run as a batch that
 * others of their key join between the engine's steps (px_sched_join, as
 * long as max_batch and the memory guard allow and no item of another key
 * has waited max_delay at the head of the lane), and each item completes
 * when its own steps are done (px_sched_finish), not when the batch does.
 *
 * Memory in use and the service rate (engine time per item, behind
 * Retry-After) are kept per device and per engine: a 2 s generation and a
 * 50 ms inpainting do not share one estimate.
 *
 * Items are owned by the caller; the scheduler links them into its queues,
 * pushes events to the owner (started, progress) and calls item->done
 * exactly once per submitted item, from a device worker (or from the thread
 * that cancels a queued item). No callback runs under the scheduler's lock.
 */
#ifndef PX_SERVE_SCHED_H
#define PX_SERVE_SCHED_H

#include "engine/engine.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum px_priority { PX_PRIO_HIGH = 0, PX_PRIO_NORMAL = 1, PX_PRIO_LOW = 2, PX_PRIO_COUNT = 3 };

/* "high", "normal", "low". */
const char *px_priority_name(enum px_priority p);

/* Parses those names (case-insensitive); -1 if unknown. */
int px_priority_parse(const char *s);

typedef struct px_sched px_sched;

/* The largest batch any engine is offered, whatever the configuration says. */
#define PX_SCHED_MAX_BATCH 64
typedef struct px_sched_item px_sched_item;

/* Runs a batch of items (same engine, run adapter and key) on engine e and
 * sets each item's status and err. Called by a device worker without the
 * scheduler's lock; items[i]->payload is the kind's input. Adapters wire
 * each engine item's cancel flag to &items[i]->cancel and its progress
 * callback to px_sched_progress with the item as argument. */
typedef void (*px_sched_run_fn)(px_engine *e, px_sched_item *const *items, int n);

/* A running batch that takes joiners (see above). */
typedef struct px_sched_run px_sched_run;

/* The run adapter of joinable items: runs items[0..n) and what joins
 * them through px_sched_join, calling px_sched_finish once for every item
 * (the first n and every joiner) as it ends. */
typedef void (*px_sched_run_join_fn)(px_engine *e, px_sched_item *const *items, int n,
                                     px_sched_run *run);

/* For run_join adapters, between steps: up to max more queued items of
 * the run's key start now (their STARTED events are pushed); returns how
 * many (0: none may join now). Never blocks on the queue. */
int px_sched_join(px_sched_run *run, px_sched_item **items, int max);

/* For run_join adapters: the item is done (its status and err set): its
 * memory and place in the batch are freed and its done runs now. */
void px_sched_finish(px_sched_run *run, px_sched_item *item);

enum px_sched_event {
    PX_SCHED_STARTED,  /* the item's batch starts now (t_started, batch_size set) */
    PX_SCHED_PROGRESS  /* the engine finished step of steps */
};

typedef void (*px_sched_done_fn)(px_sched_item *item, void *arg);
typedef void (*px_sched_event_fn)(px_sched_item *item, enum px_sched_event ev, int step,
                                  int steps, void *arg);

struct px_sched_item {
    /* Set by the caller before px_sched_submit. */
    px_engine *engine;
    void *payload;          /* the kind's engine input */
    px_sched_run_fn run;    /* the kind's run adapter */
    px_sched_run_join_fn run_join; /* NULL, or its continuous-batching form */
    uint64_t key;           /* batch key, computed by the kind: only equal keys batch */
    px_engine_shape shape;  /* for the memory estimate (a bucket's padded size) */
    px_engine_shape own;    /* the item's own size when a batch of items that all
                               have it runs at it, not at shape (inpaint's run
                               adapter); {0} = shape. For px_engine_ready. */
    enum px_priority prio;
    int64_t deadline_ns;   /* 0 = none */
    int64_t arrival_ns;    /* queue order within a priority (FIFO by the request's
                              arrival, whatever order preparation finished in);
                              0 = the time of submission */
    px_sched_done_fn done;
    px_sched_event_fn event; /* may be NULL */
    void *done_arg;          /* for done and event */

    /* Results, valid in the done callback. */
    int status;      /* 0, the engine's error, PX_ECANCELED, PX_ETIMEDOUT, PX_ENOMEM */
    char err[160];
    int batch_size;  /* items in the batch that ran it (0 if it never ran) */
    int64_t t_queued, t_started, t_finished;

    /* Scheduler-private. */
    atomic_int cancel;
    int state;
    int oom_requeued; /* ran out of memory in a joined batch once: requeued */
    px_sched_item *prev, *next;
};

/* The engine progress callback for run adapters (arg = the px_sched_item):
 * pushes a PX_SCHED_PROGRESS event to the item's owner. */
void px_sched_progress(void *item, int step, int steps);

typedef struct px_sched_config {
    int max_batch;          /* >= 1; engines without CAP_BATCH always get 1 */
    int64_t max_delay_ns;   /* how long the oldest item may wait for a fuller batch */
    int workers_per_engine; /* device workers per engine instance, >= 1 */
    int join;               /* continuous batching where the engine can (default 1) */
    size_t mem_limit;       /* bytes usable by running batches per device;
                               0 = ask free_memory */
    size_t mem_reserve;     /* bytes always left free */
    /* Free device memory in bytes; NULL = the engine's device (for CPU
     * engines, MemAvailable of the system). Tests use it to fake a device. */
    size_t (*free_memory)(void *ctx, px_engine *engine);
    void *free_memory_ctx;
} px_sched_config;

/* Fills the defaults: batch 8, delay 5 ms, 1 worker, joins on, reserve
 * 256 MiB. */
void px_sched_defaults(px_sched_config *c);

/* Starts workers for each engine. The engines must outlive the scheduler.
 * NULL if threads cannot be created. */
px_sched *px_sched_create(const px_sched_config *cfg, px_engine *const *engines, int nengines);

/* Whether the engine's lane forms batches of more than one item (the
 * engine batches and max_batch > 1): kinds pick batch keys with it. */
int px_sched_batches(const px_sched *s, const px_engine *e);

/* Queues items (all of one request; same engine, priority and deadline not
 * required). Returns 0, or PX_EINVAL if an item's engine is not scheduled
 * here or it has no run adapter, or PX_ECANCELED when draining; then no
 * item was queued. */
int px_sched_submit(px_sched *s, px_sched_item *const *items, int n);

/* Cancels an item: a queued one is removed and its done runs now (status
 * PX_ECANCELED); a running one has its cancel flag raised (the engine stops
 * at its next check and the item completes with PX_ECANCELED). No-op for an
 * item already done. */
void px_sched_cancel(px_sched *s, px_sched_item *item);

/* Items queued ahead of this one in its engine's lanes (higher priorities
 * first, then FIFO); -1 if it is not queued (start times are pushed to the
 * owner as PX_SCHED_STARTED events, not asked for). */
int px_sched_position(px_sched *s, const px_sched_item *item);

typedef struct px_sched_stats {
    int queued[PX_PRIO_COUNT];
    int running;          /* items in batches on the devices now */
    uint64_t batches, items_run, oom_splits;
    uint64_t joins;       /* items that joined a running batch */
    uint64_t cache_releases; /* engine caches freed for an item that did not fit */
    uint64_t batch_hist[7]; /* batches of size 1, 2, 3-4, 5-8, 9-16, 17-32, 33+ */
    size_t mem_in_use;    /* estimates of the running batches, all devices */
} px_sched_stats;

void px_sched_stats_get(px_sched *s, px_sched_stats *st);

/* One engine's lane and its device. */
typedef struct px_sched_lane_stats {
    int queued[PX_PRIO_COUNT];
    int running;          /* items of this engine on the device now */
    int workers;          /* device workers of this engine */
    double mean_item_ms;  /* engine time per item over its last 32+ items; 0 = none yet */
    size_t mem_in_use;    /* estimates of the running batches on the engine's device */
} px_sched_lane_stats;

/* Returns 0, or PX_EINVAL if the engine is not scheduled here. */
int px_sched_lane_stats_get(px_sched *s, const px_engine *e, px_sched_lane_stats *st);

/* Stops accepting, waits until every queued and running item is done. */
void px_sched_drain(px_sched *s);

/* Drains, then joins the workers and frees. */
void px_sched_destroy(px_sched *s);

#endif
