/*
 * zimage_noise_bench.c — how long a request's initial latents take on the
 * host (a benchmark, not a test: it asserts nothing).
 *
 *   zimage_noise_bench [--sizes 512,1024,2048] [--reps N] [--threads N]
 *                      [--json FILE]
 *
 * For each image size (16 latent channels at 1/8 the size) times
 * zi_sampler_noise on the calling thread alone and over a pool of
 * --threads threads (default: one per CPU), alternated, and prints the
 * best of --reps runs of each (the least disturbed by other work on the
 * machine); --json appends one row per size. Both
 * engines draw a request's noise before its first step, so these
 * milliseconds are on every request's path (the CUDA engine's batch of 8
 * at 1024² draws 8 images' worth).
 */
#include "core/clock.h"
#include "core/pool.h"
#include "engine/zimage/sampler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *sizes = "512,1024,2048", *json = NULL;
    int reps = 9, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
            sizes = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json = argv[++i];
        else {
            fprintf(stderr, "usage: zimage_noise_bench [--sizes 512,1024,2048] [--reps N] "
                            "[--threads N] [--json FILE]\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (reps < 1) reps = 9;
    px_pool *pool = px_pool_create(threads);
    FILE *js = json ? fopen(json, "a") : NULL;
    if (!pool || (json && !js)) {
        fprintf(stderr, "zimage_noise_bench: %s\n", pool ? "cannot open --json" : "no threads");
        return 1;
    }
    for (const char *s = sizes; *s;) {
        int px = atoi(s);
        size_t n = (size_t)16 * (px / 8) * (px / 8);
        float *x = malloc(n * sizeof *x);
        double best[2] = {1e30, 1e30};
        for (int r = 0; r < reps && x; r++)
            for (int k = 0; k < 2; k++) {
                int64_t t0 = px_now_ns();
                zi_sampler_noise(k ? pool : NULL, (uint64_t)r, x, n);
                double ms = px_ns_to_ms(px_now_ns() - t0);
                if (ms < best[k]) best[k] = ms;
            }
        if (x) {
            double one = best[0], par = best[1];
            printf("%dx%d: %zu values  one thread %.2f ms  %d threads %.2f ms  (%.1fx)\n", px, px,
                   n, one, px_pool_threads(pool), par, one / par);
            if (js)
                fprintf(js,
                        "{\"size\":\"%dx%d\",\"values\":%zu,\"one_thread_ms\":%.3f,"
                        "\"threads\":%d,\"pool_ms\":%.3f,\"reps\":%d}\n",
                        px, px, n, one, px_pool_threads(pool), par, reps);
        }
        free(x);
        s = strchr(s, ',');
        if (!s) break;
        s++;
    }
    if (js) fclose(js);
    px_pool_destroy(pool);
    return 0;
}
