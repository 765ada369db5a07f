/*
 * jpeg.h — JPEG decode and encode (libjpeg-turbo). Use codec.h's
 * px_decode/px_encode unless the format is already known.
 */
#ifndef PX_IMAGE_JPEG_H
#define PX_IMAGE_JPEG_H

#include "core/buf.h"
#include "image/image.h"

#include <stddef.h>
#include <stdint.h>

/* Progressive JPEGs with more scans than this are refused (PX_ETOOBIG):
 * every scan walks the whole coefficient buffer again, so a small file of
 * repeated scans would otherwise cost unbounded CPU. Real encoders write
 * about 10. */
#define PX_JPEG_MAX_SCANS 100

/*
 * Decodes a baseline, progressive or arithmetic-coded 8-bit JPEG: gray ->
 * c=1, YCbCr/RGB -> c=3, CMYK/YCCK -> c=3 (naive conversion without a colour
 * profile; Adobe-marked files are taken as inverted, as Photoshop writes
 * them). The EXIF orientation of the first APP1 Exif segment is applied.
 * Corrupt-data warnings of libjpeg are errors here, not grey-filled pixels.
 * On success the caller owns out (px_image_free). On failure out is zeroed
 * and the result is PX_ETOOBIG (dimensions above lim, too many scans, or
 * more decoder memory than lim implies), PX_ETRUNC, PX_ECORRUPT, PX_EUNSUP
 * (e.g. 12-bit or lossless JPEG) or PX_ENOMEM, with a message that starts
 * with "JPEG".
 */
int px_jpeg_decode(const uint8_t *data, size_t n, const px_img_limits *lim, px_image *out,
                   char *err, size_t errlen);

/* Appends img (c = 1 or 3; c = 4 drops alpha) as a baseline JPEG of the
 * given quality (1..100) to out. Returns 0, PX_ETOOBIG (out's cap reached,
 * or a side above 65500 px), PX_EINVAL or PX_ENOMEM. */
int px_jpeg_encode(const px_image *img, int quality, px_buf *out, char *err, size_t errlen);

#endif
