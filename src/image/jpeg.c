/*
 * jpeg.c — JPEG decode and encode through libjpeg-turbo.
 *
 * libjpeg reports errors through an error manager whose error_exit must not
 * return; ours longjmps back with a PX_E* code and a message, and turns the
 * warnings that mean "this file is cut or damaged" into errors too, because
 * libjpeg would otherwise hand back an image filled with grey. As in png.c,
 * everything that must survive the longjmp lives in a struct owned by the
 * public function's frame, not in locals of the function that calls setjmp.
 */
#include "image/jpeg.h"

#include "core/err.h"
#include "image/codec_impl.h"
#include "image/exif.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t declared before it */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include <jerror.h>

/* Rows handed to libjpeg per call: fewer calls, no extra copy. */
enum { ROW_BATCH = 16 };

/* Error manager shared by the decoder and the encoder. */
struct jerr {
    struct jpeg_error_mgr pub; /* first, so cinfo->err converts back to us */
    jmp_buf jmp;
    int rc;
    char msg[JMSG_LENGTH_MAX + 64];
};

static _Noreturn void raise_err(j_common_ptr cinfo, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void raise_err(j_common_ptr cinfo, int rc, const char *fmt, ...)
{
    struct jerr *e = (struct jerr *)cinfo->err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->rc = rc;
    longjmp(e->jmp, 1);
}

static void on_error_exit(j_common_ptr cinfo)
{
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    switch (cinfo->err->msg_code) {
    case JERR_OUT_OF_MEMORY:
        raise_err(cinfo, PX_ENOMEM, "out of memory in JPEG codec: %s", text);
    case JERR_NO_BACKING_STORE:
        /* libjpeg wanted more than max_memory_to_use for its coefficients. */
        raise_err(cinfo, PX_ETOOBIG, "JPEG needs more decoder memory than the limit allows");
    case JERR_BAD_PRECISION:
    case JERR_SOF_UNSUPPORTED:
    case JERR_NOT_COMPILED:
        raise_err(cinfo, PX_EUNSUP, "JPEG variant is not supported: %s", text);
    case JERR_IMAGE_TOO_BIG:
    case JERR_WIDTH_OVERFLOW:
        raise_err(cinfo, PX_ETOOBIG, "JPEG image is too big: %s", text);
    default:
        break;
    }
    if (cinfo->is_decompressor) raise_err(cinfo, PX_ECORRUPT, "JPEG data is corrupt: %s", text);
    raise_err(cinfo, PX_EINVAL, "JPEG encoder failed: %s", text);
}

static void on_emit_message(j_common_ptr cinfo, int level)
{
    if (level >= 0) return; /* trace messages */
    switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF:
        raise_err(cinfo, PX_ETRUNC, "JPEG data is truncated");
    case JWRN_JFIF_MAJOR: /* harmless metadata oddities */
    case JWRN_ADOBE_XFORM:
    case JWRN_BOGUS_ICC:
        return;
    default:
        break;
    }
    /* Everything else (bad Huffman code, hit marker, extraneous bytes,
     * bogus progression, ...) means the pixels would be wrong. */
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    raise_err(cinfo, PX_ECORRUPT, "JPEG data is corrupt: %s", text);
}

static void on_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* a library must not print */
}

static void init_jerr(struct jerr *e)
{
    jpeg_std_error(&e->pub);
    e->pub.error_exit = on_error_exit;
    e->pub.emit_message = on_emit_message;
    e->pub.output_message = on_output_message;
}

/* --- decode ------------------------------------------------------------------ */

struct jpeg_dec {
    struct jpeg_decompress_struct cinfo;
    struct jerr err;
    struct jpeg_progress_mgr progress;
    px_image img;
    uint8_t *cmyk_row; /* one row of CMYK before conversion */
    int orientation;
};

/* Called between scans and rows: the place to stop a scan flood. */
static void on_progress(j_common_ptr cinfo)
{
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > PX_JPEG_MAX_SCANS)
        raise_err(cinfo, PX_ETOOBIG, "JPEG has more than %d scans, above the limit",
                  PX_JPEG_MAX_SCANS);
}

static int first_exif_orientation(j_decompress_ptr cinfo)
{
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker != JPEG_APP0 + 1) continue;
        int o = px_exif_orientation(m->data, m->data_length);
        if (o) return o;
    }
    return 0;
}

/* CMYK (or YCCK, which libjpeg has turned into CMYK) to RGB, without a
 * colour profile. Adobe applications store the channels inverted. */
static void cmyk_to_rgb(const uint8_t *src, uint8_t *dst, int w, bool inverted)
{
    for (int x = 0; x < w; x++, src += 4, dst += 3) {
        unsigned k = inverted ? src[3] : 255u - src[3];
        for (int i = 0; i < 3; i++) {
            unsigned v = inverted ? src[i] : 255u - src[i];
            dst[i] = (uint8_t)((v * k + 127) / 255);
        }
    }
}

/* Memory libjpeg may use: the whole-image coefficient buffer of a
 * progressive file is 2 bytes per sample, at most 4 full-size components,
 * plus room for Huffman tables, row buffers and saved markers. */
static long decoder_memory_cap(const px_img_limits *lim)
{
    const uint64_t slack = 64u << 20;
    uint64_t px = lim && lim->max_pixels > 0 ? lim->max_pixels : PX_IMG_DEFAULT_MAX_PIXELS;
    if (px > ((uint64_t)LONG_MAX - slack) / 8) return LONG_MAX;
    return (long)(px * 8 + slack);
}

static int decode_rows(struct jpeg_dec *d, const uint8_t *data, size_t n, const px_img_limits *lim,
                       char *err, size_t errlen)
{
    j_decompress_ptr ci = &d->cinfo;
    if (setjmp(d->err.jmp)) return px_errf(err, errlen, d->err.rc, "%s", d->err.msg);
    jpeg_create_decompress(ci);
    ci->mem->max_memory_to_use = decoder_memory_cap(lim);
    d->progress.progress_monitor = on_progress;
    ci->progress = &d->progress;
    jpeg_mem_src(ci, data, (unsigned long)n);
    jpeg_save_markers(ci, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(ci, TRUE);

    int c = 3;
    bool cmyk = false;
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE:
        c = 1;
        ci->out_color_space = JCS_GRAYSCALE;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        ci->out_color_space = JCS_RGB;
        break;
    case JCS_CMYK:
    case JCS_YCCK: /* libjpeg turns YCCK into CMYK; we then make RGB */
        cmyk = true;
        ci->out_color_space = JCS_CMYK;
        break;
    default:
        return px_errf(err, errlen, PX_EUNSUP, "JPEG with %d colour components is not supported",
                       ci->num_components);
    }
    int w = (int)ci->image_width, h = (int)ci->image_height;
    int rc = px_codec_check("JPEG", w, h, c, lim, err, errlen);
    if (rc) return rc;
    d->orientation = first_exif_orientation(ci);

    jpeg_start_decompress(ci);
    if ((int)ci->output_width != w || (int)ci->output_height != h ||
        ci->output_components != (cmyk ? 4 : c))
        return px_errf(err, errlen, PX_ECORRUPT, "JPEG decoder gave an unexpected layout");
    rc = px_codec_alloc("JPEG", &d->img, w, h, c, lim, err, errlen);
    if (rc) return rc;
    if (cmyk && !(d->cmyk_row = malloc((size_t)w * 4)))
        return px_errf(err, errlen, PX_ENOMEM, "out of memory decoding JPEG");

    const size_t stride = (size_t)w * (size_t)c;
    while (ci->output_scanline < ci->output_height) {
        JDIMENSION y = ci->output_scanline, want = ci->output_height - y;
        JSAMPROW rows[ROW_BATCH];
        if (cmyk) {
            rows[0] = d->cmyk_row;
            want = 1;
        } else {
            if (want > ROW_BATCH) want = ROW_BATCH;
            for (JDIMENSION i = 0; i < want; i++) rows[i] = d->img.px + (y + i) * stride;
        }
        if (jpeg_read_scanlines(ci, rows, want) == 0)
            return px_errf(err, errlen, PX_ECORRUPT, "JPEG decoder stopped making progress");
        if (cmyk) cmyk_to_rgb(d->cmyk_row, d->img.px + y * stride, w, ci->saw_Adobe_marker);
    }
    /* Reading on to EOI is what tells a complete file from a cut one. */
    jpeg_finish_decompress(ci);
    return 0;
}

int px_jpeg_decode(const uint8_t *data, size_t n, const px_img_limits *lim, px_image *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct jpeg_dec d;
    memset(&d, 0, sizeof d);
    init_jerr(&d.err);
    d.cinfo.err = &d.err.pub;
    int rc = decode_rows(&d, data, n, lim, err, errlen);
    jpeg_destroy_decompress(&d.cinfo); /* fine on a struct create never finished */
    free(d.cmyk_row);
    if (!rc && px_image_orient(&d.img, d.orientation) != 0)
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory applying the JPEG orientation");
    if (rc) {
        px_image_free(&d.img);
        return rc;
    }
    *out = d.img;
    return 0;
}

/* --- encode ------------------------------------------------------------------ */

struct jpeg_enc {
    struct jpeg_compress_struct cinfo;
    struct jerr err;
    struct jpeg_destination_mgr dest;
    px_buf *out;
    JOCTET chunk[16384]; /* libjpeg writes here; full chunks go to out */
};

static void flush_chunk(j_compress_ptr cinfo, size_t len)
{
    struct jpeg_enc *e = cinfo->client_data;
    int rc = px_buf_append(e->out, e->chunk, len);
    if (rc == PX_ETOOBIG)
        raise_err((j_common_ptr)cinfo, rc,
                  "encoded JPEG is larger than the output limit of %zu bytes", e->out->max);
    if (rc) raise_err((j_common_ptr)cinfo, rc, "out of memory encoding JPEG");
    e->dest.next_output_byte = e->chunk;
    e->dest.free_in_buffer = sizeof e->chunk;
}

static void dest_init(j_compress_ptr cinfo)
{
    struct jpeg_enc *e = cinfo->client_data;
    e->dest.next_output_byte = e->chunk;
    e->dest.free_in_buffer = sizeof e->chunk;
}

static boolean dest_empty(j_compress_ptr cinfo)
{
    struct jpeg_enc *e = cinfo->client_data;
    flush_chunk(cinfo, sizeof e->chunk); /* libjpeg calls this only when full */
    return TRUE;
}

static void dest_term(j_compress_ptr cinfo)
{
    struct jpeg_enc *e = cinfo->client_data;
    flush_chunk(cinfo, sizeof e->chunk - e->dest.free_in_buffer);
}

static int encode_rows(struct jpeg_enc *e, const px_image *img, int quality, char *err,
                       size_t errlen)
{
    j_compress_ptr ci = &e->cinfo;
    if (setjmp(e->err.jmp)) return px_errf(err, errlen, e->err.rc, "%s", e->err.msg);
    jpeg_create_compress(ci);
    ci->client_data = e;
    e->dest.init_destination = dest_init;
    e->dest.empty_output_buffer = dest_empty;
    e->dest.term_destination = dest_term;
    ci->dest = &e->dest;
    ci->image_width = (JDIMENSION)img->w;
    ci->image_height = (JDIMENSION)img->h;
    ci->input_components = img->c;
    /* JCS_EXT_RGBX reads RGBA rows and ignores the fourth byte: no copy. */
    ci->in_color_space = img->c == 1 ? JCS_GRAYSCALE : img->c == 3 ? JCS_RGB : JCS_EXT_RGBX;
    jpeg_set_defaults(ci);
    jpeg_set_quality(ci, quality, TRUE);
    jpeg_start_compress(ci, TRUE);
    const size_t stride = (size_t)img->w * (size_t)img->c;
    while (ci->next_scanline < ci->image_height) {
        JDIMENSION y = ci->next_scanline, want = ci->image_height - y;
        if (want > ROW_BATCH) want = ROW_BATCH;
        JSAMPROW rows[ROW_BATCH];
        for (JDIMENSION i = 0; i < want; i++) rows[i] = img->px + (y + i) * stride;
        jpeg_write_scanlines(ci, rows, want);
    }
    jpeg_finish_compress(ci);
    return 0;
}

int px_jpeg_encode(const px_image *img, int quality, px_buf *out, char *err, size_t errlen)
{
    if (quality < 1 || quality > 100)
        return px_errf(err, errlen, PX_EINVAL, "JPEG quality %d is not in 1..100", quality);
    if (img->w > JPEG_MAX_DIMENSION || img->h > JPEG_MAX_DIMENSION)
        return px_errf(err, errlen, PX_ETOOBIG, "JPEG cannot store %dx%d: above %d px a side",
                       img->w, img->h, (int)JPEG_MAX_DIMENSION);
    struct jpeg_enc *e = calloc(1, sizeof *e); /* 17 KiB: keep it off small thread stacks */
    if (!e) return px_errf(err, errlen, PX_ENOMEM, "out of memory starting the JPEG encoder");
    init_jerr(&e->err);
    e->cinfo.err = &e->err.pub;
    e->out = out;
    int rc = encode_rows(e, img, quality, err, errlen);
    jpeg_destroy_compress(&e->cinfo);
    free(e);
    return rc;
}
