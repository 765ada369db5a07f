/*
 * alloc.c — the checked allocators of alloc.h.
 */
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die_oom(size_t n)
{
    fprintf(stderr, "pixserve: out of memory allocating %zu bytes\n", n);
    abort();
}

void *px_alloc_array(size_t n, size_t size)
{
    size_t total;
    if (!px_mul_size(n, size, &total)) return NULL;
    return malloc(total ? total : 1);
}

void *px_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die_oom(n * size);
    return p;
}

void *px_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) die_oom(size);
    return p;
}

char *px_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = px_xmalloc(n);
    memcpy(p, s, n);
    return p;
}
