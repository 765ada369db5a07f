/*
 * resize.c — resampling with exact integer weights: area average when an
 * axis shrinks, bilinear when it grows, each axis on its own; and the
 * coverage rule for masks.
 *
 * Each axis becomes a table of taps (source index, integer weight) per
 * destination index, whose weights sum to the axis denominator. A pixel is
 * then an exact rational rounded once, so an integer-ratio shrink gives
 * exactly the rounded mean of each block and a constant image stays
 * constant. Rows are resampled vertically into one accumulator row, then
 * horizontally, so the only scratch memory is a source-width row.
 */
#include "image/resize.h"

#include "core/err.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Sides up to 2^22 keep a vertical sum (< 2^23 * 255) in 32 bits and a full
 * two-axis sum (< 2^46 * 255) in 64. */
#define MAX_SIDE (1 << 22)

struct axis {
    int *start;   /* first source index of each destination index */
    int *off;     /* taps of destination i are w[off[i] .. off[i+1]) */
    uint32_t *w;  /* tap weights */
    uint32_t den; /* the weights of one destination index sum to this */
};

static void axis_free(struct axis *a)
{
    free(a->start);
    free(a->off);
    free(a->w);
}

static int64_t gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/*
 * Builds the taps of one axis. Area mode: destination i covers the source
 * interval [i*src/dst, (i+1)*src/dst); in units of 1/dst of a source pixel
 * (divided by gcd) every overlap is an integer. Bilinear mode: the centre of
 * destination i sits at source position ((2i+1)*src - dst) / (2*dst), which
 * is also an exact fraction; positions before the first or after the last
 * source centre clamp to the edge pixel.
 */
static int axis_build(int src, int dst, bool bilinear, struct axis *a)
{
    const int64_t g = gcd(src, dst), S = src / g, D = dst / g;
    /* Area taps per destination: at most src/dst + 2; bilinear: 2. */
    size_t max_taps = (size_t)src + 2 * (size_t)dst;
    a->start = malloc((size_t)dst * sizeof *a->start);
    a->off = malloc(((size_t)dst + 1) * sizeof *a->off);
    a->w = malloc(max_taps * sizeof *a->w);
    if (!a->start || !a->off || !a->w) return PX_ENOMEM;
    int n = 0;
    if (bilinear) {
        a->den = (uint32_t)(2 * D);
        for (int i = 0; i < dst; i++) {
            int64_t p = (2 * (int64_t)i + 1) * S - D, j0 = 0, frac = 0;
            if (p > 0) {
                j0 = p / (2 * D);
                frac = p % (2 * D);
            }
            if (j0 >= src - 1) {
                j0 = src - 1;
                frac = 0;
            }
            a->start[i] = (int)j0;
            a->off[i] = n;
            a->w[n++] = (uint32_t)(2 * D - frac);
            if (frac) a->w[n++] = (uint32_t)frac;
        }
    } else {
        a->den = (uint32_t)S;
        for (int i = 0; i < dst; i++) {
            int64_t lo = i * S, hi = lo + S; /* destination span, in source units of D */
            a->start[i] = (int)(lo / D);
            a->off[i] = n;
            for (int64_t j = lo / D; j * D < hi; j++) {
                int64_t from = j * D > lo ? j * D : lo, to = (j + 1) * D < hi ? (j + 1) * D : hi;
                a->w[n++] = (uint32_t)(to - from);
            }
        }
    }
    a->off[dst] = n;
    return 0;
}

static bool valid_sizes(const px_image *src, int w, int h)
{
    return src && src->px && src->w > 0 && src->h > 0 && src->w <= MAX_SIDE && src->h <= MAX_SIDE &&
           w > 0 && h > 0 && w <= MAX_SIDE && h <= MAX_SIDE;
}

static int alloc_dst(px_image *dst, int w, int h, int c)
{
    const px_img_limits any = {.max_pixels = UINT64_MAX, .max_side = MAX_SIDE};
    int rc = px_image_alloc(dst, w, h, c, &any, NULL, 0);
    return rc == PX_ENOMEM ? rc : rc ? PX_EINVAL : 0;
}

/* floor(num / den + 1/2) for num < 2^55, without a 64-bit division: a
 * floating-point estimate, then integer correction of its last unit. */
static inline uint8_t round_div(uint64_t num, uint64_t den, double inv2den)
{
    uint64_t n2 = 2 * num + den, d2 = 2 * den;
    uint64_t q = (uint64_t)((double)n2 * inv2den);
    while (q && q * d2 > n2) q--;
    while ((q + 1) * d2 <= n2) q++;
    return (uint8_t)q;
}

int px_resize(const px_image *src, int w, int h, px_image *dst)
{
    memset(dst, 0, sizeof *dst);
    if (!valid_sizes(src, w, h)) return PX_EINVAL;
    int rc = alloc_dst(dst, w, h, src->c);
    if (rc) return rc;
    if (w == src->w && h == src->h) {
        memcpy(dst->px, src->px, (size_t)w * (size_t)h * (size_t)src->c);
        return 0;
    }
    const int c = src->c;
    const size_t src_stride = (size_t)src->w * (size_t)c, dst_stride = (size_t)w * (size_t)c;
    struct axis ax = {0}, ay = {0};
    uint32_t *acc = malloc(src_stride * sizeof *acc);
    if (!acc || (rc = axis_build(src->w, w, w > src->w, &ax)) != 0 ||
        (rc = axis_build(src->h, h, h > src->h, &ay)) != 0) {
        rc = PX_ENOMEM;
        goto done;
    }
    const uint64_t den = (uint64_t)ax.den * ay.den;
    const double inv2den = 1.0 / (2.0 * (double)den);
    for (int y = 0; y < h; y++) {
        memset(acc, 0, src_stride * sizeof *acc);
        for (int t = ay.off[y]; t < ay.off[y + 1]; t++) {
            const uint8_t *row = src->px + (size_t)(ay.start[y] + t - ay.off[y]) * src_stride;
            const uint32_t wt = ay.w[t];
            for (size_t k = 0; k < src_stride; k++) acc[k] += wt * row[k];
        }
        uint8_t *out = dst->px + (size_t)y * dst_stride;
        for (int x = 0; x < w; x++) {
            const uint32_t *col = acc + (size_t)ax.start[x] * (size_t)c;
            for (int ch = 0; ch < c; ch++) {
                uint64_t sum = 0;
                for (int t = ax.off[x], k = ch; t < ax.off[x + 1]; t++, k += c)
                    sum += (uint64_t)ax.w[t] * col[k];
                out[(size_t)x * (size_t)c + (size_t)ch] = round_div(sum, den, inv2den);
            }
        }
    }
done:
    free(acc);
    axis_free(&ax);
    axis_free(&ay);
    if (rc) px_image_free(dst);
    return rc;
}

int px_resize_mask(const px_image *mask, int w, int h, px_image *dst)
{
    memset(dst, 0, sizeof *dst);
    if (!valid_sizes(mask, w, h) || mask->c != 1) return PX_EINVAL;
    int rc = alloc_dst(dst, w, h, 1);
    if (rc) return rc;
    /* Coverage in both directions (area taps list every source pixel a
     * destination pixel touches), so no hole pixel can fall between taps. */
    struct axis ax = {0}, ay = {0};
    uint8_t *any = malloc((size_t)mask->w);
    if (!any || axis_build(mask->w, w, false, &ax) != 0 ||
        axis_build(mask->h, h, false, &ay) != 0) {
        rc = PX_ENOMEM;
        goto done;
    }
    for (int y = 0; y < h; y++) {
        memset(any, 0, (size_t)mask->w);
        for (int t = ay.off[y]; t < ay.off[y + 1]; t++) {
            const uint8_t *row = mask->px + (size_t)(ay.start[y] + t - ay.off[y]) * (size_t)mask->w;
            for (int x = 0; x < mask->w; x++) any[x] |= row[x];
        }
        uint8_t *out = dst->px + (size_t)y * (size_t)w;
        for (int x = 0; x < w; x++) {
            uint8_t hole = 0;
            for (int t = ax.off[x], j = ax.start[x]; t < ax.off[x + 1]; t++, j++) hole |= any[j];
            out[x] = hole ? 255 : 0;
        }
    }
done:
    free(any);
    axis_free(&ax);
    axis_free(&ay);
    if (rc) px_image_free(dst);
    return rc;
}
