/*
 * procfs_test.c — the /proc parsers over files recorded on a Linux 6.x VM
 * (tests/data/procfs: a loaded pixserve's stat, status, io, busiest
 * thread's stat and schedstat; /proc/stat, meminfo, diskstats, mountinfo;
 * a process named "a) 1 2 (b") and over broken text: every value is
 * checked exactly, malformed input fails cleanly.
 */
#include "bench/procfs.h"
#include "core/err.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fix[65536];

static size_t slurp(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "procfs/%s", name);
    char *p = px_test_path(rel);
    FILE *f = fopen(p, "rb");
    if (!f) px_tfail(__FILE__, __LINE__, "cannot open fixture %s", p);
    size_t n = fread(fix, 1, sizeof fix - 1, f);
    fclose(f);
    fix[n] = 0;
    free(p);
    return n;
}

TEST(t_stat_of_a_loaded_pixserve)
{
    size_t n = slurp("pixserve.stat");
    pb_pstat s;
    T_EQ_INT(pb_procfs_stat(fix, n, &s), 0);
    T_EQ_INT(s.pid, 2851);
    T_EQ_STR(s.comm, "pixserve");
    T_EQ_INT(s.state, 'S');
    T_EQ_INT(s.ppid, 2848);
    T_EQ_INT(s.minflt, 21478);
    T_EQ_INT(s.majflt, 0);
    T_EQ_INT(s.utime, 522);
    T_EQ_INT(s.stime, 10);
    T_EQ_INT(s.num_threads, 10);
    T_EQ_INT(s.starttime, 869658);
    T_EQ_INT(s.vsize, 498876416);
    T_EQ_INT(s.rss_pages, 3502);
    T_EQ_INT(s.processor, 1);
    n = slurp("pixserve.task.stat");
    T_EQ_INT(pb_procfs_stat(fix, n, &s), 0);
    T_EQ_INT(s.pid, 2861);
    T_EQ_INT(s.utime, 262);
    T_EQ_INT(s.stime, 7);
    T_EQ_INT(s.processor, 1);
    uint64_t run, wait, slices;
    n = slurp("pixserve.task.schedstat");
    T_EQ_INT(pb_procfs_schedstat(fix, n, &run, &wait, &slices), 0);
    T_EQ_INT(run, 2703069749ULL);
    T_EQ_INT(wait, 182275250);
    T_EQ_INT(slices, 881);
}

TEST(t_stat_name_with_parentheses_and_spaces)
{
    /* recorded: /bin/sleep run through a link named "a) 1 2 (b" */
    size_t n = slurp("hostile.stat");
    pb_pstat s;
    T_EQ_INT(pb_procfs_stat(fix, n, &s), 0);
    T_EQ_INT(s.pid, 2598);
    T_EQ_STR(s.comm, "a) 1 2 (b");
    T_EQ_INT(s.state, 'S');
    T_EQ_INT(s.ppid, 2570);
    T_EQ_INT(s.num_threads, 1);
    T_EQ_INT(s.vsize, 2990080);
    T_EQ_INT(s.rss_pages, 444);
    T_EQ_INT(s.processor, 1);
    /* a newline and a ") R 9 9" inside the name: only the last ')' ends it */
    const char *t = "77 (x) R 9 9\n) R 5 5 5 0 -1 0 1 0 2 0 30 40 0 0 20 0 3 0 100 4096 12";
    T_EQ_INT(pb_procfs_stat(t, strlen(t), &s), 0);
    T_EQ_STR(s.comm, "x) R 9 9\n");
    T_EQ_INT(s.ppid, 5);
    T_EQ_INT(s.utime, 30);
    T_EQ_INT(s.stime, 40);
    T_EQ_INT(s.num_threads, 3);
    T_EQ_INT(s.rss_pages, 12);
    T_EQ_INT(s.processor, -1); /* short line: no field 39 */
    /* a name longer than the buffer is cut, not overflowed */
    char longer[400];
    int k = snprintf(longer, sizeof longer, "5 (%0100d) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 6 7", 0);
    T_EQ_INT(pb_procfs_stat(longer, (size_t)k, &s), 0);
    T_EQ_INT(strlen(s.comm), 63);
    T_EQ_INT(s.rss_pages, 7);
}

TEST(t_stat_malformed)
{
    pb_pstat s;
    const char *bad[] = {"", "12 pixserve S 1", "12 (a) S 1 2 3", "x (a) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 6 7",
                         "12 (a) S 1 1 1 0 -1 0 0 0 0 0 1 zz 0 0 20 0 1 0 5 6 7", "12 (a) SS 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 6 7",
                         "12 )a( S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 6 7"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) T_EQ_INT(pb_procfs_stat(bad[i], strlen(bad[i]), &s), PX_ECORRUPT);
    /* not NUL-terminated: the length bounds the parse */
    const char *t = "12 (a) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 6 7 999";
    T_EQ_INT(pb_procfs_stat(t, strlen(t) - 4, &s), 0);
    T_EQ_INT(s.rss_pages, 7);
    uint64_t a, b, c;
    T_EQ_INT(pb_procfs_schedstat("1 2", 3, &a, &b, &c), PX_ECORRUPT);
    /* counters past 64 bits saturate rather than wrap */
    T_EQ_INT(pb_procfs_schedstat("99999999999999999999999 2 3", 27, &a, &b, &c), 0);
    T_EQ_INT(a, UINT64_MAX);
}

TEST(t_status_and_io)
{
    size_t n = slurp("pixserve.status");
    pb_pstatus st;
    T_EQ_INT(pb_procfs_status(fix, n, &st), 0);
    T_EQ_STR(st.name, "pixserve");
    T_EQ_INT(st.vm_rss_kb, 14200);
    T_EQ_INT(st.vm_hwm_kb, 14856);
    T_EQ_INT(st.vm_size_kb, 487184);
    T_EQ_INT(st.threads, 10);
    T_EQ_INT(st.vol_ctxsw, 21);
    T_EQ_INT(st.nonvol_ctxsw, 1);
    /* a kernel thread has no Vm lines: unknown, not zero */
    const char *k = "Name:\tkworker/0:1\nState:\tI (idle)\nThreads:\t1\n";
    T_EQ_INT(pb_procfs_status(k, strlen(k), &st), 0);
    T_EQ_STR(st.name, "kworker/0:1");
    T_EQ_INT(st.vm_rss_kb, -1);
    T_EQ_INT(st.threads, 1);
    T_EQ_INT(pb_procfs_status("", 0, &st), PX_ECORRUPT);
    n = slurp("pixserve.io");
    pb_pio io;
    T_EQ_INT(pb_procfs_io(fix, n, &io), 0);
    T_EQ_INT(io.rchar, 43267);
    T_EQ_INT(io.wchar, 262);
    T_EQ_INT(io.syscr, 78);
    T_EQ_INT(io.syscw, 25);
    T_EQ_INT(io.read_bytes, 0);
    T_EQ_INT(io.write_bytes, 4096);
    T_EQ_INT(io.cancelled_write_bytes, 0);
    T_EQ_INT(pb_procfs_io("rchar 5\n", 8, &io), PX_ECORRUPT);
}

TEST(t_system_cpu_and_memory)
{
    size_t n = slurp("stat");
    pb_cpustat all, cores[8];
    int nc;
    T_EQ_INT(pb_procfs_cpus(fix, n, &all, cores, 8, &nc), 0);
    T_EQ_INT(nc, 2);
    T_EQ_INT(all.user, 952008);
    T_EQ_INT(all.nice, 2252);
    T_EQ_INT(all.system, 72687);
    T_EQ_INT(all.idle, 684255);
    T_EQ_INT(all.iowait, 835);
    T_EQ_INT(all.irq, 0);
    T_EQ_INT(all.softirq, 11978);
    T_EQ_INT(all.steal, 17996);
    T_EQ_INT(cores[0].user, 509152);
    T_EQ_INT(cores[1].user, 442855);
    T_EQ_INT(cores[1].idle, 376171);
    T_EQ_INT(cores[1].steal, 8695);
    T_EQ_INT(pb_cpustat_total(&cores[1]), 442855 + 1024 + 35397 + 376171 + 293 + 0 + 6575 + 8695);
    T_EQ_INT(pb_cpustat_busy(&cores[1]), 442855 + 1024 + 35397 + 0 + 6575 + 8695);
    /* an offline CPU in the middle and one past the array */
    const char *t = "cpu  10 0 10 80\ncpu0 5 0 5 40\ncpu2 5 0 5 40\ncpu9 1 1 1 1\nintr 5 6\n";
    T_EQ_INT(pb_procfs_cpus(t, strlen(t), &all, cores, 4, &nc), 0);
    T_EQ_INT(nc, 3);
    T_EQ_INT(pb_cpustat_total(&cores[1]), 0);
    T_EQ_INT(cores[2].idle, 40);
    T_EQ_INT(all.iowait, 0); /* old kernels: four fields */
    T_EQ_INT(pb_procfs_cpus("cpu0 1 2 3 4\n", 13, &all, cores, 4, &nc), PX_ECORRUPT);
    T_EQ_INT(pb_procfs_cpus("cpu 1 2\n", 8, &all, cores, 4, &nc), PX_ECORRUPT);
    n = slurp("meminfo");
    pb_meminfo m;
    T_EQ_INT(pb_procfs_meminfo(fix, n, &m), 0);
    T_EQ_INT(m.total_kb, 24682416);
    T_EQ_INT(m.free_kb, 19210120);
    T_EQ_INT(m.available_kb, 24198844);
    T_EQ_INT(m.cached_kb, 4672748);
    T_EQ_INT(m.swap_total_kb, 0);
    T_EQ_INT(pb_procfs_meminfo("MemFree: 5 kB\n", 14, &m), PX_ECORRUPT);
}

TEST(t_diskstats_and_mounts)
{
    size_t n = slurp("diskstats");
    pb_diskstat d;
    T_EQ_INT(pb_procfs_diskstat(fix, n, NULL, 254, 0, &d), 0);
    T_EQ_STR(d.name, "vda");
    T_EQ_INT(d.reads, 62884);
    T_EQ_INT(d.reads_merged, 18380);
    T_EQ_INT(d.sectors_read, 3118650);
    T_EQ_INT(d.ms_reading, 7585);
    T_EQ_INT(d.writes, 121823);
    T_EQ_INT(d.writes_merged, 75273);
    T_EQ_INT(d.sectors_written, 13306808);
    T_EQ_INT(d.ms_writing, 46769);
    T_EQ_INT(d.in_flight, 0);
    T_EQ_INT(d.ms_io, 19124);
    T_EQ_INT(d.ms_weighted, 64125);
    T_EQ_INT(pb_procfs_diskstat(fix, n, "zram0", 0, 0, &d), 0);
    T_EQ_INT(d.major, 253);
    T_EQ_INT(pb_procfs_diskstat(fix, n, "sda", 0, 0, &d), PX_ENOTFOUND);
    T_EQ_INT(pb_procfs_diskstat(fix, n, NULL, 8, 0, &d), PX_ENOTFOUND);
    /* kernels before 4.18 have 11 counters; fewer is broken */
    const char *old = "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n";
    T_EQ_INT(pb_procfs_diskstat(old, strlen(old), "sda", 0, 0, &d), 0);
    T_EQ_INT(d.ms_weighted, 11);
    T_EQ_INT(pb_procfs_diskstat(old, strlen(old) - 4, "sda", 0, 0, &d), PX_ECORRUPT);

    n = slurp("mountinfo");
    unsigned ma = 9, mi = 9;
    char src[128];
    T_EQ_INT(pb_procfs_mount_for(fix, n, "/srv/pixserve/outputs", &ma, &mi, src, sizeof src), 0);
    T_EQ_INT(ma, 254);
    T_EQ_INT(mi, 0);
    T_EQ_STR(src, "/dev/vda");
    T_EQ_INT(pb_procfs_mount_for(fix, n, "/dev/shm/x", &ma, &mi, src, sizeof src), 0);
    T_EQ_INT(mi, 27); /* mounted twice on /dev/shm: the later mount is the visible one */
    T_EQ_STR(src, "tmpfs");
    T_EQ_INT(pb_procfs_mount_for(fix, n, "relative/path", &ma, &mi, src, sizeof src), PX_ENOTFOUND);
    /* a container: / is overlay (anonymous device), a volume holds the outputs */
    n = slurp("mountinfo.docker");
    T_EQ_INT(pb_procfs_mount_for(fix, n, "/srv/pix outputs/1-ab.png", &ma, &mi, src, sizeof src), 0);
    T_EQ_INT(ma, 259);
    T_EQ_INT(mi, 2);
    T_EQ_STR(src, "/dev/nvme0n1p2");
    T_EQ_INT(pb_procfs_mount_for(fix, n, "/srv/pix outputs/tmp/x", &ma, &mi, src, sizeof src), 0);
    T_EQ_INT(mi, 60);
    T_EQ_INT(pb_procfs_mount_for(fix, n, "/srv/pix outputsX", &ma, &mi, src, sizeof src), 0);
    T_EQ_INT(ma, 0);
    T_EQ_STR(src, "overlay");
    T_EQ_INT(pb_procfs_mount_for(fix, n, "/srv/pix outputs", &ma, &mi, src, sizeof src), 0);
    T_EQ_INT(ma, 259);
}

TEST(t_real_os_reads_this_process)
{
    const pb_os *os = pb_os_real();
    char buf[4096];
    long n = os->read_file(os->ctx, "/proc/self/stat", buf, sizeof buf);
    T_CMP_INT(n, >, 20);
    pb_pstat s;
    T_EQ_INT(pb_procfs_stat(buf, (size_t)n, &s), 0);
    T_EQ_INT(s.pid, getpid());
    T_EQ_INT(os->read_file(os->ctx, "/proc/no-such-file", buf, sizeof buf), -1);
    /* a buffer smaller than the file: cut, NUL-terminated */
    T_EQ_INT(os->read_file(os->ctx, "/proc/self/status", buf, 8), 7);
    T_EQ_INT(buf[7], 0);
    unsigned ma, mi;
    T_EQ_INT(os->dev_of(os->ctx, "/proc/self/stat", 0, &ma, &mi), 0);
    T_EQ_INT(os->dev_of(os->ctx, "/proc/self/stat", 1, &ma, &mi), -1); /* not a block device */
    T_CMP_INT(os->now_ns(os->ctx), >, 0);
}

TEST_MAIN(t_stat_of_a_loaded_pixserve, t_stat_name_with_parentheses_and_spaces, t_stat_malformed,
          t_status_and_io, t_system_cpu_and_memory, t_diskstats_and_mounts, t_real_os_reads_this_process)
