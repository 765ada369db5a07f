/*
 * procfs.c — /proc parsers and the real OS table (see procfs.h).
 *
 * The parsers walk (text, len) with explicit bounds and never rely on a
 * terminating NUL, so a fuzzer can hand them any bytes. Numbers that do not
 * fit saturate rather than wrap: a counter that reads as UINT64_MAX is
 * obviously wrong in a report, a wrapped one is quietly wrong.
 */
#include "bench/procfs.h"

#include "core/clock.h"
#include "core/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* --- a bounded cursor ---------------------------------------------------- */

typedef struct cur {
    const char *p, *e;
} cur;

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The next whitespace-separated token of the current line ('\n' ends it);
 * 0 when the line has no more. */
static int token(cur *c, const char **s, size_t *n)
{
    while (c->p < c->e && *c->p != '\n' && is_space(*c->p)) c->p++;
    if (c->p >= c->e || *c->p == '\n') return 0;
    *s = c->p;
    while (c->p < c->e && !is_space(*c->p)) c->p++;
    *n = (size_t)(c->p - *s);
    return 1;
}

/* Moves to the start of the next line; 0 at the end of the text. */
static int next_line(cur *c)
{
    while (c->p < c->e && *c->p != '\n') c->p++;
    if (c->p >= c->e) return 0;
    c->p++;
    return c->p < c->e;
}

static int to_u64(const char *s, size_t n, uint64_t *v)
{
    if (n == 0) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned d = (unsigned)(s[i] - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
    }
    *v = x;
    return 0;
}

static int to_i64(const char *s, size_t n, int64_t *v)
{
    int neg = n > 0 && s[0] == '-';
    uint64_t u;
    if (to_u64(s + neg, n - (size_t)neg, &u)) return -1;
    if (u > (uint64_t)INT64_MAX) u = (uint64_t)INT64_MAX;
    *v = neg ? -(int64_t)u : (int64_t)u;
    return 0;
}

static int tok_u64(cur *c, uint64_t *v)
{
    const char *s;
    size_t n;
    return token(c, &s, &n) ? to_u64(s, n, v) : -1;
}

/* "Key:" at the start of the current line? Then the cursor moves past it. */
static int key_is(cur *c, const char *key)
{
    size_t k = strlen(key);
    if ((size_t)(c->e - c->p) <= k || memcmp(c->p, key, k) != 0 || c->p[k] != ':') return 0;
    c->p += k + 1;
    return 1;
}

/* --- per process ----------------------------------------------------------- */

int pb_procfs_stat(const char *text, size_t len, pb_pstat *o)
{
    memset(o, 0, sizeof *o);
    o->processor = -1;
    o->num_threads = -1;
    o->rss_pages = -1;
    const char *lp = memchr(text, '(', len), *rp = NULL;
    /* the name ends at the last ')': nothing after it can hold one, and the
     * name itself may (a process names itself with prctl) */
    for (size_t i = len; i > 0; i--)
        if (text[i - 1] == ')') {
            rp = text + i - 1;
            break;
        }
    if (!lp || !rp || rp < lp) return PX_ECORRUPT;
    cur c = {text, lp};
    int64_t pid;
    const char *s;
    size_t n;
    if (!token(&c, &s, &n) || to_i64(s, n, &pid) || pid < 0 || pid > INT32_MAX) return PX_ECORRUPT;
    o->pid = (int)pid;
    size_t cl = (size_t)(rp - lp - 1);
    if (cl >= sizeof o->comm) cl = sizeof o->comm - 1;
    memcpy(o->comm, lp + 1, cl);
    o->comm[cl] = 0;
    c.p = rp + 1;
    c.e = text + len;
    /* fields 3.. after the name; field k is token k - 3 */
    int64_t v[37];
    int got = 0;
    for (int k = 3; k <= 39; k++) {
        if (!token(&c, &s, &n)) break;
        if (k == 3) {
            if (n != 1) return PX_ECORRUPT;
            o->state = s[0];
        } else if (k == 23) {
            /* vsize is unsigned and may use all 64 bits */
            uint64_t u;
            if (to_u64(s, n, &u)) return PX_ECORRUPT;
            o->vsize = u;
            v[k - 3] = 0;
        } else if (to_i64(s, n, &v[k - 3])) {
            return PX_ECORRUPT; /* (a huge rsslim saturates, it does not fail) */
        }
        got = k;
    }
    if (got < 24) return PX_ECORRUPT;
    o->ppid = (int)v[4 - 3];
    o->minflt = (uint64_t)(v[10 - 3] < 0 ? 0 : v[10 - 3]);
    o->majflt = (uint64_t)(v[12 - 3] < 0 ? 0 : v[12 - 3]);
    o->utime = (uint64_t)(v[14 - 3] < 0 ? 0 : v[14 - 3]);
    o->stime = (uint64_t)(v[15 - 3] < 0 ? 0 : v[15 - 3]);
    o->num_threads = v[20 - 3];
    o->starttime = (uint64_t)(v[22 - 3] < 0 ? 0 : v[22 - 3]);
    o->rss_pages = v[24 - 3];
    if (got >= 39 && v[39 - 3] >= 0 && v[39 - 3] < INT32_MAX) o->processor = (int)v[39 - 3];
    return 0;
}

int pb_procfs_schedstat(const char *text, size_t len, uint64_t *run_ns, uint64_t *wait_ns,
                        uint64_t *timeslices)
{
    cur c = {text, text + len};
    uint64_t a, b, d;
    if (tok_u64(&c, &a) || tok_u64(&c, &b) || tok_u64(&c, &d)) return PX_ECORRUPT;
    *run_ns = a;
    *wait_ns = b;
    *timeslices = d;
    return 0;
}

int pb_procfs_status(const char *text, size_t len, pb_pstatus *o)
{
    memset(o, 0, sizeof *o);
    o->vm_rss_kb = o->vm_hwm_kb = o->vm_size_kb = o->threads = o->vol_ctxsw = o->nonvol_ctxsw = -1;
    if (len == 0) return PX_ECORRUPT;
    cur c = {text, text + len};
    int any = 0;
    do {
        int64_t *dst = NULL;
        if (key_is(&c, "Name")) {
            while (c.p < c.e && (*c.p == ' ' || *c.p == '\t')) c.p++;
            size_t n = 0;
            while (c.p + n < c.e && c.p[n] != '\n' && n < sizeof o->name - 1) n++;
            memcpy(o->name, c.p, n);
            o->name[n] = 0;
            any = 1;
            continue;
        }
        if (key_is(&c, "VmRSS")) dst = &o->vm_rss_kb;
        else if (key_is(&c, "VmHWM")) dst = &o->vm_hwm_kb;
        else if (key_is(&c, "VmSize")) dst = &o->vm_size_kb;
        else if (key_is(&c, "Threads")) dst = &o->threads;
        else if (key_is(&c, "voluntary_ctxt_switches")) dst = &o->vol_ctxsw;
        else if (key_is(&c, "nonvoluntary_ctxt_switches")) dst = &o->nonvol_ctxsw;
        if (dst) {
            const char *s;
            size_t n;
            int64_t x;
            if (token(&c, &s, &n) && to_i64(s, n, &x) == 0 && x >= 0) *dst = x;
            any = 1;
        }
    } while (next_line(&c));
    return any ? 0 : PX_ECORRUPT;
}

int pb_procfs_io(const char *text, size_t len, pb_pio *o)
{
    o->rchar = o->wchar = o->syscr = o->syscw = o->read_bytes = o->write_bytes =
        o->cancelled_write_bytes = -1;
    if (len == 0) return PX_ECORRUPT;
    cur c = {text, text + len};
    int any = 0;
    do {
        int64_t *dst = key_is(&c, "rchar")                   ? &o->rchar
                       : key_is(&c, "wchar")                 ? &o->wchar
                       : key_is(&c, "syscr")                 ? &o->syscr
                       : key_is(&c, "syscw")                 ? &o->syscw
                       : key_is(&c, "read_bytes")            ? &o->read_bytes
                       : key_is(&c, "write_bytes")           ? &o->write_bytes
                       : key_is(&c, "cancelled_write_bytes") ? &o->cancelled_write_bytes
                                                             : NULL;
        const char *s;
        size_t n;
        int64_t x;
        if (dst && token(&c, &s, &n) && to_i64(s, n, &x) == 0 && x >= 0) {
            *dst = x;
            any = 1;
        }
    } while (next_line(&c));
    return any ? 0 : PX_ECORRUPT;
}

/* --- system ------------------------------------------------------------------ */

uint64_t pb_cpustat_total(const pb_cpustat *c)
{
    return c->user + c->nice + c->system + c->idle + c->iowait + c->irq + c->softirq + c->steal;
}

uint64_t pb_cpustat_busy(const pb_cpustat *c)
{
    return c->user + c->nice + c->system + c->irq + c->softirq + c->steal;
}

static int cpu_fields(cur *c, pb_cpustat *o)
{
    uint64_t v[8] = {0};
    int n = 0;
    const char *s;
    size_t k;
    while (n < 8 && token(c, &s, &k)) {
        if (to_u64(s, k, &v[n])) return -1;
        n++;
    }
    if (n < 4) return -1; /* user nice system idle: every kernel has them */
    o->user = v[0], o->nice = v[1], o->system = v[2], o->idle = v[3];
    o->iowait = v[4], o->irq = v[5], o->softirq = v[6], o->steal = v[7];
    return 0;
}

int pb_procfs_cpus(const char *text, size_t len, pb_cpustat *all, pb_cpustat *cores, int max,
                   int *ncores)
{
    memset(all, 0, sizeof *all);
    if (max > 0) memset(cores, 0, sizeof *cores * (size_t)max);
    *ncores = 0;
    int have_all = 0;
    cur c = {text, text + len};
    if (len == 0) return PX_ECORRUPT;
    do {
        if ((size_t)(c.e - c.p) < 4 || memcmp(c.p, "cpu", 3) != 0) continue;
        const char *s;
        size_t n;
        cur t = c;
        if (!token(&t, &s, &n)) continue;
        if (n == 3) {
            if (cpu_fields(&t, all)) return PX_ECORRUPT;
            have_all = 1;
            continue;
        }
        uint64_t idx;
        if (to_u64(s + 3, n - 3, &idx)) continue;
        pb_cpustat one;
        if (cpu_fields(&t, &one)) return PX_ECORRUPT;
        if (idx < (uint64_t)max) {
            cores[idx] = one;
            if ((int)idx + 1 > *ncores) *ncores = (int)idx + 1;
        }
    } while (next_line(&c));
    return have_all ? 0 : PX_ECORRUPT;
}

int pb_procfs_meminfo(const char *text, size_t len, pb_meminfo *o)
{
    o->total_kb = o->free_kb = o->available_kb = o->cached_kb = o->swap_total_kb = o->swap_free_kb = -1;
    cur c = {text, text + len};
    if (len == 0) return PX_ECORRUPT;
    do {
        int64_t *dst = key_is(&c, "MemTotal")       ? &o->total_kb
                       : key_is(&c, "MemFree")      ? &o->free_kb
                       : key_is(&c, "MemAvailable") ? &o->available_kb
                       : key_is(&c, "Cached")       ? &o->cached_kb
                       : key_is(&c, "SwapTotal")    ? &o->swap_total_kb
                       : key_is(&c, "SwapFree")     ? &o->swap_free_kb
                                                    : NULL;
        const char *s;
        size_t n;
        int64_t x;
        if (dst && token(&c, &s, &n) && to_i64(s, n, &x) == 0 && x >= 0) *dst = x;
    } while (next_line(&c));
    return o->total_kb >= 0 ? 0 : PX_ECORRUPT;
}

int pb_procfs_diskstat(const char *text, size_t len, const char *name, unsigned major,
                       unsigned minor, pb_diskstat *o)
{
    cur c = {text, text + len};
    if (len == 0) return PX_ENOTFOUND;
    do {
        cur t = c;
        const char *s, *nm;
        size_t n, nl;
        uint64_t ma, mi;
        if (tok_u64(&t, &ma) || tok_u64(&t, &mi) || !token(&t, &nm, &nl)) continue;
        if (name ? (strlen(name) != nl || memcmp(name, nm, nl) != 0) : (ma != major || mi != minor))
            continue;
        uint64_t v[11];
        int k = 0;
        while (k < 11 && token(&t, &s, &n) && to_u64(s, n, &v[k]) == 0) k++;
        if (k < 11) return PX_ECORRUPT;
        memset(o, 0, sizeof *o);
        o->major = (unsigned)(ma > UINT32_MAX ? UINT32_MAX : ma);
        o->minor = (unsigned)(mi > UINT32_MAX ? UINT32_MAX : mi);
        if (nl >= sizeof o->name) nl = sizeof o->name - 1;
        memcpy(o->name, nm, nl);
        o->name[nl] = 0;
        o->reads = v[0], o->reads_merged = v[1], o->sectors_read = v[2], o->ms_reading = v[3];
        o->writes = v[4], o->writes_merged = v[5], o->sectors_written = v[6], o->ms_writing = v[7];
        o->in_flight = v[8], o->ms_io = v[9], o->ms_weighted = v[10];
        return 0;
    } while (next_line(&c));
    return PX_ENOTFOUND;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static size_t unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
            s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            out[k++] = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            out[k++] = s[i];
        }
    }
    out[k] = 0;
    return k;
}

int pb_procfs_mount_for(const char *text, size_t len, const char *path, unsigned *major,
                        unsigned *minor, char *source, size_t cap)
{
    size_t best = 0, plen = strlen(path);
    int found = 0;
    cur c = {text, text + len};
    if (len == 0 || path[0] != '/') return PX_ENOTFOUND;
    do {
        cur t = c;
        const char *s, *dev, *mp;
        size_t n, dn, mn;
        /* id parent major:minor root mountpoint options [optional...] - fstype source superopts */
        if (!token(&t, &s, &n) || !token(&t, &s, &n) || !token(&t, &dev, &dn) || !token(&t, &s, &n) ||
            !token(&t, &mp, &mn))
            continue;
        char mpath[4096];
        size_t ml = unescape(mp, mn, mpath, sizeof mpath);
        /* "/" covers everything; "/a" covers "/a" and "/a/...", not "/ab" */
        int covers = ml == 1 ? mpath[0] == '/'
                             : (ml <= plen && memcmp(path, mpath, ml) == 0 && (path[ml] == 0 || path[ml] == '/'));
        if (!covers || ml < best) continue;
        const char *colon = memchr(dev, ':', dn);
        uint64_t ma, mi;
        if (!colon || to_u64(dev, (size_t)(colon - dev), &ma) ||
            to_u64(colon + 1, dn - (size_t)(colon - dev) - 1, &mi))
            continue;
        int sep = 0;
        while (token(&t, &s, &n))
            if (n == 1 && s[0] == '-') {
                sep = 1;
                break;
            }
        const char *src = "";
        size_t sl = 0;
        if (!(sep && token(&t, &s, &n) && token(&t, &src, &sl))) src = "", sl = 0;
        best = ml; /* a later mount on the same point hides the earlier one */
        found = 1;
        *major = (unsigned)(ma > UINT32_MAX ? UINT32_MAX : ma);
        *minor = (unsigned)(mi > UINT32_MAX ? UINT32_MAX : mi);
        if (cap) unescape(src, sl, source, cap);
    } while (next_line(&c));
    return found ? 0 : PX_ENOTFOUND;
}

/* --- the real OS ---------------------------------------------------------------- */

static long real_read(void *ctx, const char *path, char *buf, size_t cap)
{
    (void)ctx;
    if (cap == 0) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = 0;
    /* /proc files are generated per read(); loop until EOF or the buffer is full */
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            close(fd);
            return -1;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    return (long)n;
}

static int real_list(void *ctx, const char *path, int (*fn)(void *arg, const char *name), void *arg)
{
    (void)ctx;
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
        n++;
        if (fn(arg, e->d_name)) break;
    }
    closedir(d);
    return n;
}

static int64_t real_now(void *ctx)
{
    (void)ctx;
    return px_now_ns();
}

static int real_write(void *ctx, const char *path, const char *text)
{
    (void)ctx;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok ? 0 : -1;
}

static int real_dev(void *ctx, const char *path, int node, unsigned *ma, unsigned *mi)
{
    (void)ctx;
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    dev_t d = node ? st.st_rdev : st.st_dev;
    if (node && !S_ISBLK(st.st_mode)) return -1;
    *ma = major(d);
    *mi = minor(d);
    return 0;
}

static const pb_os k_real = {NULL, real_read, real_list, real_now, real_write, real_dev};

const pb_os *pb_os_real(void)
{
    return &k_real;
}

int pb_procfs_usage(const pb_os *os, int pid, int64_t *cpu_ns, uint64_t *rss_bytes)
{
    if (!os) os = pb_os_real();
    char path[64], buf[1024];
    if (pid > 0) snprintf(path, sizeof path, "/proc/%d/stat", pid);
    else snprintf(path, sizeof path, "/proc/self/stat");
    long n = os->read_file(os->ctx, path, buf, sizeof buf);
    pb_pstat s;
    if (n <= 0 || pb_procfs_stat(buf, (size_t)n, &s) != 0 || s.rss_pages < 0) return -1;
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (hz <= 0) hz = 100;
    *cpu_ns = (int64_t)((s.utime + s.stime) * (1000000000ULL / (unsigned long long)hz));
    *rss_bytes = (uint64_t)s.rss_pages * (uint64_t)page;
    return 0;
}
