/*
 * nvml.c — the dlopen'd NVML reader (see nvml.h).
 *
 * Versioned entry points (_v2, _v3) are preferred where NVML has them and
 * older ones used as a fallback, each with its own struct layout (declared
 * here with the sizes NVML's ABI fixes, checked at compile time). Queries
 * are serialised with a mutex: NVML is thread-safe, but the handle list,
 * the per-device sample timestamps and the scratch buffers are ours.
 */
#include "core/nvml.h"

#include "core/alloc.h"
#include "core/err.h"

#include <dlfcn.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GPUS 64

/* NVML's constants (nvml.h): sensor and clock kinds. */
enum { NVML_TEMPERATURE_GPU = 0, NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2 };

struct nvml_memory { unsigned long long total, free, used; };
struct nvml_utilization { unsigned int gpu, memory; };
/* nvmlMemory_v2_t: the caller states the version it passes. */
struct nvml_memory_v2 { unsigned int version; unsigned long long total, reserved, free, used; };
#define NVML_MEMORY_V2_VERSION ((unsigned int)(sizeof(struct nvml_memory_v2) | (2u << 24)))
/* nvmlProcessInfo_v1_t (unversioned call) and nvmlProcessInfo_v2_t (_v2 and
 * _v3 calls): same first two fields, different strides. */
struct nvml_proc_v1 { unsigned int pid; unsigned long long used; };
struct nvml_proc_v2 { unsigned int pid; unsigned long long used; unsigned int gi, ci; };
/* nvmlSample_t: a timestamp (CPU time, us) and a union of value types. */
struct nvml_sample {
    unsigned long long ts;
    union { double d; unsigned int ui; unsigned long ul; unsigned long long ull; long long sll; int si; } v;
};
_Static_assert(sizeof(struct nvml_memory_v2) == 40, "nvmlMemory_v2_t ABI size");
_Static_assert(sizeof(struct nvml_proc_v1) == 16, "nvmlProcessInfo_v1_t ABI size");
_Static_assert(sizeof(struct nvml_proc_v2) == 24, "nvmlProcessInfo_v2_t ABI size");
_Static_assert(sizeof(struct nvml_sample) == 16, "nvmlSample_t ABI size");

/* nvmlValueType_t */
enum { VT_DOUBLE, VT_UINT, VT_ULONG, VT_ULONGLONG, VT_SLONGLONG, VT_SINT };

#define MAX_PROCS 4096
#define MAX_SAMPLES 4096

struct px_nvml {
    void *lib;         /* NULL when built over a test table */
    px_nvml_api api;   /* copy, resolved */
    pthread_mutex_t mu;
    void *dev[MAX_GPUS];
    int count;
    /* newest sample timestamp seen per device and sampling type (0: not primed) */
    unsigned long long last_us[MAX_GPUS][3];
    int primed[MAX_GPUS][3];
    int procs_version; /* the process-list version that answered last */
    void *scratch;     /* process records or samples */
    size_t scratch_cap;
};

static void *sym(void *lib, const char *a, const char *b)
{
    void *p = dlsym(lib, a);
    return p || !b ? p : dlsym(lib, b);
}

px_nvml *px_nvml_open(char *err, size_t errlen)
{
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        px_errf(err, errlen, PX_EUNSUP, "no NVIDIA driver (libnvidia-ml.so.1 not found)");
        return NULL;
    }
    px_nvml_api api = {0};
    /* Function pointers from dlsym: the casts go through void * as POSIX
     * requires and the C standard cannot express. */
    *(void **)&api.init = sym(lib, "nvmlInit_v2", "nvmlInit");
    *(void **)&api.shutdown = sym(lib, "nvmlShutdown", NULL);
    *(void **)&api.device_count = sym(lib, "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount");
    *(void **)&api.device_handle =
        sym(lib, "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex");
    *(void **)&api.device_name = sym(lib, "nvmlDeviceGetName", NULL);
    *(void **)&api.memory_info = sym(lib, "nvmlDeviceGetMemoryInfo", NULL);
    *(void **)&api.utilization = sym(lib, "nvmlDeviceGetUtilizationRates", NULL);
    *(void **)&api.temperature = sym(lib, "nvmlDeviceGetTemperature", NULL);
    *(void **)&api.power_usage = sym(lib, "nvmlDeviceGetPowerUsage", NULL);
    *(void **)&api.clock_info = sym(lib, "nvmlDeviceGetClockInfo", NULL);
    *(void **)&api.memory_info_v2 = sym(lib, "nvmlDeviceGetMemoryInfo_v2", NULL);
    *(void **)&api.compute_procs_v3 = sym(lib, "nvmlDeviceGetComputeRunningProcesses_v3", NULL);
    *(void **)&api.compute_procs_v2 = sym(lib, "nvmlDeviceGetComputeRunningProcesses_v2", NULL);
    *(void **)&api.compute_procs = sym(lib, "nvmlDeviceGetComputeRunningProcesses", NULL);
    *(void **)&api.samples = sym(lib, "nvmlDeviceGetSamples", NULL);
    *(void **)&api.event_reasons = sym(lib, "nvmlDeviceGetCurrentClocksEventReasons", NULL);
    *(void **)&api.throttle_reasons = sym(lib, "nvmlDeviceGetCurrentClocksThrottleReasons", NULL);
    px_nvml *n = px_nvml_open_api(&api, err, errlen);
    if (!n) {
        dlclose(lib);
        return NULL;
    }
    n->lib = lib;
    return n;
}

px_nvml *px_nvml_open_api(const px_nvml_api *api, char *err, size_t errlen)
{
    if (!api->init || !api->device_count || !api->device_handle) {
        px_errf(err, errlen, PX_EUNSUP, "NVML lacks its basic entry points");
        return NULL;
    }
    int rc = api->init();
    if (rc != 0) {
        px_errf(err, errlen, PX_EUNSUP, "NVML failed to initialise (NVML error %d)", rc);
        return NULL;
    }
    unsigned int count = 0;
    if (api->device_count(&count) != 0 || count == 0) {
        if (api->shutdown) api->shutdown();
        px_errf(err, errlen, PX_EUNSUP, "NVML sees no GPU");
        return NULL;
    }
    px_nvml *n = px_xcalloc(1, sizeof *n);
    n->api = *api;
    pthread_mutex_init(&n->mu, NULL);
    if (count > MAX_GPUS) count = MAX_GPUS;
    for (unsigned int i = 0; i < count; i++)
        if (api->device_handle(i, &n->dev[n->count]) == 0) n->count++;
    return n;
}

void px_nvml_close(px_nvml *n)
{
    if (!n) return;
    if (n->api.shutdown) n->api.shutdown();
    if (n->lib) dlclose(n->lib);
    pthread_mutex_destroy(&n->mu);
    free(n->scratch);
    free(n);
}

int px_nvml_count(const px_nvml *n)
{
    return n ? n->count : 0;
}

int px_nvml_query(px_nvml *n, int index, px_gpu_info *g)
{
    memset(g, 0, sizeof *g);
    g->index = index;
    g->util_gpu = g->util_mem = g->temp_c = g->sm_clock_mhz = g->mem_clock_mhz = -1;
    g->power_w = -1;
    if (!n || index < 0 || index >= n->count) return PX_EINVAL;
    pthread_mutex_lock(&n->mu);
    void *d = n->dev[index];
    const px_nvml_api *a = &n->api;
    /* v2 first: its `used` leaves out what the driver reserves, as
     * nvidia-smi shows it; drivers that predate it answer the v1 call. */
    struct nvml_memory_v2 m2 = {.version = NVML_MEMORY_V2_VERSION};
    struct nvml_memory mem;
    int have_mem = 0;
    if (a->memory_info_v2 && a->memory_info_v2(d, &m2) == 0) {
        g->mem_total = m2.total;
        g->mem_free = m2.free;
        g->mem_used = m2.used;
        g->mem_reserved = m2.reserved;
        g->mem_version = have_mem = 2;
    } else if (a->memory_info && a->memory_info(d, &mem) == 0) {
        g->mem_total = mem.total;
        g->mem_free = mem.free;
        g->mem_used = mem.used;
        g->mem_version = have_mem = 1;
    }
    if (a->device_name && a->device_name(d, g->name, sizeof g->name) != 0) g->name[0] = 0;
    g->name[sizeof g->name - 1] = 0;
    struct nvml_utilization u;
    if (a->utilization && a->utilization(d, &u) == 0) {
        g->util_gpu = (int)u.gpu;
        g->util_mem = (int)u.memory;
    }
    unsigned int v;
    if (a->temperature && a->temperature(d, NVML_TEMPERATURE_GPU, &v) == 0) g->temp_c = (int)v;
    if (a->power_usage && a->power_usage(d, &v) == 0) g->power_w = v / 1000.0;
    if (a->clock_info && a->clock_info(d, NVML_CLOCK_SM, &v) == 0) g->sm_clock_mhz = (int)v;
    if (a->clock_info && a->clock_info(d, NVML_CLOCK_MEM, &v) == 0) g->mem_clock_mhz = (int)v;
    unsigned long long r;
    /* renamed "clocks event reasons" in R535; the old name stays for a while */
    if ((a->event_reasons && a->event_reasons(d, &r) == 0) ||
        (a->throttle_reasons && a->throttle_reasons(d, &r) == 0)) {
        g->have_throttle = 1;
        g->throttle_reasons = r;
    }
    pthread_mutex_unlock(&n->mu);
    return have_mem || g->util_gpu >= 0 ? 0 : PX_EIO;
}

const char *px_nvml_throttle_names(unsigned long long r, char *buf, size_t cap)
{
    static const char *names[] = {"idle",        "app_clocks", "sw_power_cap",   "hw_slowdown",
                                  "sync_boost",  "sw_thermal", "hw_thermal",     "hw_power_brake",
                                  "display_clocks"};
    size_t k = 0;
    if (cap) buf[0] = 0;
    if (r == 0) {
        snprintf(buf, cap, "none");
        return buf;
    }
    for (int i = 0; i < 64 && k + 1 < cap; i++) {
        if (!(r & (1ULL << i))) continue;
        int w = i < 9 ? snprintf(buf + k, cap - k, "%s%s", k ? "," : "", names[i])
                      : snprintf(buf + k, cap - k, "%sbit%d", k ? "," : "", i);
        if (w < 0 || (size_t)w >= cap - k) break;
        k += (size_t)w;
    }
    return buf;
}

static void *scratch(px_nvml *n, size_t bytes)
{
    if (bytes > n->scratch_cap) {
        void *p = realloc(n->scratch, bytes);
        if (!p) return NULL;
        n->scratch = p;
        n->scratch_cap = bytes;
    }
    return n->scratch;
}

static double sample_value(int vt, const struct nvml_sample *s)
{
    switch (vt) {
    case VT_DOUBLE: return s->v.d;
    case VT_UINT: return s->v.ui;
    case VT_ULONG: return (double)s->v.ul;
    case VT_ULONGLONG: return (double)s->v.ull;
    case VT_SLONGLONG: return (double)s->v.sll;
    case VT_SINT: return s->v.si;
    default: return -1;
    }
}

/* New samples of one type: count, mean, max. Caller holds the mutex. */
static int drain(px_nvml *n, int index, int type, int *cnt, double *mean, double *max)
{
    *cnt = 0;
    *mean = *max = -1;
    void *d = n->dev[index];
    unsigned long long last = n->last_us[index][type];
    unsigned int count = 0;
    int vt = 0;
    int rc = n->api.samples(d, type, last, &vt, &count, NULL); /* how many to make room for */
    if (rc == PX_NVML_ERROR_NOT_FOUND) {
        n->primed[index][type] = 1;
        return 0; /* nothing newer */
    }
    if (rc != 0 && rc != PX_NVML_ERROR_INSUFFICIENT_SIZE) return rc == PX_NVML_ERROR_NOT_SUPPORTED ||
                                                                 rc == PX_NVML_ERROR_FUNCTION_NOT_FOUND
                                                             ? PX_EUNSUP
                                                             : PX_EIO;
    if (count == 0) {
        n->primed[index][type] = 1;
        return 0;
    }
    if (count > MAX_SAMPLES) count = MAX_SAMPLES;
    struct nvml_sample *buf = scratch(n, (size_t)count * sizeof *buf);
    if (!buf) return PX_EIO;
    memset(buf, 0, (size_t)count * sizeof *buf);
    rc = n->api.samples(d, type, last, &vt, &count, buf);
    if (rc == PX_NVML_ERROR_NOT_FOUND) {
        n->primed[index][type] = 1;
        return 0;
    }
    if (rc != 0) return PX_EIO;
    if (count > MAX_SAMPLES) count = MAX_SAMPLES;
    double sum = 0;
    unsigned long long newest = last;
    for (unsigned int i = 0; i < count; i++) {
        if (buf[i].ts <= last) continue; /* the driver may repeat the boundary sample */
        if (buf[i].ts > newest) newest = buf[i].ts;
        double v = sample_value(vt, &buf[i]);
        if (v < 0) continue;
        sum += v;
        if (*cnt == 0 || v > *max) *max = v;
        ++*cnt;
    }
    n->last_us[index][type] = newest;
    if (!n->primed[index][type]) {
        /* the first drain returns the driver's whole history: only mark it */
        n->primed[index][type] = 1;
        *cnt = 0;
        *max = -1;
        return 0;
    }
    if (*cnt) *mean = sum / *cnt;
    return 0;
}

int px_nvml_drain_util(px_nvml *n, int index, px_gpu_util_window *w)
{
    memset(w, 0, sizeof *w);
    w->gpu_mean = w->gpu_max = w->mem_mean = w->mem_max = -1;
    if (!n || index < 0 || index >= n->count) return PX_EINVAL;
    if (!n->api.samples) return PX_EUNSUP;
    pthread_mutex_lock(&n->mu);
    int rc = drain(n, index, PX_NVML_GPU_UTILIZATION_SAMPLES, &w->n, &w->gpu_mean, &w->gpu_max);
    if (rc == 0)
        rc = drain(n, index, PX_NVML_MEMORY_UTILIZATION_SAMPLES, &w->mem_n, &w->mem_mean, &w->mem_max);
    pthread_mutex_unlock(&n->mu);
    return rc;
}

int px_nvml_processes(px_nvml *n, int index, px_gpu_proc *out, int max)
{
    if (!n || index < 0 || index >= n->count) return PX_EINVAL;
    const px_nvml_api *a = &n->api;
    struct {
        int (*fn)(void *, unsigned int *, void *);
        size_t stride;
        int version;
    } v[3] = {{a->compute_procs_v3, sizeof(struct nvml_proc_v2), 3},
              {a->compute_procs_v2, sizeof(struct nvml_proc_v2), 2},
              {a->compute_procs, sizeof(struct nvml_proc_v1), 1}};
    pthread_mutex_lock(&n->mu);
    int result = PX_EUNSUP;
    for (int k = 0; k < 3; k++) {
        if (!v[k].fn) continue;
        unsigned int cap = 64, count = 0;
        int rc;
        uint8_t *buf;
        for (;;) {
            buf = scratch(n, cap * v[k].stride);
            if (!buf) break;
            memset(buf, 0, cap * v[k].stride);
            count = cap;
            rc = v[k].fn(n->dev[index], &count, buf);
            /* too small: count now says how many there are */
            if (rc != PX_NVML_ERROR_INSUFFICIENT_SIZE || cap >= MAX_PROCS) break;
            cap = count > cap && count <= MAX_PROCS ? count + 8 : MAX_PROCS;
        }
        if (!buf) {
            result = PX_EIO;
            break;
        }
        if (rc == PX_NVML_ERROR_FUNCTION_NOT_FOUND || rc == PX_NVML_ERROR_NOT_SUPPORTED ||
            rc == PX_NVML_ERROR_ARGUMENT_VERSION_MISMATCH || rc == PX_NVML_ERROR_INVALID_ARGUMENT) {
            continue; /* this version is not really there: try the older one */
        }
        if (rc != 0) {
            result = PX_EIO;
            break;
        }
        if (count > cap) count = cap;
        for (unsigned int i = 0; i < count && (int)i < max; i++) {
            const uint8_t *r = buf + i * v[k].stride;
            unsigned int pid;
            unsigned long long used;
            memcpy(&pid, r, sizeof pid);
            memcpy(&used, r + offsetof(struct nvml_proc_v1, used), sizeof used);
            out[i].pid = pid;
            out[i].used_bytes = used; /* NVML_VALUE_NOT_AVAILABLE is all ones: UINT64_MAX */
        }
        n->procs_version = v[k].version;
        result = (int)count;
        break;
    }
    pthread_mutex_unlock(&n->mu);
    return result;
}

int px_nvml_processes_version(const px_nvml *n)
{
    return n ? n->procs_version : 0;
}
