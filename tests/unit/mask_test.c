/*
 * mask_test.c — binarisation rules, disc dilation, the exact distance
 * transform against brute force, 8-connected blobs and thickness.
 */
#include "core/err.h"
#include "core/rng.h"
#include "harness.h"
#include "image/mask.h"

#include <math.h>
#include <stdlib.h>

static px_image mk(int w, int h, int c)
{
    px_image m = {w, h, c, calloc((size_t)w * h * c, 1)};
    return m;
}

static void freeimg(px_image *m)
{
    free(m->px);
    m->px = NULL;
}

static px_image random_mask(int w, int h, px_rng *r, uint32_t per_mille)
{
    px_image m = mk(w, h, 1);
    for (int i = 0; i < w * h; i++) m.px[i] = px_rng_below(r, 1000) < per_mille ? 255 : 0;
    return m;
}

TEST(t_binarise_gray_and_rgb)
{
    px_image g = mk(4, 1, 1);
    g.px[1] = 1;
    g.px[3] = 200;
    px_image out;
    T_EQ_INT(px_mask_binarise(&g, &out), 0);
    T_EQ_INT(out.c, 1);
    const uint8_t want_g[4] = {0, 255, 0, 255};
    T_EQ_MEM(out.px, want_g, 4);
    T_EQ_INT(px_mask_count(&out), 2);
    freeimg(&out);

    px_image rgb = mk(4, 1, 3);
    rgb.px[3 * 1 + 2] = 7;  /* blue only */
    rgb.px[3 * 2 + 0] = 255; /* red only */
    T_EQ_INT(px_mask_binarise(&rgb, &out), 0);
    const uint8_t want_rgb[4] = {0, 255, 255, 0};
    T_EQ_MEM(out.px, want_rgb, 4);
    freeimg(&out);
    freeimg(&g);
    freeimg(&rgb);
}

TEST(t_binarise_rgba)
{
    /* Translucent layer: alpha decides, colour is ignored. */
    px_image a = mk(4, 1, 4);
    uint8_t px[16] = {255, 255, 255, 0, /* white but transparent: keep */
                      0, 0, 0, 1,       /* black, barely visible: hole */
                      0, 0, 0, 255,     /* opaque black: hole (alpha > 0) */
                      9, 9, 9, 128};
    memcpy(a.px, px, 16);
    px_image out;
    T_EQ_INT(px_mask_binarise(&a, &out), 0);
    const uint8_t want_a[4] = {0, 255, 255, 255};
    T_EQ_MEM(out.px, want_a, 4);
    freeimg(&out);

    /* Fully opaque: alpha carries nothing, colour decides. */
    uint8_t px2[16] = {0, 0, 0, 255, 0, 3, 0, 255, 0, 0, 0, 255, 255, 255, 255, 255};
    memcpy(a.px, px2, 16);
    T_EQ_INT(px_mask_binarise(&a, &out), 0);
    const uint8_t want_o[4] = {0, 255, 0, 255};
    T_EQ_MEM(out.px, want_o, 4);
    freeimg(&out);
    freeimg(&a);
}

TEST(t_dilate_disc)
{
    px_image m = mk(9, 9, 1);
    m.px[4 * 9 + 4] = 255;
    px_image d;
    T_EQ_INT(px_mask_dilate(&m, 2, &d), 0);
    /* Offsets with dx^2 + dy^2 <= 4: 13 pixels; (1,1) in, (2,1) out. */
    T_EQ_INT(px_mask_count(&d), 13);
    T_EQ_INT(d.px[5 * 9 + 5], 255);
    T_EQ_INT(d.px[5 * 9 + 6], 0);
    T_EQ_INT(d.px[4 * 9 + 6], 255);
    freeimg(&d);
    T_EQ_INT(px_mask_dilate(&m, 0, &d), 0);
    T_EQ_MEM(d.px, m.px, 81);
    freeimg(&d);
    freeimg(&m);
}

TEST(t_dilate_matches_brute_force)
{
    px_rng r;
    px_rng_seed(&r, 5, 0);
    for (int iter = 0; iter < 20; iter++) {
        int w = 1 + (int)px_rng_below(&r, 40), h = 1 + (int)px_rng_below(&r, 40);
        int rad = (int)px_rng_below(&r, 6);
        px_image m = random_mask(w, h, &r, 20);
        px_image d;
        T_EQ_INT(px_mask_dilate(&m, rad, &d), 0);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int want = 0;
                for (int v = 0; v < h && !want; v++)
                    for (int u = 0; u < w; u++)
                        if (m.px[v * w + u] && (u - x) * (u - x) + (v - y) * (v - y) <= rad * rad) {
                            want = 255;
                            break;
                        }
                T_EQ_INT(d.px[y * w + x], want);
            }
        freeimg(&d);
        freeimg(&m);
    }
}

TEST(t_distance_matches_brute_force)
{
    px_rng r;
    px_rng_seed(&r, 11, 0);
    for (int iter = 0; iter < 60; iter++) {
        int w = 1 + (int)px_rng_below(&r, 48), h = 1 + (int)px_rng_below(&r, 48);
        /* From nearly all holes to nearly none, so long gaps occur. */
        uint32_t density = 1000 - (uint32_t)px_rng_below(&r, 60) * (iter % 3 == 0 ? 1 : 16);
        px_image m = random_mask(w, h, &r, density);
        if (px_mask_count(&m) == (size_t)w * h) m.px[px_rng_below(&r, (uint32_t)(w * h))] = 0;
        float *d;
        T_EQ_INT(px_mask_distance(&m, &d), 0);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double best = INFINITY;
                for (int v = 0; v < h; v++)
                    for (int u = 0; u < w; u++)
                        if (!m.px[v * w + u]) {
                            double dd = sqrt((double)(u - x) * (u - x) + (double)(v - y) * (v - y));
                            best = dd < best ? dd : best;
                        }
                T_NEAR(d[y * w + x], best, 1e-4);
            }
        free(d);
        freeimg(&m);
    }
}

TEST(t_distance_all_hole_uses_border)
{
    px_image m = mk(5, 3, 1);
    memset(m.px, 255, 15);
    float *d;
    T_EQ_INT(px_mask_distance(&m, &d), 0);
    /* Distance to the frame of known pixels just outside the image. */
    const float want[15] = {1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1};
    for (int i = 0; i < 15; i++) T_NEAR(d[i], want[i], 1e-6);
    free(d);
    T_NEAR(px_mask_thickness(&m), 2.0, 1e-6);
    freeimg(&m);
}

TEST(t_blobs_8_connected_raster_order)
{
    /*  . . . . . . . .
     *  . . # . . . # .     blob 1: (2,1),(3,2), joined only diagonally
     *  . . . # . . # .     blob 2: column x=6, rows 1..2
     *  # . . . . . . .     blob 3: (0,3) alone
     *  . . . . . # # #     blob 4: row 4, x=5..7
     */
    px_image m = mk(8, 5, 1);
    int pts[][2] = {{2, 1}, {3, 2}, {6, 1}, {6, 2}, {0, 3}, {5, 4}, {6, 4}, {7, 4}};
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) m.px[pts[i][1] * 8 + pts[i][0]] = 255;
    px_blob *b;
    int nb, *lab;
    T_EQ_INT(px_mask_blobs(&m, &b, &nb, &lab), 0);
    T_EQ_INT(nb, 4);
    for (int i = 0; i < nb; i++) T_EQ_INT(b[i].label, i + 1);
    T_EQ_INT(b[0].area, 2);
    T_TRUE(b[0].x0 == 2 && b[0].y0 == 1 && b[0].x1 == 4 && b[0].y1 == 3);
    T_EQ_INT(b[1].area, 2);
    T_TRUE(b[1].x0 == 6 && b[1].y0 == 1 && b[1].x1 == 7 && b[1].y1 == 3);
    T_TRUE(b[2].x0 == 0 && b[2].y0 == 3 && b[2].x1 == 1 && b[2].y1 == 4);
    T_TRUE(b[3].x0 == 5 && b[3].y0 == 4 && b[3].x1 == 8 && b[3].y1 == 5 && b[3].area == 3);
    T_EQ_INT(lab[2 * 8 + 3], 1);
    T_EQ_INT(lab[1 * 8 + 6], 2);
    T_EQ_INT(lab[0], 0);
    free(b);
    free(lab);
    freeimg(&m);
}

TEST(t_blobs_merge_u_shape_and_empty)
{
    /* A "U" whose arms get different provisional labels, merged at the
     * bottom; then a W shape that needs chains of merges. */
    px_image m = mk(7, 4, 1);
    const char *rows[] = {"#.#.#.#", "#.#.#.#", "#.#.#.#", "#######"};
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 7; x++) m.px[y * 7 + x] = rows[y][x] == '#' ? 255 : 0;
    px_blob *b;
    int nb, *lab;
    T_EQ_INT(px_mask_blobs(&m, &b, &nb, &lab), 0);
    T_EQ_INT(nb, 1);
    T_EQ_INT(b[0].area, 4 * 3 + 7);
    T_TRUE(b[0].x0 == 0 && b[0].y0 == 0 && b[0].x1 == 7 && b[0].y1 == 4);
    for (int i = 0; i < 28; i++) T_EQ_INT(lab[i], m.px[i] ? 1 : 0);
    free(b);
    free(lab);
    memset(m.px, 0, 28);
    T_EQ_INT(px_mask_blobs(&m, &b, &nb, NULL), 0);
    T_EQ_INT(nb, 0);
    T_TRUE(b == NULL);
    freeimg(&m);
}

TEST(t_blobs_huge_snake_no_recursion)
{
    /* A 1500x1500 serpentine: one blob of over a million pixels whose
     * provisional labels all have to be chained together. */
    int w = 1500, h = 1500;
    px_image m = mk(w, h, 1);
    for (int y = 0; y < h; y += 2) {
        memset(m.px + (size_t)y * w, 255, (size_t)w);
        if (y + 1 < h) m.px[(size_t)(y + 1) * w + ((y / 2) % 2 ? 0 : w - 1)] = 255;
    }
    px_blob *b;
    int nb;
    T_EQ_INT(px_mask_blobs(&m, &b, &nb, NULL), 0);
    T_EQ_INT(nb, 1);
    T_EQ_INT((size_t)b[0].area, px_mask_count(&m));
    free(b);
    freeimg(&m);
}

/* px_mask_blobs against a flood fill: the same components, labelled in
 * raster order of their first pixels, with the same areas and boxes. */
static void blobs_match_flood_fill(const px_image *n)
{
    int w = n->w, h = n->h, nb, *lab;
    px_blob *b;
    T_EQ_INT(px_mask_blobs(n, &b, &nb, &lab), 0);
    int *seen = calloc((size_t)w * h, sizeof *seen), *stack = malloc((size_t)w * h * sizeof *stack);
    int count = 0;
    for (int i = 0; i < w * h; i++) {
        if (!n->px[i] || seen[i]) continue;
        count++;
        int sp = 0, area = 0, x0 = w, y0 = h, x1 = 0, y1 = 0;
        stack[sp++] = i;
        seen[i] = 1;
        while (sp) {
            int p = stack[--sp], x = p % w, y = p / w;
            area++;
            x0 = x < x0 ? x : x0, y0 = y < y0 ? y : y0;
            x1 = x + 1 > x1 ? x + 1 : x1, y1 = y + 1 > y1 ? y + 1 : y1;
            T_EQ_INT(lab[p], count); /* raster order of first pixels */
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int u = x + dx, v = y + dy;
                    if (u < 0 || v < 0 || u >= w || v >= h) continue;
                    int q = v * w + u;
                    if (n->px[q] && !seen[q]) {
                        seen[q] = 1;
                        stack[sp++] = q;
                    }
                }
        }
        T_EQ_INT(b[count - 1].area, area);
        T_TRUE(b[count - 1].x0 == x0 && b[count - 1].y0 == y0 && b[count - 1].x1 == x1 &&
               b[count - 1].y1 == y1);
    }
    for (int i = 0; i < w * h; i++)
        if (!n->px[i]) T_EQ_INT(lab[i], 0);
    T_EQ_INT(nb, count);
    free(seen);
    free(stack);
    free(lab);
    free(b);
}

TEST(t_blobs_match_flood_fill)
{
    /* Noise from sparse to dense (long runs that touch at their ends and
     * diagonally), narrow images (a run is the whole row), and boxes. */
    px_rng r;
    px_rng_seed(&r, 3, 1);
    static const int shapes[][3] = {{200, 150, 450}, {200, 150, 120}, {200, 150, 800},
                                    {1, 90, 500},    {2, 70, 600},    {97, 3, 700}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        px_image n = random_mask(shapes[k][0], shapes[k][1], &r, (uint32_t)shapes[k][2]);
        blobs_match_flood_fill(&n);
        freeimg(&n);
    }
    px_image m = mk(160, 120, 1);
    for (int i = 0; i < 25; i++) {
        int x = (int)px_rng_below(&r, 150), y = (int)px_rng_below(&r, 110);
        int bw = 1 + (int)px_rng_below(&r, 30), bh = 1 + (int)px_rng_below(&r, 20);
        for (int v = y; v < y + bh && v < 120; v++)
            for (int u = x; u < x + bw && u < 160; u++) m.px[v * 160 + u] = 255;
    }
    blobs_match_flood_fill(&m);
    freeimg(&m);
}

TEST(t_thickness)
{
    px_image m = mk(40, 30, 1);
    T_NEAR(px_mask_thickness(&m), 0.0, 0);
    /* A horizontal stroke 5 rows thick: the centre row is 3 from known. */
    for (int y = 10; y < 15; y++) memset(m.px + y * 40 + 5, 255, 30);
    T_NEAR(px_mask_thickness(&m), 3.0, 1e-6);
    /* A 15x15 square: centre is 8 from the nearest known pixel. */
    memset(m.px, 0, 40 * 30);
    for (int y = 5; y < 20; y++) memset(m.px + y * 40 + 10, 255, 15);
    T_NEAR(px_mask_thickness(&m), 8.0, 1e-6);
    freeimg(&m);
}

TEST_MAIN(t_binarise_gray_and_rgb, t_binarise_rgba, t_dilate_disc, t_dilate_matches_brute_force,
          t_distance_matches_brute_force, t_distance_all_hole_uses_border,
          t_blobs_8_connected_raster_order, t_blobs_merge_u_shape_and_empty,
          t_blobs_huge_snake_no_recursion, t_blobs_match_flood_fill, t_thickness)
