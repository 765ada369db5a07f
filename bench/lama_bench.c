/*
 * lama_bench.c — ms per image and peak RSS of the "lama" engine, through the
 * engine interface (pre-processing, network, quantisation and compose), on
 * the same synthetic image and mask as tools/lama_reference.py's bench.
 *
 *   build/release/bench/lama_bench WEIGHTS.safetensors [WxH] [repeats] [threads]
 *
 * One warm-up run (it builds the plan for the shape) is timed separately;
 * prints one JSON line: all repeat times, the median, plan build time, peak
 * RSS after loading, peak RSS of loading and of inference (VmHWM reset in
 * between) and the engine's memory estimate. A benchmark, not a test.
 */
#include "core/clock.h"
#include "core/pool.h"
#include "core/proc.h"
#include "engine/engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: lama_bench WEIGHTS [WxH] [repeats] [threads]\n");
        return 2;
    }
    int w = 256, h = 256, reps = argc > 3 ? atoi(argv[3]) : 5, threads = argc > 4 ? atoi(argv[4]) : 0;
    if (argc > 2 && sscanf(argv[2], "%dx%d", &w, &h) != 2) return 2;
    if (reps < 1) reps = 1;
    if (reps > 100) reps = 100;
    px_pool *pool = px_pool_create(threads);
    px_engine_config cfg = {.weights = argv[1], .pool = pool};
    px_engine *e;
    char err[300];
    int64_t t0 = px_now_ns();
    if (px_engine_open("lama", &cfg, &e, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double load_ms = px_ns_to_ms(px_now_ns() - t0);
    uint64_t rss_loaded = px_proc_rss_bytes(), peak_load = px_proc_peak_rss_bytes();
    /* Reset VmHWM (Linux >= 4.0) so the final peak is that of inference
     * alone, as in the PyTorch bench: loading transients differ by design. */
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    if (cr) {
        fputs("5", cr);
        fclose(cr);
    }
    /* The reference's synth_case: gradients, sines and noise; two boxes. */
    px_image img = {w, h, 3, malloc((size_t)w * h * 3)}, mask = {w, h, 1, calloc((size_t)w * h, 1)};
    px_image out = {w, h, 3, malloc((size_t)w * h * 3)};
    unsigned s = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < 3; k++) {
                s = s * 1103515245u + 12345u;
                double v = 60 + 100.0 * x / w + 40.0 * y / h + 25 * sin(x * 0.21 + k) * cos(y * 0.17 + 0.5 * k) +
                           (s >> 16) % 30;
                img.px[((size_t)y * w + x) * 3 + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    for (int b = 0; b < 2; b++) {
        int bh = h / 3, bw = w / 4, y0 = b ? h / 2 : h / 8, x0 = b ? w / 2 : w / 6;
        for (int y = y0; y < y0 + bh && y < h; y++)
            for (int x = x0; x < x0 + bw && x < w; x++) mask.px[(size_t)y * w + x] = 255;
    }
    px_engine_item it = {.image = &img, .mask = &mask, .out = &out};
    t0 = px_now_ns();
    if (px_engine_run(e, &it, 1)) {
        fprintf(stderr, "%s\n", it.err);
        return 1;
    }
    double first_ms = px_ns_to_ms(px_now_ns() - t0);
    double ms[100];
    for (int r = 0; r < reps; r++) {
        t0 = px_now_ns();
        px_engine_run(e, &it, 1);
        ms[r] = px_ns_to_ms(px_now_ns() - t0);
    }
    double sorted[100];
    for (int r = 0; r < reps; r++) sorted[r] = ms[r];
    qsort(sorted, (size_t)reps, sizeof *sorted, cmp_dbl);
    printf("{\"impl\":\"pixserve\",\"size\":\"%dx%d\",\"threads\":%d,\"ms\":[", w, h, px_pool_threads(pool));
    for (int r = 0; r < reps; r++) printf("%s%.1f", r ? "," : "", sorted[r]);
    printf("],\"median_ms\":%.1f,\"first_ms\":%.1f,\"load_ms\":%.1f,\"rss_after_load_bytes\":%llu,"
           "\"peak_rss_load_bytes\":%llu,\"peak_rss_bytes\":%llu,\"mem_estimate_bytes\":%zu}\n",
           sorted[reps / 2], first_ms, load_ms, (unsigned long long)rss_loaded,
           (unsigned long long)peak_load,
           (unsigned long long)px_proc_peak_rss_bytes(),
           px_engine_mem_estimate(e, 1, (px_engine_shape){w, h, 0, 0}));
    px_engine_close(e);
    px_pool_destroy(pool);
    free(img.px);
    free(mask.px);
    free(out.px);
    return 0;
}
