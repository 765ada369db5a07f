/*
 * leak.c — window minima, the line and the step through them (see leak.h).
 *
 * The line and the step are compared on the same minima: a pure step at
 * the middle of the run explains at most 75 % of their spread with a line
 * (r² = 3f(1-f) for a step at fraction f), so with r2_min at 0.8 a step is
 * never mistaken for steady growth; a step that explains the minima as
 * well as a line (half the residual or less) but is followed by more
 * growth is still a leak: the minima after it are fitted again.
 */
#include "bench/leak.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int pb_leak_linfit(const double *x, const double *y, int n, double *slope, double *icept, double *r2)
{
    *slope = *icept = *r2 = 0;
    if (n < 2) return 0;
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= n;
    my /= n;
    double sxx = 0, sxy = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if (sxx <= 0) {
        *icept = my;
        return n;
    }
    *slope = sxy / sxx;
    *icept = my - *slope * mx;
    /* relative to the values' size: a constant series is not a fit of 0/0 */
    *r2 = syy > 1e-18 * (my * my + 1) ? (sxy * sxy) / (sxx * syy) : 0;
    return n;
}

/* The best two-level step through y: split index (first of the second
 * level), the level change, and the fraction of y's spread it explains. */
static void best_step(const double *y, int n, int *at, double *height, double *r2)
{
    double my = 0, sst = 0;
    for (int i = 0; i < n; i++) my += y[i];
    my /= n;
    for (int i = 0; i < n; i++) sst += (y[i] - my) * (y[i] - my);
    *at = 0;
    *height = 0;
    *r2 = 0;
    double best = INFINITY;
    /* at least two minima on each side: one odd window is not a level */
    for (int j = 2; j <= n - 2; j++) {
        double a = 0, b = 0;
        for (int i = 0; i < j; i++) a += y[i];
        for (int i = j; i < n; i++) b += y[i];
        a /= j;
        b /= n - j;
        double sse = 0;
        for (int i = 0; i < n; i++) sse += (y[i] - (i < j ? a : b)) * (y[i] - (i < j ? a : b));
        if (sse < best) {
            best = sse;
            *at = j;
            *height = b - a;
        }
    }
    if (*at && sst > 1e-18 * (my * my + 1)) *r2 = 1 - best / sst;
}

/* For text: no "-0.00". */
static double nz(double x)
{
    return fabs(x) < 0.005 ? 0 : x;
}

/* Each window's minimum after the warm-up, at the time it occurred, into
 * r->win_t/win_min/nwin (empty windows left out) with r->window_s: the
 * option's window, or a 20th of the span, widened so a window holds at
 * least two points. */
static void window_minima(const double *t, const double *v, int n, const pb_leak_opts *o, pb_leak_result *r)
{
    double t0 = INFINITY, t1 = -INFINITY;
    for (int i = 0; i < n; i++)
        if (t[i] >= o->warmup_s && v[i] >= 0) {
            if (t[i] < t0) t0 = t[i];
            if (t[i] > t1) t1 = t[i];
        }
    double span = t1 > t0 ? t1 - t0 : 0;
    double w = o->window_s > 0 ? o->window_s : span / 20;
    /* a window holds at least two points, or jitter in the points' times
     * leaves some windows empty and others with two */
    int npts = 0;
    for (int i = 0; i < n; i++) npts += t[i] >= o->warmup_s && v[i] >= 0;
    if (npts > 1 && w < 2 * span / (npts - 1)) w = 2 * span / (npts - 1);
    if (w > 0 && span / w > PB_LEAK_MAX_WIN) w = span / PB_LEAK_MAX_WIN;
    r->window_s = w;
    /* each window's minimum, at the time it occurred */
    if (w > 0 && isfinite(t0)) {
        int nw = (int)floor(span / w) + 1;
        if (nw > PB_LEAK_MAX_WIN) nw = PB_LEAK_MAX_WIN;
        for (int k = 0; k < nw; k++) r->win_min[k] = -1;
        for (int i = 0; i < n; i++) {
            if (t[i] < o->warmup_s || v[i] < 0) continue;
            int k = (int)((t[i] - t0) / w);
            if (k >= nw) k = nw - 1;
            if (r->win_min[k] < 0 || v[i] < r->win_min[k]) {
                r->win_min[k] = v[i];
                r->win_t[k] = t[i];
            }
        }
        /* the last window may be a sliver: fold it into the previous one */
        if (nw >= 2 && t1 - (t0 + (nw - 1) * w) < w / 2 && r->win_min[nw - 1] >= 0) {
            if (r->win_min[nw - 2] < 0 || r->win_min[nw - 1] < r->win_min[nw - 2]) {
                r->win_min[nw - 2] = r->win_min[nw - 1];
                r->win_t[nw - 2] = r->win_t[nw - 1];
            }
            nw--;
        }
        for (int k = 0; k < nw; k++)
            if (r->win_min[k] >= 0) {
                r->win_min[r->nwin] = r->win_min[k];
                r->win_t[r->nwin++] = r->win_t[k];
            }
    }
}

void pb_leak_fit(const double *t, const double *v, int n, const pb_leak_opts *o, const char *unit,
                 pb_leak_result *r)
{
    memset(r, 0, sizeof *r);
    double r2_min = o->r2_min > 0 ? o->r2_min : 0.8;
    window_minima(t, v, n, o, r);
    if (r->nwin < PB_LEAK_MIN_WIN) {
        r->verdict = PB_LEAK_TOO_SHORT;
        snprintf(r->text, sizeof r->text, "too short to tell (%d window%s after warm-up; %d needed)", r->nwin,
                 r->nwin == 1 ? "" : "s", PB_LEAK_MIN_WIN);
        return;
    }
    double slope;
    pb_leak_linfit(r->win_t, r->win_min, r->nwin, &slope, &r->intercept, &r->r2);
    r->slope_per_h = slope * 3600;
    r->span_s = r->win_t[r->nwin - 1] - r->win_t[0];
    r->rise = slope * r->span_s;
    int at;
    best_step(r->win_min, r->nwin, &at, &r->step_height, &r->step_r2);
    /* between the last minimum of the old level and the first of the new */
    r->step_at_s = at ? (r->win_t[at - 1] + r->win_t[at]) / 2 : 0;
    /* after the step: is there more growth? */
    int na = r->nwin - at;
    if (at && na >= 3) {
        double s2, i2;
        pb_leak_linfit(r->win_t + at, r->win_min + at, na, &s2, &i2, &r->after_r2);
        r->after_slope_per_h = s2 * 3600;
    }
    double sse_line = 1 - r->r2, sse_step = 1 - r->step_r2; /* as fractions of the spread */
    int stepped = r->step_r2 >= r2_min && sse_step <= 0.5 * sse_line && fabs(r->step_height) >= o->min_rise;
    int after_grows = stepped && na >= 3 && r->after_r2 >= r2_min &&
                      r->after_slope_per_h / 3600 * (r->win_t[r->nwin - 1] - r->win_t[at]) >= o->min_rise;
    if (r->r2 >= r2_min && r->rise >= o->min_rise && r->rise > 0 && (!stepped || after_grows)) {
        r->verdict = PB_LEAK_SUSPECTED;
        snprintf(r->text, sizeof r->text, "leak suspected: grows %.2f %s/h (r\xc2\xb2 %.2f, +%.1f %s over %.2f h of window minima)",
                 nz(after_grows ? r->after_slope_per_h : r->slope_per_h), unit, after_grows ? r->after_r2 : r->r2,
                 r->rise, unit, r->span_s / 3600);
    } else if (stepped && r->step_height > 0) {
        r->verdict = PB_LEAK_STEP;
        snprintf(r->text, sizeof r->text,
                 "no leak detected (slope %.2f %s/h, r\xc2\xb2 %.2f after a one-time step of +%.1f %s at %.0f s)",
                 nz(r->after_slope_per_h), unit, r->after_r2, r->step_height, unit, r->step_at_s);
    } else {
        r->verdict = PB_LEAK_NONE;
        snprintf(r->text, sizeof r->text, "no leak detected (slope %.2f %s/h, r\xc2\xb2 %.2f)", nz(r->slope_per_h), unit,
                 r->r2);
    }
}

void pb_leak_drift(const double *t, const double *mean_ms, const double *ok, int n, double warmup_s,
                   double frac, double threshold, pb_drift *d)
{
    memset(d, 0, sizeof *d);
    d->first_ms = d->last_ms = -1;
    int a = -1, b = -1;
    for (int i = 0; i < n; i++)
        if (t[i] >= warmup_s) {
            if (a < 0) a = i;
            b = i;
        }
    if (a < 0) {
        snprintf(d->text, sizeof d->text, "latency drift: no measured points");
        return;
    }
    double span = t[b] - t[a], part = span * (frac > 0 ? frac : 0.1);
    double sf = 0, wf = 0, sl = 0, wl = 0;
    for (int i = a; i <= b; i++) {
        int first = t[i] <= t[a] + part || i == a, last = t[i] >= t[b] - part || i == b;
        if (ok[i] <= 0 || mean_ms[i] < 0) continue;
        if (first) sf += mean_ms[i] * ok[i], wf += ok[i];
        if (last) sl += mean_ms[i] * ok[i], wl += ok[i];
    }
    d->first_s = d->last_s = part;
    if (wf > 0) d->first_ms = sf / wf;
    if (wl > 0) d->last_ms = sl / wl;
    if (d->first_ms <= 0 || d->last_ms < 0) {
        snprintf(d->text, sizeof d->text, "latency drift: unknown (no successful request at the start or the end)");
        return;
    }
    d->change = d->last_ms / d->first_ms - 1;
    d->flagged = fabs(d->change) > threshold;
    snprintf(d->text, sizeof d->text, "latency %s %+.1f%% (first %.0f s: %.1f ms mean, last %.0f s: %.1f ms)",
             d->flagged ? (d->change > 0 ? "degraded" : "improved") : "stable,", 100 * d->change, part,
             d->first_ms, part, d->last_ms);
}
