/*
 * png.c — PNG decode and encode through libpng.
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

#include <png.h>
#include <setjmp.h>
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
    /* Stored (level 0) output gains nothing from filtering; skip its cost.
     * At the fast levels (the server's results, level 1 by default) one
     * filter, Up, instead of libpng's trial of all five per row: half the
     * encoding time at 1024² (142 -> 70 ms, the largest CPU cost of a LaMa
     * request on a GPU) for 3-7 % larger files. */
    if (level == 0) png_set_filter(e->png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    else if (level <= 2) png_set_filter(e->png, PNG_FILTER_TYPE_BASE, PNG_FILTER_UP);
    png_write_info(e->png, e->info);
    size_t stride = (size_t)img->w * (size_t)img->c;
    for (int y = 0; y < img->h; y++) png_write_row(e->png, img->px + (size_t)y * stride);
    png_write_end(e->png, NULL);
    return 0;
}

int px_png_encode(const px_image *img, int level, px_buf *out, char *err, size_t errlen)
{
    if (level < 0 || level > 9)
        return px_errf(err, errlen, PX_EINVAL, "PNG compression level %d is not in 0..9", level);
    struct png_enc e = {.out = out};
    e.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, e.msg, on_error, on_warning);
    if (e.png) e.info = png_create_info_struct(e.png);
    int rc = e.info ? encode_rows(&e, img, level, err, errlen)
                    : px_errf(err, errlen, PX_ENOMEM, "out of memory starting the PNG encoder");
    png_destroy_write_struct(e.png ? &e.png : NULL, e.info ? &e.info : NULL);
    return rc;
}
