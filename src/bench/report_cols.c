/*
 * report_cols.c — what every view of a load run shares (see report_cols.h):
 * the stages' names, the resource columns of the Markdown, HTML, CSV and
 * JSON tables, and the verdict lines. One definition, so the formats never
 * disagree on a column's name, unit or rounding.
 */
#include "bench/report_cols.h"

#include <math.h>
#include <stdio.h>

const char *pb_rep_load_name(const pb_analysis *a)
{
    if (a->matrix) return a->n && a->s[0].pixels > 0 ? "size" : "cell"; /* else a parameter matrix */
    return a->open_loop ? "rate" : "users";
}

/* The stage's name in tables: its load, or its image size in a matrix. */
const char *pb_rep_stage_name(const pb_analysis *a, int k, char *buf, size_t cap)
{
    if (a->s[k].label[0]) snprintf(buf, cap, "%s", a->s[k].label);
    else snprintf(buf, cap, "%g", a->s[k].load);
    return buf;
}

/* --- resource columns, shared by the Markdown, HTML and CSV tables -------- */


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

static const pb_rcol proc_cols[] = {
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
static const pb_rcol gpu_cols[] = {
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
static const pb_rcol sys_cols[] = {
    {"CPU avg % (all cores)", "system_cpu_percent_mean", c_sys, 0},
    {"busiest core peak %", "busiest_core_percent_max", c_core, 0},
    {"available memory min (MB)", "mem_available_mb_min", c_avail, 0},
    {"disk write IOPS avg", "disk_write_iops_mean", c_iops, 0},
    {"disk write IOPS peak", "disk_write_iops_max", c_iops_max, 0},
    {"write latency avg (ms)", "disk_write_await_ms_mean", c_await, 2},
    {"write latency peak (ms)", "disk_write_await_ms_max", c_await_max, 2},
    {"disk writes (MB/s)", "disk_write_mb_per_s_mean", c_dmb, 2},
};
static double c_mp(const pb_stage_summary *s) { return s->pixels > 0 ? s->pixels / 1e6 : -1; }
static double c_qps(const pb_stage_summary *s) { return s->qps; }
double pb_rep_mean_ms(const pb_stage_summary *s) { return s->ok ? s->mean_ms : -1; }
static double c_p95(const pb_stage_summary *s) { return s->ok ? s->p95_ms : -1; }
double pb_rep_gpu_mem_any(const pb_stage_summary *s)
{
    double p = pb_agg_max(&s->res.gpu_proc_mem_mb);
    return p >= 0 ? p : pb_agg_max(&s->res.gpu_mem_mb);
}
/* the seed's small/medium/large table: latency, GPU memory and util, CPU, RSS */
static const pb_rcol size_cols[] = {
    {"megapixels", "megapixels", c_mp, 2},
    {"QPS", "qps", c_qps, 2},
    {"mean latency (ms)", "mean_ms", pb_rep_mean_ms, 1},
    {"P95 (ms)", "p95_ms", c_p95, 1},
    {"peak GPU mem (MB)", "peak_gpu_mem_mb", pb_rep_gpu_mem_any, 0},
    {"GPU util peak %", "gpu_util_percent_peak", c_gp, 0},
    {"single-core peak %", "busiest_thread_percent_max", c_thr, 0},
    {"CPU avg %", "cpu_percent_mean", c_cpu, 0},
    {"peak RSS (MB)", "rss_mb_peak", c_rss_peak, 1},
    {"RSS avg (MB)", "rss_mb_mean", c_rss, 1},
};

#define NCOLS(c) ((int)(sizeof(c) / sizeof((c)[0])))

const pb_rcols pb_rep_proc_cols = {proc_cols, NCOLS(proc_cols)};
const pb_rcols pb_rep_gpu_cols = {gpu_cols, NCOLS(gpu_cols)};
const pb_rcols pb_rep_sys_cols = {sys_cols, NCOLS(sys_cols)};
const pb_rcols pb_rep_size_cols = {size_cols, NCOLS(size_cols)};

const pb_rcols *pb_rep_matrix_cols(const pb_analysis *a, const char **title)
{
    /* A text-to-image parameter matrix's cells carry no upload to count
     * pixels of: its table goes without the megapixels column. */
    static const pb_rcols cells = {size_cols + 1, NCOLS(size_cols) - 1};
    int sized = a->n && a->s[0].pixels > 0;
    *title = sized ? "Per size" : "Per cell";
    return sized ? &pb_rep_size_cols : &cells;
}

void pb_rep_fmt_val(double v, int decimals, char *out, size_t cap)
{
    if (v < 0 || !isfinite(v)) snprintf(out, cap, "-");
    else snprintf(out, cap, "%.*f", decimals, v);
}

void pb_rep_monitor_line(FILE *f, const pb_report_meta *m)
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

void pb_rep_verdicts(FILE *f, const pb_analysis *a, int md)
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
                fprintf(f, "%s%sSLO broken%s at %s%s: %s\n", md ? "\n" : "", b, b, pb_rep_stage_name(a, k, nm, sizeof nm), a->matrix ? "" : ln,
                        a->s[k].slo_why);
    }
}
