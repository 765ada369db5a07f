/*
 * alloc.h — checked allocation and overflow-checked size arithmetic.
 *
 * Two families: px_x*() abort the process on failure and are for small control
 * structures whose absence leaves nothing to recover; px_alloc_array() returns
 * NULL on overflow or failure and is for anything sized by input (images,
 * payloads), so that a huge request becomes an error reply, not a crash.
 */
#ifndef PX_CORE_ALLOC_H
#define PX_CORE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* *out = a*b; false (and *out untouched) on overflow. */
static inline bool px_mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* *out = a*b*c; false on overflow. */
static inline bool px_mul3_size(size_t a, size_t b, size_t c, size_t *out)
{
    size_t ab;
    return px_mul_size(a, b, &ab) && px_mul_size(ab, c, out);
}

/* malloc(n*size) with overflow check; NULL on overflow or failure. Caller frees. */
void *px_alloc_array(size_t n, size_t size);

/* calloc that aborts on failure. Caller frees. */
void *px_xcalloc(size_t n, size_t size);

/* malloc that aborts on failure. Caller frees. */
void *px_xmalloc(size_t size);

/* strdup that aborts on failure. Caller frees. */
char *px_xstrdup(const char *s);

#endif
