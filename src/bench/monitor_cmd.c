/*
 * monitor_cmd.c — `pixbench monitor`: samples a process, the system and the
 * GPUs on their own (what nvidia-smi dmon and pidstat gave the seed
 * reports' authors), a line per sample and every field into a CSV file.
 */
#include "bench/monitor_cmd.h"

#include "bench/cli.h"
#include "bench/monitor.h"
#include "bench/spec.h"
#include "core/clock.h"
#include "core/nvml.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG "pixbench monitor" /* in messages */

/* The working directory of pid (0: ours), where a service's relative
 * outputs directory lives: the default place to watch the disk. */
const char *pb_target_cwd(int pid, char *buf, size_t cap)
{
    char link[64];
    if (pid > 0) snprintf(link, sizeof link, "/proc/%d/cwd", pid);
    else snprintf(link, sizeof link, "/proc/self/cwd");
    char tmp[PATH_MAX];
    if (realpath(link, tmp)) snprintf(buf, cap, "%s", tmp);
    else snprintf(buf, cap, "%s", link);
    return buf;
}


static void csv_num(FILE *f, double v, int decimals)
{
    if (v < 0 || v != v) fputs(",", f);
    else fprintf(f, ",%.*f", decimals, v);
}

static void monitor_csv_header(FILE *f, int ngpu, int ncpu)
{
    fprintf(f, "unix_time,t_s,dt_s,alive,cpu_percent,busiest_thread_percent,busiest_thread_tid,"
               "busiest_thread_name,rss_mb,hwm_mb,threads,fds,storage_read_mb_per_s,storage_write_mb_per_s,"
               "context_switches_per_s,system_cpu_percent,busiest_core_percent,mem_available_mb,"
               "disk_read_iops,disk_write_iops,disk_write_await_ms,disk_write_mb_per_s,disk_util_percent");
    for (int i = 0; i < ngpu; i++)
        fprintf(f, ",gpu%d_util_percent,gpu%d_util_max_percent,gpu%d_samples,gpu%d_mem_util_percent,"
                   "gpu%d_mem_used_mb,gpu%d_mem_total_mb,gpu%d_process_mem_mb,gpu%d_processes,gpu%d_power_w,"
                   "gpu%d_temp_c,gpu%d_sm_mhz,gpu%d_mem_mhz,gpu%d_throttle",
                i, i, i, i, i, i, i, i, i, i, i, i, i);
    for (int c = 0; c < ncpu; c++) fprintf(f, ",cpu%d_percent", c);
    fprintf(f, "\n");
}

static void monitor_csv_row(FILE *f, double wall0, const pb_mon_sample *s, const float *cores)
{
    fprintf(f, "%.3f,%.3f,%.3f,%d", wall0 + s->t, s->t, s->dt, s->alive);
    csv_num(f, s->cpu, 1);
    csv_num(f, s->thread_cpu, 1);
    if (s->thread_tid) fprintf(f, ",%d,%s", s->thread_tid, s->thread_name);
    else fputs(",,", f);
    csv_num(f, s->rss_mb, 2);
    csv_num(f, s->hwm_mb, 2);
    csv_num(f, s->threads, 0);
    csv_num(f, s->fds, 0);
    csv_num(f, s->read_mbps, 3);
    csv_num(f, s->write_mbps, 3);
    csv_num(f, s->ctxsw, 0);
    csv_num(f, s->sys_cpu, 1);
    csv_num(f, s->core_max, 1);
    csv_num(f, s->mem_avail_mb, 0);
    csv_num(f, s->disk_r_iops, 1);
    csv_num(f, s->disk_w_iops, 1);
    csv_num(f, s->disk_w_await_ms, 2);
    csv_num(f, s->disk_w_mbps, 3);
    csv_num(f, s->disk_util, 1);
    for (int i = 0; i < s->ngpu; i++) {
        const pb_gpu_sample *g = &s->gpu[i];
        csv_num(f, g->util, 1);
        csv_num(f, g->util_max, 1);
        fprintf(f, ",%d", g->nsamples);
        csv_num(f, g->mem_util, 1);
        csv_num(f, g->mem_used_mb, 0);
        csv_num(f, g->mem_total_mb, 0);
        csv_num(f, g->proc_mem_mb, 0);
        csv_num(f, g->nprocs, 0);
        csv_num(f, g->power_w, 1);
        csv_num(f, g->temp_c, 0);
        csv_num(f, g->sm_mhz, 0);
        csv_num(f, g->mem_mhz, 0);
        if (g->have_throttle) fprintf(f, ",0x%llx", g->throttle);
        else fputs(",", f);
    }
    for (int c = 0; c < s->ncpu; c++) csv_num(f, cores[c], 1);
    fprintf(f, "\n");
}

static void fmt_col(char *out, size_t cap, double v, int decimals)
{
    if (v < 0 || v != v) snprintf(out, cap, "-");
    else snprintf(out, cap, "%.*f", decimals, v);
}

static void monitor_line_out(FILE *f, const pb_mon_sample *s, int have_pid)
{
    char c[12][24];
    fmt_col(c[0], sizeof c[0], s->cpu, 0);
    fmt_col(c[1], sizeof c[1], s->thread_cpu, 0);
    fmt_col(c[2], sizeof c[2], s->rss_mb, 1);
    fmt_col(c[3], sizeof c[3], s->hwm_mb, 1);
    fmt_col(c[4], sizeof c[4], s->fds, 0);
    fmt_col(c[5], sizeof c[5], s->write_mbps, 2);
    fmt_col(c[6], sizeof c[6], s->sys_cpu, 0);
    fmt_col(c[7], sizeof c[7], s->core_max, 0);
    fmt_col(c[8], sizeof c[8], s->mem_avail_mb, 0);
    fmt_col(c[9], sizeof c[9], s->disk_w_iops, 0);
    fmt_col(c[10], sizeof c[10], s->disk_w_await_ms, 1);
    fmt_col(c[11], sizeof c[11], s->threads, 0);
    if (have_pid)
        fprintf(f, "%8.1f %5s %5s %-15s %8s %8s %4s %5s %7s", s->t, c[0], c[1],
                s->thread_tid ? s->thread_name : "-", c[2], c[3], c[11], c[4], c[5]);
    else
        fprintf(f, "%8.1f", s->t);
    fprintf(f, " %5s %5s %8s %6s %6s", c[6], c[7], c[8], c[9], c[10]);
    for (int i = 0; i < s->ngpu; i++) {
        const pb_gpu_sample *g = &s->gpu[i];
        char u[16], mx[16], mu[16], mem[16], pm[16], w[16], t[16], clk[16], names[96] = "-";
        fmt_col(u, sizeof u, g->util, 0);
        fmt_col(mx, sizeof mx, g->util_max, 0);
        fmt_col(mu, sizeof mu, g->mem_util, 0);
        fmt_col(mem, sizeof mem, g->mem_used_mb, 0);
        fmt_col(pm, sizeof pm, g->proc_mem_mb, 0);
        fmt_col(w, sizeof w, g->power_w, 0);
        fmt_col(t, sizeof t, g->temp_c, 0);
        fmt_col(clk, sizeof clk, g->sm_mhz, 0);
        if (g->have_throttle) px_nvml_throttle_names(g->throttle, names, sizeof names);
        fprintf(f, "%s | %3d %4s %4s %4s %7s %7s %4s %3s %5s %s", i ? "\n" : "", i, u, mx, mu, mem, pm, w, t,
                clk, names);
        if (i + 1 < s->ngpu) fprintf(f, "%*s", have_pid ? 111 : 44, "");
    }
    fprintf(f, "\n");
}

static void monitor_header(FILE *f, int have_pid, int ngpu)
{
    if (have_pid)
        fprintf(f, "%8s %5s %5s %-15s %8s %8s %4s %5s %7s", "# t s", "cpu%", "thr%", "busiest thread", "rss MB",
                "peak MB", "thr", "fds", "wr MB/s");
    else
        fprintf(f, "%8s", "# t s");
    fprintf(f, " %5s %5s %8s %6s %6s", "sys%", "core%", "avail MB", "dIOPS", "dlat");
    if (ngpu) fprintf(f, " | gpu  sm%% max mem%% used MB proc MB    W   C   MHz throttle");
    fprintf(f, "\n");
}

typedef struct mon_opts {
    pb_monitor_config c;
    const char *csv;
    int64_t duration;
    int quiet;
} mon_opts;

static void usage(void)
{
    printf("usage: pixbench monitor [--pid N] [--interval DUR] [--csv FILE] [--duration DUR]\n"
           "                        [--disk DEV | --disk-path PATH] [--no-gpu] [-q]\n\n"
           "Samples, every --interval (default 1s, at least 100ms), the process N (CPU %% in all\n"
           "and of its busiest thread, RSS and peak RSS, threads, fds, storage I/O, context\n"
           "switches), the system (CPU per core, available memory, IOPS and write latency of\n"
           "the disk holding PATH, default the process's working directory) and every GPU\n"
           "through NVML (utilisation drained from the driver's sample buffer, memory, the\n"
           "process's own GPU memory, power, temperature, clocks, throttle reasons; \"no GPU\"\n"
           "without a driver). Prints a line per sample and, with --csv, writes every field\n"
           "(per-core CPU included). Ends on Ctrl-C, after --duration, or when the process exits.\n");
}

/* Returns 0, 1 when --help was printed (exit 0), or 2 (bad usage, printed). */
static int parse_args(mon_opts *o, int argc, char **argv)
{
    char err[256];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 1;
        }
        if (!strcmp(a, "--no-gpu")) { o->c.no_gpu = 1; continue; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { o->quiet = 1; continue; }
        PB_NEED_VALUE(PROG);
        int rc = 0;
        if (!strcmp(a, "--pid")) {
            o->c.pid = atoi(v);
            if (o->c.pid <= 0) return pb_cli_bad(PROG, "--pid must be a process id");
        } else if (!strcmp(a, "--interval")) rc = pb_parse_duration(v, &o->c.interval_ns, err, sizeof err);
        else if (!strcmp(a, "--csv")) o->csv = v;
        else if (!strcmp(a, "--duration")) rc = pb_parse_duration(v, &o->duration, err, sizeof err);
        else if (!strcmp(a, "--disk")) o->c.disk_dev = v;
        else if (!strcmp(a, "--disk-path")) o->c.disk_path = v;
        else {
            fprintf(stderr, "pixbench monitor: unknown flag '%s' (try --help)\n", a);
            return 2;
        }
        if (rc) {
            fprintf(stderr, "pixbench monitor: %s: %s\n", a, err);
            return 2;
        }
    }
    if (o->c.interval_ns && o->c.interval_ns < PB_MON_MIN_INTERVAL_NS)
        return pb_cli_bad(PROG, "--interval is 100ms or more");
    return 0;
}

/* Prints (and writes to cf) each sample until a signal of set, the end of
 * --duration, or the process's exit. */
static void sample_loop(const mon_opts *o, pb_monitor *m, FILE *cf, const sigset_t *set)
{
    int pid = o->c.pid, ngpu = pb_monitor_ngpu(m), ncpu = pb_monitor_ncpu(m);
    double wall0 = (double)px_wall_ms() / 1e3;
    pb_monitor_start(m, 0);
    int64_t t_end = o->duration > 0 ? px_now_ns() + o->duration : INT64_MAX;
    uint64_t next = 1;
    pb_mon_sample s[16];
    float *cores = malloc(sizeof(float) * 16 * (size_t)(ncpu > 0 ? ncpu : 1));
    int lines = 0, done = 0;
    while (!done) {
        struct timespec wait = {0, 50000000};
        int sig = sigtimedwait(set, NULL, &wait);
        if (sig == SIGINT || sig == SIGTERM) done = 1;
        if (px_now_ns() >= t_end) done = 1;
        int n = pb_monitor_read(m, &next, s, cores, 16);
        for (int i = 0; i < n; i++) {
            if (!o->quiet) {
                if (lines++ % 20 == 0) monitor_header(stdout, pid != 0, ngpu);
                monitor_line_out(stdout, &s[i], pid != 0);
            }
            if (cf) monitor_csv_row(cf, wall0, &s[i], cores + (size_t)i * (size_t)ncpu);
            if (pid && !s[i].alive) {
                fprintf(stderr, "pixbench monitor: process %d has exited\n", pid);
                done = 1;
                break;
            }
        }
        fflush(stdout);
    }
    free(cores);
}

int pb_cmd_monitor(int argc, char **argv)
{
    mon_opts o = {0};
    char err[256];
    int rc = parse_args(&o, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    char cwd[PATH_MAX];
    if (!o.c.disk_path && !o.c.disk_dev) o.c.disk_path = pb_target_cwd(o.c.pid, cwd, sizeof cwd);
    /* signals are taken synchronously below, so the sampler thread never sees them */
    sigset_t set;
    pb_cli_block_signals(&set);
    pb_monitor *m;
    if (pb_monitor_open(&o.c, &m, err, sizeof err)) {
        fprintf(stderr, "pixbench monitor: %s\n", err);
        return 1;
    }
    FILE *cf = NULL;
    if (o.csv && !(cf = fopen(o.csv, "w"))) {
        fprintf(stderr, "pixbench monitor: cannot write %s\n", o.csv);
        pb_monitor_close(m);
        return 1;
    }
    int ngpu = pb_monitor_ngpu(m);
    fprintf(stderr, "pixbench monitor: %s every %g s; GPU: %s; disk: %s\n",
            o.c.pid ? "process, system and GPUs" : "system and GPUs (no --pid)",
            (double)pb_monitor_interval_ns(m) / 1e9, pb_monitor_gpu_status(m), pb_monitor_disk_status(m));
    for (int i = 0; i < ngpu; i++) fprintf(stderr, "  gpu %d: %s\n", i, pb_monitor_gpu_name(m, i));
    if (cf) monitor_csv_header(cf, ngpu, pb_monitor_ncpu(m));
    sample_loop(&o, m, cf, &set);
    pb_monitor_close(m);
    if (cf && fclose(cf) != 0) {
        fprintf(stderr, "pixbench monitor: cannot write %s\n", o.csv);
        rc = 1;
    }
    return rc;
}
