/*
 * png.c — PNG decode: the common 8-bit files through png_fast.c (libdeflate),
 * every other file and every error through libpng. Encode through libpng,
 * or, at the fast levels the server uses (0-2), a one-IDAT writer here over
 * libdeflate: 22 ms instead of 47 ms of CPU for a 1024² RGB photo, and 7 %
 * smaller (docs/benchmarks/png.md).
 *
 * libpng reports errors by longjmp. The state each function needs after a
 * longjmp lives in a struct owned by the public function's frame and is
 * passed by pointer to the static function that calls setjmp; objects that
 * are not local to the setjmp caller keep their values (C17 7.13.2.1), so no
 * volatile juggling is needed and every error path frees what was allocated.
 */
#include "image/png.h"

#include "core/err.h"
#include "image/codec_impl.h"
#include "image/png_fast.h"

#include <libdeflate.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MSG_LEN = 192 };

/* libpng's error text goes here (its error pointer); never to stderr. */
static void on_error(png_structp png, png_const_charp msg)
{
    snprintf(png_get_error_ptr(png), MSG_LEN, "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings (bad ancillary CRCs, extra IDAT data, ...) change nothing we
 * return, and a library must not print. */
static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* libpng has no error codes; its allocation failures all say "memory". */
static int code_of(const char *libpng_msg, int otherwise)
{
    return strcasestr(libpng_msg, "memory") ? PX_ENOMEM : otherwise;
}

/* --- decode ------------------------------------------------------------------ */

struct png_dec {
    char msg[MSG_LEN]; /* libpng's error text */
    const uint8_t *data;
    size_t n, pos;
    bool truncated; /* the reader ran out of bytes */
    png_structp png;
    png_infop info;
    px_image img;
    png_bytep *rows;
};

static void read_fn(png_structp png, png_bytep out, size_t len)
{
    struct png_dec *d = png_get_io_ptr(png);
    if (len > d->n - d->pos) {
        d->truncated = true;
        png_error(png, "unexpected end of data");
    }
    memcpy(out, d->data + d->pos, len);
    d->pos += len;
}

/* Channels after the transforms set up in decode_rows. */
static int out_channels(png_structp png, png_infop info)
{
    int type = png_get_color_type(png, info);
    bool trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    if (type & PNG_COLOR_MASK_ALPHA || trns) return 4;
    return type & PNG_COLOR_MASK_COLOR ? 3 : 1; /* palette has the colour bit */
}

static int decode_rows(struct png_dec *d, const px_img_limits *lim, char *err, size_t errlen)
{
    if (setjmp(png_jmpbuf(d->png))) {
        if (d->truncated) return px_errf(err, errlen, PX_ETRUNC, "PNG data is truncated");
        if (code_of(d->msg, PX_ECORRUPT) == PX_ENOMEM)
            return px_errf(err, errlen, PX_ENOMEM, "out of memory decoding PNG: %s", d->msg);
        return px_errf(err, errlen, PX_ECORRUPT, "PNG data is corrupt: %s", d->msg);
    }
    png_set_read_fn(d->png, d, read_fn);
    /* Size policy is ours (with our message), so lift libpng's own caps. */
    png_set_user_limits(d->png, 0x7fffffff, 0x7fffffff);
    /* Skip every chunk but IHDR, PLTE, tRNS, IDAT and IEND: we use nothing
     * else, and compressed text/ICC chunks are a decompression-bomb surface. */
    png_set_keep_unknown_chunks(d->png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    /* libpng's "benign" errors include a zlib checksum mismatch at the end
     * of IDAT: as warnings they would hand back wrong pixels. */
    png_set_benign_errors(d->png, 0);
    png_read_info(d->png, d->info);

    int w = (int)png_get_image_width(d->png, d->info);
    int h = (int)png_get_image_height(d->png, d->info);
    int c = out_channels(d->png, d->info);
    int rc = px_codec_check("PNG", w, h, c, lim, err, errlen);
    if (rc) return rc;

    png_set_scale_16(d->png); /* rounds, unlike strip_16 */
    png_set_expand(d->png);   /* palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha */
    if (c == 4 && !(png_get_color_type(d->png, d->info) & PNG_COLOR_MASK_COLOR))
        png_set_gray_to_rgb(d->png); /* gray+alpha has no c=2 form here */
    png_set_interlace_handling(d->png);
    png_read_update_info(d->png, d->info);
    if (png_get_channels(d->png, d->info) != c || png_get_bit_depth(d->png, d->info) != 8 ||
        png_get_rowbytes(d->png, d->info) != (size_t)w * (size_t)c)
        return px_errf(err, errlen, PX_ECORRUPT, "PNG has an unexpected pixel layout");

    rc = px_codec_alloc("PNG", &d->img, w, h, c, lim, err, errlen);
    if (rc) return rc;
    d->rows = malloc((size_t)h * sizeof *d->rows);
    if (!d->rows) return px_errf(err, errlen, PX_ENOMEM, "out of memory decoding PNG");
    for (int y = 0; y < h; y++) d->rows[y] = d->img.px + (size_t)y * (size_t)w * (size_t)c;
    png_read_image(d->png, d->rows);
    /* Reading through IEND is what tells a complete file from a cut one. */
    png_read_end(d->png, NULL);
    return 0;
}

int px_png_decode(const uint8_t *data, size_t n, const px_img_limits *lim, px_image *out, char *err,
                  size_t errlen)
{
    int rc = px_png_fast_decode(data, n, lim, out, err, errlen);
    return rc == PX_EUNSUP ? px_png_decode_libpng(data, n, lim, out, err, errlen) : rc;
}

int px_png_decode_libpng(const uint8_t *data, size_t n, const px_img_limits *lim, px_image *out,
                         char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct png_dec d = {.data = data, .n = n};
    d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d.msg, on_error, on_warning);
    if (d.png) d.info = png_create_info_struct(d.png);
    int rc = d.info ? decode_rows(&d, lim, err, errlen)
                    : px_errf(err, errlen, PX_ENOMEM, "out of memory starting the PNG decoder");
    png_destroy_read_struct(d.png ? &d.png : NULL, d.info ? &d.info : NULL, NULL);
    free(d.rows);
    if (rc) {
        px_image_free(&d.img);
        return rc;
    }
    *out = d.img;
    return 0;
}

/* --- encode ------------------------------------------------------------------ */

struct png_enc {
    char msg[MSG_LEN];
    px_buf *out;
    int rc; /* why the writer stopped, if it did */
    png_structp png;
    png_infop info;
};

static void write_fn(png_structp png, png_bytep data, size_t len)
{
    struct png_enc *e = png_get_io_ptr(png);
    e->rc = px_buf_append(e->out, data, len);
    if (e->rc) png_error(png, "output limit reached");
}

static void flush_fn(png_structp png)
{
    (void)png;
}

static int encode_rows(struct png_enc *e, const px_image *img, int level, char *err, size_t errlen)
{
    if (setjmp(png_jmpbuf(e->png))) {
        if (e->rc == PX_ETOOBIG)
            return px_errf(err, errlen, PX_ETOOBIG,
                           "encoded PNG is larger than the output limit of %zu bytes", e->out->max);
        int rc = e->rc ? e->rc : code_of(e->msg, PX_EINVAL);
        return px_errf(err, errlen, rc, "PNG encoder failed: %s", e->msg);
    }
    static const int types[5] = {
        [1] = PNG_COLOR_TYPE_GRAY, [3] = PNG_COLOR_TYPE_RGB, [4] = PNG_COLOR_TYPE_RGB_ALPHA};
    png_set_write_fn(e->png, e, write_fn, flush_fn);
    png_set_IHDR(e->png, e->info, (png_uint_32)img->w, (png_uint_32)img->h, 8, types[img->c],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(e->png, level);
    png_write_info(e->png, e->info);
    size_t stride = (size_t)img->w * (size_t)img->c;
    for (int y = 0; y < img->h; y++) png_write_row(e->png, img->px + (size_t)y * stride);
    png_write_end(e->png, NULL);
    return 0;
}

/* --- encode, fast levels: libdeflate ---------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Appends one chunk: length, type, data, CRC-32 of type and data. */
static int put_chunk(px_buf *out, const char *type, const uint8_t *data, size_t n)
{
    uint8_t hdr[8], crc[4];
    put32(hdr, (uint32_t)n);
    memcpy(hdr + 4, type, 4);
    uint32_t c = (uint32_t)libdeflate_crc32(0, type, 4);
    if (n) c = (uint32_t)libdeflate_crc32(c, data, n); /* a NULL buffer would restart it */
    put32(crc, c);
    int rc = px_buf_append(out, hdr, 8);
    if (!rc && n) rc = px_buf_append(out, data, n);
    if (!rc) rc = px_buf_append(out, crc, 4);
    return rc;
}

/* Rows filtered Up (None for the first, and for all at level 0: stored
 * data gains nothing from filtering), each behind its filter byte. One
 * filter instead of a per-row trial: the trial costs more than the bytes it
 * saves at these levels. NULL on OOM or overflow. */
static uint8_t *filter_rows(const px_image *img, int level, size_t *n)
{
    size_t stride = (size_t)img->w * (size_t)img->c, row = stride + 1;
    if (row == 0 || (size_t)img->h > SIZE_MAX / row) return NULL;
    *n = row * (size_t)img->h;
    uint8_t *raw = malloc(*n);
    if (!raw) return NULL;
    for (int y = 0; y < img->h; y++) {
        uint8_t *r = raw + (size_t)y * row;
        const uint8_t *cur = img->px + (size_t)y * stride;
        r[0] = y && level ? 2 : 0;
        if (r[0] == 0) {
            memcpy(r + 1, cur, stride);
            continue;
        }
        const uint8_t *up = cur - stride;
        for (size_t i = 0; i < stride; i++) r[1 + i] = (uint8_t)(cur[i] - up[i]);
    }
    return raw;
}

static int deflate_encode(const px_image *img, int level, px_buf *out, char *err, size_t errlen)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t types[5] = {[1] = 0, [3] = 2, [4] = 6}; /* gray, RGB, RGBA */
    size_t raw_n = 0;
    uint8_t *raw = filter_rows(img, level, &raw_n), *z = NULL;
    struct libdeflate_compressor *c = raw ? libdeflate_alloc_compressor(level) : NULL;
    size_t cap = c ? libdeflate_zlib_compress_bound(c, raw_n) : 0;
    if (cap) z = malloc(cap);
    size_t zn = z ? libdeflate_zlib_compress(c, raw, raw_n, z, cap) : 0;
    libdeflate_free_compressor(c);
    free(raw);
    int rc = zn ? 0 : PX_ENOMEM;
    if (!rc) {
        uint8_t ihdr[13] = {0};
        put32(ihdr, (uint32_t)img->w);
        put32(ihdr + 4, (uint32_t)img->h);
        ihdr[8] = 8, ihdr[9] = types[img->c]; /* 8 bits; compression, filter, interlace 0 */
        rc = px_buf_append(out, sig, sizeof sig);
        if (!rc) rc = put_chunk(out, "IHDR", ihdr, sizeof ihdr);
        if (!rc) rc = put_chunk(out, "IDAT", z, zn);
        if (!rc) rc = put_chunk(out, "IEND", NULL, 0);
    }
    free(z);
    if (rc == PX_ETOOBIG)
        return px_errf(err, errlen, PX_ETOOBIG,
                       "encoded PNG is larger than the output limit of %zu bytes", out->max);
    if (rc) return px_errf(err, errlen, rc, "out of memory encoding PNG");
    return 0;
}

int px_png_encode(const px_image *img, int level, px_buf *out, char *err, size_t errlen)
{
    if (level < 0 || level > 9)
        return px_errf(err, errlen, PX_EINVAL, "PNG compression level %d is not in 0..9", level);
    if (level <= 2 && img->w > 0 && img->h > 0 && (img->c == 1 || img->c == 3 || img->c == 4))
        return deflate_encode(img, level, out, err, errlen);
    struct png_enc e = {.out = out};
    e.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, e.msg, on_error, on_warning);
    if (e.png) e.info = png_create_info_struct(e.png);
    int rc = e.info ? encode_rows(&e, img, level, err, errlen)
                    : px_errf(err, errlen, PX_ENOMEM, "out of memory starting the PNG encoder");
    png_destroy_write_struct(e.png ? &e.png : NULL, e.info ? &e.info : NULL);
    return rc;
}
