/*
 * procfs.h — Linux /proc readings for pixbench's resource monitor, in two
 * parts:
 *
 *  - pure parsers over the text of one /proc file (a process's stat, task
 *    stat, schedstat, status and io; /proc/stat, /proc/meminfo,
 *    /proc/diskstats and /proc/self/mountinfo). They touch nothing but their
 *    arguments, so recorded files test them exactly and a fuzzer feeds them
 *    hostile text: a process chooses its own name (the `comm` field of stat),
 *    which may hold spaces, parentheses and newlines.
 *
 *  - pb_os, the table through which the monitor reaches the operating system
 *    (read a file, list a directory, the clock, a device number): the real one
 *    reads /proc, tests pass a table that serves recorded files and failures.
 *
 * Every parser returns 0, or PX_ECORRUPT when a field it needs is missing or
 * malformed (PX_ENOTFOUND where it looks for one line among many). Fields
 * the text lacks are left at -1 (or 0 for counters, as said per struct).
 */
#ifndef PB_PROCFS_H
#define PB_PROCFS_H

#include <stddef.h>
#include <stdint.h>

/* /proc/<pid>/stat and /proc/<pid>/task/<tid>/stat. */
typedef struct pb_pstat {
    int pid;
    char comm[64];        /* as the kernel wrote it, NUL-terminated (may hold ") (" and spaces) */
    char state;           /* R, S, D, Z, ... */
    int ppid;
    uint64_t minflt, majflt;
    uint64_t utime, stime; /* clock ticks (sysconf(_SC_CLK_TCK)) */
    int64_t num_threads;
    uint64_t starttime;   /* clock ticks after boot */
    uint64_t vsize;       /* bytes */
    int64_t rss_pages;
    int processor;        /* CPU it last ran on; -1 when the line is too short */
} pb_pstat;

int pb_procfs_stat(const char *text, size_t len, pb_pstat *out);

/* /proc/<pid>/task/<tid>/schedstat: "run_ns wait_ns timeslices". Exact
 * nanoseconds on CPU, where stat only has clock ticks (10 ms). */
int pb_procfs_schedstat(const char *text, size_t len, uint64_t *run_ns, uint64_t *wait_ns,
                        uint64_t *timeslices);

/* /proc/<pid>/status, the fields used (kB values as written; -1 absent). */
typedef struct pb_pstatus {
    char name[64];
    int64_t vm_rss_kb, vm_hwm_kb, vm_size_kb;
    int64_t threads;
    int64_t vol_ctxsw, nonvol_ctxsw; /* of the main thread only: the kernel keeps them per thread */
} pb_pstatus;

int pb_procfs_status(const char *text, size_t len, pb_pstatus *out);

/* /proc/<pid>/io (-1 absent). read_bytes/write_bytes are what reached the
 * storage layer; rchar/wchar count every read()/write(), sockets included. */
typedef struct pb_pio {
    int64_t rchar, wchar, syscr, syscw, read_bytes, write_bytes, cancelled_write_bytes;
} pb_pio;

int pb_procfs_io(const char *text, size_t len, pb_pio *out);

/* One "cpu" line of /proc/stat, in clock ticks. */
typedef struct pb_cpustat {
    uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
} pb_cpustat;

/* Sum of all fields. */
uint64_t pb_cpustat_total(const pb_cpustat *c);
/* Ticks not idle and not waiting for I/O. */
uint64_t pb_cpustat_busy(const pb_cpustat *c);

/* /proc/stat: the aggregate "cpu" line into *all, and each "cpuN" line into
 * cores[N] for N < max (others zeroed). *ncores is one more than the
 * highest N seen (offline CPUs in between stay zero). */
int pb_procfs_cpus(const char *text, size_t len, pb_cpustat *all, pb_cpustat *cores, int max,
                   int *ncores);

/* /proc/meminfo (kB; -1 absent). */
typedef struct pb_meminfo {
    int64_t total_kb, free_kb, available_kb, cached_kb, swap_total_kb, swap_free_kb;
} pb_meminfo;

int pb_procfs_meminfo(const char *text, size_t len, pb_meminfo *out);

/* One line of /proc/diskstats. */
typedef struct pb_diskstat {
    unsigned major, minor;
    char name[32];
    uint64_t reads, reads_merged, sectors_read, ms_reading;
    uint64_t writes, writes_merged, sectors_written, ms_writing;
    uint64_t in_flight, ms_io, ms_weighted;
} pb_diskstat;

/* The line of the device named `name` (when not NULL) or else numbered
 * major:minor. Returns 0 or PX_ENOTFOUND. */
int pb_procfs_diskstat(const char *text, size_t len, const char *name, unsigned major,
                       unsigned minor, pb_diskstat *out);

/* /proc/self/mountinfo: the mount whose mount point is the longest prefix
 * of the absolute path `path`: its device numbers (anonymous for overlay,
 * tmpfs, btrfs subvolumes: major 0) and its source (e.g. "/dev/nvme0n1p2",
 * "overlay"). Returns 0 or PX_ENOTFOUND. */
int pb_procfs_mount_for(const char *text, size_t len, const char *path, unsigned *major,
                        unsigned *minor, char *source, size_t cap);

/*
 * How the monitor reaches the OS. Every member is required unless said.
 */
typedef struct pb_os {
    void *ctx;
    /* The whole file (at most cap - 1 bytes) into buf, NUL-terminated.
     * Returns its length, or -1 when it cannot be read (gone, no permission). */
    long (*read_file)(void *ctx, const char *path, char *buf, size_t cap);
    /* Calls fn(arg, name) for every entry of a directory but "." and "..",
     * until fn returns non-zero. Returns the entries visited, or -1. */
    int (*list_dir)(void *ctx, const char *path, int (*fn)(void *arg, const char *name), void *arg);
    /* Monotonic nanoseconds. */
    int64_t (*now_ns)(void *ctx);
    /* Writes text to a file (e.g. "5" to /proc/<pid>/clear_refs). Returns 0
     * or -1. May be NULL: unsupported. */
    int (*write_file)(void *ctx, const char *path, const char *text);
    /* major:minor of the filesystem holding path (node == 0: stat's
     * st_dev) or of the device node at path (node == 1: st_rdev). Returns 0
     * or -1. May be NULL: no disk statistics. */
    int (*dev_of)(void *ctx, const char *path, int node, unsigned *major, unsigned *minor);
} pb_os;

/* The real /proc (a static table; never NULL). */
const pb_os *pb_os_real(void);

/* CPU time (user + system, ns, all threads) and resident memory (bytes) of
 * process pid (0: this process), read through os (NULL: the real one).
 * Returns 0, or -1 when /proc cannot tell (the process is gone). */
int pb_procfs_usage(const pb_os *os, int pid, int64_t *cpu_ns, uint64_t *rss_bytes);

#endif
