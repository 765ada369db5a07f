/*
 * classic_bench.c — speed of the classic engine on photo-like inputs (a
 * benchmark, not a test: it asserts nothing).
 *
 *   classic_bench [--reps N] [--threads N] [--seed S] [--sizes 640,1280,2560]
 *       For each size (640x480, 1280x960, 2560x1920) and each skimage
 *       photograph (astronaut, coffee, chelsea, resized), a seeded random
 *       mask covering 15-30 % of the image (thick blobs and strokes), then
 *       "auto", "patchmatch" and "telea" through the engine interface; prints
 *       milliseconds per image (the median over reps, then the mean over the
 *       photos) and PSNR inside the hole.
 *
 *   classic_bench --telea IN MASK OUT [--radius R] [--threads N]
 *       Runs Telea alone on files (any PNG/JPEG/WebP; mask binarised as the
 *       server does) and prints "ms=<time of the fill>". For
 *       bench/telea_vs_opencv.py.
 */
#include "core/err.h"
#include "core/pool.h"
#include "core/rng.h"
#include "engine/classic/telea.h"
#include "engine/engine.h"
#include "image/codec.h"
#include "image/image.h"
#include "image/mask.h"
#include "image/resize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SKIMAGE_DIR "/usr/lib/python3/dist-packages/skimage/data"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "classic_bench: %s: %s\n", what, err);
    exit(1);
}

/* Decodes a file as RGB (alpha dropped). */
static px_image load_rgb(const char *path)
{
    px_image img, rgb, alpha;
    char err[256];
    if (px_decode_file(path, NULL, &img, err, sizeof err)) die(path, err);
    if (px_image_split_alpha(&img, &rgb, &alpha)) die(path, "out of memory");
    px_image_free(&img);
    px_image_free(&alpha);
    return rgb;
}

static void mark_disc(px_image *m, double cx, double cy, double rx, double ry)
{
    int x0 = (int)floor(cx - rx), x1 = (int)ceil(cx + rx), y0 = (int)floor(cy - ry),
        y1 = (int)ceil(cy + ry);
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < m->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < m->w; x++) {
            double u = (x - cx) / rx, v = (y - cy) / ry;
            if (u * u + v * v <= 1.0) m->px[(size_t)y * m->w + x] = 255;
        }
}

static void mark_segment(px_image *m, double ax, double ay, double bx, double by, double width)
{
    double r = width / 2, dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    int x0 = (int)floor(fmin(ax, bx) - r), x1 = (int)ceil(fmax(ax, bx) + r);
    int y0 = (int)floor(fmin(ay, by) - r), y1 = (int)ceil(fmax(ay, by) + r);
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < m->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < m->w; x++) {
            double t = len2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            double ex = ax + t * dx - x, ey = ay + t * dy - y;
            if (ex * ex + ey * ey <= r * r) m->px[(size_t)y * m->w + x] = 255;
        }
}

/* Blobs (ellipses 3-9 % of the short side in radius) and strokes (polylines
 * 1-3 % of the short side wide) until a coverage drawn from [15 %, 30 %] is
 * reached. Sizes scale with the image so every resolution sees the same
 * kind of mask. */
static px_image random_mask(int w, int h, uint64_t seed, double *coverage)
{
    px_image m = {w, h, 1, calloc((size_t)w * h, 1)};
    if (!m.px) die("mask", "out of memory");
    px_rng r;
    px_rng_seed(&r, seed, 0x6d61736b);
    double want = 0.15 + 0.15 * px_rng_float(&r), s = (double)(w < h ? w : h);
    size_t need = (size_t)(want * w * h), have = 0;
    while (have < need) {
        double cx = px_rng_float(&r) * w, cy = px_rng_float(&r) * h;
        if (px_rng_float(&r) < 0.5) {
            mark_disc(&m, cx, cy, s * (0.03 + 0.06 * px_rng_float(&r)),
                      s * (0.03 + 0.06 * px_rng_float(&r)));
        } else {
            double width = s * (0.01 + 0.02 * px_rng_float(&r));
            int segs = 2 + (int)px_rng_below(&r, 3);
            for (int k = 0; k < segs; k++) {
                double nx = cx + (px_rng_float(&r) - 0.5) * 0.4 * s;
                double ny = cy + (px_rng_float(&r) - 0.5) * 0.4 * s;
                mark_segment(&m, cx, cy, nx, ny, width);
                cx = nx, cy = ny;
            }
        }
        have = px_mask_count(&m);
    }
    *coverage = (double)have / ((double)w * h);
    return m;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int telea_cli(const char *in, const char *maskp, const char *outp, int radius, px_pool *pool)
{
    char err[256];
    px_image img = load_rgb(in), raw, mask;
    if (px_decode_file(maskp, NULL, &raw, err, sizeof err)) die(maskp, err);
    if (px_mask_binarise(&raw, &mask)) die(maskp, "out of memory");
    if (mask.w != img.w || mask.h != img.h) die(maskp, "mask and image sizes differ");
    px_image out;
    if (px_image_alloc(&out, img.w, img.h, 3, NULL, err, sizeof err)) die("output", err);
    double t0 = now_ms();
    int rc = px_telea_inpaint(&img, &mask, radius, pool, NULL, &out, err, sizeof err);
    double t1 = now_ms();
    if (rc) die("telea", err);
    if (px_encode_file(outp, &out, NULL, err, sizeof err)) die(outp, err);
    printf("ms=%.3f\n", t1 - t0);
    px_image_free(&img);
    px_image_free(&raw);
    px_image_free(&mask);
    px_image_free(&out);
    return 0;
}

int main(int argc, char **argv)
{
    int reps = 1, threads = 0, radius = PX_TELEA_RADIUS;
    uint64_t seed = 1;
    const char *sizes = "640,1280,2560";
    const char *telea_args[3] = {NULL, NULL, NULL};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) sizes = argv[++i];
        else if (!strcmp(argv[i], "--radius") && i + 1 < argc) radius = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--telea") && i + 3 < argc) {
            for (int k = 0; k < 3; k++) telea_args[k] = argv[++i];
        } else {
            fprintf(stderr, "usage: classic_bench [--reps N] [--threads N] [--seed S] "
                            "[--sizes 640,1280,2560]\n"
                            "       classic_bench --telea IN MASK OUT [--radius R] [--threads N]\n");
            return 2;
        }
    }
    px_pool *pool = px_pool_create(threads);
    if (!pool) die("pool", "cannot start threads");
    if (telea_args[0]) {
        int rc = telea_cli(telea_args[0], telea_args[1], telea_args[2], radius, pool);
        px_pool_destroy(pool);
        return rc;
    }
    if (reps < 1) reps = 1;

    static const char *photos[] = {"astronaut.png", "coffee.png", "chelsea.png"};
    static const char *methods[] = {"auto", "patchmatch", "telea"};
    enum { NPHOTO = 3, NMETHOD = 3 };
    px_image src[NPHOTO];
    for (int p = 0; p < NPHOTO; p++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", SKIMAGE_DIR, photos[p]);
        src[p] = load_rgb(path);
    }
    px_engine *e;
    char err[256];
    px_engine_config cfg = {.pool = pool};
    if (px_engine_open("classic", &cfg, &e, err, sizeof err)) die("engine", err);
    printf("classic_bench: photos astronaut, coffee, chelsea; masks 15-30 %% (seed %llu); "
           "%d threads; median of %d run(s)\n",
           (unsigned long long)seed, px_pool_threads(pool), reps);
    printf("%-10s %-11s %10s %10s   %s\n", "size", "method", "ms/image", "PSNR dB", "per photo (ms)");

    char list[64];
    snprintf(list, sizeof list, "%s", sizes);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int w = atoi(tok), h = w * 3 / 4;
        if (w < 8) continue;
        px_image img[NPHOTO], mask[NPHOTO], out;
        double cover[NPHOTO];
        for (int p = 0; p < NPHOTO; p++) {
            if (px_resize(&src[p], w, h, &img[p])) die("resize", "failed");
            mask[p] = random_mask(w, h, seed * 1000 + (uint64_t)p * 100 + (uint64_t)w, &cover[p]);
        }
        if (px_image_alloc(&out, w, h, 3, NULL, err, sizeof err)) die("output", err);
        for (int m = 0; m < NMETHOD; m++) {
            double per[NPHOTO], psnr = 0, mean = 0;
            for (int p = 0; p < NPHOTO; p++) {
                double *t = calloc((size_t)reps, sizeof *t);
                for (int r = 0; r < reps; r++) {
                    px_engine_item it = {.image = &img[p], .mask = &mask[p], .out = &out,
                                         .seed = seed, .method = methods[m]};
                    double t0 = now_ms();
                    if (px_engine_run(e, &it, 1)) die(methods[m], it.err);
                    t[r] = now_ms() - t0;
                }
                qsort(t, (size_t)reps, sizeof *t, cmp_dbl);
                per[p] = t[reps / 2];
                free(t);
                mean += per[p] / NPHOTO;
                psnr += px_image_psnr(&img[p], &out, &mask[p]) / NPHOTO;
            }
            printf("%4dx%-5d %-11s %10.0f %10.2f   %.0f / %.0f / %.0f   (holes %.0f/%.0f/%.0f %%)\n",
                   w, h, methods[m], mean, psnr, per[0], per[1], per[2], 100 * cover[0],
                   100 * cover[1], 100 * cover[2]);
            fflush(stdout);
        }
        for (int p = 0; p < NPHOTO; p++) {
            px_image_free(&img[p]);
            free(mask[p].px);
        }
        px_image_free(&out);
    }
    for (int p = 0; p < NPHOTO; p++) px_image_free(&src[p]);
    px_engine_close(e);
    px_pool_destroy(pool);
    return 0;
}
