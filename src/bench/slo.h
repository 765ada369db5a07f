/*
 * slo.h — service-level objectives checked per stage, for CI:
 * `--slo 'p95<500ms,errors<1%'`. Metrics: mean, p50, p90, p95, p99, p999,
 * max (durations), errors (error rate, "1%" or 0.01), qps (successes/s).
 * Operators: <, <=, >, >=.
 */
#ifndef PB_SLO_H
#define PB_SLO_H

#include <stddef.h>

#define PB_SLO_MAX 16

typedef struct pb_slo_term {
    char metric[8];
    char op[3];
    double value; /* ms for durations, fraction for errors, per second for qps */
    char text[48]; /* as typed */
} pb_slo_term;

typedef struct pb_slo {
    pb_slo_term t[PB_SLO_MAX];
    int n;
} pb_slo;

/* Parses a comma-separated SLO list. Returns 0 or PX_EINVAL with a message. */
int pb_slo_parse(const char *spec, pb_slo *out, char *err, size_t errlen);

/* The value of a metric for one stage, from its numbers. */
typedef struct pb_slo_values {
    double mean, p50, p90, p95, p99, p999, max; /* ms */
    double errors, qps;
} pb_slo_values;

/* Checks every term; returns the number broken and writes a description of
 * them ("p95 612.0ms >= 500ms; ...") into why. */
int pb_slo_check(const pb_slo *s, const pb_slo_values *v, char *why, size_t cap);

#endif
