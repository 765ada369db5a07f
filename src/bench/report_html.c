/*
 * report_html.c — report.html of a load run (see report_html.h): one
 * self-contained file, styles and SVG inline, so it can be mailed or
 * attached to an issue and still show everything.
 */
#include "bench/report_html.h"

#include "bench/report_cols.h"
#include "bench/report_util.h"
#include "core/buf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void html_res_table(px_buf *b, const pb_analysis *a, const char *title, const pb_rcols *cs)
{
    const pb_rcol *c = cs->c;
    int nc = cs->n;
    px_buf_printf(b, "<h3>%s</h3><table><tr><th>%s</th>", title, pb_rep_load_name(a));
    for (int i = 0; i < nc; i++) px_buf_printf(b, "<th>%s</th>", c[i].head);
    px_buf_puts(b, "</tr>");
    for (int k = 0; k < a->n; k++) {
        char nm[64], v[32];
        px_buf_puts(b, "<tr><td>");
        pb_rep_html_escape(b, pb_rep_stage_name(a, k, nm, sizeof nm));
        px_buf_puts(b, "</td>");
        for (int i = 0; i < nc; i++) {
            pb_rep_fmt_val(c[i].get(&a->s[k]), c[i].decimals, v, sizeof v);
            px_buf_printf(b, "<td>%s</td>", v);
        }
        px_buf_puts(b, "</tr>");
    }
    px_buf_puts(b, "</table>");
}

/* One line of a resource chart: a per-second figure, unknown seconds left out. */
typedef double (*res_get)(const pb_res *r);
static double g_cpu(const pb_res *r) { return pb_agg_mean(&r->cpu); }
static double g_thr(const pb_res *r) { return pb_agg_max(&r->thread_cpu); }
static double g_core(const pb_res *r) { return pb_agg_max(&r->core_max); }
static double g_rss(const pb_res *r) { return pb_agg_mean(&r->rss_mb); }
static double g_rss_max(const pb_res *r) { return pb_agg_max(&r->rss_mb); }
static double g_gmem(const pb_res *r) { return pb_agg_max(&r->gpu_mem_mb); }
static double g_gpmem(const pb_res *r) { return pb_agg_max(&r->gpu_proc_mem_mb); }
static double g_gu(const pb_res *r) { return pb_agg_mean(&r->gpu_util); }
static double g_gp(const pb_res *r) { return pb_agg_max(&r->gpu_util_peak); }
static double g_iops(const pb_res *r) { return pb_agg_mean(&r->disk_w_iops); }
static double g_await(const pb_res *r) { return pb_agg_mean(&r->disk_w_await_ms); }

static void res_chart(px_buf *b, const pb_run_result *r, const char *title, const char *yl, const char *const *names,
                      const res_get *gets, int nl)
{
    double *buf = malloc(sizeof(double) * (size_t)(r->npoints > 0 ? r->npoints : 1) * 2 * (size_t)nl);
    if (!buf) return;
    series s[4];
    int any = 0;
    for (int l = 0; l < nl && l < 4; l++) {
        double *x = buf + (size_t)r->npoints * 2 * (size_t)l, *y = x + r->npoints;
        int n = 0;
        for (int i = 0; i < r->npoints; i++) {
            double v = gets[l](&r->series[i].res);
            if (v < 0) continue;
            x[n] = r->series[i].t;
            y[n++] = v;
        }
        s[l] = (series){names[l], x, y, n, 0};
        any |= n > 0;
    }
    if (any) {
        double vl[PB_MAX_STAGES];
        for (int k = 0; k < r->nstages; k++) vl[k] = r->stages[k].start_s;
        pb_rep_svg_chart(b, title, "seconds", yl, s, nl, 0, vl, r->nstages);
    }
    free(buf);
}

static void soak_chart(px_buf *b, const pb_run_result *r, const char *title, const char *yl,
                       const pb_leak_result *l, double (*get)(const pb_res *))
{
    int n = r->npoints;
    double *buf = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1) * 2);
    if (!buf) return;
    double *x = buf, *y = buf + n, fx[2], fy[2];
    int k = 0;
    for (int i = 0; i < n; i++) {
        double v = get(&r->series[i].res);
        if (v < 0) continue;
        x[k] = r->series[i].t;
        y[k++] = v;
    }
    series s[3] = {{"per-second minimum", x, y, k, 0}, {"window minima", l->win_t, l->win_min, l->nwin, 0}};
    int ns = 2;
    if (l->nwin >= 2) {
        fx[0] = l->win_t[0];
        fx[1] = l->win_t[l->nwin - 1];
        fy[0] = l->intercept + l->slope_per_h / 3600 * fx[0];
        fy[1] = l->intercept + l->slope_per_h / 3600 * fx[1];
        s[2] = (series){"least-squares fit", fx, fy, 2, 0};
        ns = 3;
    }
    if (k) pb_rep_svg_chart(b, title, "seconds", yl, s, ns, 0, NULL, 0);
    free(buf);
}

static double g_rss_min(const pb_res *r) { return pb_agg_min(&r->rss_mb); }
static double g_fds_min(const pb_res *r) { return pb_agg_min(&r->fds); }
static double g_gpu_min(const pb_res *r) { return pb_agg_min(&r->gpu_mem_mb); }
static double g_gpup_min(const pb_res *r) { return pb_agg_min(&r->gpu_proc_mem_mb); }

static void html_soak(px_buf *b, const pb_run_result *r, const pb_analysis *a, const pb_report_meta *m)
{
    const pb_soak *s = &a->soak;
    px_buf_printf(b, "<h2>Soak: %s</h2>", s->leak ? "leak suspected" : "no leak detected");
    if (!m->monitored) {
        px_buf_puts(b, "<p>Resources were not monitored; latency: ");
        pb_rep_html_escape(b, s->drift.text);
        px_buf_puts(b, ".</p>");
        return;
    }
    px_buf_printf(b, "<p>From %.0f s (after the warm-up), each resource's minimum in every window is fitted "
                     "with a least-squares line; a leak is suspected when the line explains the minima "
                     "(r&sup2; &ge; 0.8), they rise by more than the noise and no single step explains them "
                     "better.</p><table><tr><th>resource</th><th>verdict</th><th>slope /h</th><th>r&sup2;</th>"
                     "<th>rise</th><th>windows</th></tr>",
                  s->from_s);
    const pb_leak_result *ls[3] = {&s->rss, s->have_gpu ? &s->gpu : NULL, &s->fds};
    const char *names[3] = {"RSS (MB)", s->gpu_is_process ? "GPU memory, target (MB)" : "GPU memory, devices (MB)",
                            "open descriptors"};
    for (int i = 0; i < 3; i++) {
        if (!ls[i]) continue;
        px_buf_printf(b, "<tr><td style='text-align:left'>%s</td><td style='text-align:left'>", names[i]);
        pb_rep_html_escape(b, ls[i]->text);
        px_buf_printf(b, "</td><td>%.2f</td><td>%.2f</td><td>%+.1f</td><td>%d x %.0f s</td></tr>", ls[i]->slope_per_h,
                      ls[i]->r2, ls[i]->rise, ls[i]->nwin, ls[i]->window_s);
    }
    px_buf_puts(b, "</table><p>Latency: ");
    pb_rep_html_escape(b, s->drift.text);
    px_buf_puts(b, ".</p>");
    soak_chart(b, r, "RSS: window minima and the fitted line", "MB", &s->rss, g_rss_min);
    if (s->have_gpu)
        soak_chart(b, r, "GPU memory: window minima and the fitted line", "MB", &s->gpu,
                   s->gpu_is_process ? g_gpup_min : g_gpu_min);
    soak_chart(b, r, "Open descriptors: window minima and the fitted line", "descriptors", &s->fds, g_fds_min);
}

static void print_monitor_line(FILE *f, const void *m) { pb_rep_monitor_line(f, m); }

static void html_resources(px_buf *b, const pb_run_result *r, const pb_analysis *a, const pb_report_meta *m)
{
    px_buf_puts(b, "<h2>Resources</h2><p>");
    pb_rep_html_printed(b, print_monitor_line, m, 0);
    px_buf_puts(b, "</p>");
    html_res_table(b, a, "Target process", &pb_rep_proc_cols);
    if (a->ngpu > 0) html_res_table(b, a, "GPU", &pb_rep_gpu_cols);
    html_res_table(b, a, "System", &pb_rep_sys_cols);
    if (!r->npoints) return;
    px_buf_puts(b, "<h3>Resources over time (same axis as the load; dashed lines: stage starts)</h3>");
    {
        const char *n[] = {"process (mean)", "busiest thread (max)", "busiest core (max)"};
        res_get g[] = {g_cpu, g_thr, g_core};
        res_chart(b, r, "CPU", "% of one core", n, g, 3);
    }
    {
        const char *n[] = {"RSS (mean)", "RSS (max)"};
        res_get g[] = {g_rss, g_rss_max};
        res_chart(b, r, "Target memory", "MB", n, g, 2);
    }
    if (a->ngpu > 0) {
        const char *n[] = {"GPU util (mean)", "GPU util (peak)"};
        res_get g[] = {g_gu, g_gp};
        res_chart(b, r, "GPU utilisation", "%", n, g, 2);
        const char *n2[] = {"GPU memory used", "target's GPU memory"};
        res_get g2[] = {g_gmem, g_gpmem};
        res_chart(b, r, "GPU memory", "MB", n2, g2, 2);
    }
    {
        const char *n[] = {"write IOPS", "write latency (ms)"};
        res_get g[] = {g_iops, g_await};
        res_chart(b, r, "Disk holding the outputs", "per second / ms", n, g, 2);
    }
}

static void print_verdicts(FILE *f, const void *a) { pb_rep_verdicts(f, a, 0); }

/* The head, the setup line, the summary table, the verdicts and hints. */
static void html_summary(px_buf *b, const pb_analysis *a, const pb_report_meta *m)
{
    pb_rep_html_head(b, m, "body{max-width:980px}td,th{text-align:right}figure{margin:1em 0}");
    px_buf_puts(b, ", profile ");
    pb_rep_html_escape(b, m->profile);
    px_buf_puts(b, ", payloads: ");
    pb_rep_html_escape(b, m->payloads);
    px_buf_printf(b, ". %s.</p><p><code>", m->open_loop ? "Open loop (latency from intended send time)"
                                                         : "Closed loop (users send, wait, think)");
    pb_rep_html_escape(b, m->cmdline);
    px_buf_printf(b, "</code></p><table><tr><th>%s</th><th>QPS</th><th>mean ms</th><th>P50</th><th>P95</th>"
                     "<th>P99</th><th>P99.9</th><th>max</th><th>errors</th><th>requests</th></tr>",
                  pb_rep_load_name(a));
    for (int k = 0; k < a->n; k++) {
        const pb_stage_summary *s = &a->s[k];
        px_buf_printf(b, "<tr%s><td>%g</td><td>%.2f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td>"
                         "<td>%.1f</td><td>%.1f</td><td>%.2f%%</td><td>%llu</td></tr>",
                      k == a->sweet ? " style='background:#e8f6e8'" : "", s->load, s->qps, s->mean_ms,
                      s->p50_ms, s->p95_ms, s->p99_ms, s->p999_ms, s->max_ms, 100 * s->error_rate,
                      (unsigned long long)s->requests);
    }
    px_buf_puts(b, "</table><p>");
    pb_rep_html_printed(b, print_verdicts, a, 1);
    px_buf_puts(b, "</p>");
    if (a->nhints) {
        px_buf_puts(b, "<h2>What the data says</h2><ul>");
        for (int i = 0; i < a->nhints; i++) {
            px_buf_puts(b, "<li>");
            pb_rep_html_escape(b, a->hints[i]);
            px_buf_puts(b, "</li>");
        }
        px_buf_puts(b, "</ul>");
    }
}

/* QPS and the latency percentiles against the stages' load. */
static void html_load_charts(px_buf *b, const pb_analysis *a)
{
    double xs[PB_MAX_STAGES], q[PB_MAX_STAGES], p50[PB_MAX_STAGES], p95[PB_MAX_STAGES], p99[PB_MAX_STAGES];
    for (int k = 0; k < a->n; k++) {
        xs[k] = a->s[k].load;
        q[k] = a->s[k].qps;
        p50[k] = a->s[k].p50_ms;
        p95[k] = a->s[k].p95_ms;
        p99[k] = a->s[k].p99_ms;
    }
    const char *xl = a->open_loop ? "offered load (requests/s)" : "users";
    int xlog = a->n > 2 && xs[a->n - 1] / (xs[0] > 0 ? xs[0] : 1) >= 20;
    px_buf_puts(b, "<h2>Throughput and latency against load</h2>");
    series sq[] = {{"QPS", xs, q, a->n, 0}};
    pb_rep_svg_chart(b, "QPS vs load", xl, "successful requests/s", sq, 1, xlog, NULL, 0);
    series sl[] = {{"p50", xs, p50, a->n, 0}, {"p95", xs, p95, a->n, 0}, {"p99", xs, p99, a->n, 0}};
    pb_rep_svg_chart(b, "Latency percentiles vs load", xl, "ms", sl, 3, xlog, NULL, 0);
}

/* Each stage's latency histogram, re-binned onto one log axis shared by
 * all stages so their shapes compare at a glance. */
static void html_histograms(px_buf *b, const pb_run_result *r, const pb_analysis *a)
{
    char nm[64]; /* a stage's name (pb_rep_stage_name) */
    px_buf_puts(b, "<h2>Latency distribution per stage</h2>");
    double lo = INFINITY, hi = 0;
    for (int k = 0; k < r->nstages; k++) {
        const px_hist *h = &r->stages[k].acc.lat;
        if (!h->count) continue;
        if ((double)h->min < lo) lo = (double)h->min;
        if ((double)h->max > hi) hi = (double)h->max;
    }
    enum { NB = 48 };
    if (hi <= 0) return;
    if (lo < 1000) lo = 1000;
    if (hi <= lo) hi = lo * 2;
    double l0 = log10(lo / 1e6), l1 = log10(hi / 1e6) + 1e-9;
    for (int k = 0; k < r->nstages; k++) {
        const px_hist *h = &r->stages[k].acc.lat;
        if (!h->count) continue;
        double bx[NB], by[NB];
        for (int i = 0; i < NB; i++) {
            bx[i] = pow(10, l0 + (l1 - l0) * i / NB);
            by[i] = 0;
        }
        int it = -1;
        uint64_t blo, bhi, c;
        while (px_hist_next(h, &it, &blo, &bhi, &c) == 0) {
            double v = ((double)blo + (double)bhi) / 2 / 1e6;
            int i = (int)((log10(v > 0 ? v : 1e-6) - l0) / (l1 - l0) * NB);
            if (i < 0) i = 0;
            if (i >= NB) i = NB - 1;
            by[i] += 100.0 * (double)c / (double)h->count;
        }
        char title[96];
        snprintf(title, sizeof title, "%s %s: %llu requests", pb_rep_load_name(a),
                 pb_rep_stage_name(a, k, nm, sizeof nm), (unsigned long long)h->count);
        series sh[] = {{"% of requests", bx, by, NB, 1}};
        pb_rep_svg_chart(b, title, "latency (ms, log scale)", "% of requests", sh, 1, 1, NULL, 0);
    }
}

/* Throughput, errors and p95 per second, the stage starts marked. */
static void html_timeseries(px_buf *b, const pb_run_result *r)
{
    if (!r->npoints) return;
    px_buf_puts(b, "<h2>Time series (per second; dashed lines: stage starts)</h2>");
    double *t = malloc(sizeof(double) * (size_t)r->npoints * 4);
    if (!t) return;
    double *tq = t + r->npoints, *tp = tq + r->npoints, *te = tp + r->npoints;
    for (int i = 0; i < r->npoints; i++) {
        t[i] = r->series[i].t;
        tq[i] = r->series[i].qps;
        tp[i] = r->series[i].p95_ms;
        te[i] = r->series[i].dt > 0 ? (double)r->series[i].errors / r->series[i].dt : 0;
    }
    double vl[PB_MAX_STAGES];
    for (int k = 0; k < r->nstages; k++) vl[k] = r->stages[k].start_s;
    series s1[] = {{"QPS", t, tq, r->npoints, 0}, {"errors/s", t, te, r->npoints, 0}};
    pb_rep_svg_chart(b, "Throughput over time", "seconds", "per second", s1, 2, 0, vl, r->nstages);
    series s2[] = {{"p95 ms", t, tp, r->npoints, 0}};
    pb_rep_svg_chart(b, "p95 latency over time", "seconds", "ms", s2, 1, 0, vl, r->nstages);
    free(t);
}

/* The size matrix's table and its latency and memory against megapixels. */
static void html_sizes(px_buf *b, const pb_analysis *a)
{
    const char *title;
    const pb_rcols *cols = pb_rep_matrix_cols(a, &title);
    px_buf_puts(b, a->n && a->s[0].pixels > 0 ? "<h2>Size matrix</h2>" : "<h2>Parameter matrix</h2>");
    html_res_table(b, a, title, cols);
    double mp[PB_MAX_STAGES], rssv[PB_MAX_STAGES], lat[PB_MAX_STAGES], gm[PB_MAX_STAGES];
    int n = 0, ng = 0;
    for (int k = 0; k < a->n; k++) {
        if (a->s[k].pixels <= 0) continue;
        mp[n] = a->s[k].pixels / 1e6;
        rssv[n] = a->s[k].peak_rss_mb;
        lat[n] = pb_rep_mean_ms(&a->s[k]);
        gm[n] = pb_rep_gpu_mem_any(&a->s[k]);
        ng += gm[n] >= 0;
        n++;
    }
    if (n < 2) return;
    series s1[] = {{"mean latency (ms)", mp, lat, n, 0}};
    pb_rep_svg_chart(b, "Latency against image size", "megapixels", "ms", s1, 1, 0, NULL, 0);
    series s2[] = {{"peak RSS (MB)", mp, rssv, n, 0}, {"peak GPU memory (MB)", mp, gm, ng == n ? n : 0, 0}};
    pb_rep_svg_chart(b, "Memory against image size", "megapixels", "MB", s2, ng == n ? 2 : 1, 0, NULL, 0);
}

int pb_report_write_html(const char *path, const pb_run_result *r, const pb_analysis *a, const pb_report_meta *m)
{
    px_buf b;
    px_buf_init(&b, (size_t)1 << 30);
    html_summary(&b, a, m);
    html_load_charts(&b, a);
    html_histograms(&b, r, a);
    html_timeseries(&b, r);
    if (a->matrix) html_sizes(&b, a);
    if (a->soak.on) html_soak(&b, r, a, m);
    if (m->monitored) html_resources(&b, r, a, m);
    else px_buf_puts(&b, "<h2>Resources</h2><p>Not monitored (a remote target, or --no-monitor).</p>");
    px_buf_puts(&b, "<p>Numbers: report.json (schema " PB_SCHEMA "), CSV files beside this page.</p></body></html>\n");
    return pb_rep_save_buf(path, &b);
}
