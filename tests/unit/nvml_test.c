/*
 * nvml_test.c — the NVML reader over a fake driver table: values are read
 * into px_gpu_info exactly, unsupported or failing calls give "unknown",
 * and a missing driver or an empty machine opens nothing. The versioned
 * entry points: memory v2 (with its version word) before v1, the process
 * lists _v3/_v2 (24-byte records) before the unversioned one (16 bytes),
 * clocks event reasons before throttle reasons, and the driver's sample
 * buffer drained exactly once per sample.
 */
#include "core/err.h"
#include "core/nvml.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail_util;

static int f_init(void) { return 0; }
static int f_init_fail(void) { return 9; }
static int f_shutdown(void) { return 0; }
static int f_count2(unsigned int *c) { *c = 2; return 0; }
static int f_count0(unsigned int *c) { *c = 0; return 0; }
static int f_handle(unsigned int i, void **d) { *d = (void *)(uintptr_t)(i + 1); return 0; }
static int f_name(void *d, char *n, unsigned int len)
{
    snprintf(n, len, "Fake GPU %d", (int)(uintptr_t)d);
    return 0;
}
static int f_mem(void *d, void *m)
{
    unsigned long long *v = m; /* total, free, used */
    v[0] = 80ull << 30;
    v[1] = (80ull << 30) - (uintptr_t)d * (1ull << 30);
    v[2] = (uintptr_t)d * (1ull << 30);
    return 0;
}
static int f_util(void *d, void *u)
{
    unsigned int *v = u; /* gpu, memory */
    if (fail_util) return 3;
    v[0] = 40 + (unsigned)(uintptr_t)d;
    v[1] = 7;
    return 0;
}
static int f_temp(void *d, int sensor, unsigned int *t)
{
    (void)d;
    *t = sensor == 0 ? 61 : 0;
    return 0;
}
static int f_power(void *d, unsigned int *mw) { (void)d; *mw = 312500; return 0; }
static int f_clock(void *d, int type, unsigned int *mhz)
{
    (void)d;
    *mhz = type == 1 ? 1980 : type == 2 ? 2619 : 0;
    return 0;
}

static const px_nvml_api k_full = {.init = f_init, .shutdown = f_shutdown, .device_count = f_count2,
                                   .device_handle = f_handle, .device_name = f_name, .memory_info = f_mem,
                                   .utilization = f_util, .temperature = f_temp, .power_usage = f_power,
                                   .clock_info = f_clock};

TEST(t_reads_every_field)
{
    char err[160];
    px_nvml *n = px_nvml_open_api(&k_full, err, sizeof err);
    T_TRUE(n != NULL);
    T_EQ_INT(px_nvml_count(n), 2);
    px_gpu_info g;
    T_EQ_INT(px_nvml_query(n, 1, &g), 0);
    T_EQ_INT(g.index, 1);
    T_EQ_STR(g.name, "Fake GPU 2");
    T_EQ_INT(g.mem_total, 80ull << 30);
    T_EQ_INT(g.mem_used, 2ull << 30);
    T_EQ_INT(g.mem_free, 78ull << 30);
    T_EQ_INT(g.util_gpu, 42);
    T_EQ_INT(g.util_mem, 7);
    T_EQ_INT(g.temp_c, 61);
    T_NEAR(g.power_w, 312.5, 1e-9);
    T_EQ_INT(g.sm_clock_mhz, 1980);
    T_EQ_INT(g.mem_clock_mhz, 2619);
    T_EQ_INT(px_nvml_query(n, 2, &g), PX_EINVAL);
    T_EQ_INT(px_nvml_query(n, -1, &g), PX_EINVAL);
    px_nvml_close(n);
}

TEST(t_unsupported_and_failing_calls_are_unknown)
{
    px_nvml_api a = k_full;
    a.temperature = NULL;
    a.power_usage = NULL;
    a.clock_info = NULL;
    fail_util = 1;
    char err[160];
    px_nvml *n = px_nvml_open_api(&a, err, sizeof err);
    px_gpu_info g;
    T_EQ_INT(px_nvml_query(n, 0, &g), 0); /* memory still readable */
    T_EQ_INT(g.util_gpu, -1);
    T_EQ_INT(g.temp_c, -1);
    T_CMP_DBL(g.power_w, <, 0);
    T_EQ_INT(g.sm_clock_mhz, -1);
    T_EQ_INT(g.mem_used, 1ull << 30);
    a.memory_info = NULL;
    px_nvml_close(n);
    n = px_nvml_open_api(&a, err, sizeof err);
    T_EQ_INT(px_nvml_query(n, 0, &g), PX_EIO); /* nothing at all */
    px_nvml_close(n);
}

TEST(t_no_driver_no_gpu)
{
    char err[160] = "";
    px_nvml_api a = k_full;
    a.init = f_init_fail;
    T_TRUE(px_nvml_open_api(&a, err, sizeof err) == NULL);
    T_CONTAINS(err, "initialise");
    a = k_full;
    a.device_count = f_count0;
    T_TRUE(px_nvml_open_api(&a, err, sizeof err) == NULL);
    T_CONTAINS(err, "no GPU");
    a.device_handle = NULL;
    T_TRUE(px_nvml_open_api(&a, err, sizeof err) == NULL);
    /* This machine (and CI) has no driver: the real loader says so. */
    px_nvml *real = px_nvml_open(err, sizeof err);
    if (real) {
        printf("    a GPU driver is present here: %d device(s)\n", px_nvml_count(real));
        px_nvml_close(real);
    } else {
        printf("    no driver: %s\n", err);
        T_TRUE(err[0] != 0);
    }
    T_EQ_INT(px_nvml_count(NULL), 0);
}

/* --- versioned entry points --------------------------------------------------- */

static unsigned int seen_version;
static int f_mem_v2(void *d, void *m)
{
    unsigned int version;
    memcpy(&version, m, sizeof version);
    seen_version = version;
    if (version != (40u | (2u << 24))) return 25; /* NVML_ERROR_ARGUMENT_VERSION_MISMATCH */
    unsigned long long v[4] = {80ull << 30, 512ull << 20, (78ull << 30) - (512ull << 20),
                               (uintptr_t)d * (2ull << 30)}; /* total, reserved, free, used */
    memcpy((char *)m + 8, v, sizeof v);
    return 0;
}
static int f_mem_v2_mismatch(void *d, void *m) { (void)d, (void)m; return 25; }
static int f_event(void *d, unsigned long long *r) { (void)d; *r = 0x4 | 0x40; return 0; }
static int f_throttle(void *d, unsigned long long *r) { (void)d; *r = 0x1; return 0; }

TEST(t_memory_v2_and_throttle_reasons)
{
    px_nvml_api a = k_full;
    a.memory_info_v2 = f_mem_v2;
    a.event_reasons = f_event;
    a.throttle_reasons = f_throttle;
    char err[160], names[128];
    px_nvml *n = px_nvml_open_api(&a, err, sizeof err);
    px_gpu_info g;
    T_EQ_INT(px_nvml_query(n, 0, &g), 0);
    T_EQ_INT(seen_version, 0x02000028); /* sizeof(nvmlMemory_v2_t) | 2 << 24 */
    T_EQ_INT(g.mem_version, 2);
    T_EQ_INT(g.mem_used, 2ull << 30);
    T_EQ_INT(g.mem_reserved, 512ull << 20);
    T_EQ_INT(g.mem_total, 80ull << 30);
    T_EQ_INT(g.have_throttle, 1);
    T_EQ_INT(g.throttle_reasons, 0x44); /* the newer name wins */
    T_EQ_STR(px_nvml_throttle_names(g.throttle_reasons, names, sizeof names), "sw_power_cap,hw_thermal");
    T_EQ_STR(px_nvml_throttle_names(0, names, sizeof names), "none");
    T_EQ_STR(px_nvml_throttle_names(1ULL << 40 | 1, names, sizeof names), "idle,bit40");
    px_nvml_close(n);
    /* a driver whose v2 refuses the version falls back to v1; old name only */
    a.memory_info_v2 = f_mem_v2_mismatch;
    a.event_reasons = NULL;
    n = px_nvml_open_api(&a, err, sizeof err);
    T_EQ_INT(px_nvml_query(n, 1, &g), 0);
    T_EQ_INT(g.mem_version, 1);
    T_EQ_INT(g.mem_used, 2ull << 30); /* f_mem: device 2 holds 2 GiB */
    T_EQ_INT(g.mem_reserved, 0);
    T_EQ_INT(g.throttle_reasons, 1);
    px_nvml_close(n);
    a.throttle_reasons = NULL;
    n = px_nvml_open_api(&a, err, sizeof err);
    T_EQ_INT(px_nvml_query(n, 0, &g), 0);
    T_EQ_INT(g.have_throttle, 0);
    px_nvml_close(n);
}

/* A device with `nprocs` compute processes; records written at the stride
 * of the version called, as the driver would. */
static unsigned int nprocs = 3;
static int v3_missing;
static int calls_v3, calls_v2, calls_v1;

static int write_procs(unsigned int *count, void *infos, size_t stride)
{
    if (*count < nprocs) {
        *count = nprocs;
        return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */
    }
    for (unsigned int i = 0; i < nprocs; i++) {
        unsigned char *r = (unsigned char *)infos + i * stride;
        unsigned int pid = 1000 + i;
        unsigned long long used = (i == 1 ? ~0ULL : (unsigned long long)(i + 1) << 20);
        memcpy(r, &pid, 4);
        memcpy(r + 8, &used, 8);
        if (stride == 24) { /* gpuInstanceId, computeInstanceId: not MIG */
            unsigned int none = 0xFFFFFFFFu;
            memcpy(r + 16, &none, 4);
            memcpy(r + 20, &none, 4);
        }
    }
    *count = nprocs;
    return 0;
}
static int f_procs_v3(void *d, unsigned int *c, void *p)
{
    (void)d;
    calls_v3++;
    return v3_missing ? 13 : write_procs(c, p, 24);
}
static int f_procs_v2(void *d, unsigned int *c, void *p) { (void)d; calls_v2++; return write_procs(c, p, 24); }
static int f_procs_v1(void *d, unsigned int *c, void *p) { (void)d; calls_v1++; return write_procs(c, p, 16); }

TEST(t_process_lists_by_version)
{
    px_nvml_api a = k_full;
    a.compute_procs_v3 = f_procs_v3;
    a.compute_procs_v2 = f_procs_v2;
    a.compute_procs = f_procs_v1;
    char err[160];
    px_nvml *n = px_nvml_open_api(&a, err, sizeof err);
    px_gpu_proc p[8];
    T_EQ_INT(px_nvml_processes(n, 0, p, 8), 3);
    T_EQ_INT(px_nvml_processes_version(n), 3);
    T_EQ_INT(p[0].pid, 1000);
    T_EQ_INT(p[0].used_bytes, 1 << 20);
    T_EQ_INT(p[1].used_bytes, UINT64_MAX); /* NVML_VALUE_NOT_AVAILABLE */
    T_EQ_INT(p[2].pid, 1002);
    T_EQ_INT(p[2].used_bytes, 3 << 20);
    T_EQ_INT(calls_v2 + calls_v1, 0);
    /* the symbol exists but the driver says the function does not: use _v2 */
    v3_missing = 1;
    T_EQ_INT(px_nvml_processes(n, 0, p, 8), 3);
    T_EQ_INT(px_nvml_processes_version(n), 2);
    T_EQ_INT(p[2].pid, 1002);
    px_nvml_close(n);
    /* an old driver: only the unversioned call, 16-byte records */
    a.compute_procs_v3 = a.compute_procs_v2 = NULL;
    n = px_nvml_open_api(&a, err, sizeof err);
    T_EQ_INT(px_nvml_processes(n, 1, p, 8), 3);
    T_EQ_INT(px_nvml_processes_version(n), 1);
    T_EQ_INT(p[1].pid, 1001);
    T_EQ_INT(p[2].pid, 1002);
    T_EQ_INT(p[2].used_bytes, 3 << 20);
    /* more processes than the first buffer holds: asked again with room */
    nprocs = 150;
    T_EQ_INT(px_nvml_processes(n, 0, p, 8), 150);
    T_EQ_INT(p[7].pid, 1007);
    nprocs = 3;
    T_EQ_INT(px_nvml_processes(n, 5, p, 8), PX_EINVAL);
    px_nvml_close(n);
    a.compute_procs = NULL;
    n = px_nvml_open_api(&a, err, sizeof err);
    T_EQ_INT(px_nvml_processes(n, 0, p, 8), PX_EUNSUP);
    px_nvml_close(n);
}

/* The driver's sample ring: timestamps (us) and values; GetSamples returns
 * those newer than last_seen, NOT_FOUND when there are none. */
typedef struct fake_sample { unsigned long long ts; unsigned int v; } fake_sample;
static fake_sample ring[64];
static int nring;
static int double_values;

static int f_samples(void *d, int type, unsigned long long last, int *vt, unsigned int *count, void *out)
{
    (void)d;
    unsigned int k = 0;
    for (int i = 0; i < nring; i++)
        if (ring[i].ts > last) k++;
    if (k == 0) return 6; /* NVML_ERROR_NOT_FOUND */
    *vt = double_values ? 0 : 1;
    if (!out) {
        *count = 64; /* the buffer size to allocate, more than there are */
        return 0;
    }
    if (*count < k) return 7;
    unsigned char *o = out;
    k = 0;
    for (int i = 0; i < nring; i++) {
        if (ring[i].ts <= last) continue;
        unsigned long long ts = ring[i].ts;
        memcpy(o + 16 * k, &ts, 8);
        if (double_values) {
            double v = ring[i].v + (type == 2 ? 0.5 : 0);
            memcpy(o + 16 * k + 8, &v, 8);
        } else {
            unsigned int v = ring[i].v / (type == 2 ? 2 : 1);
            memcpy(o + 16 * k + 8, &v, 4);
        }
        k++;
    }
    *count = k;
    return 0;
}

static void push(unsigned long long ts, unsigned int v)
{
    ring[nring].ts = ts;
    ring[nring++].v = v;
}

TEST(t_drains_driver_samples_once)
{
    px_nvml_api a = k_full;
    a.samples = f_samples;
    char err[160];
    px_nvml *n = px_nvml_open_api(&a, err, sizeof err);
    px_gpu_util_window w;
    /* history from before monitoring: only marks the start */
    push(1000, 90);
    push(1166, 80);
    T_EQ_INT(px_nvml_drain_util(n, 0, &w), 0);
    T_EQ_INT(w.n, 0);
    T_CMP_DBL(w.gpu_mean, <, 0);
    /* nothing new */
    T_EQ_INT(px_nvml_drain_util(n, 0, &w), 0);
    T_EQ_INT(w.n, 0);
    /* a short spike between two readings is in the window */
    push(1333, 10);
    push(1500, 100);
    push(1666, 12);
    T_EQ_INT(px_nvml_drain_util(n, 0, &w), 0);
    T_EQ_INT(w.n, 3);
    T_NEAR(w.gpu_mean, (10 + 100 + 12) / 3.0, 1e-9);
    T_NEAR(w.gpu_max, 100, 0);
    T_EQ_INT(w.mem_n, 3);
    T_NEAR(w.mem_max, 50, 0); /* memory samples: half, in the fake */
    /* the same samples are never counted twice; the other device has its own mark */
    push(1833, 40);
    T_EQ_INT(px_nvml_drain_util(n, 0, &w), 0);
    T_EQ_INT(w.n, 1);
    T_NEAR(w.gpu_mean, 40, 0);
    T_EQ_INT(px_nvml_drain_util(n, 1, &w), 0);
    T_EQ_INT(w.n, 0); /* first call for device 1: marks */
    /* double-valued samples */
    double_values = 1;
    push(2000, 33);
    T_EQ_INT(px_nvml_drain_util(n, 0, &w), 0);
    T_EQ_INT(w.n, 1);
    T_NEAR(w.gpu_mean, 33, 0);
    T_NEAR(w.mem_mean, 33.5, 0);
    double_values = 0;
    px_nvml_close(n);
    /* no GetSamples in this driver: the caller falls back to the rates */
    n = px_nvml_open_api(&k_full, err, sizeof err);
    T_EQ_INT(px_nvml_drain_util(n, 0, &w), PX_EUNSUP);
    px_nvml_close(n);
}

TEST_MAIN(t_reads_every_field, t_unsupported_and_failing_calls_are_unknown, t_no_driver_no_gpu,
          t_memory_v2_and_throttle_reasons, t_process_lists_by_version, t_drains_driver_samples_once)
