/*
 * metrics.h — the service's counters and histograms, rendered in the
 * Prometheus text format for GET /metrics.
 *
 * Recording is lock-free (atomic adds), so every request can record without
 * contending; rendering reads the atomics one by one, which is consistent
 * enough for monitoring.
 */
#ifndef PX_SERVE_METRICS_H
#define PX_SERVE_METRICS_H

#include "core/buf.h"
#include "core/nvml.h"
#include "serve/routes.h"

#include <stdint.h>

enum px_stage { PX_STAGE_QUEUE, PX_STAGE_DECODE, PX_STAGE_INFER, PX_STAGE_ENCODE, PX_STAGE_COUNT };

/* Stage name ("queue", "decode", "infer", "encode"). */
const char *px_stage_name(enum px_stage s);

typedef struct px_metrics px_metrics;

#define PX_METRICS_MAX_ENGINES 8
#define PX_METRICS_BATCH_SLOTS 7 /* batch sizes 1, 2, 3-4, 5-8, 9-16, 17-32, 33+ */

/* Gauges the server samples at render time. */
typedef struct px_metrics_gauges {
    int queue_depth, queue_capacity, inflight, workers;
    int pending[3];      /* admitted requests not yet answered: high, normal, low */
    int cpu_queued;      /* requests waiting for the CPU pool */
    int async_jobs;      /* jobs kept by the jobs API */
    int loras;           /* 1 with --lora-dir: the three below are shown */
    int loras_registered, loras_loaded; /* names; LoRAs open on an engine */
    uint64_t lora_loaded_bytes;
    uint64_t batch_hist[PX_METRICS_BATCH_SLOTS];
    uint64_t batches, batch_items, oom_splits;
    uint64_t batch_joins; /* items that joined a running batch */
    const px_gpu_info *gpus; /* NULL or ngpus readings */
    int ngpus;
    double uptime_s;
    uint64_t rss_bytes;
    int open_fds;
    int ready;
} px_metrics_gauges;

/* Never NULL (aborts on OOM). */
px_metrics *px_metrics_new(void);
void px_metrics_free(px_metrics *m);

/* One finished request: its route, HTTP status and total duration. */
void px_metrics_request(px_metrics *m, enum px_route r, int status, double seconds);

/* Request kinds are counted apart (the kind label of the stage histogram
 * and of pixserve_jobs_total). */
#define PX_METRICS_MAX_KINDS 4

/* Names request kind `kind` (0 <= kind < PX_METRICS_MAX_KINDS) and its
 * stage labels (NULL entries, or stage_names NULL: queue, decode, infer,
 * encode). Call before serving. */
void px_metrics_set_kind(px_metrics *m, int kind, const char *name,
                         const char *const stage_names[PX_STAGE_COUNT]);

/* One stage duration of a job of the given kind (an unnamed kind counts
 * as kind 0). */
void px_metrics_stage(px_metrics *m, int kind, enum px_stage s, double seconds);

/* Text-to-image stages (pixserve_generate_stage_seconds{stage}). */
enum { PX_GEN_STAGE_TEXT, PX_GEN_STAGE_DENOISE, PX_GEN_STAGE_VAE, PX_GEN_STAGE_COUNT };

/* One generated image: its stage durations (seconds, by PX_GEN_STAGE_*)
 * and the time of each denoising step (pixserve_generate_step_seconds). */
void px_metrics_generate(px_metrics *m, const double *stage_s, const float *step_ms, int nsteps);

/* One failed request by PX_E* code (counted under its px_err_name). */
void px_metrics_error(px_metrics *m, int code);

/* How a request that became a task ended. */
enum px_outcome {
    PX_OUTCOME_COMPLETED, /* answered with its result */
    PX_OUTCOME_FAILED,    /* bad input or an engine error */
    PX_OUTCOME_TIMEOUT,   /* its deadline passed */
    PX_OUTCOME_CANCELLED, /* DELETE, or the client went away */
    PX_OUTCOME_REJECTED,  /* refused for capacity (429) */
    PX_OUTCOME_COUNT
};

void px_metrics_outcome(px_metrics *m, int kind, enum px_outcome o);

/* Names the engines (index = position) for the per-engine counters. */
void px_metrics_set_engines(px_metrics *m, const char *const *names, int n);

/* One inference request ended on engine `engine` (index): code 0 is a
 * success, anything else a failure counted under its px_err_name. */
void px_metrics_inference(px_metrics *m, int engine, int code);

/* Appends the Prometheus exposition text. Returns 0 or the buffer's error. */
int px_metrics_render(px_metrics *m, const px_metrics_gauges *g, px_buf *out);

/* Requests recorded for a route and status (for tests and /healthz). */
uint64_t px_metrics_request_count(px_metrics *m, enum px_route r, int status);

#endif
