/*
 * zimage_lora_bench.c — LoRA costs on the CPU (src/engine/zimage/lora.c,
 * lora_apply.c). A benchmark, not a test: it prints one JSON object per
 * measurement on stdout. bench/zimage_lora_bench.py makes the files and
 * runs it (see docs/benchmarks/lora.md).
 *
 *   build/release/bench/zimage_lora_bench load FILE [COLD WARM]
 *       zi_lora_open of FILE for the full-size DiT: COLD runs (default 3)
 *       after dropping the file's pages from the page cache
 *       (fdatasync + posix_fadvise DONTNEED; the VM's disk cache beneath
 *       may still hold them), then WARM runs (default 5) with the file
 *       cached
 *   build/release/bench/zimage_lora_bench step DIR WxH TEXT REPS [LORA...]
 *       DiT forwards of DIR (a transformer/ directory) on one item without
 *       a LoRA, then with each LORA at scale 0.8, alternating so the
 *       neighbours' load on a shared machine hits all alike; the best and
 *       median wall times, the best CPU time of the process (all threads),
 *       and the overheads of the best against no LoRA
 */
#include "core/clock.h"
#include "core/err.h"
#include "engine/zimage/dit.h"
#include "engine/zimage/lora.h"
#include "engine/zimage/zops.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    return (double)px_now_ns() * 1e-6;
}

/* CPU milliseconds of the whole process (all threads): on a shared machine
 * the wall time depends on the neighbours, CPU time much less. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "%s: %s\n", what, err);
    exit(1);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) die(path, "cannot open");
    fdatasync(fd);
    if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)) die(path, "posix_fadvise failed");
    close(fd);
}

static void load(const char *path, int ncold, int nwarm)
{
    zi_dit_config c;
    zi_dit_config_default(&c);
    struct stat sb;
    if (stat(path, &sb)) die(path, "cannot stat");
    double t[64], ct[64];
    char err[1024];
    for (int warm = 0; warm < 2; warm++) {
        int n = warm ? nwarm : ncold;
        if (n < 1) continue;
        zi_lora *l = NULL;
        for (int i = 0; i < n && i < 64; i++) {
            if (!warm) drop_cache(path);
            double t0 = now_ms(), c0 = cpu_ms();
            if (zi_lora_open(path, &c, &l, err, sizeof err)) die("zi_lora_open", err);
            t[i] = now_ms() - t0, ct[i] = cpu_ms() - c0;
            if (i + 1 < n) zi_lora_free(l);
        }
        double best = t[0];
        for (int i = 1; i < n; i++) best = t[i] < best ? t[i] : best;
        printf("{\"what\":\"load\",\"cache\":\"%s\",\"file_bytes\":%lld,\"held_bytes\":%zu,"
               "\"rank\":%d,\"deltas\":%d,\"runs\":%d,\"best_ms\":%.1f,\"median_ms\":%.1f,"
               "\"median_cpu_ms\":%.1f,\"file_mb_per_s\":%.0f}\n",
               warm ? "warm" : "cold", (long long)sb.st_size, zi_lora_bytes(l),
               zi_lora_max_rank(l), zi_lora_count(l), n, best, median(t, n), median(ct, n),
               (double)sb.st_size / 1e6 / (best / 1e3));
        zi_lora_free(l);
    }
}

static zi_dit *open_dit(const char *dir, zi_weights **w)
{
    char err[1024], path[1024];
    zi_load_opts o = {.convert_to = ZI_F32, .keep_bf16 = 1};
    if (zi_weights_open(dir, ZI_PART_DIT, &o, w, err, sizeof err)) die(dir, err);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) die(path, "cannot open");
    static char json[1 << 16];
    size_t n = fread(json, 1, sizeof json, f);
    fclose(f);
    zi_dit_config c;
    zi_dit_config_default(&c);
    zi_dit *d = NULL;
    if (zi_dit_config_parse(json, n, &c, err, sizeof err) ||
        zi_dit_config_from_weights(*w, &c, err, sizeof err) || zi_dit_bind(*w, &c, &d, err, sizeof err))
        die(dir, err);
    return d;
}

static void fill(float *p, size_t n, unsigned s)
{
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) * (1.0 / (1u << 24)) - 0.5) * 2.0f;
    }
}

#define MAXL 16

static void step(const char *dir, int w, int h, int text, int reps, char **files, int nl)
{
    zi_weights *wt;
    zi_dit *d = open_dit(dir, &wt);
    const zi_dit_config *c = zi_dit_config_of(d);
    int lh = h / 8, lw = w / 8;
    size_t nlat = (size_t)c->in_channels * lh * lw;
    float *lat = malloc(nlat * 4), *out = malloc(nlat * 4);
    float *tx = malloc((size_t)text * c->cap_feat_dim * 4);
    fill(lat, nlat, 1), fill(tx, (size_t)text * c->cap_feat_dim, 2);
    char err[1024];
    zi_lora *l[MAXL] = {0};
    zi_lora_use u[MAXL];
    for (int i = 0; i < nl; i++) {
        if (zi_lora_open(files[i], c, &l[i], err, sizeof err)) die(files[i], err);
        u[i] = (zi_lora_use){l[i], 0.8f};
    }
    zi_ctx *ctx;
    if (zi_ctx_create(NULL, &ctx, err, sizeof err)) die("ctx", err);
    static double t[MAXL + 1][64], ct[MAXL + 1][64];
    for (int r = -1; r < reps && r < 64; r++) /* r = -1: warm-up (primitives, buffers) */
        for (int k = 0; k <= nl; k++) {
            zi_dit_input in = {lat, 400.0f, tx, text, k ? &u[k - 1] : NULL, k ? 1 : 0};
            double t0 = now_ms(), c0 = cpu_ms();
            if (zi_dit_forward(d, ctx, &in, 1, lh, lw, out, NULL, err, sizeof err))
                die("forward", err);
            if (r >= 0) t[k][r] = now_ms() - t0, ct[k][r] = cpu_ms() - c0;
        }
    double base = 0, cbase = 0;
    for (int k = 0; k <= nl; k++) {
        double best = t[k][0], cbest = ct[k][0];
        for (int r = 1; r < reps; r++) {
            best = t[k][r] < best ? t[k][r] : best;
            cbest = ct[k][r] < cbest ? ct[k][r] : cbest;
        }
        if (!k) base = best, cbase = cbest;
        unsigned m = k ? zi_lora_site_mask(l[k - 1]) : 0;
        printf("{\"what\":\"step\",\"dim\":%d,\"blocks\":%d,\"image\":\"%dx%d\",\"text\":%d,"
               "\"lora\":\"%s\",\"rank\":%d,\"targets\":\"%s\",\"lora_mb\":%.1f,\"reps\":%d,"
               "\"best_ms\":%.1f,\"median_ms\":%.1f,\"overhead_pct\":%.1f,"
               "\"best_cpu_ms\":%.0f,\"cpu_overhead_pct\":%.1f}\n",
               c->dim, 2 * c->n_refiner_layers + c->n_layers, w, h, text,
               k ? files[k - 1] : "", k ? zi_lora_max_rank(l[k - 1]) : 0,
               !k ? "none" : (m & (1u << ZI_LORA_W1)) ? "attn+ffn" : "attn",
               k ? (double)zi_lora_bytes(l[k - 1]) / 1e6 : 0.0, reps, best,
               median(t[k], reps), 100.0 * (best - base) / base, cbest,
               100.0 * (cbest - cbase) / cbase);
    }
    for (int i = 0; i < nl; i++) zi_lora_free(l[i]);
    zi_ctx_destroy(ctx);
    zi_dit_free(d);
    zi_weights_close(wt);
    free(lat), free(out), free(tx);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "load")) {
        load(argv[2], argc > 3 ? atoi(argv[3]) : 3, argc > 4 ? atoi(argv[4]) : 5);
        return 0;
    }
    int w, h;
    if (argc >= 6 && !strcmp(argv[1], "step") && sscanf(argv[3], "%dx%d", &w, &h) == 2 &&
        argc - 6 <= MAXL) {
        int reps = atoi(argv[5]);
        step(argv[2], w, h, atoi(argv[4]), reps < 1 ? 1 : reps > 64 ? 64 : reps, argv + 6,
             argc - 6);
        return 0;
    }
    fprintf(stderr, "usage: zimage_lora_bench load FILE [COLD WARM]\n"
                    "       zimage_lora_bench step DIR WxH TEXT REPS [LORA...]\n");
    return 2;
}
