/*
 * spec.c — command-line value parsers (see spec.h).
 */
#include "bench/spec.h"

#include "core/err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pb_parse_duration(const char *s, int64_t *ns, char *err, size_t errlen)
{
    const char *p = s;
    double total = 0;
    int parts = 0;
    if (!s || !*s) return px_errf(err, errlen, PX_EINVAL, "empty duration");
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !(v >= 0) || isinf(v))
            return px_errf(err, errlen, PX_EINVAL, "bad duration '%s' (e.g. 500ms, 15s, 5m)", s);
        p = end;
        double unit = 1e9;
        if (!strncmp(p, "ns", 2)) unit = 1, p += 2;
        else if (!strncmp(p, "us", 2)) unit = 1e3, p += 2;
        else if (!strncmp(p, "ms", 2)) unit = 1e6, p += 2;
        else if (*p == 's') unit = 1e9, p += 1;
        else if (*p == 'm') unit = 60e9, p += 1;
        else if (*p == 'h') unit = 3600e9, p += 1;
        else if (*p && parts == 0)
            return px_errf(err, errlen, PX_EINVAL, "bad duration '%s' (e.g. 500ms, 15s, 5m)", s);
        total += v * unit;
        parts++;
    }
    if (total > 365 * 86400e9) return px_errf(err, errlen, PX_EINVAL, "duration '%s' too long", s);
    *ns = (int64_t)llround(total);
    return 0;
}

/* Splits "a-b" at the '-' that separates two values (not an exponent's). */
static const char *range_dash(const char *s)
{
    for (const char *p = s + 1; *p; p++)
        if (*p == '-' && p[-1] != 'e' && p[-1] != 'E') return p;
    return NULL;
}

int pb_parse_duration_range(const char *s, int64_t *lo, int64_t *hi, char *err, size_t errlen)
{
    const char *dash = s ? range_dash(s) : NULL;
    if (!dash) {
        int rc = pb_parse_duration(s, lo, err, errlen);
        *hi = *lo;
        return rc;
    }
    char a[64];
    size_t n = (size_t)(dash - s);
    if (n >= sizeof a) return px_errf(err, errlen, PX_EINVAL, "bad range '%s'", s);
    memcpy(a, s, n);
    a[n] = 0;
    int rc = pb_parse_duration(a, lo, err, errlen);
    if (!rc) rc = pb_parse_duration(dash + 1, hi, err, errlen);
    if (!rc && *hi < *lo) rc = px_errf(err, errlen, PX_EINVAL, "range '%s' ends before it starts", s);
    return rc;
}

int pb_parse_fraction(const char *s, double *v, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    double x = s ? strtod(s, &end) : 0;
    if (!s || end == s || errno || !(x >= 0) || isinf(x))
        return px_errf(err, errlen, PX_EINVAL, "bad number '%s'", s ? s : "");
    if (*end == '%') x /= 100, end++;
    if (*end) return px_errf(err, errlen, PX_EINVAL, "bad number '%s'", s);
    *v = x;
    return 0;
}

int pb_parse_fraction_range(const char *s, double *lo, double *hi, char *err, size_t errlen)
{
    if (!s || !*s) return px_errf(err, errlen, PX_EINVAL, "empty range");
    int pct = s[strlen(s) - 1] == '%';
    const char *dash = range_dash(s);
    char a[64], b[64];
    if (dash) {
        size_t n = (size_t)(dash - s);
        if (n >= sizeof a || strlen(dash + 1) >= sizeof b)
            return px_errf(err, errlen, PX_EINVAL, "bad range '%s'", s);
        memcpy(a, s, n);
        a[n] = 0;
        snprintf(b, sizeof b, "%s", dash + 1);
        /* "15-30%": the % applies to both ends */
        if (pct && a[n - 1] != '%' && n + 1 < sizeof a) strcat(a, "%");
    } else {
        snprintf(a, sizeof a, "%s", s);
        snprintf(b, sizeof b, "%s", s);
    }
    int rc = pb_parse_fraction(a, lo, err, errlen);
    if (!rc) rc = pb_parse_fraction(b, hi, err, errlen);
    if (rc) return px_errf(err, errlen, PX_EINVAL, "bad range '%s' (e.g. 0.15-0.30 or 15-30%%)", s);
    if (*lo > *hi || *hi > 1)
        return px_errf(err, errlen, PX_EINVAL, "range '%s' must be within 0..1 (or 0..100%%)", s);
    return 0;
}

int pb_parse_list(const char *s, double *out, int max, int *n, char *err, size_t errlen)
{
    *n = 0;
    const char *p = s;
    if (!s || !*s) return px_errf(err, errlen, PX_EINVAL, "empty list");
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !(v > 0) || isinf(v) || (*end && *end != ','))
            return px_errf(err, errlen, PX_EINVAL, "bad list '%s' (positive numbers, e.g. 1,5,10)", s);
        if (*n == max) return px_errf(err, errlen, PX_EINVAL, "list '%s' has more than %d values", s, max);
        out[(*n)++] = v;
        p = *end ? end + 1 : end;
    }
    return 0;
}

int pb_parse_size(const char *s, int *w, int *h, char *err, size_t errlen)
{
    char x;
    int a, b, k = 0;
    if (!s || sscanf(s, "%d%c%d%n", &a, &x, &b, &k) != 3 || (x != 'x' && x != 'X') || s[k] ||
        a < 1 || b < 1 || a > 16384 || b > 16384)
        return px_errf(err, errlen, PX_EINVAL, "bad size '%s' (WxH, e.g. 640x480)", s ? s : "");
    *w = a;
    *h = b;
    return 0;
}

int pb_parse_bytes(const char *s, int64_t *bytes, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : -1;
    if (!s || end == s || errno || !(v > 0)) return px_errf(err, errlen, PX_EINVAL, "bad size '%s' (e.g. 64M)", s ? s : "");
    double mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1024, end++;
    else if (*end == 'M' || *end == 'm') mul = 1048576, end++;
    else if (*end == 'G' || *end == 'g') mul = 1073741824, end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end || v * mul > 9e15) return px_errf(err, errlen, PX_EINVAL, "bad size '%s' (e.g. 64M)", s);
    *bytes = (int64_t)(v * mul);
    return 0;
}

int pb_size_preset(const char *name, int *w, int *h)
{
    static const struct {
        const char *name;
        int w, h;
    } k[] = {{"small", 640, 480}, {"medium", 1280, 960}, {"large", 2560, 1920}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strcmp(name, k[i].name)) {
            *w = k[i].w;
            *h = k[i].h;
            return 0;
        }
    return -1;
}

void pb_fmt_duration(int64_t ns, char *out, size_t cap)
{
    double v = (double)ns;
    if (ns < 1000) snprintf(out, cap, "%lldns", (long long)ns);
    else if (v < 1e6) snprintf(out, cap, "%.0fus", v / 1e3);
    else if (v < 1e8) snprintf(out, cap, "%.1fms", v / 1e6);
    else if (v < 1e9) snprintf(out, cap, "%.0fms", v / 1e6);
    else if (v < 60e9) snprintf(out, cap, "%.2fs", v / 1e9);
    else snprintf(out, cap, "%lldm%02llds", (long long)(ns / 60000000000LL),
                  (long long)((ns / 1000000000LL) % 60));
}

int pb_parse_delay(const char *s, pb_delay *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    char buf[128];
    if (!s || strlen(s) >= sizeof buf) return px_errf(err, errlen, PX_EINVAL, "bad delay");
    snprintf(buf, sizeof buf, "%s", s);
    char *f[5] = {0};
    int nf = 0;
    for (char *save = NULL, *t = strtok_r(buf, ":", &save); t && nf < 5;
         t = strtok_r(NULL, ":", &save))
        f[nf++] = t;
    int rc = 0;
    if (nf == 1) {
        d->kind = PB_DELAY_FIXED;
        rc = pb_parse_duration(f[0], &d->a, err, errlen);
    } else if (!strcmp(f[0], "uniform") && nf == 3) {
        d->kind = PB_DELAY_UNIFORM;
        rc = pb_parse_duration(f[1], &d->a, err, errlen);
        if (!rc) rc = pb_parse_duration(f[2], &d->b, err, errlen);
        if (!rc && d->b < d->a) rc = px_errf(err, errlen, PX_EINVAL, "uniform delay: b < a");
    } else if (!strcmp(f[0], "exp") && nf == 2) {
        d->kind = PB_DELAY_EXP;
        rc = pb_parse_duration(f[1], &d->a, err, errlen);
    } else if (!strcmp(f[0], "bimodal") && nf == 4) {
        d->kind = PB_DELAY_BIMODAL;
        rc = pb_parse_duration(f[1], &d->a, err, errlen);
        if (!rc) rc = pb_parse_duration(f[2], &d->b, err, errlen);
        if (!rc) rc = pb_parse_fraction(f[3], &d->p, err, errlen);
        if (!rc && d->p > 1) rc = px_errf(err, errlen, PX_EINVAL, "bimodal probability above 1");
    } else {
        rc = -1;
    }
    if (rc)
        return px_errf(err, errlen, PX_EINVAL,
                       "bad delay '%s' (e.g. 10ms, uniform:10ms:50ms, exp:20ms, "
                       "bimodal:10ms:200ms:0.05)", s);
    return 0;
}

int64_t pb_delay_draw(const pb_delay *d, px_rng *r)
{
    switch (d->kind) {
    case PB_DELAY_FIXED: return d->a;
    case PB_DELAY_UNIFORM:
        return d->a + (int64_t)((double)(d->b - d->a) * ((double)px_rng_u32(r) / 4294967295.0));
    case PB_DELAY_EXP: {
        double u = ((double)px_rng_u32(r) + 0.5) / 4294967296.0;
        return (int64_t)(-log(u) * (double)d->a);
    }
    case PB_DELAY_BIMODAL: return ((double)px_rng_u32(r) / 4294967296.0) < d->p ? d->b : d->a;
    }
    return 0;
}
