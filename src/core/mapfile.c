/*
 * mapfile.c — read-only memory maps of weight files (mapfile.h).
 */
#include "core/mapfile.h"

#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int px_map_file(const char *path, size_t min_len, const char *what, void **map, size_t *len,
                char *err, size_t errlen)
{
    *map = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return px_errf(err, errlen, PX_EIO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return px_errf(err, errlen, PX_EIO, "%s is not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    if (n < min_len || n == 0) {
        close(fd);
        return px_errf(err, errlen, PX_ETRUNC, "%s: %zu bytes, too short for %s", path, n, what);
    }
    void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return px_errf(err, errlen, PX_EIO, "cannot map %s: %s", path, strerror(errno));
    *map = m;
    *len = n;
    return 0;
}

void px_unmap_file(void *map, size_t len)
{
    if (map) munmap(map, len);
}

void px_map_release(const void *data, size_t nbytes)
{
    if (!data || nbytes == 0) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t b = ((uintptr_t)data + page - 1) & ~(page - 1);
    uintptr_t e = ((uintptr_t)data + nbytes) & ~(page - 1);
    /* Only whole pages: the neighbours' bytes share the edge pages. */
    if (e > b) madvise((void *)b, e - b, MADV_DONTNEED);
}
