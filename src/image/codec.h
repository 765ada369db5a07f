/*
 * codec.h — decode PNG, JPEG and WebP from memory, encode to any of them.
 *
 * This is the entry point for untrusted image bytes: the format is sniffed
 * from the magic bytes (never trusted from a file name or MIME type), the
 * dimensions are read from the header and checked against px_img_limits
 * before the pixel buffer is allocated, and truncated or corrupt data is
 * refused with a specific message.
 */
#ifndef PX_IMAGE_CODEC_H
#define PX_IMAGE_CODEC_H

#include "core/buf.h"
#include "image/image.h"

#include <stddef.h>
#include <stdint.h>

enum px_format { PX_FMT_UNKNOWN = 0, PX_FMT_PNG, PX_FMT_JPEG, PX_FMT_WEBP };

/* Format from magic bytes; PX_FMT_UNKNOWN if none matches. */
enum px_format px_format_sniff(const uint8_t *data, size_t n);

/* "png", "jpeg", "webp" (or "unknown"). */
const char *px_format_name(enum px_format f);

/* "image/png", "image/jpeg", "image/webp" (or "application/octet-stream"). */
const char *px_format_mime(enum px_format f);

/* Parses "png", "jpeg"/"jpg", "webp" (case-insensitive); PX_FMT_UNKNOWN otherwise. */
enum px_format px_format_parse(const char *name);

/*
 * Decodes an image. On success *out holds c = 1 (gray), 3 (RGB) or 4 (RGBA,
 * also for gray+alpha and palettes with transparency), 8 bits per channel
 * (16-bit PNG is reduced), JPEG already rotated by its EXIF orientation and
 * CMYK JPEG converted to RGB. The caller frees out with px_image_free; on
 * failure out is zeroed. lim NULL means the defaults.
 * Errors, each with a message naming the format ("PNG data is truncated",
 * "JPEG data is corrupt: <libjpeg's text>", "not a PNG, JPEG or WebP image
 * (first bytes 47 49 46 38)"): PX_EINVAL (no bytes at all), PX_EUNSUP (not
 * PNG/JPEG/WebP, or an unsupported variant such as animated WebP or 12-bit
 * JPEG), PX_ETOOBIG (dimensions above lim, read from the header before any
 * pixel allocation; or a JPEG with more than PX_JPEG_MAX_SCANS (jpeg.h) scans),
 * PX_ETRUNC (the data ends early, including a cut signature or a missing
 * end marker), PX_ECORRUPT, PX_ENOMEM.
 */
int px_decode(const uint8_t *data, size_t n, const px_img_limits *lim, px_image *out, char *err,
              size_t errlen);

typedef struct px_encode_opts {
    enum px_format fmt;
    int quality;   /* JPEG/WebP 1..100; <= 0 means the default (90). For WebP,
                      100 means lossless (see webp.h) */
    int png_level; /* zlib level 0..9 for PNG; < 0 means the default (1: fast) */
} px_encode_opts;

/* Encodes img (c = 1, 3 or 4; JPEG drops alpha, WebP turns gray into RGB)
 * appending to out, whose cap bounds the output size; opts NULL means PNG
 * with the defaults. Returns 0, PX_EINVAL, PX_ETOOBIG (out's cap, or a size
 * the format cannot hold) or PX_ENOMEM; on failure out is left as it was. */
int px_encode(const px_image *img, const px_encode_opts *opts, px_buf *out, char *err,
              size_t errlen);

/* Reads and decodes a file (at most 256 MiB, else PX_ETOOBIG). PX_EIO if it
 * cannot be read; otherwise as px_decode. */
int px_decode_file(const char *path, const px_img_limits *lim, px_image *out, char *err,
                   size_t errlen);

/* Encodes to a file; the format comes from opts (or from the file name's
 * extension, .png/.jpg/.jpeg/.webp, when opts is NULL or opts->fmt is
 * PX_FMT_UNKNOWN: PX_EINVAL if there is none). PX_EIO if it cannot be
 * written (a partly written file is removed). */
int px_encode_file(const char *path, const px_image *img, const px_encode_opts *opts, char *err,
                   size_t errlen);

#endif
