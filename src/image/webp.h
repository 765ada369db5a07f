/*
 * webp.h — still WebP decode and encode (libwebp). Use codec.h's
 * px_decode/px_encode unless the format is already known.
 */
#ifndef PX_IMAGE_WEBP_H
#define PX_IMAGE_WEBP_H

#include "core/buf.h"
#include "image/image.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes a still WebP (lossy, lossless, with or without alpha): c=3, or c=4
 * when the file has alpha. On success the caller owns out (px_image_free).
 * On failure out is zeroed and the result is PX_EUNSUP (animated WebP),
 * PX_ETOOBIG (dimensions above lim, checked from the header before any pixel
 * allocation), PX_ETRUNC, PX_ECORRUPT or PX_ENOMEM, with a message that
 * starts with "WebP".
 */
int px_webp_decode(const uint8_t *data, size_t n, const px_img_limits *lim, px_image *out,
                   char *err, size_t errlen);

/*
 * Appends img (c = 1, 3 or 4; alpha is kept, losslessly) as a WebP to out.
 * quality 1..99 is lossy at that quality; 100 means lossless (and exact:
 * RGB under transparent pixels is kept), because even lossy quality 100
 * subsamples chroma and so cannot give back what was put in. Returns 0,
 * PX_ETOOBIG (out's cap reached, or a side above 16383 px), PX_EINVAL or
 * PX_ENOMEM.
 */
int px_webp_encode(const px_image *img, int quality, px_buf *out, char *err, size_t errlen);

#endif
