/*
 * report.c — terminal, Markdown, JSON, HTML+SVG and CSV writers (see
 * report.h). Every writer reads the same pb_analysis, so the formats never
 * disagree; report.json carries everything, the others are views of it.
 */
#include "bench/report.h"
#include "bench/report_util.h"

#include "bench/spec.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/jsonw.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Writes b to path and frees it; 0 or PX_EIO. */
int pb_rep_save_buf(const char *path, px_buf *b)
{
    FILE *f = fopen(path, "w");
    int ok = f && fwrite(b->data, 1, b->len, f) == b->len;
    if (f && fclose(f) != 0) ok = 0;
    px_buf_free(b);
    return ok ? 0 : PX_EIO;
}

static const char *load_name(const pb_analysis *a)
{
    if (a->matrix) return a->n && a->s[0].pixels > 0 ? "size" : "cell"; /* else a parameter matrix */
    return a->open_loop ? "rate" : "users";
}

/* The stage's name in tables: its load, or its image size in a matrix. */
static const char *stage_name(const pb_analysis *a, int k, char *buf, size_t cap)
{
    if (a->s[k].label[0]) snprintf(buf, cap, "%s", a->s[k].label);
    else snprintf(buf, cap, "%g", a->s[k].load);
    return buf;
}

/* --- resource columns, shared by the Markdown, HTML and CSV tables -------- */

typedef struct rcol {
    const char *head, *csv;
    double (*get)(const pb_stage_summary *s);
    int decimals;
} rcol;

static double c_cpu(const pb_stage_summary *s) { return pb_agg_mean(&s->res.cpu); }
static double c_cpu_max(const pb_stage_summary *s) { return pb_agg_max(&s->res.cpu); }
static double c_thr(const pb_stage_summary *s) { return pb_agg_max(&s->res.thread_cpu); }
static double c_rss(const pb_stage_summary *s) { return pb_agg_mean(&s->res.rss_mb); }
static double c_rss_peak(const pb_stage_summary *s) { return s->peak_rss_mb; }
static double c_threads(const pb_stage_summary *s) { return pb_agg_max(&s->res.threads); }
static double c_fds(const pb_stage_summary *s) { return pb_agg_max(&s->res.fds); }
static double c_ctx(const pb_stage_summary *s) { return pb_agg_mean(&s->res.ctxsw); }
static double c_wr(const pb_stage_summary *s) { return pb_agg_mean(&s->res.write_mbps); }
static double c_cli(const pb_stage_summary *s) { return s->cli_cpu; }
static double c_gu(const pb_stage_summary *s) { return pb_agg_mean(&s->res.gpu_util); }
static double c_gp(const pb_stage_summary *s) { return pb_agg_max(&s->res.gpu_util_peak); }
static double c_gmu(const pb_stage_summary *s) { return pb_agg_mean(&s->res.gpu_mem_util); }
static double c_gm(const pb_stage_summary *s) { return pb_agg_max(&s->res.gpu_mem_mb); }
static double c_gpm(const pb_stage_summary *s) { return pb_agg_max(&s->res.gpu_proc_mem_mb); }
static double c_gw(const pb_stage_summary *s) { return pb_agg_mean(&s->res.gpu_power_w); }
static double c_gt(const pb_stage_summary *s) { return pb_agg_max(&s->res.gpu_temp_c); }
static double c_gclk(const pb_stage_summary *s) { return pb_agg_mean(&s->res.gpu_sm_mhz); }
static double c_eff(const pb_stage_summary *s) { return s->qps_per_gpu; }
static double c_sys(const pb_stage_summary *s) { return pb_agg_mean(&s->res.sys_cpu); }
static double c_core(const pb_stage_summary *s) { return pb_agg_max(&s->res.core_max); }
static double c_avail(const pb_stage_summary *s) { return pb_agg_min(&s->res.mem_avail_mb); }
static double c_iops(const pb_stage_summary *s) { return pb_agg_mean(&s->res.disk_w_iops); }
static double c_iops_max(const pb_stage_summary *s) { return pb_agg_max(&s->res.disk_w_iops); }
static double c_await(const pb_stage_summary *s) { return pb_agg_mean(&s->res.disk_w_await_ms); }
static double c_await_max(const pb_stage_summary *s) { return pb_agg_max(&s->res.disk_w_await_ms); }
static double c_dmb(const pb_stage_summary *s) { return pb_agg_mean(&s->res.disk_w_mbps); }

static const rcol proc_cols[] = {
    {"CPU avg %", "cpu_percent_mean", c_cpu, 0},
    {"CPU peak %", "cpu_percent_max", c_cpu_max, 0},
    {"single-core peak %", "busiest_thread_percent_max", c_thr, 0},
    {"RSS avg (MB)", "rss_mb_mean", c_rss, 1},
    {"RSS peak (MB)", "rss_mb_peak", c_rss_peak, 1},
    {"threads", "threads_max", c_threads, 0},
    {"fds", "fds_max", c_fds, 0},
    {"ctx switches/s", "context_switches_per_s", c_ctx, 0},
    {"storage writes (MB/s)", "storage_write_mb_per_s", c_wr, 2},
    {"pixbench CPU %", "client_cpu_percent", c_cli, 0},
};
static const rcol gpu_cols[] = {
    {"GPU util avg %", "gpu_util_percent_mean", c_gu, 0},
    {"GPU util peak %", "gpu_util_percent_peak", c_gp, 0},
    {"mem util avg %", "gpu_mem_util_percent_mean", c_gmu, 0},
    {"GPU mem peak (MB)", "gpu_mem_mb_max", c_gm, 0},
    {"target's GPU mem peak (MB)", "gpu_process_mem_mb_max", c_gpm, 0},
    {"power avg (W)", "gpu_power_w_mean", c_gw, 0},
    {"temp max (C)", "gpu_temp_c_max", c_gt, 0},
    {"SM clock avg (MHz)", "gpu_sm_mhz_mean", c_gclk, 0},
    {"QPS per GPU-util %", "qps_per_gpu_util_percent", c_eff, 3},
};
static const rcol sys_cols[] = {
    {"CPU avg % (all cores)", "system_cpu_percent_mean", c_sys, 0},
    {"busiest core peak %", "busiest_core_percent_max", c_core, 0},
    {"available memory min (MB)", "mem_available_mb_min", c_avail, 0},
    {"disk write IOPS avg", "disk_write_iops_mean", c_iops, 0},
    {"disk write IOPS peak", "disk_write_iops_max", c_iops_max, 0},
    {"write latency avg (ms)", "disk_write_await_ms_mean", c_await, 2},
    {"write latency peak (ms)", "disk_write_await_ms_max", c_await_max, 2},
    {"disk writes (MB/s)", "disk_write_mb_per_s_mean", c_dmb, 2},
};
static double c_mp(const pb_stage_summary *s) { return s->pixels / 1e6; }
static double c_qps(const pb_stage_summary *s) { return s->qps; }
static double c_mean(const pb_stage_summary *s) { return s->ok ? s->mean_ms : -1; }
static double c_p95(const pb_stage_summary *s) { return s->ok ? s->p95_ms : -1; }
static double c_gmem_any(const pb_stage_summary *s)
{
    double p = pb_agg_max(&s->res.gpu_proc_mem_mb);
    return p >= 0 ? p : pb_agg_max(&s->res.gpu_mem_mb);
}
/* the seed's small/medium/large table: latency, GPU memory and util, CPU, RSS */
static const rcol size_cols[] = {
    {"megapixels", "megapixels", c_mp, 2},
    {"QPS", "qps", c_qps, 2},
    {"mean latency (ms)", "mean_ms", c_mean, 1},
    {"P95 (ms)", "p95_ms", c_p95, 1},
    {"peak GPU mem (MB)", "peak_gpu_mem_mb", c_gmem_any, 0},
    {"GPU util peak %", "gpu_util_percent_peak", c_gp, 0},
    {"single-core peak %", "busiest_thread_percent_max", c_thr, 0},
    {"CPU avg %", "cpu_percent_mean", c_cpu, 0},
    {"peak RSS (MB)", "rss_mb_peak", c_rss_peak, 1},
    {"RSS avg (MB)", "rss_mb_mean", c_rss, 1},
};

#define NCOLS(c) ((int)(sizeof(c) / sizeof((c)[0])))

static void fmt_val(double v, int decimals, char *out, size_t cap)
{
    if (v < 0 || !isfinite(v)) snprintf(out, cap, "-");
    else snprintf(out, cap, "%.*f", decimals, v);
}

static void md_res_table(FILE *f, const pb_analysis *a, const char *title, const rcol *c, int nc)
{
    fprintf(f, "\n### %s\n\n| %s |", title, load_name(a));
    for (int i = 0; i < nc; i++) fprintf(f, " %s |", c[i].head);
    fprintf(f, "\n|---:|");
    for (int i = 0; i < nc; i++) fprintf(f, "---:|");
    fprintf(f, "\n");
    for (int k = 0; k < a->n; k++) {
        char nm[64], v[32];
        fprintf(f, "| %s |", stage_name(a, k, nm, sizeof nm));
        for (int i = 0; i < nc; i++) {
            fmt_val(c[i].get(&a->s[k]), c[i].decimals, v, sizeof v);
            fprintf(f, " %s |", v);
        }
        fprintf(f, "\n");
    }
}

static void monitor_line(FILE *f, const pb_report_meta *m)
{
    fprintf(f, "Sampled by pixbench's monitor every %g s, beside the load (each per-second point "
               "holds the samples that fell in it); figures are over each stage's measured seconds. ",
            m->mon_interval_s);
    if (m->mon_pid) fprintf(f, "Target process: pid %d. ", m->mon_pid);
    else fprintf(f, "No target process known (give --pid): system and GPU only. ");
    fprintf(f, "GPU: %s. Disk: %s. Peak RSS: %s.\n", m->gpu_status ? m->gpu_status : "-",
            m->disk_status ? m->disk_status : "-",
            m->peak_reset ? "the kernel's peak (VmHWM), reset at each stage start" : "the largest sample");
}

static void fmt_ms(double ms, char *out, size_t cap)
{
    if (ms < 10) snprintf(out, cap, "%.2f", ms);
    else if (ms < 1000) snprintf(out, cap, "%.1f", ms);
    else snprintf(out, cap, "%.0f", ms);
}

static void verdicts(FILE *f, const pb_analysis *a, int md)
{
    char nm[64]; /* a stage's name (stage_name) */
    const char *ln = a->open_loop ? " req/s" : " users";
    const char *b = md ? "**" : "";
    if (a->matrix) {
        const pb_sizefit *z = &a->sizes;
        if (z->n >= 2)
            fprintf(f, "%sMean latency against pixels:%s %.1f ms + %.1f ms per megapixel (r\xc2\xb2 %.2f)\n", b, b,
                    z->lat_a, z->lat_b, z->lat_r2);
        if (z->have_rss)
            fprintf(f, "%s%sPeak RSS against pixels:%s %.1f MB + %.1f MB per megapixel (r\xc2\xb2 %.2f)\n",
                    md ? "\n" : "", b, b, z->rss_a, z->rss_b, z->rss_r2);
        if (z->have_gpu)
            fprintf(f, "%s%sPeak GPU memory%s against pixels:%s %.0f MB + %.0f MB per megapixel (r\xc2\xb2 %.2f)\n",
                    md ? "\n" : "", b, z->gpu_is_process ? " (target)" : "", b, z->gpu_a, z->gpu_b, z->gpu_r2);
        int sized = 0; /* a text-to-image matrix's cells have no pixel count to fit */
        for (int k = 0; k < a->n; k++) sized |= a->s[k].pixels > 0;
        if (z->n < 2 && sized) fprintf(f, "%sSize fit:%s needs two sizes or more\n", b, b);
    } else if (a->saturation >= 0)
        fprintf(f, "%sSaturation point:%s %g%s (%.1f QPS, within 10%% of the peak %.1f; more load "
                   "did not add throughput)\n",
                b, b, a->s[a->saturation].load, ln, a->s[a->saturation].qps, a->peak_qps);
    else if (a->n > 1)
        fprintf(f, "%sSaturation point:%s not reached in the tested range (QPS still grows at the "
                   "highest load)\n", b, b);
    /* a size matrix has one load: no best load to point at */
    if (!a->matrix && a->sweet >= 0)
        fprintf(f, "%s%sSweet spot:%s %g%s: %.1f QPS, p95 %.1f ms, errors %.2f%% (least load within 5%% "
                   "of the best QPS with errors under %.1f%%%s)\n",
                md ? "\n" : "", b, b, a->s[a->sweet].load, ln, a->s[a->sweet].qps, a->s[a->sweet].p95_ms,
                100 * a->s[a->sweet].error_rate, 100 * a->err_threshold, a->has_slo ? " and the SLO met" : "");
    else if (!a->matrix)
        fprintf(f, "%s%sSweet spot:%s none: every stage has errors at or above %.1f%%%s\n", md ? "\n" : "", b, b,
                100 * a->err_threshold, a->has_slo ? " or breaks the SLO" : "");
    if (a->has_slo) {
        if (a->slo_broken_stages == 0) fprintf(f, "%s%sSLO:%s met in every stage\n", md ? "\n" : "", b, b);
        for (int k = 0; k < a->n; k++)
            if (a->s[k].slo_broken)
                fprintf(f, "%s%sSLO broken%s at %s%s: %s\n", md ? "\n" : "", b, b, stage_name(a, k, nm, sizeof nm), a->matrix ? "" : ln,
                        a->s[k].slo_why);
    }
}

void pb_report_table(FILE *f, const pb_analysis *a, const pb_report_meta *m)
{
    char nm[64]; /* a stage's name (stage_name) */
    (void)m;
    int w = a->matrix ? 24 : 7;
    fprintf(f, "\n %*s | %9s | %9s | %9s | %9s | %9s | %7s | %s\n", w, load_name(a), "QPS", "mean ms",
            "P50 ms", "P95 ms", "P99 ms", "errors", "requests");
    fprintf(f, " %.*s-+-----------+-----------+-----------+-----------+-----------+---------+---------\n", w,
            "------------------------");
    for (int k = 0; k < a->n; k++) {
        const pb_stage_summary *s = &a->s[k];
        char mean[16], p50[16], p95[16], p99[16];
        fmt_ms(s->mean_ms, mean, sizeof mean);
        fmt_ms(s->p50_ms, p50, sizeof p50);
        fmt_ms(s->p95_ms, p95, sizeof p95);
        fmt_ms(s->p99_ms, p99, sizeof p99);
        fprintf(f, " %*s | %9.2f | %9s | %9s | %9s | %9s | %6.2f%% | %llu%s\n", w, stage_name(a, k, nm, sizeof nm), s->qps, mean, p50,
                p95, p99, 100 * s->error_rate, (unsigned long long)s->requests,
                s->complete ? "" : " (cut short)");
    }
    fprintf(f, "\n");
    verdicts(f, a, 0);
}

/* --- JSON ----------------------------------------------------------------- */

static void jkey(px_buf *b, const char *k)
{
    px_json_str(b, k);
    px_buf_puts(b, ":");
}

void pb_rep_jnum(px_buf *b, const char *k, double v, int comma)
{
    jkey(b, k);
    px_json_num(b, v);
    if (comma) px_buf_puts(b, ",");
}

void pb_rep_jstr(px_buf *b, const char *k, const char *v, int comma)
{
    jkey(b, k);
    px_json_str(b, v);
    if (comma) px_buf_puts(b, ",");
}

/* A number, or null when unknown (negative). */
void pb_rep_jopt(px_buf *b, const char *k, double v, int comma)
{
    jkey(b, k);
    if (v < 0 || !isfinite(v)) px_buf_puts(b, "null");
    else px_json_num(b, v);
    if (comma) px_buf_puts(b, ",");
}

static void json_throttle(px_buf *b, unsigned long long r)
{
    px_buf_puts(b, "\"throttle_reasons\":[");
    char names[256];
    px_nvml_throttle_names(r, names, sizeof names);
    int first = 1;
    for (char *save = NULL, *t = r ? strtok_r(names, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
        if (!first) px_buf_puts(b, ",");
        px_json_str(b, t);
        first = 0;
    }
    px_buf_puts(b, "]");
}

/* A stage's resources: every column of the tables, grouped. */
static void json_stage_res(px_buf *b, const pb_stage_summary *s, int ngpu, int have_pid)
{
    const pb_res *r = &s->res;
    if (!r->n) {
        px_buf_puts(b, "null");
        return;
    }
    /* alive is known only of a watched process: null otherwise */
    px_buf_printf(b, "{\"samples\":%d,\"target_alive\":%s,", r->n,
                  !have_pid ? "null" : r->alive ? "true" : "false");
    px_buf_puts(b, "\"process\":{");
    for (int i = 0; i < NCOLS(proc_cols); i++) pb_rep_jopt(b, proc_cols[i].csv, proc_cols[i].get(s), 1);
    pb_rep_jopt(b, "busiest_thread_percent_mean", pb_agg_mean(&r->thread_cpu), 1);
    pb_rep_jopt(b, "storage_read_mb_per_s", pb_agg_mean(&r->read_mbps), 0);
    px_buf_puts(b, "},\"system\":{");
    for (int i = 0; i < NCOLS(sys_cols); i++) pb_rep_jopt(b, sys_cols[i].csv, sys_cols[i].get(s), i + 1 < NCOLS(sys_cols));
    px_buf_puts(b, "},\"gpu\":");
    if (ngpu <= 0) {
        px_buf_puts(b, "null}");
        return;
    }
    px_buf_puts(b, "{");
    for (int i = 0; i < NCOLS(gpu_cols); i++) pb_rep_jopt(b, gpu_cols[i].csv, gpu_cols[i].get(s), 1);
    pb_rep_jopt(b, "gpu_power_w_max", pb_agg_max(&r->gpu_power_w), 1);
    json_throttle(b, r->throttle);
    px_buf_puts(b, "}}");
}

/* A per-second point's resources (compact: the charts' lines). */
static void json_point_res(px_buf *b, const pb_res *r)
{
    if (!r->n) {
        px_buf_puts(b, "null");
        return;
    }
    px_buf_printf(b, "{\"samples\":%d,", r->n);
    pb_rep_jopt(b, "cpu_percent", pb_agg_mean(&r->cpu), 1);
    pb_rep_jopt(b, "busiest_thread_percent", pb_agg_max(&r->thread_cpu), 1);
    pb_rep_jopt(b, "rss_mb", pb_agg_mean(&r->rss_mb), 1);
    pb_rep_jopt(b, "rss_mb_min", pb_agg_min(&r->rss_mb), 1);
    pb_rep_jopt(b, "rss_mb_max", pb_agg_max(&r->rss_mb), 1);
    pb_rep_jopt(b, "fds", pb_agg_min(&r->fds), 1);
    pb_rep_jopt(b, "threads", pb_agg_max(&r->threads), 1);
    pb_rep_jopt(b, "system_cpu_percent", pb_agg_mean(&r->sys_cpu), 1);
    pb_rep_jopt(b, "busiest_core_percent", pb_agg_max(&r->core_max), 1);
    pb_rep_jopt(b, "mem_available_mb", pb_agg_min(&r->mem_avail_mb), 1);
    pb_rep_jopt(b, "disk_write_iops", pb_agg_mean(&r->disk_w_iops), 1);
    pb_rep_jopt(b, "disk_write_await_ms", pb_agg_mean(&r->disk_w_await_ms), 1);
    pb_rep_jopt(b, "gpu_util_percent", pb_agg_mean(&r->gpu_util), 1);
    pb_rep_jopt(b, "gpu_util_peak_percent", pb_agg_max(&r->gpu_util_peak), 1);
    pb_rep_jopt(b, "gpu_mem_mb", pb_agg_max(&r->gpu_mem_mb), 1);
    pb_rep_jopt(b, "gpu_mem_mb_min", pb_agg_min(&r->gpu_mem_mb), 1);
    pb_rep_jopt(b, "gpu_process_mem_mb", pb_agg_max(&r->gpu_proc_mem_mb), 0);
    px_buf_puts(b, "}");
}

static const char *leak_verdict_name(enum pb_leak_verdict v)
{
    switch (v) {
    case PB_LEAK_SUSPECTED: return "leak_suspected";
    case PB_LEAK_STEP: return "no_leak_step";
    case PB_LEAK_NONE: return "no_leak";
    default: return "too_short";
    }
}

static void json_leak(px_buf *b, const char *k, const pb_leak_result *l, const char *unit)
{
    jkey(b, k);
    px_buf_puts(b, "{");
    pb_rep_jstr(b, "verdict", leak_verdict_name(l->verdict), 1);
    pb_rep_jstr(b, "text", l->text, 1);
    pb_rep_jstr(b, "unit", unit, 1);
    pb_rep_jnum(b, "windows", l->nwin, 1);
    pb_rep_jnum(b, "window_s", l->window_s, 1);
    pb_rep_jnum(b, "slope_per_h", l->slope_per_h, 1);
    pb_rep_jnum(b, "r2", l->r2, 1);
    pb_rep_jnum(b, "rise", l->rise, 1);
    pb_rep_jnum(b, "span_s", l->span_s, 1);
    px_buf_puts(b, "\"window_minima\":[");
    for (int i = 0; i < l->nwin; i++) px_buf_printf(b, "%s[%.3f,%.4f]", i ? "," : "", l->win_t[i], l->win_min[i]);
    px_buf_puts(b, "]}");
}

static void json_soak(px_buf *b, const pb_soak *s)
{
    if (!s->on) {
        px_buf_puts(b, "null");
        return;
    }
    px_buf_printf(b, "{\"leak_suspected\":%s,", s->leak ? "true" : "false");
    pb_rep_jnum(b, "measured_from_s", s->from_s, 1);
    json_leak(b, "rss", &s->rss, "MB");
    px_buf_puts(b, ",\"gpu_memory\":");
    if (s->have_gpu) {
        px_buf_puts(b, "{");
        pb_rep_jstr(b, "of", s->gpu_is_process ? "target_process" : "devices", 1);
        json_leak(b, "fit", &s->gpu, "MB");
        px_buf_puts(b, "}");
    } else {
        px_buf_puts(b, "null");
    }
    px_buf_puts(b, ",");
    json_leak(b, "fds", &s->fds, "fds");
    px_buf_puts(b, ",\"latency\":{");
    pb_rep_jopt(b, "first_ms", s->drift.first_ms, 1);
    pb_rep_jopt(b, "last_ms", s->drift.last_ms, 1);
    pb_rep_jnum(b, "part_s", s->drift.first_s, 1);
    pb_rep_jnum(b, "change", s->drift.change, 1);
    px_buf_printf(b, "\"flagged\":%s,", s->drift.flagged ? "true" : "false");
    pb_rep_jstr(b, "text", s->drift.text, 0);
    px_buf_puts(b, "}}");
}

static void json_fit(px_buf *b, const char *k, int have, double a0, double b1, double r2, int comma)
{
    jkey(b, k);
    if (!have) px_buf_puts(b, "null");
    else px_buf_printf(b, "{\"intercept\":%.6g,\"per_megapixel\":%.6g,\"r2\":%.6g}", a0, b1, r2);
    if (comma) px_buf_puts(b, ",");
}

static void json_sizes(px_buf *b, const pb_analysis *a)
{
    if (!a->matrix) {
        px_buf_puts(b, "null");
        return;
    }
    const pb_sizefit *z = &a->sizes;
    px_buf_printf(b, "{\"load\":%g,\"load_unit\":\"%s\",\"rows\":[", a->n ? a->s[0].load : 0,
                  a->open_loop ? "requests_per_s" : "users");
    for (int k = 0; k < a->n; k++) {
        px_buf_puts(b, k ? ",{" : "{");
        pb_rep_jstr(b, "label", a->s[k].label, 1);
        pb_rep_jnum(b, "pixels", a->s[k].pixels, 1);
        for (int i = 0; i < NCOLS(size_cols); i++)
            pb_rep_jopt(b, size_cols[i].csv, size_cols[i].get(&a->s[k]), i + 1 < NCOLS(size_cols));
        px_buf_puts(b, "}");
    }
    px_buf_puts(b, "],\"fit\":{");
    json_fit(b, "mean_latency_ms", z->n >= 2, z->lat_a, z->lat_b, z->lat_r2, 1);
    json_fit(b, "peak_rss_mb", z->have_rss, z->rss_a, z->rss_b, z->rss_r2, 1);
    json_fit(b, "peak_gpu_mem_mb", z->have_gpu, z->gpu_a, z->gpu_b, z->gpu_r2, 0);
    px_buf_puts(b, "}}");
}

static void json_hist(px_buf *b, const px_hist *h)
{
    /* non-empty buckets as [lo_ns, hi_ns, count]: exact, compact, mergeable */
    px_buf_puts(b, "[");
    int it = -1, first = 1;
    uint64_t lo, hi, c;
    while (px_hist_next(h, &it, &lo, &hi, &c) == 0) {
        px_buf_printf(b, "%s[%llu,%llu,%llu]", first ? "" : ",", (unsigned long long)lo,
                      (unsigned long long)hi, (unsigned long long)c);
        first = 0;
    }
    px_buf_puts(b, "]");
}

static int write_json(const char *path, const pb_run_result *r, const pb_analysis *a,
                      const pb_report_meta *m)
{
    px_buf b;
    px_buf_init(&b, (size_t)1 << 30);
    px_buf_puts(&b, "{");
    pb_rep_jstr(&b, "schema", PB_SCHEMA, 1);
    pb_rep_jstr(&b, "kind", "load", 1);
    pb_rep_jstr(&b, "generator", "pixbench " PB_VERSION, 1);
    pb_rep_jstr(&b, "title", m->title, 1);
    pb_rep_jnum(&b, "started_unix_ms", (double)r->start_wall_ms, 1);
    pb_rep_jnum(&b, "duration_s", r->duration_s, 1);
    px_buf_printf(&b, "\"interrupted\":%s,", r->interrupted ? "true" : "false");
    px_buf_puts(&b, "\"config\":{");
    pb_rep_jstr(&b, "cmdline", m->cmdline, 1);
    pb_rep_jstr(&b, "target", m->target, 1);
    pb_rep_jstr(&b, "profile", m->profile, 1);
    pb_rep_jstr(&b, "payloads", m->payloads, 1);
    pb_rep_jstr(&b, "mode", m->open_loop ? "open" : "closed", 1);
    pb_rep_jstr(&b, "arrivals", m->open_loop ? (m->poisson ? "poisson" : "constant") : NULL, 1);
    pb_rep_jnum(&b, "think_min_s", m->think_lo_s, 1);
    pb_rep_jnum(&b, "think_max_s", m->think_hi_s, 1);
    pb_rep_jnum(&b, "spawn_rate", m->spawn_rate, 1);
    pb_rep_jnum(&b, "threads", m->threads, 1);
    pb_rep_jnum(&b, "connections", m->connections, 1);
    pb_rep_jnum(&b, "warmup_s", m->warmup_s, 1);
    pb_rep_jnum(&b, "stage_s", m->stage_s, 1);
    pb_rep_jnum(&b, "timeout_s", m->timeout_s, 1);
    pb_rep_jnum(&b, "max_wait_s", m->max_wait_s, 1);
    pb_rep_jstr(&b, "check", m->check, 1);
    pb_rep_jstr(&b, "slo", m->slo, 1);
    pb_rep_jnum(&b, "error_threshold", a->err_threshold, 1);
    pb_rep_jnum(&b, "seed", (double)m->seed, 0);
    px_buf_puts(&b, "},\"environment\":{");
    pb_rep_jstr(&b, "host", m->host, 1);
    pb_rep_jstr(&b, "kernel", m->kernel, 1);
    pb_rep_jnum(&b, "cpus", m->cpus, 1);
    pb_rep_jstr(&b, "server", m->server, 0);
    px_buf_printf(&b, "},\"monitor\":{\"enabled\":%s,", m->monitored ? "true" : "false");
    pb_rep_jopt(&b, "interval_s", m->monitored ? m->mon_interval_s : -1, 1);
    pb_rep_jopt(&b, "pid", m->mon_pid > 0 ? m->mon_pid : -1, 1);
    pb_rep_jstr(&b, "gpu", m->gpu_status, 1);
    pb_rep_jnum(&b, "gpus", a->ngpu, 1);
    pb_rep_jstr(&b, "disk", m->disk_status, 1);
    pb_rep_jstr(&b, "peak_rss", m->peak_reset ? "kernel_peak_reset_per_stage" : "largest_sample", 0);
    px_buf_puts(&b, "},\"stages\":[");
    for (int k = 0; k < a->n; k++) {
        const pb_stage_summary *s = &a->s[k];
        px_buf_puts(&b, k ? ",{" : "{");
        pb_rep_jnum(&b, "index", k, 1);
        pb_rep_jnum(&b, "load", s->load, 1);
        pb_rep_jstr(&b, "load_unit", a->open_loop ? "requests_per_s" : "users", 1);
        pb_rep_jnum(&b, "start_s", s->start_s, 1);
        pb_rep_jnum(&b, "warmup_s", s->warmup_s, 1);
        pb_rep_jnum(&b, "measured_s", s->measured_s, 1);
        px_buf_printf(&b, "\"complete\":%s,", s->complete ? "true" : "false");
        pb_rep_jnum(&b, "requests", (double)s->requests, 1);
        pb_rep_jnum(&b, "successes", (double)s->ok, 1);
        pb_rep_jnum(&b, "errors", (double)s->errors, 1);
        pb_rep_jnum(&b, "error_rate", s->error_rate, 1);
        px_buf_puts(&b, "\"errors_by_class\":{");
        for (int c = 0; c < PB_ERR_N; c++) pb_rep_jnum(&b, pb_err_class_name(c), (double)s->err[c], c + 1 < PB_ERR_N);
        px_buf_puts(&b, "},");
        pb_rep_jnum(&b, "late", (double)s->late, 1);
        pb_rep_jnum(&b, "qps", s->qps, 1);
        px_buf_puts(&b, "\"latency_ms\":{");
        pb_rep_jnum(&b, "mean", s->mean_ms, 1);
        pb_rep_jnum(&b, "min", s->min_ms, 1);
        pb_rep_jnum(&b, "p50", s->p50_ms, 1);
        pb_rep_jnum(&b, "p90", s->p90_ms, 1);
        pb_rep_jnum(&b, "p95", s->p95_ms, 1);
        pb_rep_jnum(&b, "p99", s->p99_ms, 1);
        pb_rep_jnum(&b, "p999", s->p999_ms, 1);
        pb_rep_jnum(&b, "max", s->max_ms, 0);
        px_buf_puts(&b, "},");
        pb_rep_jnum(&b, "mb_per_s_in", s->mbps_in, 1);
        pb_rep_jnum(&b, "mb_per_s_out", s->mbps_out, 1);
        pb_rep_jnum(&b, "client_cpu_percent", s->cli_cpu, 1);
        pb_rep_jnum(&b, "server_cpu_percent", s->srv_cpu, 1);
        pb_rep_jnum(&b, "server_rss_mb", s->srv_rss_mb, 1);
        px_buf_puts(&b, "\"stability\":");
        if (s->stable < 0) px_buf_puts(&b, "null,");
        else
            px_buf_printf(&b, "{\"stable\":%s,\"qps_deviation\":%.4f,\"latency_deviation\":%.4f},",
                          s->stable ? "true" : "false", s->stab_qps_dev, s->stab_lat_dev);
        px_buf_puts(&b, "\"server_timing_ms\":{");
        for (int i = 0; i < s->nst; i++) {
            jkey(&b, s->st[i].name);
            px_buf_puts(&b, "{");
            pb_rep_jnum(&b, "count", (double)s->st[i].count, 1);
            pb_rep_jnum(&b, "mean", s->st[i].mean_ms, 1);
            pb_rep_jnum(&b, "p50", s->st[i].p50_ms, 1);
            pb_rep_jnum(&b, "p95", s->st[i].p95_ms, 1);
            pb_rep_jnum(&b, "max", s->st[i].max_ms, 0);
            px_buf_puts(&b, i + 1 < s->nst ? "}," : "}");
        }
        px_buf_puts(&b, "},");
        px_buf_puts(&b, "\"slo\":");
        if (!a->has_slo) px_buf_puts(&b, "null,");
        else {
            px_buf_printf(&b, "{\"met\":%s,\"broken\":", s->slo_broken ? "false" : "true");
            px_json_str(&b, s->slo_broken ? s->slo_why : NULL);
            px_buf_puts(&b, "},");
        }
        pb_rep_jstr(&b, "label", s->label[0] ? s->label : NULL, 1);
        pb_rep_jopt(&b, "pixels", s->pixels > 0 ? s->pixels : -1, 1);
        px_buf_puts(&b, "\"resources\":");
        json_stage_res(&b, s, a->ngpu, m->mon_pid != 0);
        px_buf_puts(&b, ",\"histogram_ns\":");
        json_hist(&b, &r->stages[k].acc.lat);
        px_buf_puts(&b, "}");
    }
    px_buf_puts(&b, "],\"series\":[");
    for (int i = 0; i < r->npoints; i++) {
        const pb_point *p = &r->series[i];
        px_buf_printf(&b, "%s{\"t\":%.3f,\"dt\":%.3f,\"stage\":%d,\"measuring\":%s,\"load\":%g,"
                          "\"active\":%d,\"successes\":%llu,\"errors\":%llu,\"late\":%llu,",
                      i ? "," : "", p->t, p->dt, p->stage, p->measuring ? "true" : "false", p->load,
                      p->active, (unsigned long long)p->ok, (unsigned long long)p->errors,
                      (unsigned long long)p->late);
        pb_rep_jnum(&b, "qps", p->qps, 1);
        pb_rep_jnum(&b, "mean_ms", p->mean_ms, 1);
        pb_rep_jnum(&b, "p50_ms", p->p50_ms, 1);
        pb_rep_jnum(&b, "p95_ms", p->p95_ms, 1);
        pb_rep_jnum(&b, "p99_ms", p->p99_ms, 1);
        pb_rep_jnum(&b, "max_ms", p->max_ms, 1);
        pb_rep_jnum(&b, "client_cpu_percent", p->cli_cpu, 1);
        pb_rep_jnum(&b, "server_cpu_percent", p->srv_cpu, 1);
        pb_rep_jnum(&b, "server_rss_mb", p->srv_rss_mb, 1);
        px_buf_puts(&b, "\"resources\":");
        json_point_res(&b, &p->res);
        px_buf_puts(&b, "}");
    }
    px_buf_puts(&b, "],\"analysis\":{");
    px_buf_puts(&b, "\"saturation_stage\":");
    if (a->saturation >= 0) px_buf_printf(&b, "%d,", a->saturation);
    else px_buf_puts(&b, "null,");
    px_buf_puts(&b, "\"sweet_spot_stage\":");
    if (a->sweet >= 0) px_buf_printf(&b, "%d,", a->sweet);
    else px_buf_puts(&b, "null,");
    pb_rep_jnum(&b, "peak_qps", a->peak_qps, 1);
    px_buf_printf(&b, "\"slo_met\":%s,", !a->has_slo ? "null" : a->slo_broken_stages ? "false" : "true");
    px_buf_puts(&b, "\"hints\":[");
    for (int i = 0; i < a->nhints; i++) {
        if (i) px_buf_puts(&b, ",");
        px_json_str(&b, a->hints[i]);
    }
    px_buf_puts(&b, "]},\"soak\":");
    json_soak(&b, &a->soak);
    px_buf_puts(&b, ",\"sizes\":");
    json_sizes(&b, a);
    px_buf_puts(&b, ",\"faults\":null}\n");
    return pb_rep_save_buf(path, &b);
}

/* --- Markdown ------------------------------------------------------------- */

static void md_leak_row(FILE *f, const char *what, const pb_leak_result *l, const char *unit)
{
    fprintf(f, "| %s | %s | %.2f %s/h | %.2f | %+.1f %s | %d x %.0f s |\n", what, l->text, l->slope_per_h, unit, l->r2,
            l->rise, unit, l->nwin, l->window_s);
}

static void md_soak(FILE *f, const pb_analysis *a, const pb_report_meta *m)
{
    const pb_soak *s = &a->soak;
    fprintf(f, "\n## Soak: %s\n\n", s->leak ? "leak suspected" : "no leak detected");
    if (!m->monitored) {
        fprintf(f, "Resources were not monitored, so only latency drift is judged: %s.\n", s->drift.text);
        return;
    }
    fprintf(f, "After the warm-up (from %.0f s), each resource's minimum in every window is fitted with a "
               "least-squares line: memory that is allocated and freed in cycles leaves its floor flat, a leak "
               "raises it. A leak is suspected when the line explains the minima (r\xc2\xb2 >= 0.8), they rise "
               "by more than the noise (1 MB of RSS, 4 MB of GPU memory, 2 descriptors) and no single step "
               "explains them better.\n\n", s->from_s);
    fprintf(f, "| resource | verdict | slope | r\xc2\xb2 | rise | windows |\n|---|---|---:|---:|---:|---:|\n");
    md_leak_row(f, "RSS", &s->rss, "MB");
    if (s->have_gpu) md_leak_row(f, s->gpu_is_process ? "GPU memory (target)" : "GPU memory (devices)", &s->gpu, "MB");
    md_leak_row(f, "open descriptors", &s->fds, "fds");
    fprintf(f, "\nLatency: %s.\n", s->drift.text);
}

static int write_md(const char *path, const pb_analysis *a, const pb_report_meta *m, const pb_run_result *r)
{
    char nm[64]; /* a stage's name (stage_name) */
    FILE *f = fopen(path, "w");
    if (!f) return PX_EIO;
    char when[64];
    time_t t0 = (time_t)(r->start_wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t0, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    fprintf(f, "# %s\n\n", m->title);
    fprintf(f, "Generated by pixbench %s on %s (%s, %d CPUs, Linux %s), %.0f s.\n\n", PB_VERSION, when,
            m->host, m->cpus, m->kernel, r->duration_s);
    fprintf(f, "## Setup\n\n| | |\n|---|---|\n");
    fprintf(f, "| target | %s%s |\n", m->target, m->server ? " (embedded pixserve)" : "");
    if (m->server) fprintf(f, "| server | `%s` |\n", m->server);
    fprintf(f, "| profile | %s |\n| payloads | %s |\n", m->profile, m->payloads);
    if (m->open_loop)
        fprintf(f, "| load model | open loop, %s arrivals, %d connections, max wait %.1f s; latency from the intended send time |\n",
                m->poisson ? "Poisson" : "constant-rate", m->connections, m->max_wait_s);
    else if (m->think_hi_s > 0)
        fprintf(f, "| load model | closed loop: each user sends, waits for the reply, thinks %.2f-%.2f s (uniform) |\n",
                m->think_lo_s, m->think_hi_s);
    else
        fprintf(f, "| load model | closed loop: each user sends, waits for the reply, sends again (no think time) |\n");
    if (!m->open_loop && m->spawn_rate > 0) fprintf(f, "| spawn rate | %g users/s |\n", m->spawn_rate);
    else if (!m->open_loop) fprintf(f, "| spawn rate | all users at once |\n");
    fprintf(f, "| stages | %d x (%.0f s warm-up + %.0f s measured) |\n", a->n, m->warmup_s, m->stage_s);
    fprintf(f, "| threads | %d |\n| timeout | %.0f s |\n| response check | %s |\n", m->threads,
            m->timeout_s, m->check);
    if (m->slo) fprintf(f, "| SLO | `%s` |\n", m->slo);
    fprintf(f, "| command | `%s` |\n\n", m->cmdline);
    fprintf(f, "## Results\n\nQPS counts successful requests per second of the measured window; "
               "latencies are of successful requests%s.\n\n",
            m->open_loop ? ", from the intended send time" : "");
    fprintf(f, "| %s | QPS | mean (ms) | P50 (ms) | P95 (ms) | P99 (ms) | P99.9 (ms) | max (ms) | error rate | requests |\n",
            load_name(a));
    fprintf(f, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < a->n; k++) {
        const pb_stage_summary *s = &a->s[k];
        fprintf(f, "| %s | %.2f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f%% | %llu%s |\n", stage_name(a, k, nm, sizeof nm),
                s->qps, s->mean_ms, s->p50_ms, s->p95_ms, s->p99_ms, s->p999_ms, s->max_ms,
                100 * s->error_rate, (unsigned long long)s->requests, s->complete ? "" : " (cut short)");
    }
    fprintf(f, "\n");
    verdicts(f, a, 1);
    if (a->nhints) {
        fprintf(f, "\n## What the data says\n\n");
        for (int i = 0; i < a->nhints; i++) fprintf(f, "- %s\n", a->hints[i]);
    }
    if (a->matrix) {
        int sized = a->n && a->s[0].pixels > 0; /* else a text-to-image parameter matrix */
        fprintf(f, "\n## %s\n\nEach %s at %g %s, one after another (the previous %s's requests "
                   "finish before the next starts); peaks are over each stage's measured seconds.\n",
                sized ? "Size matrix" : "Parameter matrix", sized ? "size" : "cell", a->n ? a->s[0].load : 0,
                a->open_loop ? "requests/s" : "users", sized ? "size" : "cell");
        md_res_table(f, a, "Per size", size_cols, NCOLS(size_cols));
        fprintf(f, "\n");
        verdicts(f, a, 1);
    }
    if (a->soak.on) md_soak(f, a, m);
    fprintf(f, "\n## Errors by class\n\n| %s | connect | read | write | timeout | status | check | dropped | late sends |\n",
            load_name(a));
    fprintf(f, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < a->n; k++) {
        const pb_stage_summary *s = &a->s[k];
        fprintf(f, "| %s |", stage_name(a, k, nm, sizeof nm));
        for (int c = 0; c < PB_ERR_N; c++) fprintf(f, " %llu |", (unsigned long long)s->err[c]);
        fprintf(f, " %llu |\n", (unsigned long long)s->late);
    }
    int any_st = 0;
    for (int k = 0; k < a->n; k++) any_st |= a->s[k].nst > 0;
    if (any_st) {
        fprintf(f, "\n## Server stage timings (Server-Timing, mean / p95 ms)\n\n| %s |", load_name(a));
        const pb_stage_summary *ref = NULL;
        for (int k = 0; k < a->n; k++)
            if (a->s[k].nst > (ref ? ref->nst : 0)) ref = &a->s[k];
        for (int i = 0; i < ref->nst; i++) fprintf(f, " %s |", ref->st[i].name);
        fprintf(f, "\n|---:|");
        for (int i = 0; i < ref->nst; i++) fprintf(f, "---:|");
        fprintf(f, "\n");
        for (int k = 0; k < a->n; k++) {
            fprintf(f, "| %s |", stage_name(a, k, nm, sizeof nm));
            for (int i = 0; i < ref->nst; i++) {
                const pb_st_summary *t = NULL;
                for (int j = 0; j < a->s[k].nst; j++)
                    if (!strcmp(a->s[k].st[j].name, ref->st[i].name)) t = &a->s[k].st[j];
                if (t) fprintf(f, " %.1f / %.1f |", t->mean_ms, t->p95_ms);
                else fprintf(f, " - |");
            }
            fprintf(f, "\n");
        }
    }
    fprintf(f, "\n## Resources\n\n");
    if (m->monitored) {
        monitor_line(f, m);
        md_res_table(f, a, "Target process", proc_cols, NCOLS(proc_cols));
        if (a->ngpu > 0) md_res_table(f, a, "GPU", gpu_cols, NCOLS(gpu_cols));
        else fprintf(f, "\n### GPU\n\n%s.\n", m->gpu_status ? m->gpu_status : "no GPU");
        md_res_table(f, a, "System", sys_cols, NCOLS(sys_cols));
    } else {
        fprintf(f, "Not monitored (a remote target, or --no-monitor). pixbench's own CPU: ");
        for (int k = 0; k < a->n; k++) fprintf(f, "%s%.0f%%", k ? ", " : "", a->s[k].cli_cpu < 0 ? 0 : a->s[k].cli_cpu);
        fprintf(f, ".\n");
    }
    int stab = 0;
    for (int k = 0; k < a->n; k++) stab |= a->s[k].stable >= 0;
    if (stab) {
        fprintf(f, "\nStable stages (last 3 windows within 10%%): ");
        for (int k = 0; k < a->n; k++) {
            fprintf(f, "%s%s %s", k ? ", " : "", stage_name(a, k, nm, sizeof nm),
                    a->s[k].stable < 0 ? "not checked" : a->s[k].stable ? "yes" : "no");
        }
        fprintf(f, ".\n");
    }
    fprintf(f, "\nFiles: report.json (every number, schema `%s`), report.html (charts), "
               "stages.csv, timeseries.csv, resources.csv, histograms.csv, server_timing.csv.\n", PB_SCHEMA);
    return fclose(f) == 0 ? 0 : PX_EIO;
}

/* --- CSV ------------------------------------------------------------------ */

static int write_csvs(const char *dir, const pb_run_result *r, const pb_analysis *a)
{
    char nm[64]; /* a stage's name (stage_name) */
    char path[1024];
    snprintf(path, sizeof path, "%s/stages.csv", dir);
    FILE *f = fopen(path, "w");
    if (!f) return PX_EIO;
    fprintf(f, "%s,measured_s,requests,successes,errors,error_rate,qps,mean_ms,p50_ms,p90_ms,p95_ms,"
               "p99_ms,p999_ms,max_ms", load_name(a));
    for (int c = 0; c < PB_ERR_N; c++) fprintf(f, ",err_%s", pb_err_class_name(c));
    fprintf(f, ",late,client_cpu_percent,server_cpu_percent,server_rss_mb\n");
    for (int k = 0; k < a->n; k++) {
        const pb_stage_summary *s = &a->s[k];
        fprintf(f, "%s,%.3f,%llu,%llu,%llu,%.6f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f", stage_name(a, k, nm, sizeof nm),
                s->measured_s, (unsigned long long)s->requests, (unsigned long long)s->ok,
                (unsigned long long)s->errors, s->error_rate, s->qps, s->mean_ms, s->p50_ms, s->p90_ms,
                s->p95_ms, s->p99_ms, s->p999_ms, s->max_ms);
        for (int c = 0; c < PB_ERR_N; c++) fprintf(f, ",%llu", (unsigned long long)s->err[c]);
        fprintf(f, ",%llu,%.1f,%.1f,%.1f\n", (unsigned long long)s->late, s->cli_cpu, s->srv_cpu, s->srv_rss_mb);
    }
    if (fclose(f)) return PX_EIO;
    snprintf(path, sizeof path, "%s/timeseries.csv", dir);
    if (!(f = fopen(path, "w"))) return PX_EIO;
    fprintf(f, "t_s,dt_s,stage,measuring,load,active,successes,errors,late,qps,mean_ms,p50_ms,p95_ms,"
               "p99_ms,max_ms,client_cpu_percent,server_cpu_percent,server_rss_mb,samples,"
               "busiest_thread_percent,rss_mb_min,rss_mb_max,fds,system_cpu_percent,busiest_core_percent,"
               "mem_available_mb,disk_write_iops,disk_write_await_ms,gpu_util_percent,gpu_util_peak_percent,"
               "gpu_mem_mb,gpu_process_mem_mb\n");
    for (int i = 0; i < r->npoints; i++) {
        const pb_point *p = &r->series[i];
        const pb_res *q = &p->res;
        fprintf(f, "%.3f,%.3f,%d,%d,%g,%d,%llu,%llu,%llu,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.1f,%.1f,%.1f,%d",
                p->t, p->dt, p->stage, p->measuring, p->load, p->active, (unsigned long long)p->ok,
                (unsigned long long)p->errors, (unsigned long long)p->late, p->qps, p->mean_ms,
                p->p50_ms, p->p95_ms, p->p99_ms, p->max_ms, p->cli_cpu, p->srv_cpu, p->srv_rss_mb, q->n);
        double v[] = {pb_agg_max(&q->thread_cpu),    pb_agg_min(&q->rss_mb),        pb_agg_max(&q->rss_mb),
                      pb_agg_min(&q->fds),           pb_agg_mean(&q->sys_cpu),      pb_agg_max(&q->core_max),
                      pb_agg_min(&q->mem_avail_mb),  pb_agg_mean(&q->disk_w_iops),  pb_agg_mean(&q->disk_w_await_ms),
                      pb_agg_mean(&q->gpu_util),     pb_agg_max(&q->gpu_util_peak), pb_agg_max(&q->gpu_mem_mb),
                      pb_agg_max(&q->gpu_proc_mem_mb)};
        for (size_t j = 0; j < sizeof v / sizeof v[0]; j++) {
            if (v[j] < 0) fprintf(f, ",");
            else fprintf(f, ",%.3f", v[j]);
        }
        fprintf(f, "\n");
    }
    if (fclose(f)) return PX_EIO;
    /* per stage, every column of the resource tables */
    snprintf(path, sizeof path, "%s/resources.csv", dir);
    if (!(f = fopen(path, "w"))) return PX_EIO;
    fprintf(f, "stage,%s,samples", load_name(a));
    const rcol *groups[] = {proc_cols, gpu_cols, sys_cols};
    int ng[] = {NCOLS(proc_cols), NCOLS(gpu_cols), NCOLS(sys_cols)};
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < ng[g]; i++) fprintf(f, ",%s", groups[g][i].csv);
    fprintf(f, "\n");
    for (int k = 0; k < a->n; k++) {
        fprintf(f, "%d,%s,%d", k, stage_name(a, k, nm, sizeof nm), a->s[k].res.n);
        for (int g = 0; g < 3; g++)
            for (int i = 0; i < ng[g]; i++) {
                double v = groups[g][i].get(&a->s[k]);
                if (v < 0) fprintf(f, ",");
                else fprintf(f, ",%.*f", groups[g][i].decimals + 1, v);
            }
        fprintf(f, "\n");
    }
    if (fclose(f)) return PX_EIO;
    snprintf(path, sizeof path, "%s/histograms.csv", dir);
    if (!(f = fopen(path, "w"))) return PX_EIO;
    fprintf(f, "stage,%s,bucket_lo_ms,bucket_hi_ms,count\n", load_name(a));
    for (int k = 0; k < r->nstages; k++) {
        int it = -1;
        uint64_t lo, hi, c;
        while (px_hist_next(&r->stages[k].acc.lat, &it, &lo, &hi, &c) == 0)
            fprintf(f, "%d,%s,%.6f,%.6f,%llu\n", k, stage_name(a, k, nm, sizeof nm), (double)lo / 1e6,
                    (double)(hi + 1) / 1e6, (unsigned long long)c);
    }
    if (fclose(f)) return PX_EIO;
    snprintf(path, sizeof path, "%s/server_timing.csv", dir);
    if (!(f = fopen(path, "w"))) return PX_EIO;
    fprintf(f, "stage,%s,name,count,mean_ms,p50_ms,p95_ms,max_ms\n", load_name(a));
    for (int k = 0; k < a->n; k++)
        for (int i = 0; i < a->s[k].nst; i++) {
            const pb_st_summary *t = &a->s[k].st[i];
            fprintf(f, "%d,%s,%s,%llu,%.4f,%.4f,%.4f,%.4f\n", k, stage_name(a, k, nm, sizeof nm), t->name,
                    (unsigned long long)t->count, t->mean_ms, t->p50_ms, t->p95_ms, t->max_ms);
        }
    return fclose(f) == 0 ? 0 : PX_EIO;
}

/* --- HTML + SVG ------------------------------------------------------------ */

static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                               "#e377c2", "#17becf"};


static double nice_step(double range, int ticks)
{
    double raw = range / ticks, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

void pb_rep_svg_chart(px_buf *b, const char *title, const char *xl, const char *yl, const series *s,
                      int ns, int xlog, const double *vlines, int nv)
{
    const double W = 640, H = 300, L = 64, R = 16, T = 28, B = 44;
    double x0 = INFINITY, x1 = -INFINITY, y1 = 0;
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < s[i].n; j++) {
            double x = xlog ? log10(s[i].x[j] > 0 ? s[i].x[j] : 1e-3) : s[i].x[j];
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (s[i].y[j] > y1) y1 = s[i].y[j];
        }
    if (!isfinite(x0)) x0 = 0, x1 = 1;
    if (x1 <= x0) x1 = x0 + 1;
    if (y1 <= 0) y1 = 1;
    double ystep = nice_step(y1, 5);
    y1 = ceil(y1 / ystep) * ystep;
    px_buf_printf(b, "<figure><svg viewBox='0 0 %.0f %.0f' width='%.0f' height='%.0f' role='img'>"
                     "<text x='%.0f' y='18' class='t'>%s</text>", W, H, W, H, W / 2, title);
#define PX(x) (L + ((xlog ? log10((x) > 0 ? (x) : 1e-3) : (x)) - x0) / (x1 - x0) * (W - L - R))
#define PY(y) (H - B - (y) / y1 * (H - T - B))
    for (double y = 0; y <= y1 + 1e-9; y += ystep)
        px_buf_printf(b, "<line x1='%.0f' x2='%.0f' y1='%.1f' y2='%.1f' class='g'/><text x='%.0f' y='%.1f' class='yl'>%g</text>",
                      L, W - R, PY(y), PY(y), L - 6, PY(y) + 4, y);
    if (xlog) {
        for (double e = floor(x0); e <= ceil(x1); e++)
            for (int m = 1; m < 10; m += (m == 1 ? 1 : 3)) {
                double v = pow(10, e) * m, lx = log10(v);
                if (lx < x0 - 1e-9 || lx > x1 + 1e-9) continue;
                px_buf_printf(b, "<text x='%.1f' y='%.0f' class='xl'>%g</text>", PX(v), H - B + 16, v);
            }
    } else {
        double xs = nice_step(x1 - x0, 6);
        for (double x = ceil(x0 / xs) * xs; x <= x1 + 1e-9; x += xs)
            px_buf_printf(b, "<text x='%.1f' y='%.0f' class='xl'>%g</text>", PX(x), H - B + 16, x);
    }
    for (int i = 0; i < nv; i++)
        px_buf_printf(b, "<line x1='%.1f' x2='%.1f' y1='%.0f' y2='%.0f' class='v'/>", PX(vlines[i]),
                      PX(vlines[i]), (double)T, H - B);
    px_buf_printf(b, "<line x1='%.0f' x2='%.0f' y1='%.0f' y2='%.0f' class='a'/>", L, W - R, H - B, H - B);
    px_buf_printf(b, "<text x='%.0f' y='%.0f' class='xt'>%s</text><text x='14' y='%.0f' class='yt' transform='rotate(-90 14 %.0f)'>%s</text>",
                  (L + W - R) / 2, H - 6, xl, (T + H - B) / 2, (T + H - B) / 2, yl);
    for (int i = 0; i < ns; i++) {
        const char *c = colors[i % 8];
        if (s[i].bars) {
            double bw = s[i].n > 1 ? (PX(s[i].x[1]) - PX(s[i].x[0])) * 0.9 : 10;
            for (int j = 0; j < s[i].n; j++)
                if (s[i].y[j] > 0)
                    px_buf_printf(b, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s' opacity='0.6'/>",
                                  PX(s[i].x[j]), PY(s[i].y[j]), bw > 1 ? bw : 1, H - B - PY(s[i].y[j]), c);
        } else {
            px_buf_printf(b, "<polyline fill='none' stroke='%s' stroke-width='2' points='", c);
            for (int j = 0; j < s[i].n; j++) px_buf_printf(b, "%.1f,%.1f ", PX(s[i].x[j]), PY(s[i].y[j]));
            px_buf_puts(b, "'/>");
            if (s[i].n <= 40)
                for (int j = 0; j < s[i].n; j++)
                    px_buf_printf(b, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'><title>%s: %g, %.4g</title></circle>",
                                  PX(s[i].x[j]), PY(s[i].y[j]), c, s[i].name, s[i].x[j], s[i].y[j]);
        }
        px_buf_printf(b, "<rect x='%.0f' y='%.0f' width='10' height='10' fill='%s'/><text x='%.0f' y='%.0f' class='lg'>%s</text>",
                      W - R - 110, T + 4 + 14 * i, c, W - R - 96, T + 13 + 14 * i, s[i].name);
    }
#undef PX
#undef PY
    px_buf_puts(b, "</svg></figure>\n");
}

void pb_rep_html_escape(px_buf *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '<') px_buf_puts(b, "&lt;");
        else if (*s == '>') px_buf_puts(b, "&gt;");
        else if (*s == '&') px_buf_puts(b, "&amp;");
        else if (*s == '\'') px_buf_puts(b, "&#39;");
        else px_buf_append(b, s, 1);
    }
}

static void html_res_table(px_buf *b, const pb_analysis *a, const char *title, const rcol *c, int nc)
{
    px_buf_printf(b, "<h3>%s</h3><table><tr><th>%s</th>", title, load_name(a));
    for (int i = 0; i < nc; i++) px_buf_printf(b, "<th>%s</th>", c[i].head);
    px_buf_puts(b, "</tr>");
    for (int k = 0; k < a->n; k++) {
        char nm[64], v[32];
        px_buf_puts(b, "<tr><td>");
        pb_rep_html_escape(b, stage_name(a, k, nm, sizeof nm));
        px_buf_puts(b, "</td>");
        for (int i = 0; i < nc; i++) {
            fmt_val(c[i].get(&a->s[k]), c[i].decimals, v, sizeof v);
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

static void html_resources(px_buf *b, const pb_run_result *r, const pb_analysis *a, const pb_report_meta *m)
{
    px_buf_puts(b, "<h2>Resources</h2><p>");
    char *txt = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&txt, &len);
    if (mf) {
        monitor_line(mf, m);
        fclose(mf);
        pb_rep_html_escape(b, txt);
        free(txt);
    }
    px_buf_puts(b, "</p>");
    html_res_table(b, a, "Target process", proc_cols, NCOLS(proc_cols));
    if (a->ngpu > 0) html_res_table(b, a, "GPU", gpu_cols, NCOLS(gpu_cols));
    html_res_table(b, a, "System", sys_cols, NCOLS(sys_cols));
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

static int write_html(const char *path, const pb_run_result *r, const pb_analysis *a,
                      const pb_report_meta *m)
{
    char nm[64]; /* a stage's name (stage_name) */
    px_buf b;
    px_buf_init(&b, (size_t)1 << 30);
    px_buf_puts(&b, "<!doctype html><html><head><meta charset='utf-8'><title>");
    pb_rep_html_escape(&b, m->title);
    px_buf_puts(&b, "</title><style>body{font:14px sans-serif;max-width:980px;margin:2em auto;color:#222}"
                    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                    "th{background:#f3f3f3}figure{margin:1em 0}svg text{font:11px sans-serif}"
                    ".t{text-anchor:middle;font-weight:bold!important;font-size:13px!important}"
                    ".yl{text-anchor:end}.xl{text-anchor:middle}.xt{text-anchor:middle}.yt{text-anchor:middle}"
                    ".g{stroke:#eee}.a{stroke:#888}.v{stroke:#bbb;stroke-dasharray:4 3}.lg{fill:#333}"
                    "code{background:#f6f6f6;padding:1px 3px}</style></head><body><h1>");
    pb_rep_html_escape(&b, m->title);
    px_buf_printf(&b, "</h1><p>pixbench %s, %s, %d CPUs. Target <code>", PB_VERSION, m->host, m->cpus);
    pb_rep_html_escape(&b, m->target);
    px_buf_puts(&b, "</code>, profile ");
    pb_rep_html_escape(&b, m->profile);
    px_buf_puts(&b, ", payloads: ");
    pb_rep_html_escape(&b, m->payloads);
    px_buf_printf(&b, ". %s.</p><p><code>", m->open_loop ? "Open loop (latency from intended send time)"
                                                          : "Closed loop (users send, wait, think)");
    pb_rep_html_escape(&b, m->cmdline);
    px_buf_printf(&b, "</code></p><table><tr><th>%s</th><th>QPS</th><th>mean ms</th><th>P50</th><th>P95</th>"
                      "<th>P99</th><th>P99.9</th><th>max</th><th>errors</th><th>requests</th></tr>",
                  load_name(a));
    for (int k = 0; k < a->n; k++) {
        const pb_stage_summary *s = &a->s[k];
        px_buf_printf(&b, "<tr%s><td>%g</td><td>%.2f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td>"
                          "<td>%.1f</td><td>%.1f</td><td>%.2f%%</td><td>%llu</td></tr>",
                      k == a->sweet ? " style='background:#e8f6e8'" : "", s->load, s->qps, s->mean_ms,
                      s->p50_ms, s->p95_ms, s->p99_ms, s->p999_ms, s->max_ms, 100 * s->error_rate,
                      (unsigned long long)s->requests);
    }
    px_buf_puts(&b, "</table><p>");
    {
        char *txt = NULL;
        size_t len = 0;
        FILE *mf = open_memstream(&txt, &len);
        if (mf) {
            verdicts(mf, a, 0);
            fclose(mf);
            for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
                pb_rep_html_escape(&b, line);
                px_buf_puts(&b, "<br>");
            }
            free(txt);
        }
    }
    px_buf_puts(&b, "</p>");
    if (a->nhints) {
        px_buf_puts(&b, "<h2>What the data says</h2><ul>");
        for (int i = 0; i < a->nhints; i++) {
            px_buf_puts(&b, "<li>");
            pb_rep_html_escape(&b, a->hints[i]);
            px_buf_puts(&b, "</li>");
        }
        px_buf_puts(&b, "</ul>");
    }
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
    px_buf_puts(&b, "<h2>Throughput and latency against load</h2>");
    series sq[] = {{"QPS", xs, q, a->n, 0}};
    pb_rep_svg_chart(&b, "QPS vs load", xl, "successful requests/s", sq, 1, xlog, NULL, 0);
    series sl[] = {{"p50", xs, p50, a->n, 0}, {"p95", xs, p95, a->n, 0}, {"p99", xs, p99, a->n, 0}};
    pb_rep_svg_chart(&b, "Latency percentiles vs load", xl, "ms", sl, 3, xlog, NULL, 0);
    /* histograms re-binned onto one log axis shared by all stages */
    px_buf_puts(&b, "<h2>Latency distribution per stage</h2>");
    double lo = INFINITY, hi = 0;
    for (int k = 0; k < r->nstages; k++) {
        const px_hist *h = &r->stages[k].acc.lat;
        if (!h->count) continue;
        if ((double)h->min < lo) lo = (double)h->min;
        if ((double)h->max > hi) hi = (double)h->max;
    }
    enum { NB = 48 };
    if (hi > 0) {
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
            snprintf(title, sizeof title, "%s %s: %llu requests", load_name(a), stage_name(a, k, nm, sizeof nm),
                     (unsigned long long)h->count);
            series sh[] = {{"% of requests", bx, by, NB, 1}};
            pb_rep_svg_chart(&b, title, "latency (ms, log scale)", "% of requests", sh, 1, 1, NULL, 0);
        }
    }
    if (r->npoints) {
        px_buf_puts(&b, "<h2>Time series (per second; dashed lines: stage starts)</h2>");
        double *t = malloc(sizeof(double) * (size_t)r->npoints * 4);
        if (t) {
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
            pb_rep_svg_chart(&b, "Throughput over time", "seconds", "per second", s1, 2, 0, vl, r->nstages);
            series s2[] = {{"p95 ms", t, tp, r->npoints, 0}};
            pb_rep_svg_chart(&b, "p95 latency over time", "seconds", "ms", s2, 1, 0, vl, r->nstages);
            free(t);
        }
    }
    if (a->matrix) {
        px_buf_puts(&b, "<h2>Size matrix</h2>");
        html_res_table(&b, a, "Per size", size_cols, NCOLS(size_cols));
        double mp[PB_MAX_STAGES], rssv[PB_MAX_STAGES], lat[PB_MAX_STAGES], gm[PB_MAX_STAGES];
        int n = 0, ng = 0;
        for (int k = 0; k < a->n; k++) {
            if (a->s[k].pixels <= 0) continue;
            mp[n] = a->s[k].pixels / 1e6;
            rssv[n] = a->s[k].peak_rss_mb;
            lat[n] = c_mean(&a->s[k]);
            gm[n] = c_gmem_any(&a->s[k]);
            ng += gm[n] >= 0;
            n++;
        }
        if (n >= 2) {
            series s1[] = {{"mean latency (ms)", mp, lat, n, 0}};
            pb_rep_svg_chart(&b, "Latency against image size", "megapixels", "ms", s1, 1, 0, NULL, 0);
            series s2[] = {{"peak RSS (MB)", mp, rssv, n, 0}, {"peak GPU memory (MB)", mp, gm, ng == n ? n : 0, 0}};
            pb_rep_svg_chart(&b, "Memory against image size", "megapixels", "MB", s2, ng == n ? 2 : 1, 0, NULL, 0);
        }
    }
    if (a->soak.on) html_soak(&b, r, a, m);
    if (m->monitored) html_resources(&b, r, a, m);
    else px_buf_puts(&b, "<h2>Resources</h2><p>Not monitored (a remote target, or --no-monitor).</p>");
    px_buf_puts(&b, "<p>Numbers: report.json (schema " PB_SCHEMA "), CSV files beside this page.</p></body></html>\n");
    return pb_rep_save_buf(path, &b);
}

int pb_report_write(const char *dir, const pb_run_result *r, const pb_analysis *a,
                    const pb_report_meta *m, char *err, size_t errlen)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return px_errf(err, errlen, PX_EIO, "cannot create %s: %s", dir, strerror(errno));
    char path[1024];
    snprintf(path, sizeof path, "%s/report.json", dir);
    if (write_json(path, r, a, m)) return px_errf(err, errlen, PX_EIO, "cannot write %s", path);
    snprintf(path, sizeof path, "%s/report.md", dir);
    if (write_md(path, a, m, r)) return px_errf(err, errlen, PX_EIO, "cannot write %s", path);
    snprintf(path, sizeof path, "%s/report.html", dir);
    if (write_html(path, r, a, m)) return px_errf(err, errlen, PX_EIO, "cannot write %s", path);
    if (write_csvs(dir, r, a)) return px_errf(err, errlen, PX_EIO, "cannot write the CSV files in %s", dir);
    return 0;
}
