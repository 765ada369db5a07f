/*
 * probe.c — image sizes from headers (see probe.h): PNG's IHDR, a JPEG's
 * first start-of-frame marker, WebP's VP8, VP8L or VP8X chunk.
 */
#include "image/probe.h"

#include "core/err.h"

#include <string.h>

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}
static unsigned le16(const uint8_t *p)
{
    return (unsigned)p[1] << 8 | p[0];
}
static unsigned le24(const uint8_t *p)
{
    return (unsigned)p[2] << 16 | le16(p);
}

static int probe_jpeg(const uint8_t *d, size_t n, int *w, int *h)
{
    size_t i = 2;
    while (i + 4 <= n) {
        if (d[i] != 0xff) return PX_ETRUNC; /* lost sync: not a header we read */
        uint8_t m = d[i + 1];
        if (m == 0xff) {
            i++;
            continue;
        } /* fill byte */
        if (m == 0xd8 || (m >= 0xd0 && m <= 0xd7) || m == 0x01) {
            i += 2;
            continue;
        }
        if (m == 0xd9 || m == 0xda) return PX_ETRUNC; /* no frame before the scan */
        size_t len = be16(d + i + 2);
        if (len < 2) return PX_ETRUNC;
        /* SOF0..SOF15 except DHT (c4), JPG (c8) and DAC (cc). */
        if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
            if (i + 9 > n || len < 7) return PX_ETRUNC;
            *h = (int)be16(d + i + 5);
            *w = (int)be16(d + i + 7);
            return *w > 0 && *h > 0 ? 0 : PX_ETRUNC;
        }
        i += 2 + len;
    }
    return PX_ETRUNC;
}

static int probe_webp(const uint8_t *d, size_t n, int *w, int *h)
{
    if (n < 30) return PX_ETRUNC;
    const uint8_t *c = d + 12;
    if (!memcmp(c, "VP8 ", 4)) {
        if (c[11] != 0x9d || c[12] != 0x01 || c[13] != 0x2a) return PX_ETRUNC;
        *w = (int)(le16(c + 14) & 0x3fff);
        *h = (int)(le16(c + 16) & 0x3fff);
    } else if (!memcmp(c, "VP8L", 4)) {
        if (c[8] != 0x2f) return PX_ETRUNC;
        uint32_t b =
            (uint32_t)c[9] | (uint32_t)c[10] << 8 | (uint32_t)c[11] << 16 | (uint32_t)c[12] << 24;
        *w = (int)(b & 0x3fff) + 1;
        *h = (int)((b >> 14) & 0x3fff) + 1;
    } else if (!memcmp(c, "VP8X", 4)) {
        *w = (int)le24(c + 12) + 1;
        *h = (int)le24(c + 15) + 1;
    } else {
        return PX_ETRUNC;
    }
    return *w > 0 && *h > 0 ? 0 : PX_ETRUNC;
}

int px_image_probe(const uint8_t *data, size_t n, enum px_format *fmt, int *w, int *h)
{
    *fmt = px_format_sniff(data, n);
    *w = *h = 0;
    switch (*fmt) {
    case PX_FMT_PNG:
        if (n < 24 || memcmp(data + 12, "IHDR", 4)) return PX_ETRUNC;
        if (data[16] >= 0x80 || data[20] >= 0x80) return PX_ETRUNC; /* PNG caps at 2^31-1 */
        *w = (int)((unsigned)be16(data + 16) << 16 | be16(data + 18));
        *h = (int)((unsigned)be16(data + 20) << 16 | be16(data + 22));
        return *w > 0 && *h > 0 ? 0 : PX_ETRUNC;
    case PX_FMT_JPEG:
        return probe_jpeg(data, n, w, h);
    case PX_FMT_WEBP:
        return probe_webp(data, n, w, h);
    default:
        return PX_EUNSUP;
    }
}
