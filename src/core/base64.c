/*
 * base64.c — encoder and tolerant decoder (see base64.h for what is accepted).
 */
#include "core/base64.h"

#include "core/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char k_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t px_b64_encoded_len(size_t n)
{
    size_t groups = n / 3 + (n % 3 != 0);
    if (groups > (SIZE_MAX - 1) / 4) return 0;
    return groups * 4;
}

size_t px_b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = k_alphabet[v >> 18];
        out[o++] = k_alphabet[(v >> 12) & 63];
        out[o++] = k_alphabet[(v >> 6) & 63];
        out[o++] = k_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = k_alphabet[v >> 18];
        out[o++] = k_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = k_alphabet[v >> 18];
        out[o++] = k_alphabet[(v >> 12) & 63];
        out[o++] = k_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = 0;
    return o;
}

/* 0..63 for alphabet characters (both alphabets), 64 whitespace, 65 '=',
 * 255 anything else. */
static uint8_t k_decode[256];

static void init_table(void)
{
    memset(k_decode, 255, sizeof k_decode);
    for (int i = 0; i < 64; i++) k_decode[(uint8_t)k_alphabet[i]] = (uint8_t)i;
    k_decode['-'] = 62;
    k_decode['_'] = 63;
    k_decode[' '] = k_decode['\t'] = k_decode['\r'] = k_decode['\n'] = 64;
    k_decode['='] = 65;
}

long px_b64_data_url_prefix(const char *text, size_t n)
{
    if (n < 5 || memcmp(text, "data:", 5) != 0) return 0;
    /* The media type is short; refuse to scan a whole payload for a comma. */
    size_t lim = n < 256 ? n : 256;
    const char *comma = memchr(text, ',', lim);
    if (!comma) return -1;
    size_t hdr = (size_t)(comma - text);
    if (hdr < 12 || memcmp(comma - 7, ";base64", 7) != 0) return -1;
    return (long)hdr + 1;
}

int px_b64_decode(const char *text, size_t n, size_t max_out, uint8_t **out, size_t *outlen,
                  char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_table);
    *out = NULL;
    *outlen = 0;
    long skip = px_b64_data_url_prefix(text, n);
    if (skip < 0)
        return px_errf(err, errlen, PX_EINVAL, "data URL is not base64-encoded (expected ';base64,')");
    size_t start = (size_t)skip;
    /* Upper bound of the output before scanning; exact size is known after. */
    size_t bound = (n - start) / 4 * 3 + 3;
    size_t limit = max_out;
    uint8_t *buf = malloc((bound < limit ? bound : limit) + 1);
    if (!buf) return px_errf(err, errlen, PX_ENOMEM, "out of memory decoding base64");

    uint32_t acc = 0;
    int nbits = 0, pads = 0;
    size_t o = 0;
    for (size_t i = start; i < n; i++) {
        uint8_t v = k_decode[(uint8_t)text[i]];
        if (v == 64) continue;
        if (v == 65) {
            pads++;
            continue;
        }
        if (v == 255 || pads) {
            free(buf);
            if (pads)
                return px_errf(err, errlen, PX_EINVAL, "base64 data continues after '=' padding at offset %zu", i);
            return px_errf(err, errlen, PX_EINVAL,
                           "invalid base64 character 0x%02x at offset %zu", (uint8_t)text[i], i);
        }
        acc = (acc << 6) | v;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            if (o >= limit) {
                free(buf);
                return px_errf(err, errlen, PX_ETOOBIG,
                               "decoded base64 payload exceeds the limit of %zu bytes", max_out);
            }
            buf[o++] = (uint8_t)(acc >> nbits);
        }
    }
    /* A final group of 1 character carries only 6 bits: no whole byte. The
     * leftover bits of 2- or 3-character groups must be zero in canonical
     * encodings, but encoders in the wild are lax, so only length is checked. */
    if (nbits >= 6) {
        free(buf);
        return px_errf(err, errlen, PX_EINVAL, "base64 data has a dangling final character");
    }
    if (pads > 2) {
        free(buf);
        return px_errf(err, errlen, PX_EINVAL, "base64 data has too much '=' padding");
    }
    *out = buf;
    *outlen = o;
    return 0;
}
