/*
 * run_args.h — the flags of `pixbench run` (the default subcommand): their
 * help text, their defaults, parsing them into pb_run_opts, and the checks
 * between flags made before anything starts. Kept apart from running the
 * test (cmd_run.c) so what a flag means is read in one place.
 */
#ifndef PB_RUN_ARGS_H
#define PB_RUN_ARGS_H

#include "bench/genrun.h"
#include "bench/profile.h"
#include "bench/scenario.h"
#include "bench/slo.h"
#include "image/codec.h"

#include <stdint.h>
#include <stdio.h>

#define PB_RUN_MAX_SERVER_ARGS 32

typedef struct pb_run_opts {
    const char *target, *pixserve, *out, *title, *slo_text, *images, *sizes;
    const char *server_args[PB_RUN_MAX_SERVER_ARGS];
    int nserver_args;
    int allow_remote, quiet, progress, stability, poisson, open_loop, have_users;
    double loads[PB_MAX_STAGES]; /* users (closed loop) or requests/s (open), one per stage */
    int nloads;
    int payloads;
    double cov_lo, cov_hi;
    enum px_format img_fmt;
    uint64_t seed;
    int64_t think_lo, think_hi, ramp, max_wait, late, duration, warmup, timeout;
    double spawn_rate, err_threshold;
    int connections, threads, status_lo, status_hi;
    uint64_t requests;
    pb_profile_opts prof;
    int pid, no_monitor, no_gpu, have_warmup, size_matrix;
    int64_t mon_interval, soak, leak_window;
    const char *disk, *disk_path;
    pb_gen_opts gen;
    pb_slo slo;      /* parsed from slo_text by pb_run_opts_check */
    double maxload;  /* the largest of loads (pb_run_opts_check) */
} pb_run_opts;

#define PB_RUN_DEFAULT_DURATION_NS 10000000000LL

/* The help text. */
void pb_run_usage(FILE *f);

/* The defaults (progress: stderr is a terminal). */
void pb_run_opts_init(pb_run_opts *o);

/* Parses argv (after the subcommand) into o, which pb_run_opts_init set.
 * Returns 0, 1 when --help was printed (exit 0), or 2 after printing what
 * is wrong (bad usage). The strings stay argv's. */
int pb_run_opts_parse(pb_run_opts *o, int argc, char **argv);

/* The checks between flags and what follows from them (one stage of one
 * user by default, the soak's stage and warm-up, the SLO, the largest
 * load). Returns 0 or 2 after printing what is wrong. */
int pb_run_opts_check(pb_run_opts *o);

#endif
