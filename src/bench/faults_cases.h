/*
 * faults_cases.h — the fault catalogue: the cases in the order they run,
 * each a name, what it sends, what the service should answer, and the
 * function that sends it and judges the answer. Internal to the fault
 * suite (faults.c runs them).
 */
#ifndef PB_FAULTS_CASES_H
#define PB_FAULTS_CASES_H

#include "bench/faults.h"
#include "bench/payload.h"
#include "core/buf.h"

/* What every case works with: the settings, the run so far, a small valid
 * pair (PNG and JPEG) and the largest size, with their JSON bodies. */
typedef struct pb_fault_ctx {
    const pb_faults_config *c;
    pb_faults_run *run;
    pb_payload small, small_jpeg, big;
    px_buf small_body, big_body;
} pb_fault_ctx;

typedef struct pb_fault_case {
    const char *name, *what, *expect;
    void (*run)(pb_fault_ctx *x, pb_fault_result *r);
} pb_fault_case;

extern const pb_fault_case pb_fault_cases[];
extern const int pb_fault_ncases;

/* Sets r's verdict and why (printf-style); a later, worse verdict replaces
 * a better one, never the other way. */
void pb_fault_verdict(pb_fault_result *r, enum pb_fault_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
