/*
 * png_fast.h — the common PNGs decoded without libpng: 8-bit, not
 * interlaced, gray, RGB, gray+alpha or RGBA, no palette and no tRNS, the
 * image data inflated in one call by libdeflate (2-3x zlib's speed) and the
 * rows unfiltered here. png.c tries it first; whatever it does not take, or
 * finds anything wrong with, goes to libpng, so errors keep libpng's
 * strictness and messages, and the pixels are libpng's byte for byte
 * (tests/unit/codec_png_test.c compares the two; fuzz/fuzz_decode.c on
 * every PNG it makes). One leniency: libdeflate decodes a few deflate
 * streams that zlib refuses (a code-length repeat running past the end of
 * the code-length table: fuzz_decode found one, with valid CRCs); such a
 * file decodes here where libpng alone would call it corrupt.
 */
#ifndef PX_IMAGE_PNG_FAST_H
#define PX_IMAGE_PNG_FAST_H

#include "image/image.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes data into out as px_png_decode would (gray -> c=1, RGB -> c=3,
 * gray+alpha and RGBA -> c=4). Returns 0 (the caller owns out), PX_EUNSUP
 * when the file is not one it takes or is not well formed (out zeroed: ask
 * libpng), or, for a file within its reach, PX_ETOOBIG (above lim) or
 * PX_ENOMEM with a message.
 */
int px_png_fast_decode(const uint8_t *data, size_t n, const px_img_limits *lim, px_image *out,
                       char *err, size_t errlen);

#endif
