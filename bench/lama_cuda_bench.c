/*
 * lama_cuda_bench.c — throughput of the lama engine's CUDA backend, and its
 * float predictions for accuracy comparisons (bench/lama_cuda_vs_torch.py).
 *
 *   lama_cuda_bench --weights F [--sizes 512x512,1024x1024] [--batches 1,4,8,16]
 *                   [--precisions tf32,bf16,fp16,fp32] [--iters 20] [--device cuda]
 *                   [--log-level debug] (debug: which epilogues each plan fused)
 *   lama_cuda_bench --weights F --precision P --dump IMAGE MASK OUT.f32
 *
 * The first form prints images per second per (precision, size, batch):
 * the median over --iters timed calls of px_engine_run on a full batch
 * (host copies and transfers included, as the server sees it) alternating
 * two input sets, after four untimed calls (plan building, CUDA graph
 * capture, warm-up); and the device memory the engine holds. The second writes
 * the float prediction (padded H x W x 3, little-endian float32, with a
 * 16-byte header "H W" as two int32 then 8 zero bytes) for one image.
 */
#include "core/pool.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/rng.h"
#include "engine/engine.h"
#include "engine/lama/lama_cuda.h"
#include "image/codec.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Photo-like input: smooth colour fields with texture, and a mask of about
 * a fifth of the image (two blobs and a stroke). */
static void synth(px_image *img, px_image *mask, uint64_t seed)
{
    px_rng r;
    px_rng_seed(&r, seed, 3);
    for (int y = 0; y < img->h; y++)
        for (int x = 0; x < img->w; x++)
            for (int k = 0; k < 3; k++) {
                float v = 120 + 80 * sinf(0.013f * x * (k + 1) + 0.021f * y) +
                          25 * (px_rng_float(&r) - 0.5f);
                img->px[((size_t)y * img->w + x) * 3 + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    memset(mask->px, 0, (size_t)img->w * img->h);
    int cx = img->w / 3, cy = img->h / 2, rad = img->w / 6;
    for (int y = 0; y < img->h; y++)
        for (int x = 0; x < img->w; x++) {
            int dx = x - cx, dy = y - cy, ex = x - img->w * 2 / 3, ey = y - img->h / 3;
            if (dx * dx + dy * dy <= rad * rad || ex * ex + ey * ey <= rad * rad / 2 ||
                abs(y - img->h * 3 / 4) <= 4)
                mask->px[(size_t)y * img->w + x] = 255;
        }
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        out[n++] = atoi(s);
        s = strchr(s, ',');
        if (!s) break;
        s++;
    }
    return n;
}

static int dump(const char *weights, const char *device, const char *prec, const char *imgp,
                const char *maskp, const char *outp)
{
    char err[300];
    px_image img, m, mbin = {0}, out = {0};
    if (px_decode_file(imgp, NULL, &img, err, sizeof err) ||
        px_decode_file(maskp, NULL, &m, err, sizeof err)) {
        fprintf(stderr, "lama_cuda_bench: %s\n", err);
        return 1;
    }
    px_image rgb, alpha;
    px_image_split_alpha(&img, &rgb, &alpha);
    px_image_alloc(&mbin, m.w, m.h, 1, NULL, NULL, 0);
    for (size_t i = 0; i < (size_t)m.w * m.h; i++) {
        int any = 0;
        for (int k = 0; k < m.c; k++) any |= m.px[i * m.c + k];
        mbin.px[i] = any ? 255 : 0;
    }
    px_image_alloc(&out, rgb.w, rgb.h, 3, NULL, NULL, 0);
    px_engine_config cfg = {.weights = weights, .device = device, .precision = prec};
    px_engine *e;
    if (px_engine_open("lama", &cfg, &e, err, sizeof err)) {
        fprintf(stderr, "lama_cuda_bench: %s\n", err);
        return 1;
    }
    px_engine_item it = {.image = &rgb, .mask = &mbin, .out = &out};
    float *pred;
    int H, W;
    if (px_lama_cuda_run_float(e, &it, 1, &pred, &H, &W, err, sizeof err)) {
        fprintf(stderr, "lama_cuda_bench: %s\n", err);
        return 1;
    }
    FILE *f = fopen(outp, "wb");
    int32_t hdr[4] = {H, W, 0, 0};
    fwrite(hdr, sizeof hdr, 1, f);
    fwrite(pred, sizeof(float), (size_t)H * W * 3, f);
    fclose(f);
    free(pred);
    px_engine_close(e);
    return 0;
}

/* The device's free memory (bytes), for the memory a configuration adds. */
static size_t free_now(void)
{
    size_t fr = 0, total = 0;
    cudaDeviceSynchronize();
    cudaMemGetInfo(&fr, &total);
    return fr;
}

typedef struct set {
    px_image *img, *mask, *out;
    px_engine_item *items;
} set;

static void set_make(set *s, int B, int w, int h, uint64_t seed)
{
    s->img = calloc((size_t)B, sizeof *s->img);
    s->mask = calloc((size_t)B, sizeof *s->mask);
    s->out = calloc((size_t)B, sizeof *s->out);
    s->items = calloc((size_t)B, sizeof *s->items);
    for (int k = 0; k < B; k++) {
        px_image_alloc(&s->img[k], w, h, 3, NULL, NULL, 0);
        px_image_alloc(&s->mask[k], w, h, 1, NULL, NULL, 0);
        px_image_alloc(&s->out[k], w, h, 3, NULL, NULL, 0);
        synth(&s->img[k], &s->mask[k], seed * 1000 + (uint64_t)k + 1);
        s->items[k] = (px_engine_item){.image = &s->img[k], .mask = &s->mask[k], .out = &s->out[k]};
    }
}

static void set_free(set *s, int B)
{
    for (int k = 0; k < B; k++) {
        px_image_free(&s->img[k]);
        px_image_free(&s->mask[k]);
        px_image_free(&s->out[k]);
    }
    free(s->img);
    free(s->mask);
    free(s->out);
    free(s->items);
}

int main(int argc, char **argv)
{
    const char *weights = NULL, *device = "cuda", *sizes = "512x512,1024x1024";
    const char *batches = "1,4,8,16", *precs = "tf32,bf16,fp16,fp32", *prec1 = "tf32";
    int iters = 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--weights")) weights = v, i++;
        else if (!strcmp(a, "--device")) device = v, i++;
        else if (!strcmp(a, "--sizes")) sizes = v, i++;
        else if (!strcmp(a, "--batches")) batches = v, i++;
        else if (!strcmp(a, "--precisions")) precs = v, i++;
        else if (!strcmp(a, "--precision")) prec1 = v, i++;
        else if (!strcmp(a, "--iters")) iters = atoi(v), i++;
        else if (!strcmp(a, "--log-level") && px_log_parse_level(v) >= 0)
            px_log_set_level(px_log_parse_level(v)), i++;
        else if (!strcmp(a, "--dump") && i + 3 < argc)
            return dump(weights, device, prec1, argv[i + 1], argv[i + 2], argv[i + 3]);
        else {
            fprintf(stderr,
                    "usage: lama_cuda_bench --weights F [--sizes WxH,..] [--batches 1,8] "
                    "[--precisions tf32,bf16,fp16] [--iters N] [--device cuda]\n"
                    "       [--log-level debug|info|warn|error]\n"
                    "       lama_cuda_bench --weights F --precision P --dump IMG MASK OUT\n");
            return 2;
        }
    }
    if (!weights || iters < 1) {
        fprintf(stderr, "lama_cuda_bench: --weights is required, --iters at least 1\n");
        return 2;
    }
    int bs[16], nb = parse_list(batches, bs, 16);
    /* GiB: the device memory this configuration needs: what opening the
     * engine took (weights, cuDNN's handle) plus what its plan added (the
     * arena, cuFFT work areas, the CUDA graph); each size opens a fresh
     * engine, whose cache holds all its batches' plans; build s:
     * the first call (cuDNN's algorithm search, cuFFT plans). */
    printf("%-6s %-11s %5s %10s %10s %8s %8s %8s\n", "prec", "size", "batch", "ms/batch", "img/s",
           "GiB", "GiB/img", "build s");
    char plist[64];
    snprintf(plist, sizeof plist, "%s", precs);
    for (char *pr = strtok(plist, ","); pr; pr = strtok(NULL, ",")) {
        const char *sp = sizes;
        while (*sp) {
            int w = 0, h = 0;
            if (sscanf(sp, "%dx%d", &w, &h) != 2) break;
            size_t base = free_now();
            /* The compute threads, as pixserve passes them (they stage the
             * batch's images: px_pool_copy). */
            px_engine_config cfg = {
                .weights = weights, .device = device, .precision = pr, .pool = px_pool_default()};
            px_engine *e;
            char err[300];
            if (px_engine_open("lama", &cfg, &e, err, sizeof err)) {
                fprintf(stderr, "lama_cuda_bench: %s\n", err);
                return 1;
            }
            size_t opened = free_now();
            for (int bi = 0; bi < nb; bi++) {
                int B = bs[bi];
                size_t before = free_now();
                /* Two input sets, alternated: no run sees the inputs of the
                 * one before (METHOD.md: rotate inputs). */
                set s[2];
                set_make(&s[0], B, w, h, 1);
                set_make(&s[1], B, w, h, 2);
                int64_t t0 = px_now_ns();
                int rc = px_engine_run(e, s[0].items, B);
                double build = px_ns_to_ms(px_now_ns() - t0) / 1000;
                for (int warm = 0; warm < 3 && !rc; warm++) rc = px_engine_run(e, s[warm & 1].items, B);
                double *t = calloc((size_t)iters, sizeof *t);
                for (int it = 0; it < iters && !rc; it++) {
                    int64_t t1 = px_now_ns();
                    rc = px_engine_run(e, s[it & 1].items, B);
                    t[it] = px_ns_to_ms(px_now_ns() - t1);
                }
                if (rc) {
                    printf("%-6s %5dx%-5d %5d   failed: %s\n", pr, w, h, B, s[0].items[0].err);
                } else {
                    qsort(t, (size_t)iters, sizeof *t, cmp_dbl);
                    double med = t[iters / 2];
                    double gib = ((double)base - (double)opened + (double)before - (double)free_now()) / (1 << 30);
                    printf("%-6s %5dx%-5d %5d %10.2f %10.1f %8.2f %8.3f %8.1f\n", pr, w, h, B, med,
                           B * 1000.0 / med, gib, gib / B, build);
                }
                fflush(stdout);
                free(t);
                set_free(&s[0], B);
                set_free(&s[1], B);
            }
            px_engine_close(e);
            sp = strchr(sp, ',');
            if (!sp) break;
            sp++;
        }
    }
    return 0;
}
