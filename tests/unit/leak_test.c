/*
 * leak_test.c — the soak verdict on synthetic series: flat with noise,
 * a sawtooth whose peaks wander (no leak), a one-time step (no leak), a
 * slow leak of 12 MB a day over a simulated day under a sawtooth (found,
 * at the right rate), a descriptor leak, warm-up growth excluded, a run
 * too short to tell; the least-squares fit exactly; latency drift.
 */
#include "bench/leak.h"
#include "core/rng.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define N 4000
static double t[N], v[N];

static double noise(px_rng *r, double amp)
{
    return amp * (2.0 * px_rng_float(r) - 1.0);
}

TEST(t_linfit_exact)
{
    double x[5] = {0, 3600, 7200, 10800, 14400}, y[5];
    for (int i = 0; i < 5; i++) y[i] = 2 + 3 * x[i] / 3600;
    double s, b, r2;
    T_EQ_INT(pb_leak_linfit(x, y, 5, &s, &b, &r2), 5);
    T_NEAR(s * 3600, 3, 1e-12);
    T_NEAR(b, 2, 1e-12);
    T_NEAR(r2, 1, 1e-12);
    /* a constant series: no slope, and r² 0 rather than 0/0 */
    for (int i = 0; i < 5; i++) y[i] = 512.0;
    pb_leak_linfit(x, y, 5, &s, &b, &r2);
    T_NEAR(s, 0, 0);
    T_NEAR(r2, 0, 0);
    T_NEAR(b, 512, 1e-12);
    /* y = x with one point off: r² from the textbook formula */
    double x2[4] = {1, 2, 3, 4}, y2[4] = {1, 2, 3, 5};
    pb_leak_linfit(x2, y2, 4, &s, &b, &r2);
    T_NEAR(s, 1.3, 1e-12);  /* sxy 6.5 / sxx 5 */
    T_NEAR(b, -0.5, 1e-12);
    T_NEAR(r2, 6.5 * 6.5 / (5 * 8.75), 1e-12);
    T_EQ_INT(pb_leak_linfit(x2, y2, 1, &s, &b, &r2), 0);
}

TEST(t_flat_with_noise)
{
    px_rng r;
    px_rng_seed(&r, 1, 1);
    int n = 0;
    for (double s = 0; s < 1800; s += 1, n++) t[n] = s, v[n] = 500 + noise(&r, 0.4);
    pb_leak_opts o = {.warmup_s = 60, .min_rise = 1};
    pb_leak_result res;
    pb_leak_fit(t, v, n, &o, "MB", &res);
    T_EQ_INT(res.verdict, PB_LEAK_NONE);
    T_EQ_INT(res.nwin, 20);
    T_CONTAINS(res.text, "no leak detected (slope ");
    T_CONTAINS(res.text, "MB/h, r\xc2\xb2 ");
    T_CMP_DBL(fabs(res.slope_per_h), <, 1);
}

TEST(t_sawtooth_is_not_a_leak)
{
    /* a buffer that grows for a minute and is freed, peaks wandering
     * upwards by chance: a fit on the raw values would see growth */
    px_rng r;
    px_rng_seed(&r, 2, 1);
    int n = 0;
    double amp = 40;
    for (double s = 0; s < 1800; s += 1, n++) {
        double ph = fmod(s, 60) / 60;
        if (ph == 0) amp = 20 + 60 * px_rng_float(&r) + s / 30; /* later teeth taller */
        t[n] = s;
        v[n] = 800 + amp * ph + noise(&r, 0.3);
    }
    double sl, b, r2raw;
    pb_leak_linfit(t, v, n, &sl, &b, &r2raw);
    T_CMP_DBL(sl * 3600, >, 20); /* the raw values rise... */
    pb_leak_opts o = {.warmup_s = 60, .min_rise = 1};
    pb_leak_result res;
    pb_leak_fit(t, v, n, &o, "MB", &res);
    T_EQ_INT(res.verdict, PB_LEAK_NONE); /* ...their floor does not */
    T_CMP_DBL(fabs(res.rise), <, 1);
}

TEST(t_step_is_not_a_leak)
{
    px_rng r;
    px_rng_seed(&r, 3, 1);
    int n = 0;
    for (double s = 0; s < 1800; s += 2, n++) {
        t[n] = s;
        v[n] = (s < 700 ? 600 : 630) + noise(&r, 0.3); /* a pool reaches its size at 700 s */
    }
    pb_leak_opts o = {.warmup_s = 60, .min_rise = 1};
    pb_leak_result res;
    pb_leak_fit(t, v, n, &o, "MB", &res);
    T_EQ_INT(res.verdict, PB_LEAK_STEP);
    T_CMP_DBL(res.r2, <, 0.8);
    T_NEAR(res.step_height, 30, 1);
    T_NEAR(res.step_at_s, 700, 90);
    T_CONTAINS(res.text, "no leak detected (slope ");
    T_CONTAINS(res.text, "one-time step of +30");
    /* a step followed by steady growth is a leak */
    n = 0;
    for (double s = 0; s < 1800; s += 2, n++) {
        t[n] = s;
        v[n] = (s < 700 ? 600 : 630 + (s - 700) * 0.05) + noise(&r, 0.3);
    }
    pb_leak_fit(t, v, n, &o, "MB", &res);
    T_EQ_INT(res.verdict, PB_LEAK_SUSPECTED);
}

TEST(t_slow_leak_of_12mb_a_day)
{
    /* a simulated day sampled every 60 s: 1.4 GB resident, a 30 MB
     * garbage-collection sawtooth every 5 min, 0.3 MB of jitter, and a leak
     * of 12 MB a day (0.5 MB/h) underneath */
    px_rng r;
    px_rng_seed(&r, 4, 1);
    int n = 0;
    for (double s = 0; s < 86400; s += 60, n++) {
        t[n] = s;
        v[n] = 1400 + 12.0 * s / 86400 + 30 * fmod(s, 300) / 300 + noise(&r, 0.3);
    }
    T_EQ_INT(n, 1440);
    pb_leak_opts o = {.warmup_s = 600, .min_rise = 1};
    pb_leak_result res;
    pb_leak_fit(t, v, n, &o, "MB", &res);
    T_EQ_INT(res.verdict, PB_LEAK_SUSPECTED);
    T_NEAR(res.slope_per_h, 0.5, 0.05);
    T_CMP_DBL(res.r2, >, 0.9);
    T_CONTAINS(res.text, "leak suspected: grows 0.50 MB/h (r\xc2\xb2 ");
    printf("    %s\n", res.text);
    /* the same day without the leak */
    n = 0;
    for (double s = 0; s < 86400; s += 60, n++) {
        t[n] = s;
        v[n] = 1400 + 30 * fmod(s, 300) / 300 + noise(&r, 0.3);
    }
    pb_leak_fit(t, v, n, &o, "MB", &res);
    T_EQ_INT(res.verdict, PB_LEAK_NONE);
    printf("    %s\n", res.text);
}

TEST(t_descriptor_leak_and_warmup)
{
    /* one descriptor never closed every 100 s, connections coming and going on top */
    px_rng r;
    px_rng_seed(&r, 5, 1);
    int n = 0;
    for (double s = 0; s < 1800; s += 1, n++) {
        t[n] = s;
        v[n] = 12 + floor(s / 100) + px_rng_below(&r, 4);
    }
    pb_leak_opts o = {.warmup_s = 60, .min_rise = 1.5};
    pb_leak_result res;
    pb_leak_fit(t, v, n, &o, "fds", &res);
    T_EQ_INT(res.verdict, PB_LEAK_SUSPECTED);
    T_NEAR(res.slope_per_h, 36, 4);
    /* growth only during the warm-up (engines loading, pools filling) */
    n = 0;
    for (double s = 0; s < 1800; s += 1, n++) t[n] = s, v[n] = s < 120 ? 100 + s : 220 + noise(&r, 0.2);
    o.warmup_s = 150;
    o.min_rise = 1;
    pb_leak_fit(t, v, n, &o, "MB", &res);
    T_EQ_INT(res.verdict, PB_LEAK_NONE);
    /* unknown values are skipped, not read as zero */
    for (int i = 0; i < n; i += 7) v[i] = -1;
    pb_leak_fit(t, v, n, &o, "MB", &res);
    T_EQ_INT(res.verdict, PB_LEAK_NONE);
    T_CMP_DBL(res.win_min[0], >, 200);
}

TEST(t_too_short)
{
    for (int i = 0; i < 3; i++) t[i] = i, v[i] = 10 + i;
    pb_leak_opts o = {0};
    pb_leak_result res;
    pb_leak_fit(t, v, 3, &o, "MB", &res);
    T_EQ_INT(res.verdict, PB_LEAK_TOO_SHORT);
    T_CONTAINS(res.text, "too short to tell");
    pb_leak_fit(t, v, 0, &o, "MB", &res);
    T_EQ_INT(res.verdict, PB_LEAK_TOO_SHORT);
    /* a 20 s soak of per-second points: windows of at least two points */
    for (int i = 0; i < 20; i++) t[i] = i + 0.001 * (i % 3), v[i] = 50;
    o.window_s = 1;
    pb_leak_fit(t, v, 20, &o, "MB", &res);
    T_EQ_INT(res.verdict, PB_LEAK_NONE);
    T_NEAR(res.window_s, 2 * 19.0 / 19, 0.01);
    T_EQ_INT(res.nwin, 9); /* the last, half-empty window joins the one before */
}

TEST(t_latency_drift)
{
    double ms[100], ok[100];
    for (int i = 0; i < 100; i++) t[i] = i, ms[i] = 100 + i, ok[i] = i % 10 ? 5 : 0;
    pb_drift d;
    pb_leak_drift(t, ms, ok, 100, 0, 0.1, 0.2, &d);
    /* first 9.9 s: points 1..9 (0 had no request), last: 90..99 minus 90 */
    T_NEAR(d.first_ms, 105, 1e-9);
    T_NEAR(d.last_ms, 195, 1e-9);
    T_NEAR(d.change, 195.0 / 105 - 1, 1e-9);
    T_EQ_INT(d.flagged, 1);
    T_CONTAINS(d.text, "latency degraded +85.7%");
    for (int i = 0; i < 100; i++) ms[i] = 150;
    pb_leak_drift(t, ms, ok, 100, 0, 0.1, 0.2, &d);
    T_EQ_INT(d.flagged, 0);
    T_CONTAINS(d.text, "latency stable, +0.0%");
    for (int i = 0; i < 100; i++) ok[i] = 0;
    pb_leak_drift(t, ms, ok, 100, 0, 0.1, 0.2, &d);
    T_CONTAINS(d.text, "unknown");
}

TEST_MAIN(t_linfit_exact, t_flat_with_noise, t_sawtooth_is_not_a_leak, t_step_is_not_a_leak, t_slow_leak_of_12mb_a_day,
          t_descriptor_leak_and_warmup, t_too_short, t_latency_drift)
