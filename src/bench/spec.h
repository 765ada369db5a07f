/*
 * spec.h — parsers for the values people type on pixbench's command line:
 * durations ("250us", "15s", "5m", "1h30m"), ranges ("1s-3s",
 * "0.15-0.30", "15-30%"), lists ("1,5,10"), image sizes ("640x480") and
 * delay distributions for the test server ("uniform:10ms:50ms").
 * Every parser returns 0 or PX_EINVAL with a message naming the bad text.
 */
#ifndef PB_SPEC_H
#define PB_SPEC_H

#include "core/rng.h"

#include <stddef.h>
#include <stdint.h>

#define PB_VERSION "0.1.0"

/* "1.5s", "250ms", "20us", "100ns", "5m", "2h", "1h30m"; a bare number is
 * seconds. Result in nanoseconds (>= 0). */
int pb_parse_duration(const char *s, int64_t *ns, char *err, size_t errlen);

/* "a-b" of durations (or one duration: a == b). */
int pb_parse_duration_range(const char *s, int64_t *lo, int64_t *hi, char *err, size_t errlen);

/* "0.15-0.30", "15-30%", "0.2" or "20%": fractions in [0, 1], lo <= hi. */
int pb_parse_fraction_range(const char *s, double *lo, double *hi, char *err, size_t errlen);

/* A non-negative number with an optional "%" (then divided by 100). */
int pb_parse_fraction(const char *s, double *v, char *err, size_t errlen);

/* Comma-separated positive numbers, at most max of them. */
int pb_parse_list(const char *s, double *out, int max, int *n, char *err, size_t errlen);

/* "WxH" with both sides in [1, 16384]. */
int pb_parse_size(const char *s, int *w, int *h, char *err, size_t errlen);

/* The seed reports' image classes: "small" 640x480, "medium" 1280x960,
 * "large" 2560x1920. Returns 0 and the size, or -1 for any other name. */
int pb_size_preset(const char *name, int *w, int *h);

/* "64M", "512K", "2G" (powers of 1024) or a plain number of bytes. */
int pb_parse_bytes(const char *s, int64_t *bytes, char *err, size_t errlen);

/* Formats ns for people: "850us", "12.3ms", "1.52s", "2m05s". */
void pb_fmt_duration(int64_t ns, char *out, size_t cap);

/* A latency distribution (of the test server's injected delays). */
enum pb_delay_kind { PB_DELAY_FIXED, PB_DELAY_UNIFORM, PB_DELAY_EXP, PB_DELAY_BIMODAL };

typedef struct pb_delay {
    enum pb_delay_kind kind;
    int64_t a, b; /* fixed: a; uniform: [a, b]; exp: mean a; bimodal: a, or b with prob p */
    double p;
} pb_delay;

/* "0", "10ms", "uniform:10ms:50ms", "exp:20ms", "bimodal:10ms:200ms:0.05". */
int pb_parse_delay(const char *s, pb_delay *d, char *err, size_t errlen);

/* Draws one delay in ns. */
int64_t pb_delay_draw(const pb_delay *d, px_rng *r);

#endif
