/*
 * scenario.c — stage runner and time series (see scenario.h).
 */
#include "bench/scenario.h"

#include "bench/procfs.h"
#include "core/clock.h"
#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS 50000000LL /* control checks */
#define STOPPED 1          /* stage_window: the run was interrupted (errors are negative) */

#define MON_BATCH 64

typedef struct sampler {
    pb_monitor *mon;
    uint64_t next_seq;
    pb_mon_sample batch[MON_BATCH];
    int64_t last_t, last_cpu_self;
} sampler;

static void sleep_until(int64_t t)
{
    int64_t d = t - px_now_ns();
    if (d <= 0) return;
    struct timespec ts = {d / 1000000000, d % 1000000000};
    nanosleep(&ts, NULL);
}

static int add_point(pb_run_result *r, const pb_point *p)
{
    if (r->npoints == r->cap) {
        int cap = r->cap ? r->cap * 2 : 256;
        pb_point *s = realloc(r->series, (size_t)cap * sizeof *s);
        if (!s) return PX_ENOMEM;
        r->series = s;
        r->cap = cap;
    }
    r->series[r->npoints++] = *p;
    return 0;
}

static int take_point(pb_loop *e, pb_run_result *out, sampler *s, int64_t t0, int64_t now,
                      int stage, int measuring, double load, pb_acc *ivl)
{
    pb_acc_reset(ivl);
    pb_loop_take_interval(e, ivl);
    pb_point p = {0};
    p.t = (double)(now - t0) / 1e9;
    p.dt = (double)(now - s->last_t) / 1e9;
    p.stage = stage;
    p.measuring = measuring;
    p.load = load;
    p.active = pb_loop_active(e);
    p.ok = ivl->ok;
    p.errors = pb_acc_errors(ivl);
    p.late = ivl->late;
    p.qps = p.dt > 0 ? (double)p.ok / p.dt : 0;
    p.mean_ms = px_hist_mean(&ivl->lat) / 1e6;
    p.p50_ms = (double)px_hist_quantile(&ivl->lat, 0.5) / 1e6;
    p.p95_ms = (double)px_hist_quantile(&ivl->lat, 0.95) / 1e6;
    p.p99_ms = (double)px_hist_quantile(&ivl->lat, 0.99) / 1e6;
    p.max_ms = (double)ivl->lat.max / 1e6;
    int64_t cpu;
    uint64_t rss;
    p.cli_cpu = p.srv_cpu = p.srv_rss_mb = -1;
    if (pb_procfs_usage(NULL, 0, &cpu, &rss) == 0) {
        if (p.dt > 0) p.cli_cpu = 100.0 * (double)(cpu - s->last_cpu_self) / (p.dt * 1e9);
        s->last_cpu_self = cpu;
    }
    /* the monitor's samples taken since the previous point */
    pb_res_init(&p.res);
    if (s->mon) {
        int n;
        while ((n = pb_monitor_read(s->mon, &s->next_seq, s->batch, NULL, MON_BATCH)) > 0)
            for (int i = 0; i < n; i++) pb_res_add(&p.res, &s->batch[i]);
        p.srv_cpu = pb_agg_mean(&p.res.cpu);
        p.srv_rss_mb = pb_agg_mean(&p.res.rss_mb);
    }
    s->last_t = now;
    return add_point(out, &p);
}

static void progress(const pb_run_config *rc, int k, const pb_point *p, double elapsed, double total,
                     int measuring)
{
    char lat[32];
    if (p->ok) snprintf(lat, sizeof lat, "%.1f ms", p->p95_ms);
    else snprintf(lat, sizeof lat, "-");
    double er = p->ok + p->errors ? 100.0 * (double)p->errors / (double)(p->ok + p->errors) : 0;
    fprintf(stderr, "\r\033[K  stage %d/%d  %s %g  %5.0fs/%.0fs  qps %.1f  p95 %s  errors %.1f%%%s",
            k + 1, rc->nstages, rc->open_loop ? "rate" : "users", rc->loads[k], elapsed, total,
            p->qps, lat, er, measuring ? "" : "  (warm-up)");
    fflush(stderr);
}

/* Ends the load in flight and waits (bounded) until no request is active,
 * still taking the per-second points. Returns 0, or an error of take_point. */
static int drain(pb_loop *e, const pb_run_config *rc, pb_run_result *out, sampler *s, int64_t t0,
                 int stage, double load, pb_acc *ivl, int64_t *next_point)
{
    pb_loop_set_load(e, 0, 0);
    int64_t deadline = px_now_ns() + 120000000000LL;
    while (pb_loop_active(e) > 0 && px_now_ns() < deadline) {
        if (rc->interrupted && *rc->interrupted) break;
        sleep_until(px_now_ns() + 20000000);
        int64_t now = px_now_ns();
        if (now >= *next_point) {
            int rc_err = take_point(e, out, s, t0, now, stage, 0, load, ivl);
            if (rc_err) return rc_err;
            *next_point = now + 1000000000LL;
        }
    }
    return 0;
}

/* A stage's times: its start, its measured window [mstart, mend) and its
 * planned length in seconds (for the progress line). */
typedef struct stage_clock {
    int64_t ts, mstart, mend;
    double total;
} stage_clock;

/* Lets stage k run until its window ends, its request count is reached or
 * the run is interrupted (*stopped), taking a point every second. Returns
 * 0 or take_point's error. */
static int stage_window(pb_loop *e, const pb_run_config *rc, pb_run_result *out, sampler *s, int64_t t0, int k,
                        const stage_clock *c, pb_acc *ivl, int64_t *next_point)
{
    double load = out->stages[out->nstages - 1].load;
    for (;;) {
        int64_t now = px_now_ns();
        if (now >= c->mend) return 0;
        if (rc->interrupted && *rc->interrupted) return STOPPED;
        if (rc->stage_requests && pb_loop_window_requests(e) >= rc->stage_requests) return 0;
        int64_t wake = now + TICK_NS;
        if (*next_point < wake) wake = *next_point;
        if (c->mend < wake) wake = c->mend;
        sleep_until(wake);
        now = px_now_ns();
        if (now >= *next_point) {
            int meas = now > c->mstart;
            int rc_err = take_point(e, out, s, t0, now, k, meas, load, ivl);
            if (rc_err) return rc_err;
            pb_point last = out->series[out->npoints - 1];
            *next_point += 1000000000LL;
            if (*next_point < now) *next_point = now + 1000000000LL;
            if (rc->progress) progress(rc, k, &last, (double)(now - c->ts) / 1e9, c->total, meas);
        }
    }
}

int pb_run(pb_loop *e, const pb_run_config *rc, pb_run_result *out)
{
    memset(out, 0, sizeof *out);
    pb_acc ivl;
    pb_acc_init(&ivl);
    sampler *s = calloc(1, sizeof *s);
    if (!s) return PX_ENOMEM;
    s->mon = rc->monitor;
    s->next_seq = 1;
    int64_t t0 = px_now_ns();
    int64_t cpu;
    uint64_t rss;
    s->last_t = t0;
    if (pb_procfs_usage(NULL, 0, &cpu, &rss) == 0) s->last_cpu_self = cpu;
    /* half an interval out of phase with the points, so each second gets
     * its samples rather than a coin toss at the boundary */
    if (s->mon && pb_monitor_start(s->mon, pb_monitor_interval_ns(s->mon) / 2) != 0) s->mon = NULL;
    out->start_wall_ms = px_wall_ms();
    int rc_err = 0;
    double prev_load = 0;
    int64_t next_point = t0 + 1000000000LL;
    for (int k = 0; k < rc->nstages && !rc_err; k++) {
        if (rc->interrupted && *rc->interrupted) break;
        if (rc->stage_reqs[k]) {
            /* a stage of other requests (size matrix): let the previous
             * stage's requests finish first */
            if (k > 0 && (rc_err = drain(e, rc, out, s, t0, k - 1, prev_load, &ivl, &next_point))) break;
            pb_loop_set_requests(e, rc->stage_reqs[k], rc->stage_nreqs[k]);
            prev_load = 0;
        }
        if (rc->reset_peak && s->mon) pb_monitor_reset_peak(s->mon);
        pb_stage_result *st = &out->stages[out->nstages++];
        pb_acc_init(&st->acc);
        st->load = rc->loads[k];
        int64_t ts = px_now_ns();
        st->start_s = (double)(ts - t0) / 1e9;
        int64_t ramp = rc->open_loop ? rc->ramp_ns : 0;
        if (!rc->open_loop && rc->spawn_rate > 0 && st->load > prev_load)
            ramp = (int64_t)((st->load - prev_load) / rc->spawn_rate * 1e9);
        prev_load = st->load;
        int64_t wait = rc->warmup_ns > ramp ? rc->warmup_ns : ramp;
        int64_t mstart = ts + wait;
        int64_t mend = rc->stage_ns > 0 ? mstart + rc->stage_ns : INT64_MAX;
        st->warmup_s = (double)wait / 1e9;
        pb_loop_open_window(e, mstart);
        if (rc->on_window) rc->on_window(rc->on_window_ctx, mstart, INT64_MAX);
        pb_loop_set_load(e, st->load, rc->open_loop ? rc->ramp_ns : 0);
        double total = (double)(mend == INT64_MAX ? wait : mend - ts) / 1e9;
        const stage_clock clk = {ts, mstart, mend, total};
        rc_err = stage_window(e, rc, out, s, t0, k, &clk, &ivl, &next_point);
        int stopped = rc_err == STOPPED;
        if (stopped) rc_err = 0;
        int64_t now = px_now_ns();
        pb_loop_close_window(e, &st->acc);
        if (rc->on_window) rc->on_window(rc->on_window_ctx, mstart, now);
        st->measured_s = now > mstart ? (double)(now - mstart) / 1e9 : 0;
        st->complete = !stopped;
        /* a partial point closes the stage so the series covers it all */
        if (!rc_err && now - s->last_t > 100000000LL) {
            rc_err = take_point(e, out, s, t0, now, k, now > mstart, st->load, &ivl);
            next_point = now + 1000000000LL;
        }
        if (stopped) break;
    }
    if (rc->progress) fprintf(stderr, "\r\033[K");
    out->interrupted = rc->interrupted && *rc->interrupted;
    out->duration_s = (double)(px_now_ns() - t0) / 1e9;
    pb_acc_free(&ivl);
    free(s);
    return rc_err;
}

void pb_run_result_free(pb_run_result *r)
{
    for (int i = 0; i < r->nstages; i++) pb_acc_free(&r->stages[i].acc);
    free(r->series);
    memset(r, 0, sizeof *r);
}
