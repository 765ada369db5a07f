/*
 * buf.h — a growable byte buffer with a hard cap.
 *
 * Every buffer that grows with untrusted input (request bodies, encoded
 * images, JSON replies) is a px_buf with a `max`: appending past it fails with
 * PX_ETOOBIG instead of growing without bound. The data is always followed by
 * one NUL byte (not counted in len) so text can be used as a C string.
 */
#ifndef PX_CORE_BUF_H
#define PX_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct px_buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;    /* bytes used */
    size_t cap;    /* bytes allocated (excluding the trailing NUL) */
    size_t max;    /* hard cap on len */
} px_buf;

/* An empty buffer that will refuse to hold more than `max` bytes. */
void px_buf_init(px_buf *b, size_t max);

/* Frees the data and leaves an empty buffer with the same cap. */
void px_buf_free(px_buf *b);

/* Makes room for `extra` more bytes. PX_ETOOBIG past max, PX_ENOMEM on failure. */
int px_buf_reserve(px_buf *b, size_t extra);

/* Appends n bytes. Returns 0, PX_ETOOBIG or PX_ENOMEM (buffer unchanged on error). */
int px_buf_append(px_buf *b, const void *data, size_t n);

/* Appends a C string (without its NUL). */
int px_buf_puts(px_buf *b, const char *s);

/* Appends printf-formatted text. */
int px_buf_printf(px_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Hands the data to the caller (who frees it with free()) and empties b. */
uint8_t *px_buf_steal(px_buf *b, size_t *len);

#endif
