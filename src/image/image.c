/*
 * image.c — the px_image type: limit checks that run before any pixel
 * allocation, ownership helpers, alpha split/merge, EXIF orientation and the
 * final compose of engine output with the original.
 */
#include "image/image.h"

#include "core/alloc.h"
#include "core/err.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

px_img_limits px_img_limits_default(void)
{
    return (px_img_limits){.max_pixels = PX_IMG_DEFAULT_MAX_PIXELS,
                           .max_side = PX_IMG_DEFAULT_MAX_SIDE};
}

/* "81.0 megapixels" for real images, "1040 pixels" for tiny test limits. */
static const char *pixel_count(uint64_t n, char *buf, size_t len)
{
    if (n >= 100000)
        snprintf(buf, len, "%.1f megapixels", (double)n / 1e6);
    else
        snprintf(buf, len, "%llu pixels", (unsigned long long)n);
    return buf;
}

int px_image_check(int w, int h, int c, const px_img_limits *lim, char *err, size_t errlen)
{
    if (c != 1 && c != 3 && c != 4)
        return px_errf(err, errlen, PX_EINVAL, "image has %d channels (expected 1, 3 or 4)", c);
    if (w <= 0 || h <= 0)
        return px_errf(err, errlen, PX_EINVAL, "image has an empty size (%dx%d)", w, h);

    uint64_t max_pixels = lim && lim->max_pixels > 0 ? lim->max_pixels : PX_IMG_DEFAULT_MAX_PIXELS;
    int max_side = lim && lim->max_side > 0 ? lim->max_side : PX_IMG_DEFAULT_MAX_SIDE;
    /* Two positive ints cannot overflow 64 bits when multiplied. */
    uint64_t pixels = (uint64_t)w * (uint64_t)h;
    if (pixels > max_pixels) {
        char have[48], cap[48];
        return px_errf(err, errlen, PX_ETOOBIG, "image is %dx%d (%s), above the limit of %s", w, h,
                       pixel_count(pixels, have, sizeof have),
                       pixel_count(max_pixels, cap, sizeof cap));
    }
    if (w > max_side || h > max_side)
        return px_errf(err, errlen, PX_ETOOBIG, "image is %dx%d, above the limit of %d px a side",
                       w, h, max_side);
    size_t bytes;
    if (!px_mul3_size((size_t)w, (size_t)h, (size_t)c, &bytes))
        return px_errf(err, errlen, PX_ETOOBIG,
                       "image is %dx%d with %d channels, too large for this machine", w, h, c);
    return 0;
}

/* Bytes of pixel data; only valid for an image that passed px_image_check. */
static size_t image_bytes(const px_image *img)
{
    return (size_t)img->w * (size_t)img->h * (size_t)img->c;
}

int px_image_alloc(px_image *img, int w, int h, int c, const px_img_limits *lim, char *err,
                   size_t errlen)
{
    memset(img, 0, sizeof *img);
    int rc = px_image_check(w, h, c, lim, err, errlen);
    if (rc) return rc;
    img->px = calloc((size_t)w * (size_t)h, (size_t)c);
    if (!img->px)
        return px_errf(err, errlen, PX_ENOMEM, "image of %dx%d does not fit in memory", w, h);
    img->w = w;
    img->h = h;
    img->c = c;
    return 0;
}

void px_image_free(px_image *img)
{
    free(img->px);
    memset(img, 0, sizeof *img);
}

/* Allocation for the derived images below: their sizes come from an image
 * that already exists, so only overflow and malloc failure can stop them. */
static int alloc_like(px_image *img, int w, int h, int c)
{
    const px_img_limits unlimited = {.max_pixels = UINT64_MAX, .max_side = 0x7fffffff};
    return px_image_alloc(img, w, h, c, &unlimited, NULL, 0);
}

/* An image every byte of which the caller writes at once: not zeroed
 * first (a 1024² RGB calloc'd from the heap is a 3-MB memset). */
static int alloc_overwritten(px_image *img, int w, int h, int c)
{
    memset(img, 0, sizeof *img);
    img->px = px_alloc_array((size_t)w * (size_t)h, (size_t)c);
    if (!img->px) return PX_ENOMEM;
    img->w = w, img->h = h, img->c = c;
    return 0;
}

int px_image_copy(const px_image *src, px_image *dst)
{
    return px_image_crop(src, 0, 0, src->w, src->h, dst);
}

int px_image_crop(const px_image *src, int x, int y, int w, int h, px_image *dst)
{
    memset(dst, 0, sizeof *dst);
    if (!src->px || x < 0 || y < 0 || w < 1 || h < 1 || x > src->w - w || y > src->h - h)
        return PX_EINVAL;
    int rc = alloc_overwritten(dst, w, h, src->c);
    if (rc) return rc;
    size_t c = (size_t)src->c;
    if (x == 0 && w == src->w) /* whole rows: one copy */
        memcpy(dst->px, src->px + (size_t)y * w * c, (size_t)w * h * c);
    else
        for (int r = 0; r < h; r++)
            memcpy(dst->px + (size_t)r * w * c, src->px + ((size_t)(y + r) * src->w + x) * c,
                   (size_t)w * c);
    return 0;
}

int px_image_split_alpha(const px_image *src, px_image *rgb, px_image *alpha)
{
    memset(rgb, 0, sizeof *rgb);
    memset(alpha, 0, sizeof *alpha);
    if (!src->px || (src->c != 1 && src->c != 3 && src->c != 4)) return PX_EINVAL;
    int rc = alloc_like(rgb, src->w, src->h, 3);
    if (rc) return rc;
    if (src->c == 4 && (rc = alloc_like(alpha, src->w, src->h, 1)) != 0) {
        px_image_free(rgb);
        return rc;
    }
    size_t n = (size_t)src->w * (size_t)src->h;
    const uint8_t *s = src->px;
    uint8_t *d = rgb->px;
    switch (src->c) {
    case 1:
        for (size_t i = 0; i < n; i++) d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = s[i];
        break;
    case 3:
        memcpy(d, s, n * 3);
        break;
    case 4:
        for (size_t i = 0; i < n; i++) {
            memcpy(d + 3 * i, s + 4 * i, 3);
            alpha->px[i] = s[4 * i + 3];
        }
        break;
    }
    return 0;
}

int px_image_merge_alpha(const px_image *rgb, const px_image *alpha, px_image *out)
{
    memset(out, 0, sizeof *out);
    if (!rgb->px || rgb->c != 3) return PX_EINVAL;
    if (!alpha || !alpha->px) return px_image_copy(rgb, out);
    if (alpha->c != 1 || alpha->w != rgb->w || alpha->h != rgb->h) return PX_EINVAL;
    int rc = alloc_like(out, rgb->w, rgb->h, 4);
    if (rc) return rc;
    size_t n = (size_t)rgb->w * (size_t)rgb->h;
    for (size_t i = 0; i < n; i++) {
        memcpy(out->px + 4 * i, rgb->px + 3 * i, 3);
        out->px[4 * i + 3] = alpha->px[i];
    }
    return 0;
}

int px_image_orient(px_image *img, int orientation)
{
    if (orientation < 2 || orientation > 8 || !img->px) return 0;
    /*
     * Every EXIF orientation is an affine map of source (x, y) to destination
     * (dx, dy) = (ax*x + bx*y + cx, ay*x + by*y + cy) with a, b in {-1, 0, 1}
     * and c either 0 or the last index of that destination axis (stored as
     * 0/1). One table and one loop then serve all seven transforms:
     * 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
     * 7 transverse, 8 rotate 90 counter-clockwise.
     */
    static const signed char map[9][6] = {
        /*   ax  bx  cx  ay  by  cy */
        [2] = {-1, 0, 1, 0, 1, 0}, [3] = {-1, 0, 1, 0, -1, 1}, [4] = {1, 0, 0, 0, -1, 1},
        [5] = {0, 1, 0, 1, 0, 0},  [6] = {0, -1, 1, 1, 0, 0},  [7] = {0, -1, 1, -1, 0, 1},
        [8] = {0, 1, 0, -1, 0, 1},
    };
    const signed char *m = map[orientation];
    const bool swap = orientation >= 5;
    const int w = img->w, h = img->h, c = img->c;
    const int dw = swap ? h : w, dh = swap ? w : h;
    const ptrdiff_t cx = m[2] ? dw - 1 : 0, cy = m[5] ? dh - 1 : 0;
    const ptrdiff_t step_x = ((ptrdiff_t)m[3] * dw + m[0]) * c;
    const ptrdiff_t step_y = ((ptrdiff_t)m[4] * dw + m[1]) * c;
    const ptrdiff_t base = (cy * dw + cx) * c;

    uint8_t *dst = malloc(image_bytes(img));
    if (!dst) return PX_ENOMEM;
    const uint8_t *src = img->px;
    for (int y = 0; y < h; y++) {
        uint8_t *d = dst + base + step_y * y;
        for (int x = 0; x < w; x++, src += c, d += step_x) memcpy(d, src, (size_t)c);
    }
    free(img->px);
    img->px = dst;
    img->w = dw;
    img->h = dh;
    return 0;
}

void px_image_compose(const px_image *orig, const px_image *fill, const px_image *mask,
                      px_image *out)
{
    assert(orig->c == 3 && fill->c == 3 && out->c == 3 && mask->c == 1);
    assert(orig->w == fill->w && orig->h == fill->h && orig->w == mask->w && orig->h == mask->h &&
           orig->w == out->w && orig->h == out->h);
    size_t n = (size_t)orig->w * (size_t)orig->h;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = mask->px[i] ? fill->px + 3 * i : orig->px + 3 * i;
        /* memmove: out may be the very image we read from. */
        memmove(out->px + 3 * i, s, 3);
    }
}

double px_image_psnr(const px_image *ref, const px_image *test, const px_image *mask)
{
    size_t np = (size_t)ref->w * (size_t)ref->h, c = (size_t)ref->c, n = 0;
    double se = 0;
    for (size_t i = 0; i < np; i++) {
        if (mask && !mask->px[i]) continue;
        for (size_t k = 0; k < c; k++) {
            double d = (double)ref->px[i * c + k] - (double)test->px[i * c + k];
            se += d * d;
        }
        n += c;
    }
    if (n == 0) return NAN;
    if (se == 0) return INFINITY;
    return 10.0 * log10(255.0 * 255.0 * (double)n / se);
}
