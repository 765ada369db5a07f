/*
 * outputs.c — storing and serving result files (see outputs.h).
 */
#include "serve/outputs.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/rng.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct px_outputs {
    int dirfd;
    char *path;
    atomic_ullong counter;
    uint64_t salt;
};

int px_outputs_open(const char *dir, px_outputs **out, char *err, size_t errlen)
{
    *out = NULL;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return px_errf(err, errlen, PX_EIO, "cannot create outputs directory %s: %s", dir,
                       strerror(errno));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return px_errf(err, errlen, PX_EIO, "cannot open outputs directory %s: %s", dir,
                       strerror(errno));
    px_outputs *o = px_xcalloc(1, sizeof *o);
    o->dirfd = fd;
    o->path = px_xstrdup(dir);
    /* Names must not repeat across restarts: salt with the start time and pid. */
    o->salt = px_hash64((uint64_t)px_wall_ms() ^ ((uint64_t)getpid() << 40));
    atomic_init(&o->counter, 0);
    *out = o;
    return 0;
}

void px_outputs_close(px_outputs *o)
{
    if (!o) return;
    close(o->dirfd);
    free(o->path);
    free(o);
}

const char *px_outputs_dir(const px_outputs *o)
{
    return o->path;
}

int px_outputs_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= PX_OUTPUT_NAME_MAX) return 0;
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '.') {
            /* one dot, not first or last: "stem.ext" */
            if (++dots > 1 || i == 0 || i == n - 1) return 0;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_')) {
            return 0;
        }
    }
    return 1;
}

int px_outputs_save(px_outputs *o, const void *data, size_t n, const char *ext, char *name,
                    char *err, size_t errlen)
{
    uint64_t k = atomic_fetch_add(&o->counter, 1);
    /* Time-ordered prefix for people listing the directory, hash for
     * unguessable names (outputs are served without authentication). */
    snprintf(name, PX_OUTPUT_NAME_MAX, "%lld-%016llx.%s", (long long)px_wall_ms(),
             (unsigned long long)px_hash64(o->salt + k), ext);
    char tmp[PX_OUTPUT_NAME_MAX + 8];
    snprintf(tmp, sizeof tmp, ".tmp-%s", name);
    int fd = openat(o->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return px_errf(err, errlen, PX_EIO, "cannot create %s/%s: %s", o->path, tmp,
                       strerror(errno));
    const uint8_t *p = data;
    size_t left = n;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlinkat(o->dirfd, tmp, 0);
            return px_errf(err, errlen, PX_EIO, "writing %s/%s failed: %s", o->path, tmp,
                           strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0 || renameat(o->dirfd, tmp, o->dirfd, name) != 0) {
        int e = errno;
        unlinkat(o->dirfd, tmp, 0);
        return px_errf(err, errlen, PX_EIO, "storing %s/%s failed: %s", o->path, name,
                       strerror(e));
    }
    return 0;
}

int px_outputs_open_file(px_outputs *o, const char *name, uint64_t *size)
{
    if (!px_outputs_name_ok(name)) return PX_EINVAL;
    int fd = openat(o->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return PX_ENOTFOUND;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return PX_ENOTFOUND;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}
