/*
 * exif.c — orientation from a JPEG APP1 Exif payload. Untrusted input: every
 * offset is checked against the payload length before it is dereferenced,
 * and the only loop is bounded by the entries that fit in the payload.
 */
#include "image/exif.h"

#include <stdbool.h>
#include <string.h>

enum {
    TIFF_HEADER = 8, /* byte order, 42, offset of IFD0 */
    IFD_ENTRY = 12,  /* tag, type, count, value-or-offset */
    TAG_ORIENTATION = 0x0112,
    TYPE_SHORT = 3
};

static unsigned rd16(const uint8_t *p, bool le)
{
    return le ? (unsigned)p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | (unsigned)p[1];
}

static uint32_t rd32(const uint8_t *p, bool le)
{
    return le ? (uint32_t)rd16(p, le) | (uint32_t)rd16(p + 2, le) << 16
              : (uint32_t)rd16(p, le) << 16 | (uint32_t)rd16(p + 2, le);
}

int px_exif_orientation(const uint8_t *data, size_t n)
{
    static const uint8_t sig[6] = {'E', 'x', 'i', 'f', 0, 0};
    if (!data || n < sizeof sig + TIFF_HEADER || memcmp(data, sig, sizeof sig) != 0) return 0;
    /* TIFF offsets count from the byte-order mark. */
    const uint8_t *t = data + sizeof sig;
    const size_t tn = n - sizeof sig;
    bool le;
    if (t[0] == 'I' && t[1] == 'I')
        le = true;
    else if (t[0] == 'M' && t[1] == 'M')
        le = false;
    else
        return 0;
    if (rd16(t + 2, le) != 42) return 0;

    uint32_t ifd = rd32(t + 4, le);
    if (ifd < TIFF_HEADER || ifd > tn - 2) return 0; /* tn >= TIFF_HEADER: no wrap */
    /* An entry count that runs past the payload only gets the entries that
     * are really there, so the loop is bounded by n, not by the data. */
    size_t count = rd16(t + ifd, le);
    size_t fit = (tn - ifd - 2) / IFD_ENTRY;
    if (count > fit) count = fit;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = t + ifd + 2 + i * IFD_ENTRY;
        if (rd16(e, le) != TAG_ORIENTATION) continue;
        /* One SHORT sits in the first two bytes of the value field. */
        if (rd16(e + 2, le) != TYPE_SHORT || rd32(e + 4, le) != 1) return 0;
        unsigned v = rd16(e + 8, le);
        return v >= 1 && v <= 8 ? (int)v : 0;
    }
    return 0;
}
