/*
 * report_json.c — report.json, schema "pixbench/2" (see report_json.h):
 * every number of a load run, the views (Markdown, HTML, CSV) being
 * subsets of it. Members are written in a fixed order so two runs' files
 * diff cleanly.
 */
#include "bench/report_json.h"

#include "bench/report_cols.h"
#include "bench/report_util.h"
#include "core/jsonw.h"
#include "core/nvml.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

/* Every column of a set as a member; a comma after the last when more follow. */
static void json_cols(px_buf *b, const pb_rcols *cs, const pb_stage_summary *s, int more)
{
    for (int i = 0; i < cs->n; i++) pb_rep_jopt(b, cs->c[i].csv, cs->c[i].get(s), more || i + 1 < cs->n);
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
    json_cols(b, &pb_rep_proc_cols, s, 1);
    pb_rep_jopt(b, "busiest_thread_percent_mean", pb_agg_mean(&r->thread_cpu), 1);
    pb_rep_jopt(b, "storage_read_mb_per_s", pb_agg_mean(&r->read_mbps), 0);
    px_buf_puts(b, "},\"system\":{");
    json_cols(b, &pb_rep_sys_cols, s, 0);
    px_buf_puts(b, "},\"gpu\":");
    if (ngpu <= 0) {
        px_buf_puts(b, "null}");
        return;
    }
    px_buf_puts(b, "{");
    json_cols(b, &pb_rep_gpu_cols, s, 1);
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
    pb_rep_jkey(b, k);
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
    pb_rep_jkey(b, k);
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
        json_cols(b, &pb_rep_size_cols, &a->s[k], 0);
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

/* The run's settings, where it ran and how the monitor sampled. */
static void json_setup(px_buf *b, const pb_analysis *a, const pb_report_meta *m)
{
    px_buf_puts(b, "\"config\":{");
    pb_rep_jstr(b, "cmdline", m->cmdline, 1);
    pb_rep_jstr(b, "target", m->target, 1);
    pb_rep_jstr(b, "profile", m->profile, 1);
    pb_rep_jstr(b, "payloads", m->payloads, 1);
    pb_rep_jstr(b, "mode", m->open_loop ? "open" : "closed", 1);
    pb_rep_jstr(b, "arrivals", m->open_loop ? (m->poisson ? "poisson" : "constant") : NULL, 1);
    pb_rep_jnum(b, "think_min_s", m->think_lo_s, 1);
    pb_rep_jnum(b, "think_max_s", m->think_hi_s, 1);
    pb_rep_jnum(b, "spawn_rate", m->spawn_rate, 1);
    pb_rep_jnum(b, "threads", m->threads, 1);
    pb_rep_jnum(b, "connections", m->connections, 1);
    pb_rep_jnum(b, "warmup_s", m->warmup_s, 1);
    pb_rep_jnum(b, "stage_s", m->stage_s, 1);
    pb_rep_jnum(b, "timeout_s", m->timeout_s, 1);
    pb_rep_jnum(b, "max_wait_s", m->max_wait_s, 1);
    pb_rep_jstr(b, "check", m->check, 1);
    pb_rep_jstr(b, "slo", m->slo, 1);
    pb_rep_jnum(b, "error_threshold", a->err_threshold, 1);
    pb_rep_jnum(b, "seed", (double)m->seed, 0);
    px_buf_puts(b, "},\"environment\":{");
    pb_rep_jstr(b, "host", m->host, 1);
    pb_rep_jstr(b, "kernel", m->kernel, 1);
    pb_rep_jnum(b, "cpus", m->cpus, 1);
    pb_rep_jstr(b, "server", m->server, 0);
    px_buf_printf(b, "},\"monitor\":{\"enabled\":%s,", m->monitored ? "true" : "false");
    pb_rep_jopt(b, "interval_s", m->monitored ? m->mon_interval_s : -1, 1);
    pb_rep_jopt(b, "pid", m->mon_pid > 0 ? m->mon_pid : -1, 1);
    pb_rep_jstr(b, "gpu", m->gpu_status, 1);
    pb_rep_jnum(b, "gpus", a->ngpu, 1);
    pb_rep_jstr(b, "disk", m->disk_status, 1);
    pb_rep_jstr(b, "peak_rss", m->peak_reset ? "kernel_peak_reset_per_stage" : "largest_sample", 0);
    px_buf_puts(b, "}");
}

/* Stage k: its load, counts, latency, Server-Timing, SLO, resources and histogram. */
static void json_stage(px_buf *b, const pb_run_result *r, const pb_analysis *a, const pb_report_meta *m, int k)
{
    const pb_stage_summary *s = &a->s[k];
    px_buf_puts(b, k ? ",{" : "{");
    pb_rep_jnum(b, "index", k, 1);
    pb_rep_jnum(b, "load", s->load, 1);
    pb_rep_jstr(b, "load_unit", a->open_loop ? "requests_per_s" : "users", 1);
    pb_rep_jnum(b, "start_s", s->start_s, 1);
    pb_rep_jnum(b, "warmup_s", s->warmup_s, 1);
    pb_rep_jnum(b, "measured_s", s->measured_s, 1);
    px_buf_printf(b, "\"complete\":%s,", s->complete ? "true" : "false");
    pb_rep_jnum(b, "requests", (double)s->requests, 1);
    pb_rep_jnum(b, "successes", (double)s->ok, 1);
    pb_rep_jnum(b, "errors", (double)s->errors, 1);
    pb_rep_jnum(b, "error_rate", s->error_rate, 1);
    px_buf_puts(b, "\"errors_by_class\":{");
    for (int c = 0; c < PB_ERR_N; c++) pb_rep_jnum(b, pb_err_class_name(c), (double)s->err[c], c + 1 < PB_ERR_N);
    px_buf_puts(b, "},");
    pb_rep_jnum(b, "late", (double)s->late, 1);
    pb_rep_jnum(b, "qps", s->qps, 1);
    px_buf_puts(b, "\"latency_ms\":{");
    pb_rep_jnum(b, "mean", s->mean_ms, 1);
    pb_rep_jnum(b, "min", s->min_ms, 1);
    pb_rep_jnum(b, "p50", s->p50_ms, 1);
    pb_rep_jnum(b, "p90", s->p90_ms, 1);
    pb_rep_jnum(b, "p95", s->p95_ms, 1);
    pb_rep_jnum(b, "p99", s->p99_ms, 1);
    pb_rep_jnum(b, "p999", s->p999_ms, 1);
    pb_rep_jnum(b, "max", s->max_ms, 0);
    px_buf_puts(b, "},");
    pb_rep_jnum(b, "mb_per_s_in", s->mbps_in, 1);
    pb_rep_jnum(b, "mb_per_s_out", s->mbps_out, 1);
    pb_rep_jnum(b, "client_cpu_percent", s->cli_cpu, 1);
    pb_rep_jnum(b, "server_cpu_percent", s->srv_cpu, 1);
    pb_rep_jnum(b, "server_rss_mb", s->srv_rss_mb, 1);
    px_buf_puts(b, "\"stability\":");
    if (s->stable < 0) px_buf_puts(b, "null,");
    else
        px_buf_printf(b, "{\"stable\":%s,\"qps_deviation\":%.4f,\"latency_deviation\":%.4f},",
                      s->stable ? "true" : "false", s->stab_qps_dev, s->stab_lat_dev);
    px_buf_puts(b, "\"server_timing_ms\":{");
    for (int i = 0; i < s->nst; i++) {
        pb_rep_jkey(b, s->st[i].name);
        px_buf_puts(b, "{");
        pb_rep_jnum(b, "count", (double)s->st[i].count, 1);
        pb_rep_jnum(b, "mean", s->st[i].mean_ms, 1);
        pb_rep_jnum(b, "p50", s->st[i].p50_ms, 1);
        pb_rep_jnum(b, "p95", s->st[i].p95_ms, 1);
        pb_rep_jnum(b, "max", s->st[i].max_ms, 0);
        px_buf_puts(b, i + 1 < s->nst ? "}," : "}");
    }
    px_buf_puts(b, "},");
    px_buf_puts(b, "\"slo\":");
    if (!a->has_slo) px_buf_puts(b, "null,");
    else {
        px_buf_printf(b, "{\"met\":%s,\"broken\":", s->slo_broken ? "false" : "true");
        px_json_str(b, s->slo_broken ? s->slo_why : NULL);
        px_buf_puts(b, "},");
    }
    pb_rep_jstr(b, "label", s->label[0] ? s->label : NULL, 1);
    pb_rep_jopt(b, "pixels", s->pixels > 0 ? s->pixels : -1, 1);
    px_buf_puts(b, "\"resources\":");
    json_stage_res(b, s, a->ngpu, m->mon_pid != 0);
    px_buf_puts(b, ",\"histogram_ns\":");
    json_hist(b, &r->stages[k].acc.lat);
    px_buf_puts(b, "}");
}

/* Per-second point i of the time series. */
static void json_point(px_buf *b, const pb_run_result *r, int i)
{
    const pb_point *p = &r->series[i];
    px_buf_printf(b, "%s{\"t\":%.3f,\"dt\":%.3f,\"stage\":%d,\"measuring\":%s,\"load\":%g,"
                      "\"active\":%d,\"successes\":%llu,\"errors\":%llu,\"late\":%llu,",
                  i ? "," : "", p->t, p->dt, p->stage, p->measuring ? "true" : "false", p->load,
                  p->active, (unsigned long long)p->ok, (unsigned long long)p->errors,
                  (unsigned long long)p->late);
    pb_rep_jnum(b, "qps", p->qps, 1);
    pb_rep_jnum(b, "mean_ms", p->mean_ms, 1);
    pb_rep_jnum(b, "p50_ms", p->p50_ms, 1);
    pb_rep_jnum(b, "p95_ms", p->p95_ms, 1);
    pb_rep_jnum(b, "p99_ms", p->p99_ms, 1);
    pb_rep_jnum(b, "max_ms", p->max_ms, 1);
    pb_rep_jnum(b, "client_cpu_percent", p->cli_cpu, 1);
    pb_rep_jnum(b, "server_cpu_percent", p->srv_cpu, 1);
    pb_rep_jnum(b, "server_rss_mb", p->srv_rss_mb, 1);
    px_buf_puts(b, "\"resources\":");
    json_point_res(b, &p->res);
    px_buf_puts(b, "}");
}

/* The verdicts: saturation, sweet spot, peak, SLO and the hints. */
static void json_analysis(px_buf *b, const pb_analysis *a)
{
    px_buf_puts(b, "\"saturation_stage\":");
    if (a->saturation >= 0) px_buf_printf(b, "%d,", a->saturation);
    else px_buf_puts(b, "null,");
    px_buf_puts(b, "\"sweet_spot_stage\":");
    if (a->sweet >= 0) px_buf_printf(b, "%d,", a->sweet);
    else px_buf_puts(b, "null,");
    pb_rep_jnum(b, "peak_qps", a->peak_qps, 1);
    px_buf_printf(b, "\"slo_met\":%s,", !a->has_slo ? "null" : a->slo_broken_stages ? "false" : "true");
    px_buf_puts(b, "\"hints\":[");
    for (int i = 0; i < a->nhints; i++) {
        if (i) px_buf_puts(b, ",");
        px_json_str(b, a->hints[i]);
    }
    px_buf_puts(b, "]}");
}

int pb_report_write_json(const char *path, const pb_run_result *r, const pb_analysis *a, const pb_report_meta *m)
{
    px_buf b;
    px_buf_init(&b, (size_t)1 << 30);
    pb_rep_json_head(&b, "load", m, (double)r->start_wall_ms, r->duration_s);
    px_buf_printf(&b, "\"interrupted\":%s,", r->interrupted ? "true" : "false");
    json_setup(&b, a, m);
    px_buf_puts(&b, ",\"stages\":[");
    for (int k = 0; k < a->n; k++) json_stage(&b, r, a, m, k);
    px_buf_puts(&b, "],\"series\":[");
    for (int i = 0; i < r->npoints; i++) json_point(&b, r, i);
    px_buf_puts(&b, "],\"analysis\":{");
    json_analysis(&b, a);
    px_buf_puts(&b, ",\"soak\":");
    json_soak(&b, &a->soak);
    px_buf_puts(&b, ",\"sizes\":");
    json_sizes(&b, a);
    px_buf_puts(&b, ",\"faults\":null}\n");
    return pb_rep_save_buf(path, &b);
}
