/*
 * monitor.h — pixbench's resource monitor: a thread that samples, at a set
 * interval (default 1 s, down to 100 ms),
 *
 *  - the target process through /proc: CPU % in total and of its busiest
 *    thread (the seed reports' "single-core peak"), RSS and peak RSS,
 *    threads, open descriptors, storage reads and writes, context switches;
 *  - the system: CPU % per core, available memory, and IOPS, write latency
 *    and throughput of the block device holding the outputs;
 *  - every GPU through NVML (no driver: "no GPU", not an error): SM and
 *    memory utilisation drained from the driver's own sample buffer (mean
 *    and max, so spikes between two readings count), memory used/total, the
 *    target's own GPU memory, power, temperature, clocks, throttle reasons;
 *
 * into a ring of samples that consumers drain (the load test folds them
 * into its per-second series; `pixbench monitor` prints and writes CSV).
 * All OS and NVML access goes through pb_os and px_nvml_api tables, so
 * tests drive the monitor tick by tick over recorded data and failures.
 *
 * A sample's rates cover the time since the previous sample; the first
 * reading at open is only the baseline.
 */
#ifndef PB_MONITOR_H
#define PB_MONITOR_H

#include "bench/procfs.h"
#include "core/nvml.h"

#include <stddef.h>
#include <stdint.h>

#define PB_MON_MAX_GPUS 8
#define PB_MON_MAX_CPUS 1024
#define PB_MON_MIN_INTERVAL_NS 100000000LL /* 100 ms: below it /proc's 10 ms ticks dominate */

/* Unknown values are -1 throughout. */
typedef struct pb_gpu_sample {
    double util, util_max;   /* SM utilisation %, mean and max over the driver's samples in the interval */
    int nsamples;            /* driver samples behind util (0: an instantaneous reading) */
    double mem_util;         /* memory-controller utilisation % (mean) */
    double mem_used_mb, mem_total_mb;
    double proc_mem_mb;      /* the target process's GPU memory; -1 unknown or not on this device */
    int nprocs;              /* compute processes on the device (-1 unknown) */
    double power_w;
    int temp_c, sm_mhz, mem_mhz;
    int have_throttle;
    unsigned long long throttle; /* PX_GPU_THROTTLE_* bits */
} pb_gpu_sample;

typedef struct pb_mon_sample {
    uint64_t seq;            /* 1, 2, ... */
    double t, dt;            /* s since the monitor opened; s since the previous sample */
    /* the target (all -1 without one; alive 0 once it is gone) */
    int alive;
    double cpu;              /* % of one core, all threads */
    double thread_cpu;       /* % of one core, the busiest thread */
    int thread_tid;
    char thread_name[16];    /* printable characters only */
    double rss_mb, hwm_mb;
    int threads, fds;
    double read_mbps, write_mbps; /* storage layer (/proc/<pid>/io), MB/s */
    double ctxsw;            /* context switches per second, all threads */
    /* the system */
    double sys_cpu;          /* % of all CPUs */
    double core_max;         /* % of the busiest core */
    int ncpu;                /* cores in the per-core array */
    double mem_avail_mb;
    double disk_r_iops, disk_w_iops, disk_w_await_ms, disk_w_mbps, disk_util;
    /* GPUs */
    int ngpu;
    pb_gpu_sample gpu[PB_MON_MAX_GPUS];
} pb_mon_sample;

typedef struct pb_monitor_config {
    int pid;                 /* target process; 0: none (system and GPU only) */
    int64_t interval_ns;     /* 0: 1 s; at least PB_MON_MIN_INTERVAL_NS */
    const char *disk_path;   /* sample the block device holding this path (NULL: none) */
    const char *disk_dev;    /* or this device, by name ("nvme0n1"); wins over disk_path */
    const pb_os *os;         /* NULL: the real /proc */
    const px_nvml_api *nvml_api; /* NULL: the driver, through dlopen */
    int no_gpu;              /* do not look for GPUs */
    int ring;                /* samples kept for consumers (0: 1024) */
} pb_monitor_config;

typedef struct pb_monitor pb_monitor;

/* Opens the monitor and takes the baseline reading (no thread yet).
 * Returns 0, or PX_EINVAL (interval below 100 ms) / PX_ENOTFOUND (the pid
 * does not exist) with a message. Close with pb_monitor_close. */
int pb_monitor_open(const pb_monitor_config *c, pb_monitor **out, char *err, size_t errlen);

/* Takes one sample now into the ring. Called by the monitor's thread; tests
 * call it directly. Returns 0 (also when the target has gone: alive = 0). */
int pb_monitor_tick(pb_monitor *m);

/* Takes a fresh baseline now and samples on a thread, first after
 * first_ns (0: one interval), then every interval, until pb_monitor_close.
 * Returns 0 or PX_ENOMEM. */
int pb_monitor_start(pb_monitor *m, int64_t first_ns);

/* Stops the thread (if any) and frees m. NULL is fine. */
void pb_monitor_close(pb_monitor *m);

/* Copies the samples with seq >= *next (at most max) into out, oldest
 * first, and advances *next past them. Samples the ring has already
 * overwritten are skipped (the seq gap counts them). cores may be NULL,
 * else it receives each sample's per-core CPU % (pb_monitor_ncpu() floats
 * per sample, one sample after another: it must hold max times that).
 * Returns the count. */
int pb_monitor_read(pb_monitor *m, uint64_t *next, pb_mon_sample *out, float *cores, int max);

int pb_monitor_ncpu(const pb_monitor *m);
int pb_monitor_ngpu(const pb_monitor *m);
const char *pb_monitor_gpu_name(const pb_monitor *m, int i);
int64_t pb_monitor_interval_ns(const pb_monitor *m);

/* One line for people: "no GPU: reason" or "1 GPU: NVIDIA A10 (driver
 * utilisation samples; per-process memory from the _v3 list)". */
const char *pb_monitor_gpu_status(const pb_monitor *m);

/* "vda (254:0, holds /tmp/x)" or "none (why)". */
const char *pb_monitor_disk_status(const pb_monitor *m);

/* Resets the target's peak RSS (VmHWM) so that the next samples' hwm_mb is
 * the peak from now on (Linux: "5" into /proc/<pid>/clear_refs; needs the
 * right to write there). Returns 0 or -1. */
int pb_monitor_reset_peak(pb_monitor *m);

/* --- aggregation: samples folded over an interval or a stage ------------- */

typedef struct pb_agg {
    int n;                   /* known values folded in */
    double sum, min, max;
} pb_agg;

/* Adds v unless it is unknown (negative or NaN). */
void pb_agg_add(pb_agg *a, double v);
void pb_agg_merge(pb_agg *dst, const pb_agg *src);
/* -1 when no value is known. */
double pb_agg_mean(const pb_agg *a);
double pb_agg_max(const pb_agg *a);
double pb_agg_min(const pb_agg *a);

/* Several GPUs fold into one figure per sample: utilisation is the mean
 * over devices (peak: the busiest device's max), memory, the target's GPU
 * memory and power are sums, temperature the hottest. */
#define PB_RES_AGGS(X)                                                                         \
    X(cpu) X(thread_cpu) X(rss_mb) X(threads) X(fds) X(read_mbps) X(write_mbps) X(ctxsw)       \
    X(sys_cpu) X(core_max) X(mem_avail_mb) X(disk_w_iops) X(disk_w_await_ms) X(disk_w_mbps)   \
    X(disk_util) X(gpu_util) X(gpu_util_peak) X(gpu_mem_util) X(gpu_mem_mb) X(gpu_proc_mem_mb) \
    X(gpu_power_w) X(gpu_temp_c) X(gpu_sm_mhz)

typedef struct pb_res {
    int n;                   /* samples */
    int alive;               /* 0 once a sample saw the target gone (1 otherwise) */
#define PB_RES_DECL_(f) pb_agg f;
    PB_RES_AGGS(PB_RES_DECL_)
#undef PB_RES_DECL_
    double hwm_mb;           /* the largest peak RSS reported, -1 unknown */
    unsigned long long throttle; /* reasons seen, OR-ed (idle excluded) */
    int ngpu;
} pb_res;

void pb_res_init(pb_res *r);
void pb_res_add(pb_res *r, const pb_mon_sample *s);
void pb_res_merge(pb_res *dst, const pb_res *src);

#endif
