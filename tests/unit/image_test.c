/*
 * image_test.c — limits (codes and messages), allocation, alpha split/merge,
 * the eight EXIF orientations and compose.
 */
#include "core/err.h"
#include "harness.h"
#include "image/image.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

static px_image make(int w, int h, int c, unsigned seed)
{
    px_image img;
    T_EQ_INT(px_image_alloc(&img, w, h, c, NULL, NULL, 0), 0);
    for (size_t i = 0; i < (size_t)w * h * c; i++) img.px[i] = (uint8_t)(i * 31 + seed * 17 + 5);
    return img;
}

TEST(t_limits_default)
{
    px_img_limits l = px_img_limits_default();
    T_EQ_INT(l.max_pixels, 4096ull * 4096ull);
    T_EQ_INT(l.max_side, 8192);
}

TEST(t_check_messages)
{
    char err[200];
    T_EQ_INT(px_image_check(9000, 9000, 3, NULL, err, sizeof err), PX_ETOOBIG);
    T_EQ_STR(err, "image is 9000x9000 (81.0 megapixels), above the limit of 16.8 megapixels");
    T_EQ_INT(px_image_check(8193, 16, 3, NULL, err, sizeof err), PX_ETOOBIG);
    T_EQ_STR(err, "image is 8193x16, above the limit of 8192 px a side");
    T_EQ_INT(px_image_check(16, 8193, 1, NULL, err, sizeof err), PX_ETOOBIG);
    T_CONTAINS(err, "8192 px a side");
    /* The exact caps are allowed. */
    T_EQ_INT(px_image_check(4096, 4096, 4, NULL, err, sizeof err), 0);
    T_EQ_INT(px_image_check(8192, 2048, 4, NULL, err, sizeof err), 0);
    T_EQ_INT(px_image_check(4097, 4096, 4, NULL, err, sizeof err), PX_ETOOBIG);

    px_img_limits small = {.max_pixels = 1000, .max_side = 100};
    T_EQ_INT(px_image_check(40, 25, 3, &small, err, sizeof err), 0);
    T_EQ_INT(px_image_check(40, 26, 3, &small, err, sizeof err), PX_ETOOBIG);
    T_EQ_STR(err, "image is 40x26 (1040 pixels), above the limit of 1000 pixels");
    T_EQ_INT(px_image_check(101, 1, 3, &small, err, sizeof err), PX_ETOOBIG);
    T_CONTAINS(err, "above the limit of 100 px a side");
    /* A zeroed struct means the defaults, not "nothing allowed". */
    px_img_limits zero = {0};
    T_EQ_INT(px_image_check(4096, 4096, 3, &zero, err, sizeof err), 0);
    T_EQ_INT(px_image_check(8193, 1, 3, &zero, err, sizeof err), PX_ETOOBIG);
}

TEST(t_check_invalid)
{
    char err[200];
    T_EQ_INT(px_image_check(0, 5, 3, NULL, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "empty size (0x5)");
    T_EQ_INT(px_image_check(5, -1, 3, NULL, err, sizeof err), PX_EINVAL);
    T_EQ_INT(px_image_check(5, 5, 2, NULL, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "2 channels");
    T_EQ_INT(px_image_check(5, 5, 0, NULL, err, sizeof err), PX_EINVAL);
    /* NULL err is allowed. */
    T_EQ_INT(px_image_check(5, 5, 5, NULL, NULL, 0), PX_EINVAL);
}

TEST(t_check_overflow)
{
    /* With the policy caps lifted only arithmetic can refuse: w*h*c of ints
     * fits a 64-bit size_t, but not a 32-bit one. */
    px_img_limits none = {.max_pixels = UINT64_MAX, .max_side = INT_MAX};
    char err[200];
    int rc = px_image_check(INT_MAX, INT_MAX, 4, &none, err, sizeof err);
    T_EQ_INT(rc, SIZE_MAX > UINT32_MAX ? 0 : PX_ETOOBIG);
    T_EQ_INT(px_image_check(65536, 65536, 4, &none, err, sizeof err),
             SIZE_MAX > UINT32_MAX ? 0 : PX_ETOOBIG);
}

TEST(t_alloc_refuses_first)
{
    px_image img = {.w = 7, .px = (uint8_t *)1};
    char err[200];
    T_EQ_INT(px_image_alloc(&img, 100000, 100000, 4, NULL, err, sizeof err), PX_ETOOBIG);
    T_TRUE(img.px == NULL);
    T_EQ_INT(img.w, 0);
    T_CONTAINS(err, "100000x100000 (10000.0 megapixels)");
    T_EQ_INT(px_image_alloc(&img, 0, 1, 1, NULL, err, sizeof err), PX_EINVAL);
    T_TRUE(img.px == NULL);
}

TEST(t_alloc_copy_free)
{
    px_image a;
    T_EQ_INT(px_image_alloc(&a, 5, 3, 4, NULL, NULL, 0), 0);
    T_EQ_INT(a.w, 5);
    T_EQ_INT(a.h, 3);
    T_EQ_INT(a.c, 4);
    for (int i = 0; i < 60; i++) T_EQ_INT(a.px[i], 0);
    for (int i = 0; i < 60; i++) a.px[i] = (uint8_t)i;
    px_image b;
    T_EQ_INT(px_image_copy(&a, &b), 0);
    T_TRUE(b.px != a.px);
    T_EQ_INT(b.w * b.h * b.c, 60);
    T_EQ_MEM(b.px, a.px, 60);
    px_image_free(&a);
    T_TRUE(a.px == NULL);
    T_EQ_INT(a.w, 0);
    px_image_free(&a); /* twice is harmless */
    px_image_free(&b);
    px_image empty = {0};
    T_EQ_INT(px_image_copy(&empty, &b), PX_EINVAL);
}

TEST(t_split_merge)
{
    px_image rgba = make(4, 3, 4, 1), rgb, alpha, back;
    T_EQ_INT(px_image_split_alpha(&rgba, &rgb, &alpha), 0);
    T_EQ_INT(rgb.c, 3);
    T_EQ_INT(alpha.c, 1);
    for (int i = 0; i < 12; i++) {
        T_EQ_MEM(rgb.px + 3 * i, rgba.px + 4 * i, 3);
        T_EQ_INT(alpha.px[i], rgba.px[4 * i + 3]);
    }
    T_EQ_INT(px_image_merge_alpha(&rgb, &alpha, &back), 0);
    T_EQ_INT(back.c, 4);
    T_EQ_MEM(back.px, rgba.px, 48);
    px_image_free(&back);

    /* No alpha: merge gives an RGB copy. */
    T_EQ_INT(px_image_merge_alpha(&rgb, NULL, &back), 0);
    T_EQ_INT(back.c, 3);
    T_EQ_MEM(back.px, rgb.px, 36);
    px_image_free(&back);

    /* Mismatched alpha is refused, out zeroed. */
    px_image small = make(2, 2, 1, 3);
    T_EQ_INT(px_image_merge_alpha(&rgb, &small, &back), PX_EINVAL);
    T_TRUE(back.px == NULL);
    px_image_free(&small);
    px_image_free(&rgb);
    px_image_free(&alpha);
    px_image_free(&rgba);
}

TEST(t_split_gray_and_rgb)
{
    px_image gray = make(3, 2, 1, 2), rgb, alpha;
    T_EQ_INT(px_image_split_alpha(&gray, &rgb, &alpha), 0);
    T_TRUE(alpha.px == NULL);
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 3; k++) T_EQ_INT(rgb.px[3 * i + k], gray.px[i]);
    px_image_free(&rgb);
    px_image col = make(3, 2, 3, 4);
    T_EQ_INT(px_image_split_alpha(&col, &rgb, &alpha), 0);
    T_TRUE(alpha.px == NULL);
    T_EQ_MEM(rgb.px, col.px, 18);
    px_image_free(&rgb);
    col.c = 2;
    T_EQ_INT(px_image_split_alpha(&col, &rgb, &alpha), PX_EINVAL);
    col.c = 3;
    px_image_free(&col);
    px_image_free(&gray);
}

/* The eight orientations of the 3x2 image "123/456", as viewers show them
 * (checked against PIL's ImageOps.exif_transpose). */
TEST(t_orient_all)
{
    static const struct {
        int w, h;
        uint8_t px[6];
    } want[9] = {
        [1] = {3, 2, {1, 2, 3, 4, 5, 6}}, [2] = {3, 2, {3, 2, 1, 6, 5, 4}},
        [3] = {3, 2, {6, 5, 4, 3, 2, 1}}, [4] = {3, 2, {4, 5, 6, 1, 2, 3}},
        [5] = {2, 3, {1, 4, 2, 5, 3, 6}}, [6] = {2, 3, {4, 1, 5, 2, 6, 3}},
        [7] = {2, 3, {6, 3, 5, 2, 4, 1}}, [8] = {2, 3, {3, 6, 2, 5, 1, 4}},
    };
    for (int o = 1; o <= 8; o++) {
        for (int c = 1; c <= 4; c += 3) { /* gray and RGBA: same placement */
            px_image img;
            T_EQ_INT(px_image_alloc(&img, 3, 2, c, NULL, NULL, 0), 0);
            for (int i = 0; i < 6; i++)
                for (int k = 0; k < c; k++) img.px[i * c + k] = (uint8_t)(i + 1 + 10 * k);
            T_EQ_INT(px_image_orient(&img, o), 0);
            T_EQ_INT(img.w, want[o].w);
            T_EQ_INT(img.h, want[o].h);
            for (int i = 0; i < 6; i++)
                for (int k = 0; k < c; k++)
                    if (img.px[i * c + k] != want[o].px[i] + 10 * k)
                        px_tfail(__FILE__, __LINE__, "orientation %d c=%d pixel %d channel %d: %d",
                                 o, c, i, k, img.px[i * c + k]);
            px_image_free(&img);
        }
    }
}

TEST(t_orient_inverse_pairs)
{
    /* 6 then 8 (and 5, 7, 2, 3, 4 twice) give back the original. */
    static const int pairs[][2] = {{6, 8}, {8, 6}, {5, 5}, {7, 7}, {2, 2}, {3, 3}, {4, 4}};
    px_image ref = make(7, 5, 3, 9);
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        px_image img;
        T_EQ_INT(px_image_copy(&ref, &img), 0);
        T_EQ_INT(px_image_orient(&img, pairs[i][0]), 0);
        T_EQ_INT(px_image_orient(&img, pairs[i][1]), 0);
        T_EQ_INT(img.w, 7);
        T_EQ_INT(img.h, 5);
        T_EQ_MEM(img.px, ref.px, 7 * 5 * 3);
        px_image_free(&img);
    }
    px_image_free(&ref);
}

TEST(t_orient_noop)
{
    px_image img = make(4, 3, 3, 6);
    uint8_t *before = img.px;
    px_image ref;
    T_EQ_INT(px_image_copy(&img, &ref), 0);
    static const int noops[] = {1, 0, 9, -3, 1000};
    for (size_t i = 0; i < sizeof noops / sizeof noops[0]; i++) {
        T_EQ_INT(px_image_orient(&img, noops[i]), 0);
        T_TRUE(img.px == before);
        T_EQ_INT(img.w, 4);
        T_EQ_MEM(img.px, ref.px, 36);
    }
    px_image_free(&img);
    px_image_free(&ref);
}

TEST(t_compose)
{
    px_image orig = make(5, 4, 3, 1), fill = make(5, 4, 3, 2), mask, out;
    T_EQ_INT(px_image_alloc(&mask, 5, 4, 1, NULL, NULL, 0), 0);
    T_EQ_INT(px_image_alloc(&out, 5, 4, 3, NULL, NULL, 0), 0);
    for (int i = 0; i < 20; i++) mask.px[i] = i % 3 == 0 ? (i % 2 ? 255 : 1) : 0;
    px_image_compose(&orig, &fill, &mask, &out);
    for (int i = 0; i < 20; i++)
        T_EQ_MEM(out.px + 3 * i, (mask.px[i] ? fill.px : orig.px) + 3 * i, 3);
    /* out aliasing fill, as the engines use it. */
    px_image keep;
    T_EQ_INT(px_image_copy(&fill, &keep), 0);
    px_image_compose(&orig, &fill, &mask, &fill);
    T_EQ_MEM(fill.px, out.px, 60);
    /* And aliasing orig. */
    px_image_compose(&orig, &keep, &mask, &orig);
    T_EQ_MEM(orig.px, out.px, 60);
    px_image_free(&keep);
    px_image_free(&orig);
    px_image_free(&fill);
    px_image_free(&mask);
    px_image_free(&out);
}

TEST(t_psnr)
{
    px_image a = make(8, 4, 3, 1), b;
    T_EQ_INT(px_image_copy(&a, &b), 0);
    T_TRUE(isinf(px_image_psnr(&a, &b, NULL)));
    /* One value off by 5 in 8*4*3 = 96: MSE 25/96 -> 10 log10(255^2 * 96 / 25). */
    b.px[7] = (uint8_t)(a.px[7] < 128 ? a.px[7] + 5 : a.px[7] - 5);
    T_NEAR(px_image_psnr(&a, &b, NULL), 10.0 * log10(65025.0 * 96.0 / 25.0), 1e-9);
    /* Masked: only pixel 2 (holding value 7) counts -> MSE 25/3. */
    px_image m;
    T_EQ_INT(px_image_alloc(&m, 8, 4, 1, NULL, NULL, 0), 0);
    m.px[2] = 255;
    T_NEAR(px_image_psnr(&a, &b, &m), 10.0 * log10(65025.0 * 3.0 / 25.0), 1e-9);
    m.px[2] = 0;
    m.px[0] = 255;
    T_TRUE(isinf(px_image_psnr(&a, &b, &m)));
    m.px[0] = 0;
    T_TRUE(isnan(px_image_psnr(&a, &b, &m)));
    px_image_free(&a);
    px_image_free(&b);
    px_image_free(&m);
}

TEST_MAIN(t_limits_default, t_check_messages, t_check_invalid, t_check_overflow,
          t_alloc_refuses_first, t_alloc_copy_free, t_split_merge, t_split_gray_and_rgb,
          t_orient_all, t_orient_inverse_pairs, t_orient_noop, t_compose, t_psnr)
