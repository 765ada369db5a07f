/*
 * zimage_cpu_bench.c — CPU speed of the Z-Image transformer ops and models
 * (src/engine/zimage/zops.c, dit.c, qwen3.c). A benchmark, not a test.
 *
 *   build/release/bench/zimage_cpu_bench ops [M K N] [attention tokens]
 *       GFLOP/s of the linear (F32 weights = oneDNN's sgemm as it is, and
 *       BF16 weights widened block by block) and of attention (30 heads of
 *       128, full, one sequence)
 *   build/release/bench/zimage_cpu_bench dit DIR WxH TEXT_TOKENS [reps]
 *       one DiT forward (DIR = a transformer/ directory or a single file,
 *       kept as stored: F32 or BF16); WxH is the image size in pixels
 *   build/release/bench/zimage_cpu_bench text DIR TOKENS [reps]
 *       one text encode
 *
 * Models: tools/zimage_reference.py make OUT --config full --dit-layers 1
 * --refiner-layers 1 --text-layers 2 --dtype bf16 --layouts hf gives
 * full-width slices (one joint block, one refiner of each kind, one encoder
 * layer run); per-block times scale to the real model's 34 blocks and 35
 * encoder layers. The configuration is read from the tensors' shapes
 * (zi_*_config_from_weights; constants are the full model's).
 */
#include "core/clock.h"
#include "core/err.h"
#include "core/pool.h"
#include "engine/zimage/dit.h"
#include "engine/zimage/qwen3.h"
#include "engine/zimage/zops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    return (double)px_now_ns() * 1e-9;
}

/* CPU seconds of the whole process: on a shared machine the wall time
 * depends on the neighbours, CPU time much less. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fill(float *p, size_t n, unsigned s)
{
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) * (1.0 / (1u << 24)) - 0.5);
    }
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "%s: %s\n", what, err);
    exit(1);
}

/* Best wall time of 3 runs after a first one (which builds the primitive);
 * *cpu = the CPU seconds of that run. */
static double time_matmul(zi_ctx *c, const float *x, int M, int K, const void *w, zi_dtype t,
                          int N, float *y, double *cpu)
{
    char err[256];
    double best = 1e30;
    for (int r = 0; r < 4; r++) {
        double t0 = now_s(), c0 = cpu_s();
        if (zi_op_matmul(c, x, M, K, K, w, t, N, NULL, y, N, 0, err, sizeof err)) die("matmul", err);
        double dt = now_s() - t0, dc = cpu_s() - c0;
        if (r && dt < best) best = dt, *cpu = dc;
    }
    return best;
}

static void ops(int M, int K, int N, int ntok)
{
    char err[256];
    zi_ctx *c;
    if (zi_ctx_create(NULL, &c, err, sizeof err)) die("ctx", err);
    float *x = malloc((size_t)M * K * 4), *w = malloc((size_t)N * K * 4), *y = malloc((size_t)M * N * 4);
    uint16_t *wb = malloc((size_t)N * K * 2);
    fill(x, (size_t)M * K, 1), fill(w, (size_t)N * K, 2);
    for (size_t i = 0; i < (size_t)N * K; i++) wb[i] = zi_f32_to_bf16(w[i]);
    double f = 2.0 * M * K * N, cf, cb;
    double tf = time_matmul(c, x, M, K, w, ZI_F32, N, y, &cf);
    double tb = time_matmul(c, x, M, K, wb, ZI_BF16, N, y, &cb);
    printf("linear %dx%d * %dx%d: F32 weights %.1f ms = %.1f GFLOP/s (%.1f per CPU-second); BF16 "
           "weights %.1f ms = %.1f GFLOP/s (%.1f per CPU-second)\n",
           M, K, N, K, tf * 1e3, f / tf * 1e-9, f / cf * 1e-9, tb * 1e3, f / tb * 1e-9,
           f / cb * 1e-9);
    int m1 = 7;
    tf = time_matmul(c, x, m1, K, w, ZI_F32, N, y, &cf);
    tb = time_matmul(c, x, m1, K, wb, ZI_BF16, N, y, &cb);
    printf("linear %dx%d * %dx%d (few tokens: bandwidth-bound): F32 %.2f ms, BF16 %.2f ms\n", m1, K,
           N, K, tf * 1e3, tb * 1e3);
    free(x), free(w), free(y), free(wb);
    int H = 30, hd = 128, D = H * hd;
    float *qkv = malloc((size_t)ntok * 3 * D * 4), *o = malloc((size_t)ntok * D * 4);
    fill(qkv, (size_t)ntok * 3 * D, 3);
    zi_attn_args a = {.q = qkv, .k = qkv + D, .v = qkv + 2 * D, .ldq = 3 * D, .ldk = 3 * D,
                      .ldv = 3 * D, .o = o, .ldo = D, .n_q = ntok, .n_kv = ntok, .n_heads = H,
                      .n_kv_heads = H, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd)};
    double best = 1e30, bc = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s(), c0 = cpu_s();
        if (zi_op_attention(c, &a, err, sizeof err)) die("attention", err);
        double dt = now_s() - t0;
        if (r && dt < best) best = dt, bc = cpu_s() - c0;
    }
    double af = 4.0 * ntok * (double)ntok * D;
    printf("attention %d tokens x %d heads of %d: %.1f ms = %.1f GFLOP/s (%.1f per CPU-second; "
           "flops of QK^T and PV)\n",
           ntok, H, hd, best * 1e3, af / best * 1e-9, af / bc * 1e-9);
    free(qkv), free(o);
    zi_ctx_destroy(c);
}

/* DIR/config.json's text, or NULL (a single file: shapes and defaults). */
static char *config_json(const char *dir, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *j = malloc(1 << 20);
    *n = fread(j, 1, (1 << 20) - 1, f);
    fclose(f);
    return j;
}

static zi_weights *open_kept(const char *path, zi_part part)
{
    char err[512];
    zi_weights *w;
    zi_load_opts o = {.convert_to = ZI_BF16, .keep_bf16 = 1};
    double t0 = now_s();
    if (zi_weights_open(path, part, &o, &w, err, sizeof err)) die(path, err);
    fprintf(stderr, "loaded %s: %.2f GB in %.1f s\n", path, zi_weights_bytes(w) * 1e-9, now_s() - t0);
    return w;
}

static void dit(const char *path, int W, int H, int L, int reps)
{
    char err[512];
    zi_weights *w = open_kept(path, ZI_PART_DIT);
    zi_dit_config cf = {0}; /* shapes from the tensors, constants the full model's */
    size_t jn;
    char *js = config_json(path, &jn);
    if (js) zi_dit_config_default(&cf);
    if (js && zi_dit_config_parse(js, jn, &cf, err, sizeof err)) die("config.json", err);
    free(js);
    if (zi_dit_config_from_weights(w, &cf, err, sizeof err)) die("config", err);
    zi_dit *d;
    if (zi_dit_bind(w, &cf, &d, err, sizeof err)) die("bind", err);
    zi_ctx *c;
    if (zi_ctx_create(NULL, &c, err, sizeof err)) die("ctx", err);
    int lh = H / 8, lw = W / 8;
    size_t nl = (size_t)cf.in_channels * lh * lw;
    float *lat = malloc(nl * 4), *out = malloc(nl * 4), *text = malloc((size_t)L * cf.cap_feat_dim * 4);
    fill(lat, nl, 5), fill(text, (size_t)L * cf.cap_feat_dim, 6);
    zi_dit_input in = {.latent = lat, .t_in = 500.0f, .text = text, .text_len = L};
    double fl = zi_dit_flops(&cf, lh, lw, L);
    for (int r = 0; r <= reps; r++) {
        double t0 = now_s(), c0 = cpu_s();
        if (zi_dit_forward(d, c, &in, 1, lh, lw, out, NULL, err, sizeof err)) die("forward", err);
        double dt = now_s() - t0, dc = cpu_s() - c0;
        int nb = cf.n_layers + 2 * cf.n_refiner_layers;
        printf("dit dim %d, %d+%d+%d blocks, %dx%d px (%d image tokens), %d text tokens: %s %.3f s = "
               "%.1f GFLOP/s, %.3f s per block; CPU %.3f s = %.1f GFLOP per CPU-second\n",
               cf.dim, cf.n_refiner_layers, cf.n_refiner_layers, cf.n_layers, W, H,
               (lh / 2) * (lw / 2), L, r ? "forward" : "first (primitives built)", dt,
               fl / dt * 1e-9, dt / (nb ? nb : 1), dc, fl / dc * 1e-9);
    }
    printf("context holds %.1f MB\n", zi_ctx_bytes(c) / 1e6);
    free(lat), free(out), free(text);
    zi_ctx_destroy(c);
    zi_dit_free(d);
    zi_weights_close(w);
}

static void text(const char *path, int L, int reps)
{
    char err[512];
    zi_weights *w = open_kept(path, ZI_PART_TEXT);
    zi_qwen3_config cf = {0};
    size_t jn;
    char *js = config_json(path, &jn);
    if (js) zi_qwen3_config_default(&cf);
    if (js && zi_qwen3_config_parse(js, jn, &cf, err, sizeof err)) die("config.json", err);
    free(js);
    if (zi_qwen3_config_from_weights(w, &cf, err, sizeof err)) die("config", err);
    zi_qwen3 *m;
    if (zi_qwen3_bind(w, &cf, &m, err, sizeof err)) die("bind", err);
    zi_ctx *c;
    if (zi_ctx_create(NULL, &c, err, sizeof err)) die("ctx", err);
    int32_t *ids = malloc((size_t)L * sizeof *ids);
    for (int i = 0; i < L; i++) ids[i] = (i * 7919) % cf.vocab_size;
    float *out = malloc((size_t)L * cf.hidden * 4);
    double fl = zi_qwen3_flops(&cf, L);
    for (int r = 0; r <= reps; r++) {
        double t0 = now_s(), c0 = cpu_s();
        if (zi_qwen3_encode(m, c, ids, L, out, NULL, err, sizeof err)) die("encode", err);
        double dt = now_s() - t0, dc = cpu_s() - c0;
        printf("qwen3 hidden %d, %d layers run, %d tokens: %s %.3f s = %.1f GFLOP/s, %.3f s per "
               "layer; CPU %.3f s = %.1f GFLOP per CPU-second\n",
               cf.hidden, cf.n_layers - 1, L, r ? "encode" : "first", dt, fl / dt * 1e-9,
               dt / (cf.n_layers > 1 ? cf.n_layers - 1 : 1), dc, fl / dc * 1e-9);
    }
    free(ids), free(out);
    zi_ctx_destroy(c);
    zi_qwen3_free(m);
    zi_weights_close(w);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "ops")) {
        int M = argc > 4 ? atoi(argv[2]) : 2048, K = argc > 4 ? atoi(argv[3]) : 2048;
        int N = argc > 4 ? atoi(argv[4]) : 2048, T = argc > 5 ? atoi(argv[5]) : 1024;
        ops(M, K, N, T);
        return 0;
    }
    int W, H;
    if (argc >= 5 && !strcmp(argv[1], "dit") && sscanf(argv[3], "%dx%d", &W, &H) == 2) {
        dit(argv[2], W, H, atoi(argv[4]), argc > 5 ? atoi(argv[5]) : 2);
        return 0;
    }
    if (argc >= 4 && !strcmp(argv[1], "text")) {
        text(argv[2], atoi(argv[3]), argc > 4 ? atoi(argv[4]) : 2);
        return 0;
    }
    fprintf(stderr, "usage: zimage_cpu_bench ops [M K N [attention tokens]] | dit DIR WxH TEXT_TOKENS "
                    "[reps] | text DIR TOKENS [reps]\n");
    return 2;
}
