/*
 * monitor.c — the sampling thread, its ring and the aggregation (see
 * monitor.h).
 *
 * Per-thread CPU comes from /proc/<pid>/task/<tid>/schedstat, which counts
 * nanoseconds; stat's clock ticks (10 ms) would quantise a thread's share of
 * a 100 ms interval to steps of 10 %. The process total stays on stat's
 * utime + stime, which also keeps the time of threads that have exited.
 * Rates are deltas against the previous reading of the same thing, so a
 * counter that goes backwards (a thread id reused, a device reset) gives an
 * unknown rate rather than a negative one.
 */
#include "bench/monitor.h"

#include "core/alloc.h"
#include "core/err.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TASKS 8192
#define FILE_CAP 65536

typedef struct task_prev {
    int tid;
    uint64_t run_ns, slices;
} task_prev;

struct pb_monitor {
    pb_monitor_config cfg;
    const pb_os *os;
    int64_t t0, prev_t;
    long hz;
    /* target */
    int have_prev_proc;
    uint64_t prev_ticks;
    int64_t prev_read, prev_write;
    task_prev *tasks, *tasks_new;
    int ntasks;
    int *tids;
    int schedstat; /* the kernel has schedstat (CONFIG_SCHED_INFO); else stat's ticks */
    /* system */
    int ncpu;
    pb_cpustat prev_all, *prev_cores, *cur_cores;
    int have_prev_cpu;
    int disk; /* 0 none, 1 by name, 2 by numbers */
    char disk_name[32];
    unsigned disk_major, disk_minor;
    pb_diskstat prev_disk;
    int have_prev_disk;
    char disk_status[512];
    /* GPUs */
    px_nvml *nvml;
    int ngpu;
    char gpu_names[PB_MON_MAX_GPUS][96];
    int gpu_samples; /* the driver's sample buffer answers */
    char gpu_status[384];
    /* scratch */
    char *buf;
    float *cores_now;
    /* ring */
    pthread_mutex_t mu;
    pb_mon_sample *ring;
    float *ring_cores;
    int cap;
    uint64_t seq; /* last written */
    /* thread */
    pthread_t th;
    int running;
    int64_t first_ns;
    pthread_cond_t cv;
    int stop;
};

/* --- aggregation ---------------------------------------------------------- */

void pb_agg_add(pb_agg *a, double v)
{
    if (!(v >= 0)) return; /* unknown (-1) or NaN */
    if (a->n == 0 || v < a->min) a->min = v;
    if (a->n == 0 || v > a->max) a->max = v;
    a->sum += v;
    a->n++;
}

void pb_agg_merge(pb_agg *d, const pb_agg *s)
{
    if (!s->n) return;
    if (d->n == 0 || s->min < d->min) d->min = s->min;
    if (d->n == 0 || s->max > d->max) d->max = s->max;
    d->sum += s->sum;
    d->n += s->n;
}

double pb_agg_mean(const pb_agg *a)
{
    return a->n ? a->sum / a->n : -1;
}

double pb_agg_max(const pb_agg *a)
{
    return a->n ? a->max : -1;
}

double pb_agg_min(const pb_agg *a)
{
    return a->n ? a->min : -1;
}

void pb_res_init(pb_res *r)
{
    memset(r, 0, sizeof *r);
    r->alive = 1;
    r->hwm_mb = -1;
}

void pb_res_add(pb_res *r, const pb_mon_sample *s)
{
    r->n++;
    if (!s->alive) r->alive = 0;
    pb_agg_add(&r->cpu, s->cpu);
    pb_agg_add(&r->thread_cpu, s->thread_cpu);
    pb_agg_add(&r->rss_mb, s->rss_mb);
    pb_agg_add(&r->threads, s->threads);
    pb_agg_add(&r->fds, s->fds);
    pb_agg_add(&r->read_mbps, s->read_mbps);
    pb_agg_add(&r->write_mbps, s->write_mbps);
    pb_agg_add(&r->ctxsw, s->ctxsw);
    pb_agg_add(&r->sys_cpu, s->sys_cpu);
    pb_agg_add(&r->core_max, s->core_max);
    pb_agg_add(&r->mem_avail_mb, s->mem_avail_mb);
    pb_agg_add(&r->disk_w_iops, s->disk_w_iops);
    pb_agg_add(&r->disk_w_await_ms, s->disk_w_await_ms);
    pb_agg_add(&r->disk_w_mbps, s->disk_w_mbps);
    pb_agg_add(&r->disk_util, s->disk_util);
    if (s->hwm_mb > r->hwm_mb) r->hwm_mb = s->hwm_mb;
    if (s->ngpu > r->ngpu) r->ngpu = s->ngpu;
    double util = 0, peak = -1, mu = 0, mem = 0, pm = 0, pw = 0, clk = 0;
    int nu = 0, nmu = 0, nmem = 0, npm = 0, npw = 0, nclk = 0, temp = -1;
    for (int i = 0; i < s->ngpu; i++) {
        const pb_gpu_sample *g = &s->gpu[i];
        if (g->util >= 0) util += g->util, nu++;
        if (g->util_max > peak) peak = g->util_max;
        if (g->mem_util >= 0) mu += g->mem_util, nmu++;
        if (g->mem_used_mb >= 0) mem += g->mem_used_mb, nmem++;
        if (g->proc_mem_mb >= 0) pm += g->proc_mem_mb, npm++;
        if (g->power_w >= 0) pw += g->power_w, npw++;
        if (g->sm_mhz >= 0) clk += g->sm_mhz, nclk++;
        if (g->temp_c > temp) temp = g->temp_c;
        if (g->have_throttle) r->throttle |= g->throttle & ~PX_GPU_THROTTLE_IDLE;
    }
    pb_agg_add(&r->gpu_util, nu ? util / nu : -1);
    pb_agg_add(&r->gpu_util_peak, peak);
    pb_agg_add(&r->gpu_mem_util, nmu ? mu / nmu : -1);
    pb_agg_add(&r->gpu_mem_mb, nmem ? mem : -1);
    pb_agg_add(&r->gpu_proc_mem_mb, npm ? pm : -1);
    pb_agg_add(&r->gpu_power_w, npw ? pw : -1);
    pb_agg_add(&r->gpu_temp_c, temp);
    pb_agg_add(&r->gpu_sm_mhz, nclk ? clk / nclk : -1);
}

void pb_res_merge(pb_res *d, const pb_res *s)
{
    d->n += s->n;
    if (!s->alive) d->alive = 0;
#define MERGE_(f) pb_agg_merge(&d->f, &s->f);
    PB_RES_AGGS(MERGE_)
#undef MERGE_
    if (s->hwm_mb > d->hwm_mb) d->hwm_mb = s->hwm_mb;
    d->throttle |= s->throttle;
    if (s->ngpu > d->ngpu) d->ngpu = s->ngpu;
}

/* --- reading ------------------------------------------------------------------ */

static long rd(pb_monitor *m, const char *path)
{
    return m->os->read_file(m->os->ctx, path, m->buf, FILE_CAP);
}

static int add_tid(void *arg, const char *name)
{
    pb_monitor *m = arg;
    char *end;
    long v = strtol(name, &end, 10);
    if (*end || v <= 0 || v > INT32_MAX) return 0;
    if (m->ntasks >= MAX_TASKS) return 1;
    m->tids[m->ntasks++] = (int)v;
    return 0;
}

static int count_entry(void *arg, const char *name)
{
    (void)name;
    ++*(int *)arg;
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void printable(char *dst, size_t cap, const char *src)
{
    /* a process names itself: keep terminals and CSV files safe */
    size_t k = 0;
    for (; *src && k + 1 < cap; src++, k++) {
        unsigned char c = (unsigned char)*src;
        dst[k] = c >= 0x20 && c < 0x7f && c != ',' && c != '"' ? (char)c : '?';
    }
    dst[k] = 0;
}

/* Per-thread CPU: the busiest thread and the context switches of all. */
static void sample_tasks(pb_monitor *m, double dt, pb_mon_sample *s, int baseline)
{
    char path[128];
    int prev_n = 0;
    task_prev *prev = m->tasks;
    /* m->tasks holds the previous reading, sorted by tid; count it */
    for (prev_n = 0; prev_n < MAX_TASKS && prev[prev_n].tid; prev_n++) {
    }
    m->ntasks = 0;
    snprintf(path, sizeof path, "/proc/%d/task", m->cfg.pid);
    if (m->os->list_dir(m->os->ctx, path, add_tid, m) < 0) return;
    qsort(m->tids, (size_t)m->ntasks, sizeof *m->tids, cmp_int);
    double best = -1, slices = 0;
    int best_tid = 0, nknown = 0, j = 0;
    for (int i = 0; i < m->ntasks; i++) {
        int tid = m->tids[i];
        task_prev cur = {tid, 0, 0};
        int ok = 0;
        if (m->schedstat) {
            snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", m->cfg.pid, tid);
            long n = rd(m, path);
            uint64_t wait;
            ok = n > 0 && pb_procfs_schedstat(m->buf, (size_t)n, &cur.run_ns, &wait, &cur.slices) == 0;
        } else {
            snprintf(path, sizeof path, "/proc/%d/task/%d/stat", m->cfg.pid, tid);
            long n = rd(m, path);
            pb_pstat ps;
            if (n > 0 && pb_procfs_stat(m->buf, (size_t)n, &ps) == 0) {
                cur.run_ns = (ps.utime + ps.stime) * (uint64_t)(1000000000 / m->hz);
                ok = 1;
            }
        }
        if (!ok) continue; /* exited while we looked */
        while (j < prev_n && prev[j].tid < tid) j++;
        if (!baseline && j < prev_n && prev[j].tid == tid && cur.run_ns >= prev[j].run_ns && dt > 0) {
            double pct = 100.0 * (double)(cur.run_ns - prev[j].run_ns) / (dt * 1e9);
            if (pct > best) best = pct, best_tid = tid;
            if (cur.slices >= prev[j].slices) slices += (double)(cur.slices - prev[j].slices);
            nknown++;
        }
        m->tasks_new[i] = cur;
    }
    /* keep the new reading (zero-terminated) for the next sample */
    int k = 0;
    for (int i = 0; i < m->ntasks; i++)
        if (m->tasks_new[i].tid) m->tasks[k++] = m->tasks_new[i];
    if (k < MAX_TASKS) m->tasks[k].tid = 0;
    memset(m->tasks_new, 0, sizeof *m->tasks_new * (size_t)(m->ntasks > 0 ? m->ntasks : 1));
    if (baseline || !nknown) return;
    s->thread_cpu = best > 100 ? 100 : best;
    s->thread_tid = best_tid;
    if (m->schedstat == 1) s->ctxsw = slices / dt;
    snprintf(path, sizeof path, "/proc/%d/task/%d/comm", m->cfg.pid, best_tid);
    long n = rd(m, path);
    if (n > 0) {
        if (m->buf[n - 1] == '\n') m->buf[n - 1] = 0;
        printable(s->thread_name, sizeof s->thread_name, m->buf);
    }
}

static void sample_process(pb_monitor *m, double dt, pb_mon_sample *s, int baseline)
{
    char path[128];
    int pid = m->cfg.pid;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    long n = rd(m, path);
    pb_pstat ps;
    if (n <= 0 || pb_procfs_stat(m->buf, (size_t)n, &ps) != 0 || ps.state == 'Z' || ps.state == 'X') {
        s->alive = 0;
        return;
    }
    s->alive = 1;
    uint64_t ticks = ps.utime + ps.stime;
    if (!baseline && m->have_prev_proc && ticks >= m->prev_ticks && dt > 0)
        s->cpu = 100.0 * (double)(ticks - m->prev_ticks) / (double)m->hz / dt;
    m->prev_ticks = ticks;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    pb_pstatus st;
    if ((n = rd(m, path)) > 0 && pb_procfs_status(m->buf, (size_t)n, &st) == 0) {
        if (st.vm_rss_kb >= 0) s->rss_mb = (double)st.vm_rss_kb / 1024.0;
        if (st.vm_hwm_kb >= 0) s->hwm_mb = (double)st.vm_hwm_kb / 1024.0;
        if (st.threads >= 0) s->threads = (int)st.threads;
    }
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    int fds = 0;
    if (m->os->list_dir(m->os->ctx, path, count_entry, &fds) >= 0) s->fds = fds;
    snprintf(path, sizeof path, "/proc/%d/io", pid);
    pb_pio io;
    if ((n = rd(m, path)) > 0 && pb_procfs_io(m->buf, (size_t)n, &io) == 0 && io.read_bytes >= 0 &&
        io.write_bytes >= 0) {
        if (!baseline && m->have_prev_proc && m->prev_read >= 0 && io.read_bytes >= m->prev_read &&
            io.write_bytes >= m->prev_write && dt > 0) {
            s->read_mbps = (double)(io.read_bytes - m->prev_read) / dt / 1e6;
            s->write_mbps = (double)(io.write_bytes - m->prev_write) / dt / 1e6;
        }
        m->prev_read = io.read_bytes;
        m->prev_write = io.write_bytes;
    } else {
        m->prev_read = m->prev_write = -1; /* not ours to read (another user) */
    }
    m->have_prev_proc = 1;
    sample_tasks(m, dt, s, baseline);
}

static void sample_system(pb_monitor *m, double dt, pb_mon_sample *s, int baseline)
{
    long n = rd(m, "/proc/stat");
    pb_cpustat all;
    int nc = 0;
    if (n > 0 && pb_procfs_cpus(m->buf, (size_t)n, &all, m->cur_cores, PB_MON_MAX_CPUS, &nc) == 0) {
        if (!baseline && m->have_prev_cpu) {
            uint64_t dtot = pb_cpustat_total(&all) - pb_cpustat_total(&m->prev_all);
            uint64_t dbusy = pb_cpustat_busy(&all) - pb_cpustat_busy(&m->prev_all);
            if (pb_cpustat_total(&all) >= pb_cpustat_total(&m->prev_all) && dtot > 0 && dbusy <= dtot)
                s->sys_cpu = 100.0 * (double)dbusy / (double)dtot;
            double best = -1;
            int k = nc < m->ncpu ? nc : m->ncpu;
            for (int i = 0; i < k; i++) {
                uint64_t t1 = pb_cpustat_total(&m->cur_cores[i]), t0 = pb_cpustat_total(&m->prev_cores[i]);
                uint64_t b1 = pb_cpustat_busy(&m->cur_cores[i]), b0 = pb_cpustat_busy(&m->prev_cores[i]);
                m->cores_now[i] = -1;
                if (t1 > t0 && b1 >= b0 && b1 - b0 <= t1 - t0) {
                    m->cores_now[i] = (float)(100.0 * (double)(b1 - b0) / (double)(t1 - t0));
                    if (m->cores_now[i] > best) best = m->cores_now[i];
                }
            }
            for (int i = k; i < m->ncpu; i++) m->cores_now[i] = -1;
            s->core_max = best;
        }
        if (m->ncpu == 0) m->ncpu = nc; /* fixed at the first reading: the CSV's columns */
        m->prev_all = all;
        memcpy(m->prev_cores, m->cur_cores, sizeof *m->prev_cores * PB_MON_MAX_CPUS);
        m->have_prev_cpu = 1;
    }
    s->ncpu = m->ncpu;
    pb_meminfo mi;
    if ((n = rd(m, "/proc/meminfo")) > 0 && pb_procfs_meminfo(m->buf, (size_t)n, &mi) == 0 &&
        mi.available_kb >= 0)
        s->mem_avail_mb = (double)mi.available_kb / 1024.0;
    if (!m->disk) return;
    pb_diskstat d;
    if ((n = rd(m, "/proc/diskstats")) <= 0 ||
        pb_procfs_diskstat(m->buf, (size_t)n, m->disk == 1 ? m->disk_name : NULL, m->disk_major,
                           m->disk_minor, &d) != 0)
        return;
    const pb_diskstat *p = &m->prev_disk;
    if (!baseline && m->have_prev_disk && dt > 0 && d.writes >= p->writes && d.reads >= p->reads &&
        d.ms_writing >= p->ms_writing && d.sectors_written >= p->sectors_written && d.ms_io >= p->ms_io) {
        uint64_t dw = d.writes - p->writes;
        s->disk_r_iops = (double)(d.reads - p->reads) / dt;
        s->disk_w_iops = (double)dw / dt;
        /* iostat's w_await: time writes spent queued and served, per write */
        s->disk_w_await_ms = dw ? (double)(d.ms_writing - p->ms_writing) / (double)dw : -1;
        s->disk_w_mbps = (double)(d.sectors_written - p->sectors_written) * 512.0 / dt / 1e6;
        double u = 100.0 * (double)(d.ms_io - p->ms_io) / (dt * 1000.0);
        s->disk_util = u > 100 ? 100 : u;
    }
    m->prev_disk = d;
    m->have_prev_disk = 1;
}

static void sample_gpus(pb_monitor *m, pb_mon_sample *s, int baseline)
{
    s->ngpu = m->ngpu;
    for (int i = 0; i < m->ngpu; i++) {
        pb_gpu_sample *g = &s->gpu[i];
        px_gpu_info info;
        px_gpu_util_window w;
        int have = px_nvml_query(m->nvml, i, &info) == 0;
        int wrc = m->gpu_samples ? px_nvml_drain_util(m->nvml, i, &w) : PX_EUNSUP;
        if (baseline) continue; /* the drain above only marked where to start */
        if (wrc == 0 && w.n > 0) {
            g->util = w.gpu_mean;
            g->util_max = w.gpu_max;
            g->nsamples = w.n;
        } else if (have && info.util_gpu >= 0) {
            g->util = g->util_max = info.util_gpu;
        }
        if (wrc == 0 && w.mem_n > 0) g->mem_util = w.mem_mean;
        else if (have && info.util_mem >= 0) g->mem_util = info.util_mem;
        if (have && info.mem_total) {
            g->mem_used_mb = (double)info.mem_used / 1048576.0;
            g->mem_total_mb = (double)info.mem_total / 1048576.0;
        }
        if (have) {
            g->power_w = info.power_w;
            g->temp_c = info.temp_c;
            g->sm_mhz = info.sm_clock_mhz;
            g->mem_mhz = info.mem_clock_mhz;
            g->have_throttle = info.have_throttle;
            g->throttle = info.throttle_reasons;
        }
        px_gpu_proc procs[64];
        int np = px_nvml_processes(m->nvml, i, procs, 64);
        if (np >= 0) {
            g->nprocs = np;
            if (m->cfg.pid > 0) {
                for (int k = 0; k < np && k < 64; k++)
                    if (procs[k].pid == (unsigned)m->cfg.pid && procs[k].used_bytes != UINT64_MAX)
                        g->proc_mem_mb = (double)procs[k].used_bytes / 1048576.0;
            }
        }
    }
}

static void blank(pb_mon_sample *s)
{
    memset(s, 0, sizeof *s);
    s->alive = 0;
    s->cpu = s->thread_cpu = s->rss_mb = s->hwm_mb = s->read_mbps = s->write_mbps = s->ctxsw = -1;
    s->threads = s->fds = -1;
    s->sys_cpu = s->core_max = s->mem_avail_mb = -1;
    s->disk_r_iops = s->disk_w_iops = s->disk_w_await_ms = s->disk_w_mbps = s->disk_util = -1;
    for (int i = 0; i < PB_MON_MAX_GPUS; i++) {
        pb_gpu_sample *g = &s->gpu[i];
        g->util = g->util_max = g->mem_util = g->mem_used_mb = g->mem_total_mb = g->proc_mem_mb = -1;
        g->power_w = -1;
        g->temp_c = g->sm_mhz = g->mem_mhz = g->nprocs = -1;
    }
}

static void take(pb_monitor *m, pb_mon_sample *s, int baseline)
{
    int64_t now = m->os->now_ns(m->os->ctx);
    double dt = (double)(now - m->prev_t) / 1e9;
    blank(s);
    s->t = (double)(now - m->t0) / 1e9;
    s->dt = baseline ? 0 : dt;
    for (int i = 0; i < m->ncpu; i++) m->cores_now[i] = -1;
    if (m->cfg.pid > 0) sample_process(m, dt, s, baseline);
    sample_system(m, dt, s, baseline);
    if (m->nvml) sample_gpus(m, s, baseline);
    m->prev_t = now;
}

/* --- setup ----------------------------------------------------------------------- */

static void find_disk(pb_monitor *m)
{
    const pb_os *os = m->os;
    const char *path = m->cfg.disk_path;
    if (m->cfg.disk_dev) {
        snprintf(m->disk_name, sizeof m->disk_name, "%s", m->cfg.disk_dev);
        long n = rd(m, "/proc/diskstats");
        pb_diskstat d;
        if (n > 0 && pb_procfs_diskstat(m->buf, (size_t)n, m->disk_name, 0, 0, &d) == 0) {
            m->disk = 1;
            snprintf(m->disk_status, sizeof m->disk_status, "%s (%u:%u)", d.name, d.major, d.minor);
        } else {
            snprintf(m->disk_status, sizeof m->disk_status, "none (no device '%s' in /proc/diskstats)",
                     m->cfg.disk_dev);
        }
        return;
    }
    if (!path) {
        snprintf(m->disk_status, sizeof m->disk_status, "none (no path given)");
        return;
    }
    unsigned ma = 0, mi = 0;
    char src[256] = "";
    if (!os->dev_of || os->dev_of(os->ctx, path, 0, &ma, &mi) != 0) {
        snprintf(m->disk_status, sizeof m->disk_status, "none (cannot stat %s)", path);
        return;
    }
    if (ma == 0) {
        /* overlay, tmpfs, btrfs: an anonymous device; the mount's source may
         * name the real one */
        long n = rd(m, "/proc/self/mountinfo");
        unsigned a, b;
        int found = n > 0 && pb_procfs_mount_for(m->buf, (size_t)n, path, &a, &b, src, sizeof src) == 0 &&
                    strncmp(src, "/dev/", 5) == 0 && os->dev_of(os->ctx, src, 1, &ma, &mi) == 0 && ma != 0;
        if (!found) {
            snprintf(m->disk_status, sizeof m->disk_status,
                     "none (%s is on %s, which has no block device; name one with --disk)", path,
                     src[0] ? src : "a virtual filesystem");
            return;
        }
    }
    long n = rd(m, "/proc/diskstats");
    pb_diskstat d;
    if (n > 0 && pb_procfs_diskstat(m->buf, (size_t)n, NULL, ma, mi, &d) == 0) {
        m->disk = 2;
        m->disk_major = ma;
        m->disk_minor = mi;
        snprintf(m->disk_name, sizeof m->disk_name, "%s", d.name);
        snprintf(m->disk_status, sizeof m->disk_status, "%s (%u:%u, holds %s)", d.name, ma, mi, path);
    } else {
        snprintf(m->disk_status, sizeof m->disk_status, "none (%u:%u, holding %s, is not in /proc/diskstats)",
                 ma, mi, path);
    }
}

static void find_gpus(pb_monitor *m)
{
    char err[256] = "";
    if (m->cfg.no_gpu) {
        snprintf(m->gpu_status, sizeof m->gpu_status, "no GPU: not monitored");
        return;
    }
    m->nvml = m->cfg.nvml_api ? px_nvml_open_api(m->cfg.nvml_api, err, sizeof err) : px_nvml_open(err, sizeof err);
    if (!m->nvml) {
        snprintf(m->gpu_status, sizeof m->gpu_status, "no GPU: %s", err);
        return;
    }
    m->ngpu = px_nvml_count(m->nvml);
    if (m->ngpu > PB_MON_MAX_GPUS) m->ngpu = PB_MON_MAX_GPUS;
    px_gpu_util_window w;
    m->gpu_samples = m->ngpu > 0 && px_nvml_drain_util(m->nvml, 0, &w) == 0;
    size_t k = (size_t)snprintf(m->gpu_status, sizeof m->gpu_status, "%d GPU%s:", m->ngpu,
                                m->ngpu == 1 ? "" : "s");
    for (int i = 0; i < m->ngpu; i++) {
        px_gpu_info g;
        if (px_nvml_query(m->nvml, i, &g) == 0 && g.name[0])
            printable(m->gpu_names[i], sizeof m->gpu_names[i], g.name);
        else
            snprintf(m->gpu_names[i], sizeof m->gpu_names[i], "GPU %d", i);
        if (k < sizeof m->gpu_status)
            k += (size_t)snprintf(m->gpu_status + k, sizeof m->gpu_status - k, "%s %s", i ? "," : "",
                                  m->gpu_names[i]);
    }
    if (k < sizeof m->gpu_status)
        snprintf(m->gpu_status + k, sizeof m->gpu_status - k, " (utilisation from %s)",
                 m->gpu_samples ? "the driver's sample buffer" : "instantaneous readings");
}

int pb_monitor_open(const pb_monitor_config *c, pb_monitor **out, char *err, size_t errlen)
{
    *out = NULL;
    int64_t iv = c->interval_ns ? c->interval_ns : 1000000000LL;
    if (iv < PB_MON_MIN_INTERVAL_NS)
        return px_errf(err, errlen, PX_EINVAL, "monitor interval below 100 ms (clock ticks are 10 ms)");
    pb_monitor *m = px_xcalloc(1, sizeof *m);
    m->cfg = *c;
    m->cfg.interval_ns = iv;
    m->os = c->os ? c->os : pb_os_real();
    m->hz = sysconf(_SC_CLK_TCK);
    if (m->hz <= 0) m->hz = 100;
    m->buf = px_xmalloc(FILE_CAP);
    m->tasks = px_xcalloc(MAX_TASKS + 1, sizeof *m->tasks);
    m->tasks_new = px_xcalloc(MAX_TASKS + 1, sizeof *m->tasks_new);
    m->tids = px_xcalloc(MAX_TASKS, sizeof *m->tids);
    m->prev_cores = px_xcalloc(PB_MON_MAX_CPUS, sizeof *m->prev_cores);
    m->cur_cores = px_xcalloc(PB_MON_MAX_CPUS, sizeof *m->cur_cores);
    m->cores_now = px_xcalloc(PB_MON_MAX_CPUS, sizeof *m->cores_now);
    m->prev_read = m->prev_write = -1;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (c->pid > 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", c->pid);
        if (rd(m, path) <= 0) {
            pb_monitor_close(m);
            return px_errf(err, errlen, PX_ENOTFOUND, "no process %d", c->pid);
        }
        snprintf(path, sizeof path, "/proc/%d/schedstat", c->pid);
        m->schedstat = rd(m, path) > 0;
    }
    find_disk(m);
    find_gpus(m);
    m->t0 = m->prev_t = m->os->now_ns(m->os->ctx);
    pb_mon_sample base;
    take(m, &base, 1);
    m->t0 = m->prev_t;
    m->cap = c->ring > 0 ? c->ring : 1024;
    m->ring = px_xcalloc((size_t)m->cap, sizeof *m->ring);
    m->ring_cores = px_xcalloc((size_t)m->cap * (size_t)(m->ncpu > 0 ? m->ncpu : 1), sizeof *m->ring_cores);
    *out = m;
    return 0;
}

int pb_monitor_tick(pb_monitor *m)
{
    pb_mon_sample s;
    take(m, &s, 0);
    pthread_mutex_lock(&m->mu);
    s.seq = ++m->seq;
    int slot = (int)((s.seq - 1) % (uint64_t)m->cap);
    m->ring[slot] = s;
    if (m->ncpu > 0) memcpy(m->ring_cores + (size_t)slot * (size_t)m->ncpu, m->cores_now, sizeof(float) * (size_t)m->ncpu);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

int pb_monitor_read(pb_monitor *m, uint64_t *next, pb_mon_sample *out, float *cores, int max)
{
    pthread_mutex_lock(&m->mu);
    uint64_t first = m->seq >= (uint64_t)m->cap ? m->seq - (uint64_t)m->cap + 1 : 1;
    if (*next < first) *next = first;
    int n = 0;
    while (n < max && *next <= m->seq) {
        int slot = (int)((*next - 1) % (uint64_t)m->cap);
        out[n] = m->ring[slot];
        if (cores && m->ncpu > 0)
            memcpy(cores + (size_t)n * (size_t)m->ncpu, m->ring_cores + (size_t)slot * (size_t)m->ncpu,
                   sizeof(float) * (size_t)m->ncpu);
        n++;
        ++*next;
    }
    pthread_mutex_unlock(&m->mu);
    return n;
}

static void *thread_main(void *arg)
{
    pb_monitor *m = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    int64_t step = m->first_ns;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        int64_t ns = next.tv_nsec + step;
        step = m->cfg.interval_ns;
        next.tv_sec += ns / 1000000000;
        next.tv_nsec = ns % 1000000000;
        while (!m->stop && pthread_cond_timedwait(&m->cv, &m->mu, &next) != ETIMEDOUT) {
        }
        if (m->stop) break;
        pthread_mutex_unlock(&m->mu);
        pb_monitor_tick(m);
        pthread_mutex_lock(&m->mu);
        /* fell behind (a stalled machine): skip ahead rather than burst */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > next.tv_sec + 1) next = now;
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int pb_monitor_start(pb_monitor *m, int64_t first_ns)
{
    if (m->running) return 0;
    pb_mon_sample base;
    take(m, &base, 1); /* rates of the first sample start now, not at open */
    m->first_ns = first_ns > 0 ? first_ns : m->cfg.interval_ns;
    if (pthread_create(&m->th, NULL, thread_main, m) != 0) return PX_ENOMEM;
    m->running = 1;
    return 0;
}

void pb_monitor_close(pb_monitor *m)
{
    if (!m) return;
    if (m->running) {
        pthread_mutex_lock(&m->mu);
        m->stop = 1;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->th, NULL);
    }
    px_nvml_close(m->nvml);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m->buf);
    free(m->tasks);
    free(m->tasks_new);
    free(m->tids);
    free(m->prev_cores);
    free(m->cur_cores);
    free(m->cores_now);
    free(m->ring);
    free(m->ring_cores);
    free(m);
}

int pb_monitor_ncpu(const pb_monitor *m)
{
    return m->ncpu;
}

int pb_monitor_ngpu(const pb_monitor *m)
{
    return m->ngpu;
}

const char *pb_monitor_gpu_name(const pb_monitor *m, int i)
{
    return i >= 0 && i < m->ngpu ? m->gpu_names[i] : "";
}

int64_t pb_monitor_interval_ns(const pb_monitor *m)
{
    return m->cfg.interval_ns;
}

const char *pb_monitor_gpu_status(const pb_monitor *m)
{
    return m->gpu_status;
}

const char *pb_monitor_disk_status(const pb_monitor *m)
{
    return m->disk_status;
}

int pb_monitor_reset_peak(pb_monitor *m)
{
    if (m->cfg.pid <= 0 || !m->os->write_file) return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/clear_refs", m->cfg.pid);
    return m->os->write_file(m->os->ctx, path, "5");
}
