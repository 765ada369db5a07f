/*
 * err.h — the one error convention of pixserve.
 *
 * Functions return 0 on success or a negative PX_E* code; when they take an
 * `err` buffer they also write a human-readable message into it (never more
 * than `errlen` bytes, always NUL-terminated). There is no global error state.
 */
#ifndef PX_CORE_ERR_H
#define PX_CORE_ERR_H

#include <stddef.h>

enum px_err {
    PX_OK = 0,
    PX_EINVAL = -1,    /* malformed or out-of-range input (HTTP 400) */
    PX_ENOMEM = -2,    /* allocation failed */
    PX_ETOOBIG = -3,   /* input above a configured cap (HTTP 413) */
    PX_ECORRUPT = -4,  /* data is corrupt or not what it claims (HTTP 400) */
    PX_ETRUNC = -5,    /* data ends before it should (HTTP 400) */
    PX_EUNSUP = -6,    /* well-formed but unsupported (HTTP 415) */
    PX_EIO = -7,       /* file or socket I/O failed */
    PX_ETIMEDOUT = -8, /* deadline passed (HTTP 504) */
    PX_ECANCELED = -9, /* the caller cancelled the work */
    PX_EBUSY = -10,    /* a bounded queue is full (HTTP 429) */
    PX_ENOTFOUND = -11, /* named thing does not exist (HTTP 404) */
    PX_EUNAVAIL = -12   /* not ready or shutting down; retry later (HTTP 503) */
};

/* Short stable name of a code ("invalid_input", "too_large", ...), used as the
 * `code` field of JSON errors. Never NULL. */
const char *px_err_name(int code);

/* HTTP status that a code maps to (500 for unknown codes). */
int px_err_http_status(int code);

/* printf-style write of a message into err[errlen]; a no-op when err is NULL
 * or errlen is 0. Returns `code` so callers can `return px_errf(...)`. */
int px_errf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
