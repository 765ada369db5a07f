/*
 * pngtext.c — PNG text chunks (see pngtext.h). Layouts (PNG spec 11.3.4):
 *   tEXt  keyword NUL text
 *   zTXt  keyword NUL method(0) zlib-data
 *   iTXt  keyword NUL flag method language NUL translated NUL text (zlib if flag)
 */
#include "image/pngtext.h"

#include "core/err.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Copies src[0..n) into a new NUL-terminated string. */
static int dup_text(const uint8_t *src, size_t n, char **out, size_t *outlen)
{
    if (n > PX_PNGTEXT_MAX) return PX_ETOOBIG;
    char *s = malloc(n + 1);
    if (!s) return PX_ENOMEM;
    if (n) memcpy(s, src, n);
    s[n] = 0;
    *out = s;
    *outlen = n;
    return 0;
}

/* Inflates a zlib stream into a new string of at most PX_PNGTEXT_MAX bytes. */
static int inflate_text(const uint8_t *src, size_t n, char **out, size_t *outlen)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return PX_ENOMEM;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) {
        free(buf);
        return PX_ENOMEM;
    }
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
    int rc = 0, zr = Z_OK;
    while (zr != Z_STREAM_END) {
        if (len == cap) {
            if (cap >= PX_PNGTEXT_MAX) {
                rc = PX_ETOOBIG;
                break;
            }
            size_t ncap = cap * 2 > PX_PNGTEXT_MAX ? PX_PNGTEXT_MAX : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                rc = PX_ENOMEM;
                break;
            }
            buf = nb, cap = ncap;
        }
        z.next_out = (Bytef *)buf + len;
        z.avail_out = (uInt)(cap - len);
        zr = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
        if (zr != Z_OK && zr != Z_STREAM_END) {
            rc = PX_ECORRUPT;
            break;
        }
        if (zr == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
            rc = PX_ECORRUPT;
            break;
        }
    }
    inflateEnd(&z);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[len] = 0;
    *out = buf;
    *outlen = len;
    return 0;
}

/* The text of one chunk's body d[0..n) of type t whose keyword matched
 * (k = keyword length; d[k] is its NUL). */
static int chunk_text(const uint8_t *t, const uint8_t *d, size_t n, size_t k, char **out,
                      size_t *outlen)
{
    const uint8_t *p = d + k + 1, *end = d + n;
    if (!memcmp(t, "tEXt", 4)) return dup_text(p, (size_t)(end - p), out, outlen);
    if (!memcmp(t, "zTXt", 4)) {
        if (p >= end || *p != 0) return PX_ECORRUPT;
        return inflate_text(p + 1, (size_t)(end - p - 1), out, outlen);
    }
    /* iTXt: flag, method, language NUL, translated keyword NUL, text. */
    if (end - p < 2) return PX_ECORRUPT;
    int compressed = p[0];
    p += 2;
    for (int field = 0; field < 2; field++) {
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        if (!z) return PX_ECORRUPT;
        p = z + 1;
    }
    return compressed ? inflate_text(p, (size_t)(end - p), out, outlen)
                      : dup_text(p, (size_t)(end - p), out, outlen);
}

int px_pngtext_find(const uint8_t *data, size_t n, const char *keyword, char **out, size_t *outlen)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *out = NULL;
    *outlen = 0;
    if (n < 8 || memcmp(data, sig, 8)) return PX_ENOTFOUND;
    size_t klen = strlen(keyword), off = 8;
    while (n - off >= 12) {
        uint32_t len = be32(data + off);
        const uint8_t *type = data + off + 4, *body = data + off + 8;
        if (len > n - off - 12) return PX_ENOTFOUND; /* ends early */
        if (!memcmp(type, "IEND", 4)) break;
        int text = !memcmp(type, "tEXt", 4) || !memcmp(type, "zTXt", 4) || !memcmp(type, "iTXt", 4);
        if (text && len > klen && !memcmp(body, keyword, klen) && body[klen] == 0)
            return chunk_text(type, body, len, klen, out, outlen);
        off += 12 + (size_t)len;
    }
    return PX_ENOTFOUND;
}
