/*
 * leak.h — does a resource keep growing over a long run (a soak test)?
 *
 * From a series (t, value) after the warm-up: split the time into windows
 * and take each window's minimum. Memory that is allocated and freed in
 * cycles (a batch buffer, a cache that fills and empties, a garbage
 * collector) draws a sawtooth whose peaks wander while its floor stays put;
 * a leak raises the floor. A least-squares line through the minima then
 * gives the growth rate, and r² how much of the minima's spread that line
 * explains. The verdict:
 *
 *   leak suspected   r² >= r2_min, the rise over the run >= min_rise, and a
 *                    single step does not fit the minima clearly better;
 *   no leak (step)   the minima jump once (a pool reaching its size, a cache
 *                    warming) and stay: a step fits better than a line and
 *                    what follows the step is flat;
 *   no leak          otherwise (the slope and r² are still reported);
 *   too short        fewer than PB_LEAK_MIN_WIN windows.
 *
 * Pure functions over arrays: tests feed synthetic series.
 */
#ifndef PB_LEAK_H
#define PB_LEAK_H

#define PB_LEAK_MAX_WIN 240
#define PB_LEAK_MIN_WIN 5

typedef struct pb_leak_opts {
    double warmup_s;   /* points before this time are ignored */
    double window_s;   /* window length; 0: a 20th of the span (at most PB_LEAK_MAX_WIN windows) */
    double r2_min;     /* 0: 0.8 */
    double min_rise;   /* a rise over the run below this is noise, in the series' unit (0: none) */
} pb_leak_opts;

enum pb_leak_verdict { PB_LEAK_TOO_SHORT, PB_LEAK_NONE, PB_LEAK_STEP, PB_LEAK_SUSPECTED };

typedef struct pb_leak_result {
    enum pb_leak_verdict verdict;
    int nwin;                /* windows with data */
    double window_s;
    double slope_per_h;      /* of the line through the minima, per hour */
    double intercept;        /* the line's value at t = 0 */
    double r2;               /* 0 when the minima do not vary at all */
    double span_s;           /* from the first to the last minimum */
    double rise;             /* slope x span */
    double step_at_s, step_height; /* the best single step through the minima */
    double step_r2;          /* how much of the minima's spread that step explains */
    double after_slope_per_h, after_r2; /* the line through the minima after the step */
    double win_t[PB_LEAK_MAX_WIN], win_min[PB_LEAK_MAX_WIN]; /* each window's minimum and its time */
    char text[256];          /* "no leak detected (slope 0.02 MB/h, r² 0.03)", ... */
} pb_leak_result;

/* Fits series (t[i], v[i]) (t ascending, in seconds; negative v are
 * unknown and skipped). unit names the values in the text ("MB", "fds").
 * Never fails: a series too short to tell says so. */
void pb_leak_fit(const double *t, const double *v, int n, const pb_leak_opts *o, const char *unit,
                 pb_leak_result *r);

/* Least squares of y on x: slope, intercept, r² (0 when y is constant).
 * Returns the number of points used (n), or 0 when fewer than 2. */
int pb_leak_linfit(const double *x, const double *y, int n, double *slope, double *intercept, double *r2);

/* Latency at the start against the end of the measured part of a run:
 * request-weighted mean latency of the first and the last `frac` of the
 * time after warm-up (at least one point each). */
typedef struct pb_drift {
    double first_ms, last_ms;   /* -1 when a part had no successful request */
    double first_s, last_s;     /* how long each part is */
    double change;              /* last / first - 1 (0 when unknown) */
    int flagged;                /* |change| above the threshold */
    char text[256];
} pb_drift;

/* t: point times (s); mean_ms and ok: each point's mean latency and
 * successful requests. threshold: e.g. 0.2 for 20 %. */
void pb_leak_drift(const double *t, const double *mean_ms, const double *ok, int n, double warmup_s,
                   double frac, double threshold, pb_drift *d);

#endif
