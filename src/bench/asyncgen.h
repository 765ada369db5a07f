/*
 * asyncgen.h — pixbench's async text-to-image mode (--async): each user
 * submits a job to POST /api/v1/generate_async, follows it to its end
 * through the job's event stream (Server-Sent Events) or by polling
 * GET /api/v1/jobs/{id} (--poll DUR), and submits the next. Measured apart:
 * the submission's latency, the queue wait, the run time and the end to end
 * time (submission sent to the ending event seen). Queue wait and run time
 * come from the server's own clock when the job says created_ms, started_ms
 * and finished_ms, else from what the client saw (the first "running"
 * status); the report says which.
 *
 * Blocking sockets, a thread per user: jobs last seconds, so the event loop
 * of the synchronous mode would buy nothing here.
 */
#ifndef PB_ASYNCGEN_H
#define PB_ASYNCGEN_H

#include "bench/loop.h"
#include "bench/scenario.h"
#include "core/hist.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

typedef struct pb_async_config {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *host_header;  /* "127.0.0.1:7860" */
    const char *prefix;       /* the target URL's path prefix ("" none) */
    const pb_request *reqs;   /* prepared submissions (to generate_async), one chosen per job */
    int nreqs;
    double loads[PB_MAX_STAGES]; /* users per stage */
    int nstages;
    int64_t warmup_ns, stage_ns, timeout_ns; /* timeout: per job, submission to end */
    int64_t poll_ns;          /* 0: follow the event stream; else poll every poll_ns */
    volatile sig_atomic_t *interrupted;
    int progress;             /* a line per stage to stderr */
} pb_async_config;

typedef struct pb_async_stage {
    double users, measured_s;
    uint64_t done, failed, submit_failed, timed_out, lost; /* lost: the stream/poll broke */
    uint64_t server_clock;    /* done jobs whose queue/run came from the server's times */
    px_hist submit, queue, run, e2e; /* ns, of done jobs */
    char last_error[200];
} pb_async_stage;

/* Runs every stage. out holds at least c->nstages (large: allocate it);
 * *nout is how many ran. Returns 0 (also when interrupted) or PX_EIO with a
 * message when no thread could start. */
int pb_async_run(const pb_async_config *c, pb_async_stage *out, int *nout, char *err, size_t errlen);

/* The table (Markdown). */
void pb_async_print(FILE *f, const pb_async_stage *s, int n, int poll);

/* report.md (setup lines given by the caller's title and target) and
 * async.json (schema "pixbench-async/1") into dir. Returns 0 or PX_EIO. */
int pb_async_write(const char *dir, const char *title, const char *cmdline, const char *target,
                   const pb_async_stage *s, int n, int poll, char *err, size_t errlen);

#endif
