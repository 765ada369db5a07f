/*
 * cuda_devspec.c — the `--device` value and CUDA_VISIBLE_DEVICES, parsed
 * without CUDA (see cuda_devspec.h).
 */
#include "engine/cuda/cuda_devspec.h"

#include "core/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An index: digits only (no sign: "-1" is the usual way to hide all). */
static int is_index(const char *s, size_t n)
{
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    return 1;
}

/* A UUID as nvidia-smi -L prints it, or a prefix of one: "GPU-" or "MIG-"
 * and at least one hex digit, hex digits and dashes after it. */
static int is_uuid(const char *s, size_t n)
{
    if (n < 5 || (strncmp(s, "GPU-", 4) && strncmp(s, "MIG-", 4))) return 0;
    for (size_t i = 4; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) && s[i] != '-') return 0;
    return 1;
}

int px_cuda_visible_parse(const char *s, px_cuda_visible_id *ids, int max)
{
    if (!s) return -1;
    px_cuda_visible_id seen[PX_CUDA_MAX_DEVICES];
    int n = 0;
    const char *p = s;
    while (n < max && n < PX_CUDA_MAX_DEVICES) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *a = p;
        while (len && isspace((unsigned char)*a)) a++, len--;
        while (len && isspace((unsigned char)a[len - 1])) len--;
        if (!is_index(a, len) && !is_uuid(a, len)) break;
        /* Indices compare as numbers ("01" is device 1). */
        px_cuda_visible_id cur;
        if (is_index(a, len)) {
            errno = 0;
            unsigned long v = strtoul(a, NULL, 10);
            if (errno) break;
            snprintf(cur.id, sizeof cur.id, "%lu", v);
        } else {
            size_t k = len < PX_CUDA_ID_LEN - 1 ? len : PX_CUDA_ID_LEN - 1;
            memcpy(cur.id, a, k);
            cur.id[k] = 0;
        }
        int dup = 0;
        for (int i = 0; i < n && !dup; i++) dup = !strcmp(seen[i].id, cur.id);
        if (dup) break;
        seen[n] = cur;
        if (ids) ids[n] = cur;
        n++;
        if (!end) break;
        p = end + 1;
    }
    return n;
}

int px_cuda_devspec_parse(const char *spec, int count, int *devs, int *n, const char *who,
                          char *err, size_t errlen)
{
    *n = 0;
    if (count <= 0) return px_errf(err, errlen, PX_EUNSUP, "%s: no CUDA device is visible", who);
    if (!strcmp(spec, "cuda")) {
        for (int i = 0; i < count && i < PX_CUDA_MAX_DEVICES; i++) devs[(*n)++] = i;
        return 0;
    }
    if (strncmp(spec, "cuda:", 5) != 0 || !spec[5])
        return px_errf(err, errlen, PX_EUNSUP, "%s: bad device \"%s\"", who, spec);
    const char *q = spec + 5;
    while (*q) {
        char *end;
        long v = strtol(q, &end, 10);
        if (end == q || v < 0 || v >= count || *n >= PX_CUDA_MAX_DEVICES)
            return px_errf(err, errlen, PX_EUNSUP, "%s: bad device \"%s\" (%d device(s) visible)",
                           who, spec, count);
        devs[(*n)++] = (int)v;
        q = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return px_errf(err, errlen, PX_EUNSUP, "%s: bad device \"%s\"", who, spec);
    }
    return 0;
}
