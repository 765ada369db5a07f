/*
 * proc.c — /proc/self readers for /healthz and /metrics.
 */
#include "core/proc.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

/* Value of a "Key:   123 kB" line of a /proc file, in kB, or 0. */
static uint64_t kb_field(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    size_t klen = strlen(key);
    uint64_t v = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            unsigned long long x = 0;
            if (sscanf(line + klen + 1, "%llu", &x) == 1) v = x;
            break;
        }
    }
    fclose(f);
    return v;
}

uint64_t px_proc_rss_bytes(void)
{
    return kb_field("/proc/self/status", "VmRSS") * 1024;
}

uint64_t px_proc_peak_rss_bytes(void)
{
    return kb_field("/proc/self/status", "VmHWM") * 1024;
}

uint64_t px_proc_mem_available(void)
{
    return kb_field("/proc/meminfo", "MemAvailable") * 1024;
}

int px_proc_threads(void)
{
    return (int)kb_field("/proc/self/status", "Threads");
}

int px_proc_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}
