/*
 * nvml.h — NVIDIA GPU readings through NVML, loaded with dlopen at run time
 * so that nothing needs the driver to build or to run: without it,
 * px_nvml_open returns NULL and callers report "no GPU".
 *
 * The NVML entry points sit in a table (px_nvml_api) so that tests can feed
 * recorded values and failures instead of a driver.
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
} px_gpu_info;

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
} px_nvml_api;

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

#endif
