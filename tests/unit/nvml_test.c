/*
 * nvml_test.c — the NVML reader over a fake driver table: values are read
 * into px_gpu_info exactly, unsupported or failing calls give "unknown",
 * and a missing driver or an empty machine opens nothing.
 */
#include "core/err.h"
#include "core/nvml.h"
#include "harness.h"

#include <stdio.h>

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

static const px_nvml_api k_full = {f_init, f_shutdown, f_count2, f_handle, f_name, f_mem,
                                   f_util, f_temp, f_power, f_clock};

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

TEST_MAIN(t_reads_every_field, t_unsupported_and_failing_calls_are_unknown, t_no_driver_no_gpu)
