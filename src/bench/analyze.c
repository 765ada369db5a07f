/*
 * analyze.c — per-stage numbers and verdicts (see analyze.h).
 *
 * Saturation: the first stage whose QPS is within 10 % of the peak, when a
 * later stage with more load exists (else the tested range did not reach
 * saturation). Sweet spot: among stages whose error rate is below the
 * threshold and that meet the SLO, the one with the least load whose QPS is
 * within 5 % of the best of them (the highest QPS, without the extra
 * latency of load that no longer adds throughput). Hints are
 * emitted only when their condition is measured, and say what they rest on.
 */
#include "bench/analyze.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HINT(a, ...)                                                                        \
    do {                                                                                    \
        if ((a)->nhints < 12) snprintf((a)->hints[(a)->nhints++], sizeof (a)->hints[0], __VA_ARGS__); \
    } while (0)

static void resources(const pb_run_result *r, int k, const pb_analysis_opts *o, pb_stage_summary *s)
{
    double cli = 0;
    int nc = 0;
    pb_res_init(&s->res);
    for (int i = 0; i < r->npoints; i++) {
        const pb_point *p = &r->series[i];
        if (p->stage != k || !p->measuring) continue;
        if (p->cli_cpu >= 0) cli += p->cli_cpu, nc++;
        pb_res_merge(&s->res, &p->res);
    }
    s->cli_cpu = nc ? cli / nc : -1;
    s->srv_cpu = pb_agg_mean(&s->res.cpu);
    s->srv_rss_mb = pb_agg_mean(&s->res.rss_mb);
    s->peak_rss_mb = pb_agg_max(&s->res.rss_mb);
    /* the kernel's own peak catches what falls between samples, but only
     * when it was reset at the stage's start (else it is the process's) */
    if (o->peak_reset && s->res.hwm_mb > s->peak_rss_mb) s->peak_rss_mb = s->res.hwm_mb;
    double gu = pb_agg_mean(&s->res.gpu_util);
    s->qps_per_gpu = gu > 0 ? s->qps / gu : -1;
}

/* perf_analyzer-style: split the measured seconds into windows, and call the
 * stage stable when the last 3 windows' QPS and mean latency are each within
 * 10 % of their average. */
static void stability(const pb_run_result *r, int k, pb_stage_summary *s)
{
    const pb_point *pts[4096];
    int n = 0;
    for (int i = 0; i < r->npoints && n < 4096; i++)
        if (r->series[i].stage == k && r->series[i].measuring && r->series[i].dt > 0.5)
            pts[n++] = &r->series[i];
    s->stable = -1;
    if (n < 3) return;
    int w = n / 3 < 1 ? 1 : (n / 3 > 10 ? 10 : n / 3); /* seconds per window */
    double q[3], l[3];
    for (int j = 0; j < 3; j++) {
        double ok = 0, t = 0, lat = 0;
        for (int i = n - (3 - j) * w; i < n - (2 - j) * w; i++) {
            ok += (double)pts[i]->ok;
            t += pts[i]->dt;
            lat += pts[i]->mean_ms * (double)pts[i]->ok;
        }
        q[j] = t > 0 ? ok / t : 0;
        l[j] = ok > 0 ? lat / ok : 0;
    }
    double qm = (q[0] + q[1] + q[2]) / 3, lm = (l[0] + l[1] + l[2]) / 3;
    s->stab_qps_dev = s->stab_lat_dev = 0;
    for (int j = 0; j < 3; j++) {
        if (qm > 0 && fabs(q[j] - qm) / qm > s->stab_qps_dev) s->stab_qps_dev = fabs(q[j] - qm) / qm;
        if (lm > 0 && fabs(l[j] - lm) / lm > s->stab_lat_dev) s->stab_lat_dev = fabs(l[j] - lm) / lm;
    }
    s->stable = qm > 0 && s->stab_qps_dev <= 0.10 && s->stab_lat_dev <= 0.10;
}

/* What a status that every request of a stage got most likely means: only
 * the usual causes, named as likely, since the reply is all we saw. */
static const char *status_cause(int st)
{
    switch (st) {
    case 400: return "the target rejected the request body or its fields (wrong profile, or fields it does not take)";
    case 401: case 403: return "the target wants credentials (add them with -H)";
    case 404: return "the path does not exist on the target (check --target's path and --path; with --profile raw the URL's path is the request path)";
    case 405: return "the route exists but not for this method (--method)";
    case 413: return "the body is over the target's size cap";
    case 415: return "the target does not take this Content-Type (-H 'Content-Type: ...')";
    case 422: return "the target's validation refused the request's fields";
    case 429: return "the target is rate-limiting or its queue is full";
    case 500: return "the target failed on every request (its log says why)";
    case 502: case 504: return "a proxy in front of the target could not get an answer in time";
    case 503: return "the target is not ready (still loading), overloaded or out of memory";
    }
    return st >= 500 ? "a server-side failure" : "the target refused the request as sent";
}

/* A stage where every request failed with one status says which, with its
 * likely cause (the first such stage only). */
static void all_one_status(pb_analysis *a, const pb_analysis_opts *o, const char *unit)
{
    for (int k = 0; k < a->n; k++) {
        const pb_stage_summary *s = &a->s[k];
        if (!s->fail_status || s->ok) continue;
        HINT(a, "Every request of stage %g %s failed with status %d%s%s%s: probably %s.", s->load, unit,
             s->fail_status, o->path ? " (sent to " : "", o->path ? o->path : "", o->path ? ")" : "",
             status_cause(s->fail_status));
        return;
    }
}

static void summarize(const pb_run_result *r, int k, const pb_analysis_opts *o, pb_stage_summary *s)
{
    const pb_stage_result *st = &r->stages[k];
    const pb_acc *a = &st->acc;
    memset(s, 0, sizeof *s);
    s->load = st->load;
    s->start_s = st->start_s;
    s->warmup_s = st->warmup_s;
    s->measured_s = st->measured_s;
    s->complete = st->complete;
    snprintf(s->label, sizeof s->label, "%s", st->label);
    s->pixels = st->pixels;
    s->ok = a->ok;
    s->errors = pb_acc_errors(a);
    s->requests = s->ok + s->errors;
    memcpy(s->err, a->err, sizeof s->err);
    s->late = a->late;
    s->qps = st->measured_s > 0 ? (double)a->ok / st->measured_s : 0;
    s->error_rate = s->requests ? (double)s->errors / (double)s->requests : 0;
    s->mean_ms = px_hist_mean(&a->lat) / 1e6;
    s->min_ms = a->lat.count ? (double)a->lat.min / 1e6 : 0;
    s->p50_ms = (double)px_hist_quantile(&a->lat, 0.50) / 1e6;
    s->p90_ms = (double)px_hist_quantile(&a->lat, 0.90) / 1e6;
    s->p95_ms = (double)px_hist_quantile(&a->lat, 0.95) / 1e6;
    s->p99_ms = (double)px_hist_quantile(&a->lat, 0.99) / 1e6;
    s->p999_ms = (double)px_hist_quantile(&a->lat, 0.999) / 1e6;
    s->max_ms = (double)a->lat.max / 1e6;
    if (st->measured_s > 0) {
        s->mbps_in = (double)a->bytes_in / st->measured_s / 1e6;
        s->mbps_out = (double)a->bytes_out / st->measured_s / 1e6;
    }
    s->nst = a->nst;
    for (int i = 0; i < a->nst; i++) {
        pb_st_summary *t = &s->st[i];
        snprintf(t->name, sizeof t->name, "%s", a->st_name[i]);
        t->count = a->st[i]->count;
        t->mean_ms = px_hist_mean(a->st[i]) / 1e6;
        t->p50_ms = (double)px_hist_quantile(a->st[i], 0.5) / 1e6;
        t->p95_ms = (double)px_hist_quantile(a->st[i], 0.95) / 1e6;
        t->max_ms = (double)a->st[i]->max / 1e6;
    }
    s->st_missing = a->st_missing;
    if (s->errors && s->err[PB_ERR_STATUS] == s->errors && !a->fail_status_mixed)
        s->fail_status = a->fail_status;
    resources(r, k, o, s);
    s->stable = -1;
    if (o->stability) stability(r, k, s);
    if (o->slo && s->requests) {
        pb_slo_values v = {s->mean_ms, s->p50_ms, s->p90_ms, s->p95_ms, s->p99_ms,
                           s->p999_ms, s->max_ms, s->error_rate, s->qps};
        s->slo_broken = pb_slo_check(o->slo, &v, s->slo_why, sizeof s->slo_why);
    } else if (o->slo) {
        s->slo_broken = 1;
        snprintf(s->slo_why, sizeof s->slo_why, "no request finished in the measured window");
    }
}

/* The load generator itself: busy, or sharing the machine. */
static void hints_client(const pb_analysis_opts *o, pb_analysis *a, const char *unit)
{
    for (int k = 0; k < a->n; k++) {
        const pb_stage_summary *s = &a->s[k];
        if (s->cli_cpu >= 80.0 * o->threads) {
            HINT(a, "pixbench used %.0f%% CPU (%d thread%s) at %g %s: the client may be limiting "
                    "throughput there; give it more --threads or another machine.",
                 s->cli_cpu, o->threads, o->threads > 1 ? "s" : "", s->load, unit);
            break;
        }
    }
    if (o->loopback && o->cpus > 0) {
        double cli = 0;
        for (int k = 0; k < a->n; k++)
            if (a->s[k].cli_cpu > cli) cli = a->s[k].cli_cpu;
        HINT(a, "Client and server share this machine's %d CPU%s; pixbench itself used at most "
                "%.0f%% of one CPU, which the server did not have.",
             o->cpus, o->cpus > 1 ? "s" : "", cli < 0 ? 0 : cli);
    }
}

/* The GPU busy >= 80 % of the stage: then the GPU is the limit, and CPU
 * figures say nothing about a bottleneck (a thread waiting on the GPU, as
 * CUDA's default spin-wait does, shows as a core at 100 %). Not 90: a
 * closed-loop client leaves the GPU idle while each reply is encoded, sent
 * and the next request read (an H100 sweep of 2026-12-05 saturated at one
 * user with the GPU 89 % busy). */
#define GPU_BOUND_PCT 80
static int gpu_bound(const pb_stage_summary *s)
{
    return pb_agg_mean(&s->res.gpu_util) >= GPU_BOUND_PCT;
}

/* Saturation: what the server did when throughput stopped growing. */
static void hints_saturation(const pb_analysis_opts *o, pb_analysis *a, const char *unit)
{
    if (a->saturation < 0) return;
    const pb_stage_summary *s = &a->s[a->saturation], *last = &a->s[a->n - 1];
    if (!o->open_loop && last->load > s->load && s->mean_ms > 0) {
        double lr = last->load / s->load, tr = last->mean_ms / s->mean_ms;
        if (tr >= 0.5 * lr)
            HINT(a, "Past %g users, QPS stays near %.1f/s while mean latency grows %.1fx for "
                    "%.1fx the users: requests queue in front of a fixed capacity (Little's "
                    "law), so more users only add waiting.",
                 s->load, a->peak_qps, tr, lr);
    }
    if (s->srv_cpu >= 0 && o->cpus > 0) {
        double share = s->srv_cpu / (100.0 * o->cpus);
        if (share >= 0.85)
            HINT(a, "At saturation (%g %s) the server used %.0f%% CPU, %.0f%% of all %d CPUs: "
                    "it is CPU-bound here.",
                 s->load, unit, s->srv_cpu, 100 * share, o->cpus);
        else if (share < 0.5 && !gpu_bound(s))
            HINT(a, "At saturation (%g %s) the server used only %.0f%% CPU (%.0f%% of %d "
                    "CPUs): the limit is not CPU; look at worker/queue limits, locks or I/O.",
                 s->load, unit, s->srv_cpu, 100 * share, o->cpus);
    }
}

/* The server's stage timings at the highest load that has them. */
static void hints_server_timing(pb_analysis *a, const char *unit)
{
    for (int k = a->n - 1; k >= 0; k--) {
        const pb_stage_summary *s = &a->s[k];
        if (!s->nst) continue;
        double total = 0, best = 0, queue = -1;
        const char *bn = NULL;
        for (int i = 0; i < s->nst; i++) {
            if (!strcmp(s->st[i].name, "total")) continue;
            total += s->st[i].mean_ms;
            if (s->st[i].mean_ms > best) best = s->st[i].mean_ms, bn = s->st[i].name;
            if (!strcmp(s->st[i].name, "queue")) queue = s->st[i].mean_ms;
        }
        if (total > 0 && bn) {
            HINT(a, "Server-Timing at %g %s: '%s' is %.0f%% of the server's time (%.1f of %.1f ms "
                    "mean)%s.",
                 s->load, unit, bn, 100 * best / total, best, total,
                 queue >= 0 && queue / total > 0.5 ? "; most of it is queue wait, so the server "
                                                     "is capacity-bound (more workers or "
                                                     "batching would help)"
                 : !strcmp(bn, "infer")            ? "; compute dominates"
                                                   : "");
            if (s->mean_ms > 0 && total < 0.5 * s->mean_ms)
                HINT(a, "At %g %s the server accounts for %.1f of the %.1f ms clients waited: the "
                        "rest is outside its stages (network, HTTP layer, client, accept queue).",
                     s->load, unit, total, s->mean_ms);
        }
        break;
    }
}

/* Where errors start, and of which class. */
static void hints_errors(const pb_analysis_opts *o, pb_analysis *a, const char *unit)
{
    all_one_status(a, o, unit);
    for (int k = 0; k < a->n; k++) {
        const pb_stage_summary *s = &a->s[k];
        if (s->error_rate < a->err_threshold || !s->errors) continue;
        int worst = 0;
        for (int c = 1; c < PB_ERR_N; c++)
            if (s->err[c] > s->err[worst]) worst = c;
        /* every error one status: say which (a 429 storm reads otherwise
         * like a broken server) */
        char why[300] = "";
        if (s->fail_status)
            snprintf(why, sizeof why, "; all HTTP %d: probably %s", s->fail_status,
                     status_cause(s->fail_status));
        HINT(a, "Errors pass %.1f%% from %g %s on (%.1f%%, mostly %s: %llu of %llu%s).",
             100 * a->err_threshold, s->load, unit, 100 * s->error_rate, pb_err_class_name(worst),
             (unsigned long long)s->err[worst], (unsigned long long)s->errors, why);
        break;
    }
}

/* What the monitor saw at saturation (else the highest load). */
static void hints_resources(const pb_analysis_opts *o, pb_analysis *a, const char *unit)
{
    if (!a->monitored) return;
    const pb_stage_summary *s = &a->s[a->saturation >= 0 ? a->saturation : a->n - 1];
    double thr_mean = pb_agg_mean(&s->res.thread_cpu), thr_max = pb_agg_max(&s->res.thread_cpu);
    double cpu = pb_agg_mean(&s->res.cpu);
    if (thr_mean >= 90 && (o->cpus <= 0 || cpu < 100.0 * o->cpus * 0.75) && !gpu_bound(s))
        HINT(a, "At %g %s the server's busiest thread ran at %.0f%% of a core on average (peak "
                "%.0f%%) while the process used %.0f%% in all: one thread is the bottleneck "
                "(the seeds' single-core peak).",
             s->load, unit, thr_mean, thr_max, cpu);
    double gu = pb_agg_mean(&s->res.gpu_util), gp = pb_agg_max(&s->res.gpu_util_peak);
    if (gu >= GPU_BOUND_PCT)
        HINT(a, "At %g %s the GPU was busy %.0f%% of the time (peak %.0f%%): GPU-bound; batching "
                "or a faster model would raise throughput, more clients would not.",
             s->load, unit, gu, gp);
    else if (gu >= 0 && a->saturation >= 0 && gu < 50)
        HINT(a, "At saturation (%g %s) the GPU was busy only %.0f%% of the time: the limit is "
                "elsewhere (CPU work around the model, queueing, I/O).",
             s->load, unit, gu);
    unsigned long long thr = 0;
    for (int k = 0; k < a->n; k++) thr |= a->s[k].res.throttle;
    if (thr & (PX_GPU_THROTTLE_SW_POWER_CAP | PX_GPU_THROTTLE_HW_SLOWDOWN | PX_GPU_THROTTLE_SW_THERMAL |
               PX_GPU_THROTTLE_HW_THERMAL | PX_GPU_THROTTLE_HW_POWER_BRAKE)) {
        char names[128];
        HINT(a, "The GPU clocks were throttled during the run (%s): figures at high load are "
                "below what the card does when cool and not power-capped.",
             px_nvml_throttle_names(thr & ~PX_GPU_THROTTLE_IDLE, names, sizeof names));
    }
    for (int k = 0; o->watched_pid && k < a->n; k++)
        if (!a->s[k].res.alive) {
            HINT(a, "The server process disappeared during stage %g %s (crash or kill): every "
                    "figure after it is of a dead target.",
                 a->s[k].load, unit);
            break;
        }
}

/* Late sends of the open loop, and unstable stages. */
static void hints_pacing(const pb_analysis_opts *o, pb_analysis *a, const char *unit)
{
    if (o->open_loop) {
        for (int k = 0; k < a->n; k++) {
            const pb_stage_summary *s = &a->s[k];
            if (s->requests && (double)s->late / (double)s->requests > 0.01) {
                HINT(a, "At %g req/s %.1f%% of requests were sent late (all connections busy or "
                        "the client behind): their latency includes the wait, as it should.",
                     s->load, 100.0 * (double)s->late / (double)s->requests);
                break;
            }
        }
    }
    for (int k = 0; k < a->n; k++)
        if (a->s[k].stable == 0) {
            HINT(a, "Stage %g %s was not stable (last 3 windows: QPS within %.0f%%, latency within "
                    "%.0f%% of their mean; 10%% wanted): measure it longer.",
                 a->s[k].load, unit, 100 * a->s[k].stab_qps_dev, 100 * a->s[k].stab_lat_dev);
            break;
        }
}

static void hints(const pb_analysis_opts *o, pb_analysis *a)
{
    if (a->n == 0) return;
    const char *unit = o->open_loop ? "req/s offered" : "users";
    hints_client(o, a, unit);
    hints_saturation(o, a, unit);
    hints_server_timing(a, unit);
    hints_errors(o, a, unit);
    hints_resources(o, a, unit);
    hints_pacing(o, a, unit);
}

static void size_fit(pb_analysis *a)
{
    pb_sizefit *f = &a->sizes;
    double mp[PB_MAX_STAGES], y[PB_MAX_STAGES];
    int procmem = 0;
    for (int k = 0; k < a->n; k++) procmem |= a->s[k].res.gpu_proc_mem_mb.n > 0;
    for (int which = 0; which < 3; which++) {
        int n = 0;
        for (int k = 0; k < a->n; k++) {
            const pb_stage_summary *s = &a->s[k];
            double v = which == 0   ? s->peak_rss_mb
                       : which == 1 ? pb_agg_max(procmem ? &s->res.gpu_proc_mem_mb : &s->res.gpu_mem_mb)
                                    : (s->ok ? s->mean_ms : -1);
            if (s->pixels <= 0 || v < 0) continue;
            mp[n] = s->pixels / 1e6;
            y[n++] = v;
        }
        if (n > f->n) f->n = n;
        if (n < 2) continue;
        if (which == 0) f->have_rss = pb_leak_linfit(mp, y, n, &f->rss_b, &f->rss_a, &f->rss_r2) > 0;
        else if (which == 1) f->have_gpu = pb_leak_linfit(mp, y, n, &f->gpu_b, &f->gpu_a, &f->gpu_r2) > 0;
        else pb_leak_linfit(mp, y, n, &f->lat_b, &f->lat_a, &f->lat_r2);
    }
    f->gpu_is_process = procmem;
}

/* The leak fits and the latency drift over the soak's measured seconds,
 * on each second's minimum (RSS, GPU memory, descriptors). */
static void soak(const pb_run_result *r, const pb_analysis_opts *o, pb_analysis *a)
{
    pb_soak *s = &a->soak;
    s->on = 1;
    if (!r->nstages || !r->npoints) return;
    const pb_stage_result *st = &r->stages[r->nstages - 1];
    s->from_s = st->start_s + st->warmup_s;
    int n = r->npoints;
    double *buf = malloc(sizeof(double) * (size_t)n * 6);
    if (!buf) return;
    double *t = buf, *rss = t + n, *gpu = rss + n, *fds = gpu + n, *ms = fds + n, *ok = ms + n;
    int procmem = 0;
    for (int i = 0; i < n; i++) procmem |= r->series[i].res.gpu_proc_mem_mb.n > 0;
    for (int i = 0; i < n; i++) {
        const pb_point *p = &r->series[i];
        t[i] = p->t;
        rss[i] = pb_agg_min(&p->res.rss_mb);
        gpu[i] = pb_agg_min(procmem ? &p->res.gpu_proc_mem_mb : &p->res.gpu_mem_mb);
        fds[i] = pb_agg_min(&p->res.fds);
        ms[i] = p->ok ? p->mean_ms : -1;
        ok[i] = (double)p->ok;
        if (gpu[i] >= 0) s->have_gpu = 1;
    }
    s->gpu_is_process = procmem;
    /* below these a rise is the allocator's or the driver's granularity */
    pb_leak_opts lo = {.warmup_s = s->from_s, .window_s = o->leak_window_s, .min_rise = 1.0};
    pb_leak_fit(t, rss, n, &lo, "MB", &s->rss);
    lo.min_rise = 4.0;
    pb_leak_fit(t, gpu, n, &lo, "MB", &s->gpu);
    lo.min_rise = 1.5;
    pb_leak_fit(t, fds, n, &lo, "fds", &s->fds);
    pb_leak_drift(t, ms, ok, n, s->from_s, 0.1, 0.2, &s->drift);
    s->leak = s->rss.verdict == PB_LEAK_SUSPECTED || (s->have_gpu && s->gpu.verdict == PB_LEAK_SUSPECTED) ||
              s->fds.verdict == PB_LEAK_SUSPECTED;
    free(buf);
}

void pb_analyze(const pb_run_result *r, const pb_analysis_opts *o, pb_analysis *a)
{
    memset(a, 0, sizeof *a);
    a->open_loop = o->open_loop;
    a->err_threshold = o->err_threshold > 0 ? o->err_threshold : 0.01;
    a->has_slo = o->slo != NULL;
    a->matrix = o->matrix;
    for (int k = 0; k < r->nstages; k++) {
        summarize(r, k, o, &a->s[a->n]);
        if (a->s[a->n].slo_broken) a->slo_broken_stages++;
        if (a->s[a->n].res.n) a->monitored = 1;
        if (a->s[a->n].res.ngpu > a->ngpu) a->ngpu = a->s[a->n].res.ngpu;
        a->n++;
    }
    a->saturation = a->sweet = -1;
    int peak = -1;
    for (int k = 0; k < a->n; k++)
        if (peak < 0 || a->s[k].qps > a->s[peak].qps) peak = k;
    if (peak >= 0) a->peak_qps = a->s[peak].qps;
    if (peak >= 0 && a->n >= 2 && a->peak_qps > 0 && !o->matrix) {
        for (int k = 0; k < a->n; k++) {
            if (a->s[k].qps < 0.9 * a->peak_qps) continue;
            /* saturated only if there is more load after it that did not
             * buy more than 10 % throughput */
            int more = 0;
            for (int j = k + 1; j < a->n; j++)
                if (a->s[j].load > a->s[k].load) more = 1;
            if (more) a->saturation = k;
            break;
        }
    }
    /* the least load that gets within 5 % of the best eligible QPS: past
     * it more load buys latency, not throughput */
    double best = -1;
    for (int k = 0; k < a->n; k++) {
        const pb_stage_summary *s = &a->s[k];
        if (s->requests && s->error_rate < a->err_threshold && !s->slo_broken && s->qps > best)
            best = s->qps;
    }
    for (int k = 0; k < a->n && best > 0 && !o->matrix; k++) {
        const pb_stage_summary *s = &a->s[k];
        if (!s->requests || s->error_rate >= a->err_threshold || s->slo_broken) continue;
        if (s->qps >= 0.95 * best && (a->sweet < 0 || s->load < a->s[a->sweet].load)) a->sweet = k;
    }
    if (o->soak) soak(r, o, a);
    if (o->matrix) size_fit(a);
    hints(o, a);
}
