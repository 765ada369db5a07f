/*
 * stats.h — what pixbench counts: per-thread accumulators (latency
 * histogram, outcomes by error class, bytes, server stage timings) that
 * merge into per-stage and per-second results.
 */
#ifndef PB_STATS_H
#define PB_STATS_H

#include "core/hist.h"

#include <stdint.h>

/* How a request failed. `dropped` is the open loop's: the request waited
 * for a free connection longer than --max-wait and was never sent. */
enum pb_err_class {
    PB_ERR_CONNECT,
    PB_ERR_READ,    /* receive failed, peer closed early, malformed response */
    PB_ERR_WRITE,
    PB_ERR_TIMEOUT, /* no complete response within --timeout */
    PB_ERR_STATUS,  /* a status outside the expected range */
    PB_ERR_CHECK,   /* the response check failed (type, decode, size) */
    PB_ERR_DROPPED,
    PB_ERR_N
};

#define PB_ST_MAX 8 /* distinct Server-Timing names kept per stage */

typedef struct pb_acc {
    px_hist lat;    /* latency of successful requests, ns */
    uint64_t ok;    /* successes */
    uint64_t err[PB_ERR_N];
    uint64_t late;  /* open loop: sent later than intended + --late */
    uint64_t bytes_in, bytes_out;
    int nst;
    char st_name[PB_ST_MAX][24];
    px_hist *st[PB_ST_MAX]; /* Server-Timing durations in ns (owned, lazily made) */
    uint64_t st_missing;    /* successes without a Server-Timing header */
    int fail_status;        /* the status every `status` error had (0: none, or several) */
    int fail_status_mixed;  /* `status` errors came with more than one status */
} pb_acc;

void pb_acc_init(pb_acc *a);
void pb_acc_free(pb_acc *a);
void pb_acc_reset(pb_acc *a);
/* Adds src into dst (Server-Timing names matched by name; at most
 * PB_ST_MAX kept). */
void pb_acc_merge(pb_acc *dst, const pb_acc *src);

/* Notes the status of a `status` error, so a stage whose failures all
 * share one status can say which (a wrong path is a run of 404s). */
void pb_acc_note_status(pb_acc *a, int status);

/* Requests finished (successes + every error class). */
uint64_t pb_acc_requests(const pb_acc *a);
uint64_t pb_acc_errors(const pb_acc *a);

/* Parses a Server-Timing value ("queue;dur=0.1, infer;desc=x;dur=12") and
 * records each named duration (ms → ns). Returns the number recorded. */
int pb_acc_server_timing(pb_acc *a, const char *value);

/* "connect", "read", ... */
const char *pb_err_class_name(int c);

#endif
