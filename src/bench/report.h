/*
 * report.h — pixbench's outputs: the terminal table (as in the seed
 * reports: users | QPS | mean | P95 | P99 | errors), and under --out DIR:
 * report.md, report.json (every number; schema "pixbench/2"), report.html
 * (one self-contained file with SVG charts) and CSV files. Besides the
 * load, they carry what the resource monitor saw per stage (target
 * process, system, GPU; the seeds' resource and efficiency tables) and
 * over time.
 */
#ifndef PB_REPORT_H
#define PB_REPORT_H

#include "bench/analyze.h"
#include "bench/faults.h"

#include <stdio.h>

#define PB_SCHEMA "pixbench/2"

typedef struct pb_report_meta {
    const char *title;
    const char *cmdline;
    const char *target;      /* URL */
    const char *profile;
    const char *payloads;    /* description of what was sent */
    const char *server;      /* the embedded pixserve's banner, or NULL */
    int open_loop, poisson;
    double think_lo_s, think_hi_s, spawn_rate;
    int threads, connections;
    double warmup_s, stage_s, timeout_s, max_wait_s;
    const char *check;
    const char *slo;         /* as typed, or NULL */
    int cpus;
    const char *host, *kernel;
    uint64_t seed;
    /* the resource monitor (monitored 0: it did not run) */
    int monitored;
    double mon_interval_s;
    int mon_pid;             /* the target process, 0: none known */
    const char *gpu_status;  /* "no GPU: ..." or "1 GPU: ..." */
    const char *disk_status;
    int peak_reset;          /* peak RSS per stage from the kernel's reset peak */
} pb_report_meta;

/* The summary table (and verdict lines) for people. */
void pb_report_table(FILE *f, const pb_analysis *a, const pb_report_meta *m);

/* Writes report.md, report.json, report.html, stages.csv, timeseries.csv,
 * histograms.csv and server_timing.csv into dir (created if missing).
 * Returns 0 or PX_EIO with a message. */
int pb_report_write(const char *dir, const pb_run_result *r, const pb_analysis *a,
                    const pb_report_meta *m, char *err, size_t errlen);

/* The fault-injection report: report.md, report.json (schema as above,
 * "kind": "faults"), report.html and faults.csv into dir. Returns 0 or
 * PX_EIO with a message. */
int pb_report_write_faults(const char *dir, const pb_faults_run *f, const pb_faults_config *c,
                           const pb_report_meta *m, char *err, size_t errlen);

/* The verdict table for people (terminal). */
void pb_report_faults_table(FILE *out, const pb_faults_run *f);

#endif
