/*
 * fuzz_procfs.c — libFuzzer target for pixbench's /proc parsers
 * (src/bench/procfs.c). A monitored process controls some of that text (its
 * own name in stat, which may hold ')' , spaces and newlines), so every
 * parser must take any bytes: no read past the given length (the input is
 * copied into a buffer of exactly that size, with no terminating NUL),
 * bounded outputs, and a clean error code on nonsense.
 */
#include "bench/procfs.h"
#include "core/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int which = data[0] % 8;
    size_t n = size - 1;
    char *t = malloc(n ? n : 1);
    memcpy(t, data + 1, n);
    int rc = 0;
    switch (which) {
    case 0: {
        pb_pstat s;
        rc = pb_procfs_stat(t, n, &s);
        if (rc == 0 && (strlen(s.comm) >= sizeof s.comm || s.processor < -1)) abort();
        break;
    }
    case 1: {
        pb_pstatus s;
        rc = pb_procfs_status(t, n, &s);
        if (strlen(s.name) >= sizeof s.name) abort();
        break;
    }
    case 2: {
        pb_pio io;
        rc = pb_procfs_io(t, n, &io);
        break;
    }
    case 3: {
        uint64_t a, b, c;
        rc = pb_procfs_schedstat(t, n, &a, &b, &c);
        break;
    }
    case 4: {
        pb_cpustat all, cores[4];
        int nc = -1;
        rc = pb_procfs_cpus(t, n, &all, cores, 4, &nc);
        if (nc < 0 || nc > 4) abort();
        break;
    }
    case 5: {
        pb_meminfo m;
        rc = pb_procfs_meminfo(t, n, &m);
        break;
    }
    case 6: {
        pb_diskstat d;
        rc = pb_procfs_diskstat(t, n, (data[0] & 8) ? "sda" : NULL, 8, 0, &d);
        if (rc == 0 && strlen(d.name) >= sizeof d.name) abort();
        break;
    }
    case 7: {
        unsigned ma, mi;
        char src[16];
        rc = pb_procfs_mount_for(t, n, "/srv/out put/x", &ma, &mi, src, sizeof src);
        if (rc == 0 && strlen(src) >= sizeof src) abort();
        break;
    }
    }
    if (rc != 0 && rc != PX_ECORRUPT && rc != PX_ENOTFOUND) abort();
    free(t);
    return 0;
}
