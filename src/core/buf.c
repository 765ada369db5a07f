/*
 * buf.c — capped growable buffer (see buf.h for why the cap exists).
 */
#include "core/buf.h"

#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void px_buf_init(px_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void px_buf_free(px_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int px_buf_reserve(px_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra) return PX_ETOOBIG;
    size_t need = b->len + extra;
    if (need <= b->cap && b->data) return 0;
    /* Grow geometrically so appends are amortised O(1), but never past max. */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max) cap = b->max;
    uint8_t *p = realloc(b->data, cap + 1);
    if (!p) return PX_ENOMEM;
    b->data = p;
    b->cap = cap;
    b->data[b->len] = 0;
    return 0;
}

int px_buf_append(px_buf *b, const void *data, size_t n)
{
    int rc = px_buf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int px_buf_puts(px_buf *b, const char *s)
{
    return px_buf_append(b, s, strlen(s));
}

int px_buf_printf(px_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return PX_EINVAL;
    int rc = px_buf_reserve(b, (size_t)n);
    if (rc) return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

uint8_t *px_buf_steal(px_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
