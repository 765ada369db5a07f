/*
 * proc.h — facts about this process read from /proc/self (Linux).
 */
#ifndef PX_CORE_PROC_H
#define PX_CORE_PROC_H

#include <stdint.h>

/* Resident set size in bytes, or 0 if /proc is unavailable. */
uint64_t px_proc_rss_bytes(void);

/* Peak resident set size (VmHWM) in bytes, or 0. */
uint64_t px_proc_peak_rss_bytes(void);

/* The system's MemAvailable (/proc/meminfo) in bytes, or 0. */
uint64_t px_proc_mem_available(void);

/* Number of threads, or 0. */
int px_proc_threads(void);

/* Number of open file descriptors, or -1. */
int px_proc_open_fds(void);

#endif
