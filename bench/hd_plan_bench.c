/*
 * hd_plan_bench.c — what planning a large image costs the CPU before the
 * engine sees it (serve/hd.c): the mask's connected components
 * (px_mask_blobs) and the whole plan under CROP (the default: bucket 256,
 * merged windows) and ORIGINAL, for pixbench's seed-inpaint masks
 * (pb_mask_generate, 15-30 % coverage, seed 1) at one size.
 *
 *   hd_plan_bench [--size 1024] [--iters 40]
 *
 * Prints the median milliseconds per call of each, allocation and first
 * touch of the label map included (as a request pays them).
 */
#include "bench/payload.h"
#include "core/clock.h"
#include "image/image.h"
#include "image/mask.h"
#include "serve/hd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    int size = 1024, iters = 40;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: hd_plan_bench [--size 1024] [--iters 40]\n");
            return 2;
        }
    }
    if (size < 8 || iters < 1) return 2;
    px_image rgb;
    if (px_image_alloc(&rgb, size, size, 3, NULL, NULL, 0)) return 1;
    memset(rgb.px, 100, (size_t)size * size * 3);
    double *t[3];
    for (int k = 0; k < 3; k++) t[k] = calloc((size_t)iters, sizeof(double));
    for (int i = 0; i < iters; i++) {
        px_image mask;
        double cov;
        /* pixbench's payloads cycle through their masks by index */
        if (pb_mask_generate(size, size, 0.15, 0.30, 1, (uint64_t)(i % 2), &mask, &cov) < 0) return 1;
        int64_t t0 = px_now_ns();
        px_blob *b;
        int nb, *lab;
        if (px_mask_blobs(&mask, &b, &nb, &lab)) return 1;
        t[0][i] = px_ns_to_ms(px_now_ns() - t0);
        free(b), free(lab);
        for (int s = 0; s < 2; s++) {
            px_hd_params p;
            px_hd_defaults(&p);
            p.strategy = s ? PX_HD_ORIGINAL : PX_HD_CROP;
            p.crop_bucket = 256;
            px_hd_plan plan;
            char err[200];
            t0 = px_now_ns();
            if (px_hd_plan_make(&rgb, &mask, &p, &plan, err, sizeof err)) {
                fprintf(stderr, "hd_plan_bench: %s\n", err);
                return 1;
            }
            t[1 + s][i] = px_ns_to_ms(px_now_ns() - t0);
            px_hd_free(&plan);
        }
        free(mask.px);
    }
    printf("%dx%d, %d masks of 15-30 %%: blobs %.2f ms, plan CROP %.2f ms, plan ORIGINAL %.2f ms "
           "(medians of %d)\n",
           size, size, 2, median(t[0], iters), median(t[1], iters), median(t[2], iters), iters);
    for (int k = 0; k < 3; k++) free(t[k]);
    px_image_free(&rgb);
    return 0;
}
