/*
 * nvml.h — NVIDIA GPU readings through NVML, loaded with dlopen at run time
 * so that nothing needs the driver to build or to run: without it,
 * px_nvml_open returns NULL and callers report "no GPU". pixserve's
 * /healthz and /metrics read a device's current state; pixbench's monitor
 * also drains the driver's utilisation samples, reads the memory each
 * process holds and the clock throttle reasons.
 *
 * The NVML entry points sit in a table (px_nvml_api) so that tests can feed
 * recorded values and failures instead of a driver. NVML versions some
 * entry points together with the struct they fill (nvmlMemory_v2_t carries
 * its own version word; the _v2/_v3 process lists use a 24-byte record where
 * the unversioned one uses 16 bytes): the table has a member per version,
 * the loader fills those the driver has, and the reader uses the newest one
 * that answers, with that version's layout.
 */
#ifndef PX_CORE_NVML_H
#define PX_CORE_NVML_H

#include <stddef.h>
#include <stdint.h>

typedef struct px_gpu_info {
    int index;
    char name[96];
    uint64_t mem_total, mem_used, mem_free; /* bytes */
    int util_gpu, util_mem;                 /* percent over the driver's last sample period; -1 unknown */
    int temp_c;                             /* -1 unknown */
    double power_w;                         /* < 0 unknown */
    int sm_clock_mhz, mem_clock_mhz;        /* -1 unknown */
    uint64_t mem_reserved;                  /* bytes the driver reserves (memory v2 only; else 0) */
    int mem_version;                        /* 2: nvmlDeviceGetMemoryInfo_v2 answered, 1: the v1 call, 0: none */
    int have_throttle;                      /* throttle_reasons is known */
    unsigned long long throttle_reasons;    /* NVML's clocks event/throttle reason bits (PX_GPU_THROTTLE_*) */
} px_gpu_info;

/* Clock throttle ("clocks event") reason bits, as NVML defines them. */
#define PX_GPU_THROTTLE_IDLE 0x1ULL
#define PX_GPU_THROTTLE_APP_CLOCKS 0x2ULL
#define PX_GPU_THROTTLE_SW_POWER_CAP 0x4ULL
#define PX_GPU_THROTTLE_HW_SLOWDOWN 0x8ULL
#define PX_GPU_THROTTLE_SYNC_BOOST 0x10ULL
#define PX_GPU_THROTTLE_SW_THERMAL 0x20ULL
#define PX_GPU_THROTTLE_HW_THERMAL 0x40ULL
#define PX_GPU_THROTTLE_HW_POWER_BRAKE 0x80ULL
#define PX_GPU_THROTTLE_DISPLAY_CLOCKS 0x100ULL

/* Names of the set bits ("sw_power_cap,hw_thermal"; "none" for 0) into
 * buf; returns buf. */
const char *px_nvml_throttle_names(unsigned long long reasons, char *buf, size_t cap);

/* The subset of NVML used, as NVML declares it (opaque handles as void *;
 * return value 0 = NVML_SUCCESS). Any member may be NULL = unsupported. */
typedef struct px_nvml_api {
    int (*init)(void);
    int (*shutdown)(void);
    int (*device_count)(unsigned int *count);
    int (*device_handle)(unsigned int index, void **dev);
    int (*device_name)(void *dev, char *name, unsigned int len);
    int (*memory_info)(void *dev, void *mem);      /* nvmlMemory_t: total, free, used (u64) */
    int (*utilization)(void *dev, void *util);     /* nvmlUtilization_t: gpu, memory (u32) */
    int (*temperature)(void *dev, int sensor, unsigned int *t);
    int (*power_usage)(void *dev, unsigned int *mw);
    int (*clock_info)(void *dev, int type, unsigned int *mhz);
    /* Versioned and newer entry points (any may be NULL). */
    int (*memory_info_v2)(void *dev, void *mem);   /* nvmlMemory_v2_t: version, total, reserved, free, used */
    int (*compute_procs_v3)(void *dev, unsigned int *count, void *infos); /* nvmlProcessInfo_v2_t[] (24 bytes) */
    int (*compute_procs_v2)(void *dev, unsigned int *count, void *infos); /* nvmlProcessInfo_v2_t[] (24 bytes) */
    int (*compute_procs)(void *dev, unsigned int *count, void *infos);    /* nvmlProcessInfo_v1_t[] (16 bytes) */
    int (*samples)(void *dev, int type, unsigned long long last_seen_us, int *value_type,
                   unsigned int *count, void *samples); /* nvmlDeviceGetSamples: nvmlSample_t[] */
    int (*event_reasons)(void *dev, unsigned long long *reasons);    /* ...GetCurrentClocksEventReasons (R535+) */
    int (*throttle_reasons)(void *dev, unsigned long long *reasons); /* ...GetCurrentClocksThrottleReasons */
} px_nvml_api;

/* NVML's return codes that callers and fakes use. */
enum {
    PX_NVML_SUCCESS = 0,
    PX_NVML_ERROR_INVALID_ARGUMENT = 2,
    PX_NVML_ERROR_NOT_SUPPORTED = 3,
    PX_NVML_ERROR_NOT_FOUND = 6,
    PX_NVML_ERROR_INSUFFICIENT_SIZE = 7,
    PX_NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    PX_NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
};

/* nvmlDeviceGetSamples' sampling types used here. */
enum { PX_NVML_GPU_UTILIZATION_SAMPLES = 1, PX_NVML_MEMORY_UTILIZATION_SAMPLES = 2 };

typedef struct px_nvml px_nvml;

/* Loads libnvidia-ml.so.1 and initialises it. NULL (with the reason in err)
 * when there is no driver or no GPU; that is not an error for callers. */
px_nvml *px_nvml_open(char *err, size_t errlen);

/* Same over a given table (tests). The table must outlive the handle. */
px_nvml *px_nvml_open_api(const px_nvml_api *api, char *err, size_t errlen);

void px_nvml_close(px_nvml *n);

int px_nvml_count(const px_nvml *n);

/* Reads device `index`. Fields NVML cannot give are -1 (or 0 for memory).
 * Returns 0, or PX_EIO if the device cannot be read at all. */
int px_nvml_query(px_nvml *n, int index, px_gpu_info *out);

/* The driver's own utilisation samples of device `index` newer than the
 * previous call's (the driver samples every 1/6 s to 1 s depending on the
 * GPU and keeps a short buffer), so a spike between two readings is not
 * lost. The first call for a device only marks where to start and reports
 * none. */
typedef struct px_gpu_util_window {
    int n;                    /* SM utilisation samples drained (0: none new) */
    double gpu_mean, gpu_max; /* percent over them; -1 when n == 0 */
    int mem_n;                /* memory-controller utilisation samples */
    double mem_mean, mem_max; /* percent; -1 when mem_n == 0 */
} px_gpu_util_window;

/* Returns 0, PX_EUNSUP when the driver has no nvmlDeviceGetSamples (use
 * px_nvml_query's util_gpu instead), PX_EINVAL for a bad index, PX_EIO. */
int px_nvml_drain_util(px_nvml *n, int index, px_gpu_util_window *out);

typedef struct px_gpu_proc {
    unsigned int pid;         /* as the driver sees it: the host's PID namespace */
    uint64_t used_bytes;      /* UINT64_MAX when the driver will not say */
} px_gpu_proc;

/* The compute processes on device `index` (at most max into out). Returns
 * their number (which may exceed max), PX_EUNSUP (no entry point answers),
 * PX_EINVAL or PX_EIO. */
int px_nvml_processes(px_nvml *n, int index, px_gpu_proc *out, int max);

/* Which process-list version answered last: 3, 2, 1 (0 none yet). */
int px_nvml_processes_version(const px_nvml *n);

#endif
