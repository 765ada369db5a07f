/*
 * image.h — the in-memory image type and the size limits every decoder and
 * allocation obeys.
 *
 * Pixels are 8-bit, interleaved, rows tightly packed (stride = w * c), with
 * c = 1 (gray), 3 (RGB) or 4 (RGBA). Engines work on RGB; alpha is split off
 * before processing and merged back into the output.
 */
#ifndef PX_IMAGE_IMAGE_H
#define PX_IMAGE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct px_image {
    int w, h, c;
    uint8_t *px; /* w*h*c bytes, owned by whoever filled the struct */
} px_image;

/* Caps checked before any pixel buffer is allocated (decompression bombs).
 * A field <= 0 means "the default", so a zeroed struct in a config is safe. */
typedef struct px_img_limits {
    uint64_t max_pixels; /* w*h */
    int max_side;        /* max(w, h) */
} px_img_limits;

#define PX_IMG_DEFAULT_MAX_PIXELS (4096ull * 4096ull) /* 16.8 megapixels */
#define PX_IMG_DEFAULT_MAX_SIDE   8192

/* The default limits (16.8 MP, 8192 px a side). */
px_img_limits px_img_limits_default(void);

/* Checks w×h×c against lim (NULL: defaults) and against size_t overflow.
 * Returns 0, PX_EINVAL (zero/negative size, bad c) or PX_ETOOBIG with a
 * message naming the dimensions and the limit, e.g. "image is 9000x9000
 * (81.0 megapixels), above the limit of 16.8 megapixels" (callers that know
 * the format prefix it: "PNG image is ..."). */
int px_image_check(int w, int h, int c, const px_img_limits *lim, char *err, size_t errlen);

/* Allocates a zeroed w×h×c image after px_image_check. On failure img->px is
 * NULL and the error is returned (PX_ENOMEM if malloc fails). */
int px_image_alloc(px_image *img, int w, int h, int c, const px_img_limits *lim, char *err,
                   size_t errlen);

/* Frees img->px and zeroes the struct. Safe on a zeroed struct. */
void px_image_free(px_image *img);

/* Deep copy into dst (newly allocated, caller frees). Returns 0, PX_EINVAL
 * (src has no pixels) or PX_ENOMEM. */
int px_image_copy(const px_image *src, px_image *dst);

/* The w×h region of src at (x, y) into dst (newly allocated, caller
 * frees). Returns 0, PX_EINVAL (no pixels, or the region leaves src) or
 * PX_ENOMEM. */
int px_image_crop(const px_image *src, int x, int y, int w, int h, px_image *dst);

/*
 * Splits any image into RGB (c=3; gray is replicated) and, when src has an
 * alpha channel, a 1-channel alpha plane (else alpha->px is NULL). Both are
 * newly allocated; the caller frees them. Returns 0, PX_EINVAL (c not 1, 3
 * or 4) or PX_ENOMEM; on error both are left zeroed.
 */
int px_image_split_alpha(const px_image *src, px_image *rgb, px_image *alpha);

/* Puts alpha (c=1, same size, may be NULL or have px NULL) back onto rgb
 * (c=3) giving out (c=4, or c=3 copy when there is no alpha). Caller frees out.
 * Returns 0, PX_EINVAL (shapes do not match) or PX_ENOMEM. */
int px_image_merge_alpha(const px_image *rgb, const px_image *alpha, px_image *out);

/*
 * Applies an EXIF orientation (1..8) to img in place (the buffer may be
 * reallocated and w/h swapped for 5..8). Orientation 1 or out of range is a
 * no-op. Returns 0 or PX_ENOMEM (img unchanged).
 */
int px_image_orient(px_image *img, int orientation);

/*
 * Composes the engine output with the original: out = mask ? fill : orig, per
 * pixel, so pixels outside the hole are byte-identical to the input. All RGB
 * of the same size, mask c=1 (any non-zero value is a hole), out already
 * allocated by the caller; out may alias fill or orig. Mismatched shapes are
 * a programming error and abort (assert).
 */
void px_image_compose(const px_image *orig, const px_image *fill, const px_image *mask,
                      px_image *out);

/*
 * Peak signal-to-noise ratio of `test` against `ref` in dB over the pixels
 * where mask (c = 1, same size; NULL = everywhere) is non-zero, over every
 * channel (ref and test have the same size and channel count). Identical
 * pixels give +INFINITY; an empty mask gives NAN. Used by tests and
 * benchmarks to score fills against the original photograph.
 */
double px_image_psnr(const px_image *ref, const px_image *test, const px_image *mask);

#endif
