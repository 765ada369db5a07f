/*
 * nvml.c — the dlopen'd NVML reader (see nvml.h).
 *
 * Versioned entry points (_v2) are preferred where NVML has them and the
 * plain names used as a fallback on older drivers. Queries are serialised
 * with a mutex: NVML is thread-safe, but the handle list is ours.
 */
#include "core/nvml.h"

#include "core/alloc.h"
#include "core/err.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GPUS 64

/* NVML's constants (nvml.h): sensor and clock kinds. */
enum { NVML_TEMPERATURE_GPU = 0, NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2 };

struct nvml_memory { unsigned long long total, free, used; };
struct nvml_utilization { unsigned int gpu, memory; };

struct px_nvml {
    void *lib;         /* NULL when built over a test table */
    px_nvml_api api;   /* copy, resolved */
    pthread_mutex_t mu;
    void *dev[MAX_GPUS];
    int count;
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
    struct nvml_memory mem;
    int have_mem = a->memory_info && a->memory_info(d, &mem) == 0;
    if (have_mem) {
        g->mem_total = mem.total;
        g->mem_free = mem.free;
        g->mem_used = mem.used;
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
    pthread_mutex_unlock(&n->mu);
    return have_mem || g->util_gpu >= 0 ? 0 : PX_EIO;
}
