/*
 * png.h — PNG decode and encode (libpng). Use codec.h's px_decode/px_encode
 * unless the format is already known.
 */
#ifndef PX_IMAGE_PNG_H
#define PX_IMAGE_PNG_H

#include "core/buf.h"
#include "image/image.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes a PNG of any colour type and bit depth (interlaced too) to 8 bits:
 * gray -> c=1, RGB and palette -> c=3, anything with alpha or tRNS -> c=4;
 * 16-bit samples are scaled with rounding. Ancillary chunks other than tRNS
 * are skipped unread (no text or ICC decompression). Strict: what libpng
 * calls a "benign" error (a zlib checksum mismatch, a palette index out of
 * range, ...) is an error here, and a file must reach IEND (the one
 * leniency: png_fast.h).
 * On success the caller owns out (px_image_free). On failure out is zeroed
 * and the result is PX_ETOOBIG (dimensions above lim, checked before any
 * pixel allocation), PX_ETRUNC, PX_ECORRUPT or PX_ENOMEM, with a message
 * that starts with "PNG".
 */
int px_png_decode(const uint8_t *data, size_t n, const px_img_limits *lim, px_image *out, char *err,
                  size_t errlen);

/* px_png_decode through libpng alone (px_png_decode tries png_fast.c's
 * decoder first): for tests and benchmarks that compare the two. */
int px_png_decode_libpng(const uint8_t *data, size_t n, const px_img_limits *lim, px_image *out,
                         char *err, size_t errlen);

/* Appends img (c = 1, 3 or 4) as an 8-bit PNG with zlib level 0..9 to out
 * (levels 0-2 through libdeflate with the Up filter, 3-9 through libpng).
 * Returns 0, PX_ETOOBIG (out's cap reached), PX_EINVAL or PX_ENOMEM; on
 * failure out may hold a partial image (px_encode rolls it back). */
int px_png_encode(const px_image *img, int level, px_buf *out, char *err, size_t errlen);

#endif
