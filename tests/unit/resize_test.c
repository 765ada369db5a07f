/*
 * resize_test.c — px_resize against an independent floating-point reference
 * (area average / bilinear from real-valued coordinates), exactness on
 * integer ratios, edge sizes, and the mask rule that no hole is lost.
 */
#include "core/err.h"
#include "harness.h"
#include "image/resize.h"

#include <math.h>
#include <stdlib.h>

static px_image make(int w, int h, int c, unsigned seed)
{
    px_image img;
    T_EQ_INT(px_image_alloc(&img, w, h, c, NULL, NULL, 0), 0);
    srand(seed);
    for (size_t i = 0; i < (size_t)w * h * c; i++) img.px[i] = (uint8_t)(rand() & 255);
    return img;
}

static uint8_t at(const px_image *img, int x, int y, int ch)
{
    return img->px[((size_t)y * img->w + x) * img->c + ch];
}

/* Weights of source pixels for destination index i along one axis, from
 * real coordinates: the covered interval when shrinking, the two pixels
 * around the centre when enlarging. wt has room for src entries. */
static void ref_weights(int src, int dst, int i, double *wt)
{
    for (int j = 0; j < src; j++) wt[j] = 0;
    if (dst <= src) {
        double a = (double)i * src / dst, b = (double)(i + 1) * src / dst;
        for (int j = 0; j < src; j++) {
            double lo = fmax(a, j), hi = fmin(b, j + 1);
            if (hi > lo) wt[j] = (hi - lo) / (b - a);
        }
    } else {
        double p = (i + 0.5) * src / dst - 0.5;
        if (p <= 0) {
            wt[0] = 1;
        } else if (p >= src - 1) {
            wt[src - 1] = 1;
        } else {
            int j = (int)floor(p);
            wt[j] = 1 - (p - j);
            wt[j + 1] = p - j;
        }
    }
}

/* Every output pixel within rounding of the reference. */
static void check_against_reference(const px_image *src, int w, int h)
{
    px_image dst;
    T_EQ_INT(px_resize(src, w, h, &dst), 0);
    T_EQ_INT(dst.w, w);
    T_EQ_INT(dst.h, h);
    T_EQ_INT(dst.c, src->c);
    double *wx = malloc(sizeof(double) * src->w), *wy = malloc(sizeof(double) * src->h);
    for (int y = 0; y < h; y++) {
        ref_weights(src->h, h, y, wy);
        for (int x = 0; x < w; x++) {
            ref_weights(src->w, w, x, wx);
            for (int ch = 0; ch < src->c; ch++) {
                double v = 0;
                for (int j = 0; j < src->h; j++)
                    if (wy[j] != 0)
                        for (int i = 0; i < src->w; i++) v += wy[j] * wx[i] * at(src, i, j, ch);
                double got = at(&dst, x, y, ch);
                if (fabs(got - v) > 0.5 + 1e-9)
                    px_tfail(__FILE__, __LINE__,
                             "%dx%d -> %dx%d at (%d,%d,%d): got %.0f, want %.3f", src->w, src->h, w,
                             h, x, y, ch, got, v);
            }
        }
    }
    free(wx);
    free(wy);
    px_image_free(&dst);
}

TEST(t_constant_stays_constant)
{
    static const int sizes[][2] = {{1, 1}, {3, 2}, {17, 5}, {64, 64}, {5, 17}, {100, 3}};
    for (int c = 1; c <= 4; c += (c == 1 ? 2 : 1)) {
        px_image src;
        T_EQ_INT(px_image_alloc(&src, 13, 11, c, NULL, NULL, 0), 0);
        for (size_t i = 0; i < (size_t)13 * 11 * c; i++) src.px[i] = (uint8_t)(200 + i % c);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            px_image dst;
            T_EQ_INT(px_resize(&src, sizes[s][0], sizes[s][1], &dst), 0);
            for (size_t i = 0; i < (size_t)dst.w * dst.h * c; i++) T_EQ_INT(dst.px[i], 200 + i % c);
            px_image_free(&dst);
        }
        px_image_free(&src);
    }
}

TEST(t_integer_shrink_is_exact_mean)
{
    px_image src = make(12, 8, 3, 1);
    static const int sizes[][2] = {{6, 4}, {4, 2}, {3, 2}, {12, 4}, {1, 1}, {2, 8}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1], rx = 12 / w, ry = 8 / h;
        px_image dst;
        T_EQ_INT(px_resize(&src, w, h, &dst), 0);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < 3; ch++) {
                    unsigned sum = 0, n = (unsigned)(rx * ry);
                    for (int j = 0; j < ry; j++)
                        for (int i = 0; i < rx; i++) sum += at(&src, x * rx + i, y * ry + j, ch);
                    /* Round half up, in integers. */
                    T_EQ_INT(at(&dst, x, y, ch), (2 * sum + n) / (2 * n));
                }
        px_image_free(&dst);
    }
    px_image_free(&src);
}

TEST(t_exact_tie_rounds_up)
{
    /* 2x1 -> 1x1: (10 + 11) / 2 = 10.5 must give 11 on every run. */
    px_image src;
    T_EQ_INT(px_image_alloc(&src, 2, 1, 1, NULL, NULL, 0), 0);
    src.px[0] = 10;
    src.px[1] = 11;
    px_image dst;
    T_EQ_INT(px_resize(&src, 1, 1, &dst), 0);
    T_EQ_INT(dst.px[0], 11);
    px_image_free(&dst);
    px_image_free(&src);
}

TEST(t_non_integer_ratios_match_reference)
{
    px_image src = make(37, 23, 3, 2);
    check_against_reference(&src, 5, 4);   /* shrink both */
    check_against_reference(&src, 36, 22); /* barely shrink */
    check_against_reference(&src, 50, 31); /* enlarge both */
    check_against_reference(&src, 10, 60); /* shrink x, enlarge y */
    check_against_reference(&src, 80, 7);  /* enlarge x, shrink y */
    px_image_free(&src);
    px_image rgba = make(9, 9, 4, 3);
    check_against_reference(&rgba, 7, 7);
    check_against_reference(&rgba, 19, 4);
    px_image_free(&rgba);
}

TEST(t_bilinear_values)
{
    /* [0 255] -> 4: centres at -0.25 (clamp), 0.25, 0.75, 1.25 (clamp). */
    px_image src;
    T_EQ_INT(px_image_alloc(&src, 2, 1, 1, NULL, NULL, 0), 0);
    src.px[1] = 255;
    px_image dst;
    T_EQ_INT(px_resize(&src, 4, 1, &dst), 0);
    T_EQ_INT(dst.px[0], 0);
    T_EQ_INT(dst.px[1], 64);  /* 63.75 */
    T_EQ_INT(dst.px[2], 191); /* 191.25 */
    T_EQ_INT(dst.px[3], 255);
    px_image_free(&dst);
    px_image_free(&src);
}

TEST(t_one_pixel_sources)
{
    /* 1x1 -> anything is a fill; 1-wide enlarges only interpolate along y. */
    px_image one;
    T_EQ_INT(px_image_alloc(&one, 1, 1, 3, NULL, NULL, 0), 0);
    one.px[0] = 9, one.px[1] = 99, one.px[2] = 199;
    px_image dst;
    T_EQ_INT(px_resize(&one, 7, 3, &dst), 0);
    for (int i = 0; i < 21; i++) T_EQ_MEM(dst.px + 3 * i, one.px, 3);
    px_image_free(&dst);
    T_EQ_INT(px_resize(&one, 1, 1, &dst), 0);
    T_EQ_MEM(dst.px, one.px, 3);
    px_image_free(&dst);
    px_image_free(&one);

    px_image col = make(1, 5, 1, 4);
    T_EQ_INT(px_resize(&col, 4, 10, &dst), 0);
    for (int y = 0; y < 10; y++)
        for (int x = 1; x < 4; x++) T_EQ_INT(at(&dst, x, y, 0), at(&dst, 0, y, 0));
    px_image_free(&dst);
    check_against_reference(&col, 4, 10);
    check_against_reference(&col, 3, 1);
    px_image_free(&col);

    /* Everything to 1x1: the rounded mean of all pixels. */
    px_image src = make(7, 3, 1, 5);
    T_EQ_INT(px_resize(&src, 1, 1, &dst), 0);
    unsigned sum = 0;
    for (int i = 0; i < 21; i++) sum += src.px[i];
    T_EQ_INT(dst.px[0], (2 * sum + 21) / 42);
    px_image_free(&dst);
    px_image_free(&src);
}

TEST(t_resize_rejects)
{
    px_image src = make(4, 4, 3, 6), dst = {.w = 3, .px = (uint8_t *)1};
    T_EQ_INT(px_resize(&src, 0, 4, &dst), PX_EINVAL);
    T_TRUE(dst.px == NULL);
    T_EQ_INT(px_resize(&src, 4, -1, &dst), PX_EINVAL);
    T_EQ_INT(px_resize(&src, 1 << 23, 1, &dst), PX_EINVAL);
    px_image none = {0};
    T_EQ_INT(px_resize(&none, 4, 4, &dst), PX_EINVAL);
    T_EQ_INT(px_resize_mask(&src, 2, 2, &dst), PX_EINVAL); /* c = 3 is not a mask */
    T_TRUE(dst.px == NULL);
    px_image_free(&src);
}

/* A destination pixel overlapping a source hole must be a hole. */
static void check_mask_keeps_holes(const px_image *m, int w, int h)
{
    px_image d;
    T_EQ_INT(px_resize_mask(m, w, h, &d), 0);
    T_EQ_INT(d.c, 1);
    for (int i = 0; i < w * h; i++) T_TRUE(d.px[i] == 0 || d.px[i] == 255);
    for (int y = 0; y < m->h; y++)
        for (int x = 0; x < m->w; x++) {
            if (!at(m, x, y, 0)) continue;
            /* Destination pixels overlapping source pixel (x, y). */
            int x0 = (int)((long long)x * w / m->w), x1 = (int)(((long long)x + 1) * w - 1) / m->w;
            int y0 = (int)((long long)y * h / m->h), y1 = (int)(((long long)y + 1) * h - 1) / m->h;
            for (int j = y0; j <= y1; j++)
                for (int i = x0; i <= x1; i++)
                    if (at(&d, i, j, 0) != 255)
                        px_tfail(__FILE__, __LINE__, "%dx%d -> %dx%d: hole (%d,%d) lost at (%d,%d)",
                                 m->w, m->h, w, h, x, y, i, j);
        }
    px_image_free(&d);
}

TEST(t_mask_never_loses_a_hole)
{
    static const int sizes[][2] = {{5, 4}, {3, 3}, {1, 1}, {36, 22}, {50, 31}, {111, 7}, {2, 40}};
    for (unsigned seed = 1; seed <= 20; seed++) {
        px_image m;
        T_EQ_INT(px_image_alloc(&m, 37, 23, 1, NULL, NULL, 0), 0);
        srand(seed);
        /* A few isolated one-pixel holes, some with odd non-zero values. */
        for (int k = 0; k < 3; k++) m.px[rand() % (37 * 23)] = (uint8_t)(1 + rand() % 255);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            check_mask_keeps_holes(&m, sizes[s][0], sizes[s][1]);
        px_image_free(&m);
    }
}

TEST(t_mask_exact_cases)
{
    px_image m, d;
    T_EQ_INT(px_image_alloc(&m, 2, 2, 1, NULL, NULL, 0), 0);
    m.px[3] = 255; /* bottom-right */
    T_EQ_INT(px_resize_mask(&m, 6, 6, &d), 0);
    /* Integer enlarge: exactly the 3x3 bottom-right block. */
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 6; x++) T_EQ_INT(d.px[y * 6 + x], x >= 3 && y >= 3 ? 255 : 0);
    px_image_free(&d);
    /* Empty stays empty, and any hole survives a shrink to 1x1. */
    m.px[3] = 0;
    T_EQ_INT(px_resize_mask(&m, 1, 1, &d), 0);
    T_EQ_INT(d.px[0], 0);
    px_image_free(&d);
    m.px[0] = 1;
    T_EQ_INT(px_resize_mask(&m, 1, 1, &d), 0);
    T_EQ_INT(d.px[0], 255);
    px_image_free(&d);
    px_image_free(&m);
}

TEST(t_large_shrink_matches_reference_samples)
{
    /* A photo-sized shrink by a non-integer ratio, spot-checked. */
    px_image src = make(1024, 768, 3, 7), dst;
    T_EQ_INT(px_resize(&src, 333, 257, &dst), 0);
    double wx[1024], wy[768];
    for (int k = 0; k < 200; k++) {
        int x = (k * 97) % 333, y = (k * 61) % 257, ch = k % 3;
        ref_weights(1024, 333, x, wx);
        ref_weights(768, 257, y, wy);
        double v = 0;
        for (int j = 0; j < 768; j++)
            if (wy[j] != 0)
                for (int i = 0; i < 1024; i++)
                    if (wx[i] != 0) v += wy[j] * wx[i] * at(&src, i, j, ch);
        T_NEAR(at(&dst, x, y, ch), v, 0.5 + 1e-9);
    }
    px_image_free(&dst);
    px_image_free(&src);
}

TEST_MAIN(t_constant_stays_constant, t_integer_shrink_is_exact_mean, t_exact_tie_rounds_up,
          t_non_integer_ratios_match_reference, t_bilinear_values, t_one_pixel_sources,
          t_resize_rejects, t_mask_never_loses_a_hole, t_mask_exact_cases,
          t_large_shrink_matches_reference_samples)
