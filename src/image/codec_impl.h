/*
 * codec_impl.h — what the per-format codec modules (png.c, jpeg.c, webp.c)
 * share with codec.c. Callers outside src/image/ use codec.h instead.
 */
#ifndef PX_IMAGE_CODEC_IMPL_H
#define PX_IMAGE_CODEC_IMPL_H

#include "image/image.h"

#include <stddef.h>

/* px_image_check with the format's display name ("PNG", "JPEG", "WebP") put
 * in front of the message: "PNG image is 100000x100000 (...), above ...".
 * Decoders call it with the header's dimensions before allocating pixels. */
int px_codec_check(const char *fmt, int w, int h, int c, const px_img_limits *lim, char *err,
                   size_t errlen);

/* px_image_alloc with the same prefix ("PNG image of 4096x4096 does not fit
 * in memory"). The caller frees img; on failure it is zeroed. */
int px_codec_alloc(const char *fmt, px_image *img, int w, int h, int c, const px_img_limits *lim,
                   char *err, size_t errlen);

#endif
