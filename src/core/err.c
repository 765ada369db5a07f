/*
 * err.c — names and HTTP statuses of the PX_E* codes, and the message helper.
 */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *px_err_name(int code)
{
    switch (code) {
    case PX_OK: return "ok";
    case PX_EINVAL: return "invalid_input";
    case PX_ENOMEM: return "out_of_memory";
    case PX_ETOOBIG: return "too_large";
    case PX_ECORRUPT: return "corrupt_data";
    case PX_ETRUNC: return "truncated_data";
    case PX_EUNSUP: return "unsupported";
    case PX_EIO: return "io_error";
    case PX_ETIMEDOUT: return "timeout";
    case PX_ECANCELED: return "cancelled";
    case PX_EBUSY: return "busy";
    case PX_ENOTFOUND: return "not_found";
    case PX_EUNAVAIL: return "unavailable";
    default: return "internal";
    }
}

int px_err_http_status(int code)
{
    switch (code) {
    case PX_OK: return 200;
    case PX_EINVAL:
    case PX_ECORRUPT:
    case PX_ETRUNC: return 400;
    case PX_ENOTFOUND: return 404;
    case PX_ETOOBIG: return 413;
    case PX_EUNSUP: return 415;
    case PX_EBUSY: return 429;
    case PX_ECANCELED: return 499; /* nginx's "client closed request" */
    case PX_ETIMEDOUT: return 504;
    case PX_ENOMEM: return 503;    /* transient: the client may retry */
    case PX_EUNAVAIL: return 503;
    default: return 500;
    }
}

int px_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
