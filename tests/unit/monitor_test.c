/*
 * monitor_test.c — the resource monitor driven tick by tick over a fake OS
 * (a table of /proc files and a clock the test sets) and a fake NVML
 * driver: every rate it derives (process and busiest-thread CPU, context
 * switches, I/O, per-core CPU, disk IOPS, write latency and throughput, GPU
 * utilisation from drained samples, the target's GPU memory) is checked
 * exactly; threads that come and go, a target that exits, a disk behind an
 * overlay mount, no schedstat, no GPU, the ring's overwrite, the
 * aggregation, and the real thread on this process.
 */
#include "bench/monitor.h"
#include "core/err.h"
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* --- a fake OS ------------------------------------------------------------------- */

#define NF 64
static struct {
    char path[96];
    char text[2048];
} files[NF];
static int nfiles;
static int64_t clock_ns;
static char written[128];

static void put(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(const char *path, const char *fmt, ...)
{
    int i = 0;
    while (i < nfiles && strcmp(files[i].path, path)) i++;
    if (i == nfiles) snprintf(files[nfiles++].path, sizeof files[0].path, "%s", path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(files[i].text, sizeof files[i].text, fmt, ap);
    va_end(ap);
}

static void del(const char *path)
{
    for (int i = 0; i < nfiles; i++)
        if (!strcmp(files[i].path, path)) files[i].path[0] = 0;
}

static long f_read(void *ctx, const char *path, char *buf, size_t cap)
{
    (void)ctx;
    for (int i = 0; i < nfiles; i++)
        if (files[i].path[0] && !strcmp(files[i].path, path)) {
            size_t n = strlen(files[i].text);
            if (n > cap - 1) n = cap - 1;
            memcpy(buf, files[i].text, n);
            buf[n] = 0;
            return (long)n;
        }
    return -1;
}

/* A directory lists the files under it (its direct children). */
static int f_list(void *ctx, const char *path, int (*fn)(void *, const char *), void *arg)
{
    (void)ctx;
    size_t pl = strlen(path);
    char seen[64][32];
    int ns = 0, any = 0;
    for (int i = 0; i < nfiles; i++) {
        const char *p = files[i].path;
        if (!p[0] || strncmp(p, path, pl) || p[pl] != '/') continue;
        any = 1;
        char name[32];
        size_t k = 0;
        for (const char *q = p + pl + 1; *q && *q != '/' && k + 1 < sizeof name; q++) name[k++] = *q;
        name[k] = 0;
        int dup = 0;
        for (int j = 0; j < ns; j++) dup |= !strcmp(seen[j], name);
        if (dup || ns == 64) continue;
        snprintf(seen[ns++], sizeof seen[0], "%s", name);
    }
    if (!any) return -1;
    for (int j = 0; j < ns; j++)
        if (fn(arg, seen[j])) break;
    return ns;
}

static int64_t f_now(void *ctx)
{
    (void)ctx;
    return clock_ns;
}

static int f_write(void *ctx, const char *path, const char *text)
{
    (void)ctx;
    snprintf(written, sizeof written, "%s <- %s", path, text);
    return 0;
}

static const char *overlay_src = "/dev/nvme0n1p2";
static int f_dev(void *ctx, const char *path, int node, unsigned *ma, unsigned *mi)
{
    (void)ctx;
    if (!node && !strcmp(path, "/out")) return *ma = 254, *mi = 0, 0;
    if (!node && !strcmp(path, "/container/out")) return *ma = 0, *mi = 52, 0;
    if (node && !strcmp(path, overlay_src)) return *ma = 259, *mi = 2, 0;
    return -1;
}

static const pb_os fake_os = {NULL, f_read, f_list, f_now, f_write, f_dev};

static long hz;

/* The state of the fake machine at a moment. ticks: utime+stime of pid 42. */
static void machine(long ticks, uint64_t run42, uint64_t run43, uint64_t run44, uint64_t sl, long rss_kb,
                    long rd, long wr, long c0busy, long c0idle, long c1busy, long c1idle, long dwrites,
                    long dms, long dsect, long dio)
{
    put("/proc/42/stat", "42 (pix serve) S 1 1 1 0 -1 0 0 0 0 0 %ld 0 0 0 20 0 3 0 5 100 7", ticks);
    put("/proc/42/status", "Name:\tpix serve\nVmHWM:\t  %ld kB\nVmRSS:\t  %ld kB\nThreads:\t3\n", rss_kb + 102400,
        rss_kb);
    put("/proc/42/io", "rchar: 1\nwchar: 1\nread_bytes: %ld\nwrite_bytes: %ld\n", rd, wr);
    for (int i = 0; i < 7; i++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/42/fd/%d", i);
        put(p, "x");
    }
    put("/proc/42/schedstat", "1 0 1\n");
    put("/proc/42/task/42/schedstat", "%llu 0 %llu\n", (unsigned long long)run42, (unsigned long long)sl);
    put("/proc/42/task/43/schedstat", "%llu 0 %llu\n", (unsigned long long)run43, (unsigned long long)(4 * sl));
    put("/proc/42/task/44/schedstat", "%llu 0 %llu\n", (unsigned long long)run44, (unsigned long long)(sl / 2));
    put("/proc/42/task/43/comm", "work\x1b[31mer\n");
    put("/proc/stat", "cpu  %ld 0 0 %ld 0 0 0 0 0 0\ncpu0 %ld 0 0 %ld 0 0 0 0 0 0\ncpu1 %ld 0 0 %ld 0 0 0 0 0 0\n",
        c0busy + c1busy, c0idle + c1idle, c0busy, c0idle, c1busy, c1idle);
    put("/proc/meminfo", "MemTotal: 4194304 kB\nMemFree: 10 kB\nMemAvailable: 1048576 kB\n");
    put("/proc/diskstats", "   7 0 loop0 0 0 0 0 0 0 0 0 0 0 0\n 254 0 vda 10 0 80 5 %ld 0 %ld %ld 0 %ld %ld\n", dwrites,
        dsect, dms, dio, dms);
}

/* --- a fake NVML with one GPU ------------------------------------------------------ */

static struct { unsigned long long ts; unsigned int v; } gring[32];
static int ngring;
static int gpu_init_fails;

static int g_init(void) { return gpu_init_fails ? 9 : 0; }
static int g_shutdown(void) { return 0; }
static int g_count(unsigned int *c) { *c = 1; return 0; }
static int g_handle(unsigned int i, void **d) { *d = (void *)(uintptr_t)(i + 1); return 0; }
static int g_name(void *d, char *n, unsigned int len) { (void)d; snprintf(n, len, "Fake A10"); return 0; }
static int g_mem(void *d, void *m)
{
    (void)d;
    unsigned long long v[3] = {24ull << 30, 14ull << 30, 10ull << 30};
    memcpy(m, v, sizeof v);
    return 0;
}
static int g_util(void *d, void *u)
{
    (void)d;
    unsigned int v[2] = {77, 33};
    memcpy(u, v, sizeof v);
    return 0;
}
static int g_power(void *d, unsigned int *mw) { (void)d; *mw = 250000; return 0; }
static int g_temp(void *d, int s, unsigned int *t) { (void)d, (void)s; *t = 71; return 0; }
static int g_clock(void *d, int t, unsigned int *mhz) { (void)d; *mhz = t == 1 ? 1695 : 6251; return 0; }
static int g_throttle(void *d, unsigned long long *r) { (void)d; *r = 0x4; return 0; }
static int g_procs(void *d, unsigned int *count, void *infos)
{
    (void)d;
    if (*count < 2) {
        *count = 2;
        return 7;
    }
    unsigned int pids[2] = {7, 42};
    unsigned long long used[2] = {1ull << 30, 1536ull << 20};
    for (int i = 0; i < 2; i++) {
        memcpy((char *)infos + 24 * i, &pids[i], 4);
        memcpy((char *)infos + 24 * i + 8, &used[i], 8);
    }
    *count = 2;
    return 0;
}
static int g_samples(void *d, int type, unsigned long long last, int *vt, unsigned int *count, void *out)
{
    (void)d;
    unsigned int k = 0;
    for (int i = 0; i < ngring; i++) k += gring[i].ts > last;
    if (!k) return 6;
    *vt = 1;
    if (!out) {
        *count = 32;
        return 0;
    }
    k = 0;
    for (int i = 0; i < ngring; i++) {
        if (gring[i].ts <= last) continue;
        unsigned int v = type == 1 ? gring[i].v : gring[i].v / 2;
        memcpy((char *)out + 16 * k, &gring[i].ts, 8);
        memcpy((char *)out + 16 * k + 8, &v, 4);
        k++;
    }
    *count = k;
    return 0;
}

static const px_nvml_api fake_gpu = {.init = g_init, .shutdown = g_shutdown, .device_count = g_count,
                                     .device_handle = g_handle, .device_name = g_name, .memory_info = g_mem,
                                     .utilization = g_util, .temperature = g_temp, .power_usage = g_power,
                                     .clock_info = g_clock, .compute_procs_v3 = g_procs, .samples = g_samples,
                                     .throttle_reasons = g_throttle};

static void gpush(unsigned long long ts, unsigned int v)
{
    gring[ngring].ts = ts;
    gring[ngring++].v = v;
}

static pb_monitor *open_fake(int pid, const char *disk_path)
{
    hz = sysconf(_SC_CLK_TCK);
    pb_monitor_config c = {.pid = pid, .interval_ns = 500000000, .disk_path = disk_path, .os = &fake_os,
                           .nvml_api = &fake_gpu, .ring = 4};
    pb_monitor *m = NULL;
    char err[256];
    T_EQ_INT(pb_monitor_open(&c, &m, err, sizeof err), 0);
    return m;
}

TEST(t_rates_from_two_readings)
{
    clock_ns = 1000000000;
    /* baseline: 100 ticks; threads at 1.0 s, 2.0 s, 0.5 s of CPU */
    machine(100, 1000000000, 2000000000, 500000000, 10, 204800, 0, 1000000, 400, 100, 300, 200, 1000, 4000, 80000,
            9000);
    gpush(100, 90); /* history before the monitor: not counted */
    pb_monitor *m = open_fake(42, "/out");
    T_CONTAINS(pb_monitor_gpu_status(m), "1 GPU: Fake A10");
    T_CONTAINS(pb_monitor_gpu_status(m), "sample buffer");
    T_EQ_STR(pb_monitor_disk_status(m), "vda (254:0, holds /out)");
    T_EQ_INT(pb_monitor_ncpu(m), 2);
    /* 0.5 s later: +50 ticks = 0.5 s of CPU = 100 % of one core */
    clock_ns += 500000000;
    machine(100 + hz / 2, 1050000000, 2400000000, 530000000, 12, 215040, 1000000, 3000000, 440, 110, 310, 240, 1100,
            4250, 82048, 9125);
    gpush(200, 30);
    gpush(366, 95);
    gpush(533, 20);
    T_EQ_INT(pb_monitor_tick(m), 0);
    uint64_t next = 1;
    pb_mon_sample s[4];
    float cores[8];
    T_EQ_INT(pb_monitor_read(m, &next, s, cores, 4), 1);
    T_EQ_INT(next, 2);
    T_EQ_INT(s[0].seq, 1);
    T_NEAR(s[0].t, 0.5, 1e-9);
    T_NEAR(s[0].dt, 0.5, 1e-9);
    T_EQ_INT(s[0].alive, 1);
    T_NEAR(s[0].cpu, 100.0 * (double)(hz / 2) / (double)hz / 0.5, 1e-9);
    T_NEAR(s[0].thread_cpu, 80.0, 1e-9); /* tid 43: +400 ms in 500 ms */
    T_EQ_INT(s[0].thread_tid, 43);
    T_EQ_STR(s[0].thread_name, "work?[31mer"); /* the escape byte is not passed on */
    T_NEAR(s[0].ctxsw, (2 + 8 + 1) / 0.5, 1e-9); /* timeslices: +2, +8, +1 */
    T_NEAR(s[0].rss_mb, 210.0, 1e-9);
    T_NEAR(s[0].hwm_mb, 310.0, 1e-9);
    T_EQ_INT(s[0].threads, 3);
    T_EQ_INT(s[0].fds, 7);
    T_NEAR(s[0].read_mbps, 2.0, 1e-9);
    T_NEAR(s[0].write_mbps, 4.0, 1e-9);
    T_NEAR(s[0].sys_cpu, 100.0 * 50 / 100, 1e-9);
    T_NEAR(cores[0], 80.0, 1e-5);
    T_NEAR(cores[1], 20.0, 1e-5);
    T_NEAR(s[0].core_max, 80.0, 1e-5);
    T_NEAR(s[0].mem_avail_mb, 1024.0, 1e-9);
    T_NEAR(s[0].disk_w_iops, 200.0, 1e-9);
    T_NEAR(s[0].disk_w_await_ms, 2.5, 1e-9);
    T_NEAR(s[0].disk_w_mbps, 2048 * 512 / 0.5 / 1e6, 1e-9);
    T_NEAR(s[0].disk_util, 25.0, 1e-9);
    T_NEAR(s[0].disk_r_iops, 0, 0);
    T_EQ_INT(s[0].ngpu, 1);
    const pb_gpu_sample *g = &s[0].gpu[0];
    T_EQ_INT(g->nsamples, 3);
    T_NEAR(g->util, (30 + 95 + 20) / 3.0, 1e-9);
    T_NEAR(g->util_max, 95, 0); /* the spike between two readings */
    T_NEAR(g->mem_util, (15 + 47 + 10) / 3.0, 1e-9);
    T_NEAR(g->mem_used_mb, 10240, 1e-9);
    T_NEAR(g->mem_total_mb, 24576, 1e-9);
    T_NEAR(g->proc_mem_mb, 1536, 1e-9);
    T_EQ_INT(g->nprocs, 2);
    T_NEAR(g->power_w, 250, 1e-9);
    T_EQ_INT(g->temp_c, 71);
    T_EQ_INT(g->sm_mhz, 1695);
    T_EQ_INT(g->have_throttle, 1);
    T_EQ_INT(g->throttle, 0x4);
    /* no new driver samples: the instantaneous reading stands in */
    clock_ns += 500000000;
    T_EQ_INT(pb_monitor_tick(m), 0);
    T_EQ_INT(pb_monitor_read(m, &next, s, NULL, 4), 1);
    T_EQ_INT(s[0].gpu[0].nsamples, 0);
    T_NEAR(s[0].gpu[0].util, 77, 0);
    T_NEAR(s[0].cpu, 0, 0);
    T_NEAR(s[0].disk_w_await_ms, -1, 0); /* no writes: no latency, not zero latency */
    T_EQ_INT(pb_monitor_reset_peak(m), 0);
    T_EQ_STR(written, "/proc/42/clear_refs <- 5");
    pb_monitor_close(m);
}

TEST(t_threads_come_and_go_and_the_target_exits)
{
    clock_ns = 0;
    nfiles = 0;
    ngring = 0;
    machine(0, 100, 200, 300, 0, 1024, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    pb_monitor *m = open_fake(42, NULL);
    T_CONTAINS(pb_monitor_disk_status(m), "none");
    /* 43 exits, 45 appears (no previous reading: not a rate yet) */
    del("/proc/42/task/43/schedstat");
    del("/proc/42/task/43/comm");
    put("/proc/42/task/45/schedstat", "900000000 0 1\n");
    put("/proc/42/schedstat", "1 0 1\n");
    put("/proc/42/task/42/schedstat", "100000100 0 0\n");
    clock_ns = 1000000000;
    T_EQ_INT(pb_monitor_tick(m), 0);
    uint64_t next = 0;
    pb_mon_sample s[4];
    T_EQ_INT(pb_monitor_read(m, &next, s, NULL, 4), 1);
    T_NEAR(s[0].thread_cpu, 10.0, 1e-6); /* tid 42: +100 ms; 45 is new, 44 idle */
    T_EQ_INT(s[0].thread_tid, 42);
    /* now 45 has a baseline */
    put("/proc/42/task/45/schedstat", "1400000000 0 1\n");
    clock_ns = 2000000000;
    pb_monitor_tick(m);
    T_EQ_INT(pb_monitor_read(m, &next, s, NULL, 4), 1);
    T_EQ_INT(s[0].thread_tid, 45);
    T_NEAR(s[0].thread_cpu, 50.0, 1e-6);
    /* the target is gone */
    del("/proc/42/stat");
    clock_ns = 3000000000;
    pb_monitor_tick(m);
    T_EQ_INT(pb_monitor_read(m, &next, s, NULL, 4), 1);
    T_EQ_INT(s[0].alive, 0);
    T_NEAR(s[0].cpu, -1, 0);
    T_NEAR(s[0].rss_mb, -1, 0);
    T_CMP_DBL(s[0].sys_cpu, >=, -1); /* the system is still sampled */
    pb_monitor_close(m);
    /* a pid that does not exist is refused at open */
    pb_monitor_config c = {.pid = 4242, .os = &fake_os, .no_gpu = 1};
    char err[200];
    T_EQ_INT(pb_monitor_open(&c, &m, err, sizeof err), PX_ENOTFOUND);
    T_CONTAINS(err, "4242");
    c.pid = 0;
    c.interval_ns = 50000000;
    T_EQ_INT(pb_monitor_open(&c, &m, err, sizeof err), PX_EINVAL);
}

TEST(t_no_schedstat_uses_thread_ticks)
{
    clock_ns = 0;
    nfiles = 0;
    machine(0, 0, 0, 0, 0, 1024, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    del("/proc/42/schedstat");
    for (int t = 42; t <= 44; t++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/42/task/%d/schedstat", t);
        del(p);
        snprintf(p, sizeof p, "/proc/42/task/%d/stat", t);
        put(p, "%d (w) S 1 1 1 0 -1 0 0 0 0 0 %ld 0 0 0 20 0 3 0 5 100 7", t, t == 44 ? 0L : 0L);
    }
    pb_monitor *m = open_fake(42, NULL);
    put("/proc/42/task/44/stat", "44 (w) S 1 1 1 0 -1 0 0 0 0 0 %ld %ld 0 0 20 0 3 0 5 100 7", hz / 4, hz / 4);
    clock_ns = 1000000000;
    pb_monitor_tick(m);
    uint64_t next = 0;
    pb_mon_sample s[2];
    T_EQ_INT(pb_monitor_read(m, &next, s, NULL, 2), 1);
    T_EQ_INT(s[0].thread_tid, 44);
    T_NEAR(s[0].thread_cpu, 100.0 * (double)(2 * (hz / 4)) / (double)hz, 1e-9);
    T_NEAR(s[0].ctxsw, -1, 0); /* only schedstat counts every thread's switches */
    pb_monitor_close(m);
}

TEST(t_disk_behind_an_overlay_mount)
{
    nfiles = 0;
    clock_ns = 0;
    put("/proc/stat", "cpu 1 0 0 1\ncpu0 1 0 0 1\n");
    put("/proc/self/mountinfo",
        "612 547 0:52 / / rw - overlay overlay rw\n620 612 259:2 /v /container/out rw - ext4 /dev/nvme0n1p2 rw\n");
    put("/proc/diskstats", " 259 2 nvme0n1p2 1 2 3 4 5 6 7 8 9 10 11\n");
    /* /container/out is on 0:52 (as stat says in a container whose outputs
     * are on the overlay); the mount table names the device */
    put("/proc/self/mountinfo", "612 547 0:52 / / rw - overlay /dev/nvme0n1p2 rw\n");
    pb_monitor_config c = {.os = &fake_os, .no_gpu = 1, .disk_path = "/container/out"};
    pb_monitor *m;
    char err[200];
    T_EQ_INT(pb_monitor_open(&c, &m, err, sizeof err), 0);
    T_EQ_STR(pb_monitor_disk_status(m), "nvme0n1p2 (259:2, holds /container/out)");
    T_CONTAINS(pb_monitor_gpu_status(m), "no GPU");
    pb_monitor_close(m);
    put("/proc/self/mountinfo", "612 547 0:52 / / rw - overlay overlay rw\n");
    T_EQ_INT(pb_monitor_open(&c, &m, err, sizeof err), 0);
    T_CONTAINS(pb_monitor_disk_status(m), "none (/container/out is on overlay");
    pb_monitor_close(m);
    c.disk_path = NULL;
    c.disk_dev = "nvme0n1p2";
    T_EQ_INT(pb_monitor_open(&c, &m, err, sizeof err), 0);
    T_EQ_STR(pb_monitor_disk_status(m), "nvme0n1p2 (259:2)");
    pb_monitor_close(m);
}

TEST(t_no_gpu_is_said_not_failed)
{
    nfiles = 0;
    put("/proc/stat", "cpu 1 0 0 1\n");
    gpu_init_fails = 1;
    pb_monitor_config c = {.os = &fake_os, .nvml_api = &fake_gpu};
    pb_monitor *m;
    char err[200];
    T_EQ_INT(pb_monitor_open(&c, &m, err, sizeof err), 0);
    T_CONTAINS(pb_monitor_gpu_status(m), "no GPU: NVML failed to initialise");
    T_EQ_INT(pb_monitor_ngpu(m), 0);
    pb_monitor_tick(m);
    uint64_t next = 0;
    pb_mon_sample s;
    T_EQ_INT(pb_monitor_read(m, &next, &s, NULL, 1), 1);
    T_EQ_INT(s.ngpu, 0);
    pb_monitor_close(m);
    gpu_init_fails = 0;
    /* the real loader on this machine (no driver in CI) */
    c.os = NULL;
    c.nvml_api = NULL;
    T_EQ_INT(pb_monitor_open(&c, &m, err, sizeof err), 0);
    if (pb_monitor_ngpu(m) == 0) T_CONTAINS(pb_monitor_gpu_status(m), "no GPU");
    printf("    %s\n", pb_monitor_gpu_status(m));
    pb_monitor_close(m);
}

TEST(t_ring_keeps_the_newest)
{
    nfiles = 0;
    put("/proc/stat", "cpu 1 0 0 1\n");
    pb_monitor_config c = {.os = &fake_os, .no_gpu = 1, .ring = 4};
    pb_monitor *m;
    char err[200];
    T_EQ_INT(pb_monitor_open(&c, &m, err, sizeof err), 0);
    for (int i = 0; i < 10; i++) {
        clock_ns += 100000000;
        pb_monitor_tick(m);
    }
    uint64_t next = 1;
    pb_mon_sample s[8];
    T_EQ_INT(pb_monitor_read(m, &next, s, NULL, 8), 4);
    T_EQ_INT(s[0].seq, 7);
    T_EQ_INT(s[3].seq, 10);
    T_EQ_INT(next, 11);
    T_EQ_INT(pb_monitor_read(m, &next, s, NULL, 8), 0);
    pb_monitor_close(m);
}

TEST(t_aggregation)
{
    pb_res r, r2;
    pb_res_init(&r);
    pb_res_init(&r2);
    pb_mon_sample s;
    memset(&s, 0, sizeof s);
    s.alive = 1;
    s.cpu = 50, s.thread_cpu = 30, s.rss_mb = 100, s.hwm_mb = 150, s.fds = 9, s.threads = 3;
    s.sys_cpu = s.core_max = s.mem_avail_mb = s.read_mbps = s.write_mbps = s.ctxsw = -1;
    s.disk_w_iops = s.disk_w_await_ms = s.disk_w_mbps = s.disk_util = -1;
    s.ngpu = 2;
    for (int i = 0; i < 2; i++) {
        pb_gpu_sample *g = &s.gpu[i];
        g->util = 40 + 20 * i, g->util_max = 90 + 5 * i, g->mem_util = -1;
        g->mem_used_mb = 1000, g->proc_mem_mb = i ? -1 : 700, g->power_w = 100, g->temp_c = 60 + i;
        g->sm_mhz = 1500, g->have_throttle = 1, g->throttle = i ? 0x1 : 0x4;
    }
    pb_res_add(&r, &s);
    s.cpu = 150, s.rss_mb = 300, s.hwm_mb = 320, s.gpu[0].util = 0;
    pb_res_add(&r2, &s);
    s.alive = 0;
    s.cpu = -1;
    pb_res_add(&r2, &s);
    pb_res_merge(&r, &r2);
    T_EQ_INT(r.n, 3);
    T_EQ_INT(r.alive, 0);
    T_NEAR(pb_agg_mean(&r.cpu), 100, 1e-9); /* the unknown third value is skipped */
    T_NEAR(pb_agg_max(&r.cpu), 150, 0);
    T_NEAR(pb_agg_min(&r.rss_mb), 100, 0);
    T_NEAR(pb_agg_max(&r.rss_mb), 300, 0);
    T_NEAR(r.hwm_mb, 320, 0);
    T_NEAR(pb_agg_mean(&r.gpu_util), (50 + 30 + 30) / 3.0, 1e-9); /* mean over devices, per sample */
    T_NEAR(pb_agg_max(&r.gpu_util_peak), 95, 0);
    T_NEAR(pb_agg_max(&r.gpu_mem_mb), 2000, 0); /* summed over devices */
    T_NEAR(pb_agg_max(&r.gpu_proc_mem_mb), 700, 0);
    T_NEAR(pb_agg_max(&r.gpu_power_w), 200, 0);
    T_NEAR(pb_agg_max(&r.gpu_temp_c), 61, 0);
    T_EQ_INT(r.throttle, 0x4); /* "idle" is not a throttle worth reporting */
    T_EQ_INT(r.ngpu, 2);
    T_NEAR(pb_agg_mean(&r.sys_cpu), -1, 0);
    T_EQ_INT(r.sys_cpu.n, 0);
}

static int64_t clock_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * This thread burns a fixed amount of CPU time, not of wall time: on a
 * loaded machine it gets any share of a core, so the samples are held to
 * the CPU time it really got (CLOCK_THREAD_CPUTIME_ID). Summed over the
 * samples, the busiest thread's CPU (% of the interval, times the interval)
 * telescopes to that time: the busiest thread is at least this one.
 */
TEST(t_real_thread_on_this_process)
{
    pb_monitor_config c = {.pid = getpid(), .interval_ns = 100000000, .disk_path = "."};
    pb_monitor *m;
    char err[200];
    T_EQ_INT(pb_monitor_open(&c, &m, err, sizeof err), 0);
    int64_t cpu0 = clock_of(CLOCK_THREAD_CPUTIME_ID), wall0 = clock_of(CLOCK_MONOTONIC);
    T_EQ_INT(pb_monitor_start(m, 0), 0);
    volatile double x = 0;
    while (clock_of(CLOCK_THREAD_CPUTIME_ID) - cpu0 < 200000000) {
        for (int i = 0; i < 100000; i++) x += i * 1e-9;
        if (clock_of(CLOCK_MONOTONIC) - wall0 > 60 * 1000000000LL)
            px_tfail(__FILE__, __LINE__, "this thread got under 200 ms of CPU in 60 s");
    }
    double burned_s = (double)(clock_of(CLOCK_THREAD_CPUTIME_ID) - cpu0) / 1e9;
    /* Read everything sampled so far, then wait for two samples taken after
     * that: together they cover all of the burn. */
    uint64_t next = 0;
    pb_mon_sample s[16], last = {0}, best = {.thread_cpu = -1};
    int n = 0, fresh = -1, named = 0; /* samples that name this thread the busiest */
    double thread_s = 0;
    for (int w = 0; w < 30000 && fresh < 2; w++) {
        int k;
        while ((k = pb_monitor_read(m, &next, s, NULL, 16)) > 0) {
            for (int i = 0; i < k; i++) {
                T_CMP_DBL(s[i].thread_cpu, >=, 0);
                thread_s += s[i].thread_cpu / 100 * s[i].dt;
                if (s[i].thread_cpu > best.thread_cpu) best = s[i];
                named += s[i].thread_tid == (int)gettid();
                last = s[i];
            }
            n += k;
            if (fresh >= 0) fresh += k;
        }
        if (fresh < 0) fresh = 0;
        else if (fresh < 2) usleep(1000);
    }
    T_CMP_INT(fresh, >=, 2);
    T_EQ_INT(last.alive, 1);
    T_CMP_DBL(last.rss_mb, >, 0);
    T_CMP_INT(last.fds, >, 0);
    T_CMP_DBL(last.sys_cpu, >=, 0);
    T_CMP_INT(last.ncpu, >=, 1);
    /* (the monitor's own thread may top an interval in which this one was
     * starved, but not all of them) */
    T_CMP_INT(named, >=, 1);
    /* the monitor thread's own few reads are the slack above */
    T_CMP_DBL(thread_s, >=, 0.8 * burned_s);
    T_CMP_DBL(thread_s, <=, 1.25 * burned_s + 0.05);
    printf("    %d samples; burned %.0f ms of CPU, the busiest thread's sum %.0f ms; "
           "peak %.0f%% (%s), rss %.1f MB; disk %s\n",
           n, burned_s * 1e3, thread_s * 1e3, best.thread_cpu, best.thread_name, last.rss_mb,
           pb_monitor_disk_status(m));
    pb_monitor_close(m);
}

TEST_MAIN(t_rates_from_two_readings, t_threads_come_and_go_and_the_target_exits, t_no_schedstat_uses_thread_ticks,
          t_disk_behind_an_overlay_mount, t_no_gpu_is_said_not_failed, t_ring_keeps_the_newest, t_aggregation,
          t_real_thread_on_this_process)
