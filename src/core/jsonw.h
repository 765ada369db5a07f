/*
 * jsonw.h — small helpers for writing JSON into a px_buf.
 *
 * Replies that carry megabytes of base64 are built by appending to one buffer
 * instead of a DOM (which would copy the payload again); these helpers do the
 * escaping so every writer gets it right.
 */
#ifndef PX_CORE_JSONW_H
#define PX_CORE_JSONW_H

#include "core/buf.h"

#include <stddef.h>

/* Appends s as a quoted JSON string (control characters, quotes and
 * backslashes escaped; invalid UTF-8 bytes replaced by U+FFFD). NULL gives
 * null. Returns 0 or the buffer's error. */
int px_json_str(px_buf *b, const char *s);

/* Same for n bytes that need not be NUL-terminated. */
int px_json_strn(px_buf *b, const char *s, size_t n);

/* Appends a number: finite values with up to 6 significant decimals, NaN and
 * infinities as null (JSON has no such numbers). */
int px_json_num(px_buf *b, double v);

#endif
