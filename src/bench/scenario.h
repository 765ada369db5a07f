/*
 * scenario.h — runs the stages of a test on a started load loop: for each
 * stage sets the load (users or rate) and, for a size matrix, the stage's
 * own requests; waits out the warm-up (and the spawn ramp), measures for
 * the stage duration or request count, and records a per-second time
 * series with the client's CPU and the resource monitor's samples (target
 * process, system, GPUs) folded into each second. Prints a live progress
 * line on a TTY.
 */
#ifndef PB_SCENARIO_H
#define PB_SCENARIO_H

#include "bench/loop.h"
#include "bench/monitor.h"
#include "bench/stats.h"

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#define PB_MAX_STAGES 64

typedef struct pb_run_config {
    int open_loop;
    double loads[PB_MAX_STAGES]; /* users or requests/s per stage */
    int nstages;
    int64_t warmup_ns;
    int64_t stage_ns;          /* measured time per stage (0: until stage_requests) */
    uint64_t stage_requests;   /* 0: no bound */
    double spawn_rate;         /* closed loop, users/s (0: at once): the ramp the warm-up waits for */
    int64_t ramp_ns;           /* open loop: rate ramp at each stage start */
    int progress;              /* print the live line to stderr */
    pb_monitor *monitor;       /* opened, not started: pb_run starts it (NULL: no resources) */
    int reset_peak;            /* reset the target's peak RSS at each stage start */
    /* a stage's own requests (a size matrix); NULL: keep the previous ones.
     * Before a stage whose requests change, the previous load is drained
     * so no reply of the old kind lands in the new stage. */
    const pb_request *stage_reqs[PB_MAX_STAGES];
    int stage_nreqs[PB_MAX_STAGES];
    volatile sig_atomic_t *interrupted; /* set by a signal handler: end the run early */
    /* told each stage's measured window, [start, INT64_MAX) when it opens and
     * [start, end) when it closes, so that what is read from the replies
     * counts the same requests as the stage (may be NULL) */
    void (*on_window)(void *ctx, int64_t start_ns, int64_t end_ns);
    void *on_window_ctx;
} pb_run_config;

typedef struct pb_point {
    double t, dt;          /* end of the interval (s from the run's start), its length */
    int stage;
    int measuring;         /* 0: warm-up */
    double load;
    int active;
    uint64_t ok, errors, late;
    double qps, mean_ms, p50_ms, p95_ms, p99_ms, max_ms;
    double cli_cpu, srv_cpu; /* % of one core; srv -1 when unknown */
    double srv_rss_mb;       /* -1 when unknown */
    pb_res res;              /* the monitor's samples that fell in this interval */
} pb_point;

typedef struct pb_stage_result {
    double load;
    double start_s;      /* stage start, s from the run's start */
    double warmup_s;     /* as waited (warm-up or ramp, whichever is longer) */
    double measured_s;
    int complete;        /* ran its whole duration (not interrupted) */
    pb_acc acc;
    char label[48];      /* size matrix: "medium 1280x960" ("" otherwise) */
    double pixels;       /* size matrix: pixels per image (0 otherwise) */
} pb_stage_result;

typedef struct pb_run_result {
    pb_stage_result stages[PB_MAX_STAGES];
    int nstages;
    pb_point *series;
    int npoints, cap;
    int64_t start_wall_ms;
    double duration_s;
    int interrupted;
} pb_run_result;

/* Runs every stage. Returns 0 (also when interrupted: out->interrupted) or
 * PX_ENOMEM. out is owned by the caller: pb_run_result_free. */
int pb_run(pb_loop *loop, const pb_run_config *rc, pb_run_result *out);
void pb_run_result_free(pb_run_result *r);

#endif
