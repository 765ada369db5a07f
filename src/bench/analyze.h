/*
 * analyze.h — from a run's raw results to what the report says: per-stage
 * numbers, stability, the saturation point, the sweet spot, SLO verdicts and
 * only those bottleneck hints the measurements support.
 */
#ifndef PB_ANALYZE_H
#define PB_ANALYZE_H

#include "bench/leak.h"
#include "bench/scenario.h"
#include "bench/slo.h"

typedef struct pb_st_summary {
    char name[24];
    uint64_t count;
    double mean_ms, p50_ms, p95_ms, max_ms;
} pb_st_summary;

typedef struct pb_stage_summary {
    double load, start_s, warmup_s, measured_s;
    int complete;
    uint64_t requests, ok, errors, err[PB_ERR_N], late;
    double qps, error_rate, mean_ms, min_ms, p50_ms, p90_ms, p95_ms, p99_ms, p999_ms, max_ms;
    double mbps_in, mbps_out;
    double cli_cpu, srv_cpu, srv_rss_mb; /* means over the measured seconds; -1 unknown */
    char label[48];         /* size matrix: the stage's image size ("" otherwise) */
    double pixels;          /* size matrix: pixels per image */
    pb_res res;             /* the monitor's samples over the measured seconds (res.n 0: none) */
    double peak_rss_mb;     /* largest RSS: sampled, or the kernel's peak when reset at the stage start; -1 */
    double qps_per_gpu;     /* QPS per percent of mean GPU utilisation (the seed's efficiency); -1 */
    int stable;             /* -1 not checked (or too few windows), 0, 1 */
    double stab_qps_dev, stab_lat_dev; /* largest deviation from the 3 windows' mean */
    int nst;
    pb_st_summary st[PB_ST_MAX];
    uint64_t st_missing;
    int fail_status;        /* every error was a `status` one with this status (0 otherwise) */
    int slo_broken;         /* terms broken (0 also when there is no SLO) */
    char slo_why[256];
} pb_stage_summary;

/* A soak: does memory (RSS, GPU), or the descriptor count, keep growing
 * after the warm-up, and does latency drift from the start to the end? */
typedef struct pb_soak {
    int on;
    double from_s;           /* the measured part starts here (s from the run's start) */
    pb_leak_result rss, gpu, fds;
    int have_gpu;            /* some GPU memory was read */
    int gpu_is_process;      /* the target's own GPU memory (else the devices' used memory) */
    pb_drift drift;
    int leak;                /* some resource: leak suspected */
} pb_soak;

/* A size matrix: memory and latency against pixels, fitted as a + b x MP
 * (convolution activations grow with the pixel count, so a line in pixels
 * is the model the seed report found: 0.4 MP 4.2 GB .. 6.5 MP 11.6 GB). */
typedef struct pb_sizefit {
    int n;                   /* sizes with a measurement (a fit needs 2, r² means something from 3) */
    int have_rss, have_gpu, gpu_is_process;
    double rss_a, rss_b, rss_r2;   /* peak RSS, MB = a + b x megapixels */
    double gpu_a, gpu_b, gpu_r2;   /* peak GPU memory, MB */
    double lat_a, lat_b, lat_r2;   /* mean latency, ms */
} pb_sizefit;

typedef struct pb_analysis {
    pb_stage_summary s[PB_MAX_STAGES];
    int n;
    int open_loop;
    double err_threshold;   /* sweet spot: error rate below this */
    int saturation;         /* stage index, -1: not reached in the tested range */
    int sweet;              /* stage index, -1: none under the threshold */
    double peak_qps;
    int has_slo, slo_broken_stages;
    int monitored;          /* some stage has resource samples */
    int ngpu;               /* GPUs seen by the monitor */
    int matrix;             /* stages are image sizes at one load, not loads */
    pb_soak soak;
    pb_sizefit sizes;
    char hints[12][512];
    int nhints;
} pb_analysis;

typedef struct pb_analysis_opts {
    int open_loop;
    double err_threshold;   /* default 0.01 */
    double think_mean_s;    /* closed loop, for Little's law */
    int stability;          /* check the last 3 windows of each stage */
    int loopback;           /* target on this machine */
    int cpus;               /* online CPUs here */
    int threads;            /* pixbench threads */
    const pb_slo *slo;      /* may be NULL */
    int peak_reset;         /* the target's peak RSS was reset at each stage start */
    int matrix;             /* a size matrix: no saturation or sweet spot */
    int soak;               /* fit the leak detector over the (one) stage */
    double leak_window_s;   /* its window (0: a 20th of the measured time) */
    int watched_pid;        /* a target process was monitored (else nothing is said of one) */
    const char *path;       /* the request path, for the hint on a stage that only failed */
} pb_analysis_opts;

/* Fills a (which is large: allocate it). Never fails. */
void pb_analyze(const pb_run_result *r, const pb_analysis_opts *o, pb_analysis *a);

#endif
