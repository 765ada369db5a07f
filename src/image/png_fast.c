/*
 * png_fast.c — 8-bit non-interlaced PNGs without libpng (see png_fast.h).
 *
 * Only a well-formed file is decoded here: signature, IHDR first with a
 * valid CRC, the IDAT chunks in one run with valid CRCs, IEND with a valid
 * CRC, no critical chunk besides those, no tRNS, a zlib stream that ends
 * exactly at the end of the IDAT data and inflates to exactly the rows, and
 * a known filter byte on every row. Ancillary chunks are skipped unread, as
 * libpng is told to skip them (png.c). Anything else is PX_EUNSUP, and
 * libpng decides.
 */
#include "image/png_fast.h"

#include "core/err.h"
#include "image/codec_impl.h"

#include <libdeflate.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool is_type(const uint8_t *t, const char *name)
{
    return memcmp(t, name, 4) == 0;
}

/* The chunks' layout: IHDR's fields and where the image data lies. */
typedef struct {
    uint32_t w, h;
    int type;            /* 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA */
    const uint8_t *idat; /* the first IDAT's data */
    size_t idat_n;       /* all IDAT data bytes */
    size_t first, last;  /* offsets of the first and after the last IDAT chunk */
} layout;

/* Bytes per pixel of the colour types taken: gray, RGB, gray+alpha, RGBA. */
static size_t bpp_of(int type)
{
    return type == 0 ? 1 : type == 2 ? 3 : type == 4 ? 2 : 4;
}

/* A chunk at data[pos]: its length, type and (for critical ones) a valid
 * CRC; false if it does not fit or fails. */
static bool chunk_ok(const uint8_t *data, size_t n, size_t pos, uint32_t *len)
{
    if (n - pos < 12) return false;
    *len = be32(data + pos);
    if (*len > 0x7fffffffu || n - pos - 12 < *len) return false;
    const uint8_t *t = data + pos + 4;
    for (int i = 0; i < 4; i++)
        if (!((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z')) return false;
    if (t[0] & 0x20) return true; /* ancillary: skipped, as libpng does here */
    return (uint32_t)libdeflate_crc32(0, t, 4 + (size_t)*len) == be32(t + 4 + *len);
}

static bool read_ihdr(const uint8_t *d, uint32_t len, layout *L)
{
    if (len != 13) return false;
    L->w = be32(d);
    L->h = be32(d + 4);
    L->type = d[9];
    bool type_ok = L->type == 0 || L->type == 2 || L->type == 4 || L->type == 6;
    return L->w && L->h && L->w <= 0x7fffffffu && L->h <= 0x7fffffffu && d[8] == 8 && type_ok &&
           d[10] == 0 && d[11] == 0 && d[12] == 0;
}

/* Walks the chunks; false where libpng should judge the file. */
static bool scan(const uint8_t *data, size_t n, layout *L)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memset(L, 0, sizeof *L);
    uint32_t len;
    if (n < 8 || memcmp(data, sig, 8) || !chunk_ok(data, n, 8, &len) ||
        !is_type(data + 12, "IHDR") || !read_ihdr(data + 16, len, L))
        return false;
    int nidat = 0;
    bool idat_done = false;
    for (size_t pos = 8 + 12 + (size_t)len;;) {
        if (!chunk_ok(data, n, pos, &len)) return false;
        const uint8_t *t = data + pos + 4;
        size_t next = pos + 12 + (size_t)len;
        if (is_type(t, "IEND")) return len == 0 && nidat > 0;
        if (is_type(t, "IDAT")) {
            if (idat_done) return false; /* IDATs not in one run */
            if (!nidat++) L->first = pos, L->idat = t + 4;
            L->idat_n += len;
            L->last = next;
        } else {
            if (!(t[0] & 0x20) || is_type(t, "tRNS")) return false; /* PLTE, unknown critical */
            idat_done = nidat > 0;
        }
        pos = next;
    }
}

/* The IDAT data in one piece: the chunk's own bytes, or a copy of all. */
static uint8_t *gather(const uint8_t *data, const layout *L, const uint8_t **z)
{
    if (L->last - L->first == L->idat_n + 12) { /* one IDAT */
        *z = L->idat;
        return NULL;
    }
    uint8_t *buf = malloc(L->idat_n ? L->idat_n : 1), *o = buf;
    for (size_t pos = L->first; buf && pos < L->last;) {
        uint32_t len = be32(data + pos);
        memcpy(o, data + pos + 8, len);
        o += len;
        pos += 12 + (size_t)len;
    }
    *z = buf;
    return buf;
}

/* The Paeth predictor with p - a, p - b, p - c written out (p = a + b - c),
 * so the compiler can pick without branches. */
static inline int paeth(int a, int b, int c)
{
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Unfilters one row of len bytes (bpp per pixel) from in to out, with prev
 * the unfiltered row above (a zero row for the first). The first pixel has
 * no left neighbour (a = c = 0), so it is done apart and the loops run
 * without tests. false for a bad filter type. */
static bool unfilter(int f, const uint8_t *in, const uint8_t *prev, uint8_t *out, size_t len,
                     size_t bpp)
{
    size_t i;
    switch (f) {
    case 0:
        memcpy(out, in, len);
        return true;
    case 1:
        memcpy(out, in, bpp);
        for (i = bpp; i < len; i++) out[i] = (uint8_t)(in[i] + out[i - bpp]);
        return true;
    case 2:
        for (i = 0; i < len; i++) out[i] = (uint8_t)(in[i] + prev[i]);
        return true;
    case 3:
        for (i = 0; i < bpp; i++) out[i] = (uint8_t)(in[i] + (prev[i] >> 1));
        for (; i < len; i++) out[i] = (uint8_t)(in[i] + ((out[i - bpp] + prev[i]) >> 1));
        return true;
    case 4:
        for (i = 0; i < bpp; i++) out[i] = (uint8_t)(in[i] + prev[i]); /* paeth(0, b, 0) = b */
        for (; i < len; i++)
            out[i] = (uint8_t)(in[i] + paeth(out[i - bpp], prev[i], prev[i - bpp]));
        return true;
    default:
        return false;
    }
}

/* Rows of raw (filter byte + len bytes each) into img; gray+alpha is
 * widened to RGBA afterwards, as libpng's gray_to_rgb gives. */
static bool unfilter_all(const uint8_t *raw, const layout *L, px_image *img)
{
    size_t bpp = bpp_of(L->type);
    size_t len = (size_t)L->w * bpp, stride = (size_t)L->w * (size_t)img->c;
    uint8_t *zero = calloc(1, len);
    if (!zero) return false;
    bool ok = true;
    for (uint32_t y = 0; ok && y < L->h; y++) {
        const uint8_t *in = raw + (size_t)y * (len + 1);
        /* gray+alpha rows go to the row's end first, then widen in place */
        uint8_t *out = img->px + (size_t)y * stride + (stride - len);
        ok = unfilter(in[0], in + 1, y ? out - stride : zero, out, len, bpp);
    }
    free(zero);
    if (!ok || L->type != 4) return ok;
    for (uint32_t y = 0; y < L->h; y++) {
        uint8_t *row = img->px + (size_t)y * stride;
        const uint8_t *ga = row + (stride - len);
        for (uint32_t x = 0; x < L->w; x++) {
            uint8_t g = ga[2 * x], a = ga[2 * x + 1];
            row[4 * x] = row[4 * x + 1] = row[4 * x + 2] = g;
            row[4 * x + 3] = a;
        }
    }
    return true;
}

int px_png_fast_decode(const uint8_t *data, size_t n, const px_img_limits *lim, px_image *out,
                       char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    layout L;
    if (!scan(data, n, &L)) return PX_EUNSUP;
    int c = L.type == 0 ? 1 : L.type == 2 ? 3 : 4;
    int rc = px_codec_check("PNG", (int)L.w, (int)L.h, c, lim, err, errlen);
    if (rc) return rc;
    size_t raw_n = (size_t)L.h * ((size_t)L.w * bpp_of(L.type) + 1), got = 0, used = 0;
    const uint8_t *z = NULL;
    uint8_t *copy = NULL, *raw = NULL;
    struct libdeflate_decompressor *dz = NULL;
    /* The pixels first: their size is the one a message should name. */
    if ((rc = px_codec_alloc("PNG", out, (int)L.w, (int)L.h, c, lim, err, errlen))) goto done;
    copy = gather(data, &L, &z);
    raw = malloc(raw_n);
    dz = libdeflate_alloc_decompressor();
    if (!raw || !dz || !z) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory decoding a %ux%u PNG", L.w, L.h);
        goto done;
    }
    /* Exactly the rows, and the stream ends with the data (else libpng's
     * "too much image data" or "extra compressed data" decide). */
    if (libdeflate_zlib_decompress_ex(dz, z, L.idat_n, raw, raw_n, &used, &got) !=
            LIBDEFLATE_SUCCESS ||
        got != raw_n || used != L.idat_n || !unfilter_all(raw, &L, out))
        rc = PX_EUNSUP;
done:
    libdeflate_free_decompressor(dz);
    free(raw);
    free(copy);
    if (rc) px_image_free(out);
    return rc;
}
