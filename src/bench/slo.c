/*
 * slo.c — SLO parsing and checking (see slo.h).
 */
#include "bench/slo.h"

#include "bench/spec.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

static const char *metrics[] = {"mean", "p50", "p90", "p95", "p99", "p999", "max", "errors", "qps"};

int pb_slo_parse(const char *spec, pb_slo *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char buf[512];
    if (!spec || strlen(spec) >= sizeof buf) return px_errf(err, errlen, PX_EINVAL, "bad --slo");
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (out->n == PB_SLO_MAX) return px_errf(err, errlen, PX_EINVAL, "more than %d SLO terms", PB_SLO_MAX);
        pb_slo_term *t = &out->t[out->n];
        snprintf(t->text, sizeof t->text, "%s", tok);
        size_t ml = strcspn(tok, "<>");
        if (ml == 0 || ml >= sizeof t->metric || !tok[ml])
            return px_errf(err, errlen, PX_EINVAL, "bad SLO term '%s' (e.g. p95<500ms, errors<1%%)", tok);
        memcpy(t->metric, tok, ml);
        t->metric[ml] = 0;
        int known = 0;
        for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++) known |= !strcmp(t->metric, metrics[i]);
        if (!known)
            return px_errf(err, errlen, PX_EINVAL,
                           "unknown SLO metric '%s' (mean, p50, p90, p95, p99, p999, max, errors, qps)",
                           t->metric);
        const char *v = tok + ml;
        t->op[0] = *v++;
        if (*v == '=') t->op[1] = *v++;
        int rc;
        if (!strcmp(t->metric, "errors")) {
            rc = pb_parse_fraction(v, &t->value, err, errlen);
        } else if (!strcmp(t->metric, "qps")) {
            rc = pb_parse_fraction(v, &t->value, err, errlen);
        } else {
            int64_t ns;
            rc = pb_parse_duration(v, &ns, err, errlen);
            t->value = (double)ns / 1e6;
        }
        if (rc) return px_errf(err, errlen, PX_EINVAL, "bad SLO value in '%s'", tok);
        out->n++;
    }
    if (!out->n) return px_errf(err, errlen, PX_EINVAL, "empty --slo");
    return 0;
}

static double value_of(const pb_slo_values *v, const char *m)
{
    if (!strcmp(m, "mean")) return v->mean;
    if (!strcmp(m, "p50")) return v->p50;
    if (!strcmp(m, "p90")) return v->p90;
    if (!strcmp(m, "p95")) return v->p95;
    if (!strcmp(m, "p99")) return v->p99;
    if (!strcmp(m, "p999")) return v->p999;
    if (!strcmp(m, "max")) return v->max;
    if (!strcmp(m, "errors")) return v->errors;
    return v->qps;
}

int pb_slo_check(const pb_slo *s, const pb_slo_values *v, char *why, size_t cap)
{
    int broken = 0;
    if (cap) why[0] = 0;
    for (int i = 0; i < s->n; i++) {
        const pb_slo_term *t = &s->t[i];
        double x = value_of(v, t->metric);
        int ok;
        if (!strcmp(t->op, "<")) ok = x < t->value;
        else if (!strcmp(t->op, "<=")) ok = x <= t->value;
        else if (!strcmp(t->op, ">")) ok = x > t->value;
        else ok = x >= t->value;
        if (ok) continue;
        broken++;
        size_t len = strlen(why);
        char got[32];
        if (!strcmp(t->metric, "errors")) snprintf(got, sizeof got, "%.2f%%", 100 * x);
        else if (!strcmp(t->metric, "qps")) snprintf(got, sizeof got, "%.2f/s", x);
        else snprintf(got, sizeof got, "%.1fms", x);
        snprintf(why + len, cap - len, "%s%s was %s (want %s)", len ? "; " : "", t->metric, got, t->text);
    }
    return broken;
}
