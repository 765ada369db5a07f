/*
 * jsonw.c — JSON string escaping and number formatting (see jsonw.h).
 */
#include "core/jsonw.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is invalid
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

int px_json_strn(px_buf *b, const char *s, size_t n)
{
    if (!s) return px_buf_puts(b, "null");
    int rc = px_buf_reserve(b, n + 2);
    if (rc) return rc;
    rc = px_buf_append(b, "\"", 1);
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n && !rc) {
        /* Copy the longest run that needs no escaping in one append. */
        size_t j = i;
        while (j < n && u[j] >= 0x20 && u[j] < 0x80 && u[j] != '"' && u[j] != '\\') j++;
        if (j > i) {
            rc = px_buf_append(b, s + i, j - i);
            i = j;
            continue;
        }
        unsigned c = u[i];
        if (c == '"') rc = px_buf_append(b, "\\\"", 2), i++;
        else if (c == '\\') rc = px_buf_append(b, "\\\\", 2), i++;
        else if (c == '\n') rc = px_buf_append(b, "\\n", 2), i++;
        else if (c == '\r') rc = px_buf_append(b, "\\r", 2), i++;
        else if (c == '\t') rc = px_buf_append(b, "\\t", 2), i++;
        else if (c < 0x20) rc = px_buf_printf(b, "\\u%04x", c), i++;
        else {
            size_t len = utf8_seq_len(u + i, n - i);
            if (len) rc = px_buf_append(b, s + i, len), i += len;
            else rc = px_buf_append(b, "\xEF\xBF\xBD", 3), i++;
        }
    }
    if (!rc) rc = px_buf_append(b, "\"", 1);
    return rc;
}

int px_json_str(px_buf *b, const char *s)
{
    return px_json_strn(b, s, s ? strlen(s) : 0);
}

int px_json_num(px_buf *b, double v)
{
    if (!isfinite(v)) return px_buf_puts(b, "null");
    if (v == (double)(long long)v && fabs(v) < 1e15) return px_buf_printf(b, "%lld", (long long)v);
    return px_buf_printf(b, "%.6g", v);
}
