/*
 * zimage_vae_bench.c — time and memory of the Z-Image VAE decoder alone (a
 * benchmark, not a test: it asserts nothing).
 *
 *   zimage_vae_bench VAE [--sizes 512,1024] [--reps N] [--threads N]
 *                    [--nhwc] [--check STAGES]
 *       VAE is a diffusers vae/ directory or a weights file (config from
 *       the tensors: the full-size FLUX constants). For each image size
 *       decodes standard-normal latents (seed 1) reps times and prints the
 *       milliseconds of each decode, the planned activation bytes and the
 *       process's peak RSS during the decodes (with each decode's wall
 *       milliseconds its CPU milliseconds, all threads). --nhwc: the
 *       convolutions straight on NHWC, not in oneDNN's blocked layout (the
 *       decoder before that layout, for before/after). --check decodes the
 *       `final.latent` (or `latents`) of a reference stage file and prints
 *       the max abs error against its `image`.
 *
 * Random full-size weights: tools/zimage_reference.py make OUT --config full
 * writes them with the rest of the model; bench/zimage_vae_full.py writes
 * the VAE alone (200 MB).
 */
#include "core/clock.h"
#include "core/err.h"
#include "core/proc.h"
#include "engine/safetensors.h"
#include "engine/zimage/sampler.h"
#include "engine/zimage/vae.h"
#include "engine/zimage/zops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int check(zi_vae *v, zi_ctx *ctx, const char *path)
{
    char err[512];
    px_st *st;
    if (px_st_open(path, &st, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const px_st_tensor *lt = px_st_find(st, "final.latent"), *it = px_st_find(st, "image");
    if (!lt) lt = px_st_find(st, "latents");
    if (!lt || !it || lt->ndim != 4) {
        fprintf(stderr, "%s: needs final.latent (or latents) and image\n", path);
        px_st_close(st);
        return 1;
    }
    int h = (int)lt->shape[2], w = (int)lt->shape[3];
    float *lat = malloc(lt->nelem * 4), *ref = malloc(it->nelem * 4), *out = malloc(it->nelem * 4);
    px_st_to_f32(lt, lat);
    px_st_to_f32(it, ref);
    int64_t t0 = px_now_ns();
    int rc = zi_vae_decode_float(v, ctx, lat, h, w, out, err, sizeof err);
    if (!rc) {
        double m = 0;
        for (size_t i = 0; i < it->nelem; i++) m = fmax(m, fabs((double)out[i] - ref[i]));
        printf("check %s: %dx%d in %.0f ms, max abs err %.3g\n", path, w * zi_vae_factor(v),
               h * zi_vae_factor(v), px_ns_to_ms(px_now_ns() - t0), m);
    } else {
        fprintf(stderr, "%s\n", err);
    }
    free(lat);
    free(ref);
    free(out);
    px_st_close(st);
    return rc ? 1 : 0;
}

static double cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void bench_size(zi_vae *v, zi_ctx *ctx, int side, int reps)
{
    int f = zi_vae_factor(v), h = side / f;
    size_t n = (size_t)16 * h * h, npx = (size_t)side * side * 3;
    float *lat = malloc(n * sizeof *lat), *out = malloc(npx * sizeof *out);
    char err[512];
    zi_sampler_noise(NULL, 1, lat, n);
    printf("%dx%d: activations %.0f MB; decode ms:", side, side,
           (double)zi_vae_activation_bytes(v, h, h) / 1048576.0);
    fflush(stdout);
    uint64_t rss0 = px_proc_rss_bytes();
    for (int r = 0; r < reps; r++) {
        int64_t t0 = px_now_ns();
        double c0 = cpu_ms();
        if (zi_vae_decode_float(v, ctx, lat, h, h, out, err, sizeof err)) {
            printf(" failed: %s", err);
            break;
        }
        printf(" %.0f (cpu %.0f)", px_ns_to_ms(px_now_ns() - t0), cpu_ms() - c0);
        fflush(stdout);
    }
    printf("; RSS before %.0f MB, peak so far %.0f MB\n", (double)rss0 / 1048576.0,
           (double)px_proc_peak_rss_bytes() / 1048576.0);
    free(lat);
    free(out);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *sizes = "512,1024", *stages = NULL;
    int reps = 1, threads = 0, nhwc = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--sizes") && v)
            sizes = argv[++i];
        else if (!strcmp(argv[i], "--reps") && v)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && v)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--nhwc"))
            nhwc = 1;
        else if (!strcmp(argv[i], "--check") && v)
            stages = argv[++i];
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "usage: zimage_vae_bench VAE [--sizes 512,1024] [--reps N] "
                            "[--threads N] [--nhwc] [--check STAGES]\n");
            return 2;
        }
    }
    if (!path) return fprintf(stderr, "zimage_vae_bench: give the VAE weights\n"), 2;
    if (threads > 0) zi_set_threads(threads);
    char err[512];
    zi_weights *w = NULL;
    zi_vae *v = NULL;
    zi_ctx *ctx = NULL;
    zi_vae_config cfg = {0};
    int64_t t0 = px_now_ns();
    if (zi_weights_open(path, ZI_PART_VAE, NULL, &w, err, sizeof err) ||
        zi_vae_config_from_weights(w, &cfg, err, sizeof err) ||
        zi_vae_create(w, &cfg, &v, err, sizeof err) || zi_ctx_create(NULL, &ctx, err, sizeof err)) {
        fprintf(stderr, "zimage_vae_bench: %s\n", err);
        return 1;
    }
    zi_weights_close(w);
    zi_vae_set_blocked(v, !nhwc);
    printf("VAE %s: %.1f M parameters, bound in %.0f ms, RSS %.0f MB\n", path,
           (double)zi_vae_weight_bytes(v) / 4e6, px_ns_to_ms(px_now_ns() - t0),
           (double)px_proc_rss_bytes() / 1048576.0);
    int rc = stages ? check(v, ctx, stages) : 0;
    for (const char *s = sizes; !rc && *s;) {
        int side = atoi(s);
        if (side > 0) bench_size(v, ctx, side, reps);
        s = strchr(s, ',');
        if (!s) break;
        s++;
    }
    zi_ctx_destroy(ctx);
    zi_vae_destroy(v);
    return rc;
}
