/*
 * lama_cuda_test.c — the lama engine's CUDA backend against its CPU engine
 * (itself checked against PyTorch to 1e-5, lama_test.c) on the same random
 * weights and inputs: fp32 within 2e-4 on every output, TF32 and fp16
 * within 0.03, BF16's error printed, batches equal to single runs, the engine
 * contract (pixels outside the hole untouched), a plan built in the
 * background while batches of another shape run (issue 16).
 *
 * Needs a CUDA build (make CUDA=1) and a GPU: elsewhere every test prints
 * why it is skipped and passes. `make test-gpu` runs it on a GPU machine;
 * PX_PYTHON names a python3 with torch (default /usr/bin/python3).
 */
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/pool.h"
#include "core/rng.h"
#include "engine/engine.h"
#include "engine/lama/graph.h"
#include "engine/lama/lama_cuda.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char *python(void)
{
    const char *p = getenv("PX_PYTHON");
    return p ? p : "/usr/bin/python3";
}

/* Weights of a configuration into the test's directory; NULL when there
 * is no CUDA backend or GPU, or no python with torch (the test is then
 * skipped, saying why). */
static char *make_weights(const char *config, int seed)
{
    char why[200];
    if (px_lama_cuda_probe(why, sizeof why)) {
        printf("    skipped: %s\n", why);
        return NULL;
    }
    static char path[512];
    snprintf(path, sizeof path, "%s/%s-%d.safetensors", px_test_tmpdir(), config, seed);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s tools/lama_reference.py weights --config %s --seed %d --out %s",
             python(), config, seed, path);
    if (system(cmd) != 0) {
        printf("    skipped: %s cannot run tools/lama_reference.py (torch missing?)\n", python());
        return NULL;
    }
    return path;
}

/* Opens the CUDA engine, or explains why not (skip). With the compute
 * threads, as pixserve opens it: they stage the batches' images. */
static px_engine *open_cuda(const char *weights, const char *precision)
{
    px_engine_config cfg = {
        .weights = weights, .device = "cuda", .precision = precision, .pool = px_pool_default()};
    px_engine *e = NULL;
    char err[256];
    int rc = px_engine_open("lama", &cfg, &e, err, sizeof err);
    if (rc == PX_EUNSUP) {
        printf("    skipped: %s\n", err);
        return NULL;
    }
    if (rc) px_tfail(__FILE__, __LINE__, "opening lama on cuda: %s", err);
    return e;
}

static px_image mk(int w, int h, int c)
{
    px_image im;
    T_EQ_INT(px_image_alloc(&im, w, h, c, NULL, NULL, 0), 0);
    return im;
}

/* A smooth image with texture and a mask of two blobs and a stroke. */
static void synth(px_image *img, px_image *mask, uint64_t seed)
{
    px_rng r;
    px_rng_seed(&r, seed, 1);
    float fx = 0.05f + 0.1f * px_rng_float(&r), fy = 0.05f + 0.1f * px_rng_float(&r);
    for (int y = 0; y < img->h; y++)
        for (int x = 0; x < img->w; x++)
            for (int k = 0; k < 3; k++) {
                float v =
                    128 + 90 * sinf(fx * x * (k + 1) + fy * y) + 20 * (px_rng_float(&r) - 0.5f);
                img->px[((size_t)y * img->w + x) * 3 + k] = (uint8_t)(v < 0     ? 0
                                                                      : v > 255 ? 255
                                                                                : v);
            }
    memset(mask->px, 0, (size_t)mask->w * mask->h);
    int cx = img->w / 3, cy = img->h / 2, rad = (img->w < img->h ? img->w : img->h) / 5 + 1;
    for (int y = 0; y < img->h; y++)
        for (int x = 0; x < img->w; x++) {
            int dx = x - cx, dy = y - cy;
            if (dx * dx + dy * dy <= rad * rad) mask->px[(size_t)y * img->w + x] = 255;
            if (abs(x - img->w * 2 / 3) <= 1 && y > img->h / 5)
                mask->px[(size_t)y * img->w + x] = 255;
        }
}

/* The CPU engine's float prediction at the padded size (H x W x 3). */
static float *cpu_pred(const char *weights, const px_image *img, const px_image *mask, int *H,
                       int *W)
{
    px_lama_net *net;
    px_lama_plan *plan;
    char err[256];
    T_EQ_INT(px_lama_net_load(weights, &net, err, sizeof err), 0);
    const px_lama_arch *a = px_lama_net_arch(net);
    *H = px_lama_padded_side(a, img->h);
    *W = px_lama_padded_side(a, img->w);
    px_pool *pool = px_pool_create(0);
    if (px_lama_plan_create(net, *H, *W, px_pool_threads(pool), &plan, err, sizeof err))
        px_tfail(__FILE__, __LINE__, "cpu plan: %s", err);
    if (px_lama_plan_run(plan, pool, img, mask, NULL, NULL, NULL, NULL, err, sizeof err))
        px_tfail(__FILE__, __LINE__, "cpu run: %s", err);
    size_t n = (size_t)*H * *W * 3;
    float *out = malloc(n * sizeof *out);
    memcpy(out, px_lama_plan_pred(plan), n * sizeof *out);
    px_lama_plan_destroy(plan);
    px_lama_net_free(net);
    px_pool_destroy(pool);
    return out;
}

static void errors(const float *a, const float *b, size_t n, double *maxe, double *meane)
{
    *maxe = 0;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= *maxe)) *maxe = d; /* NaN counts as the worst */
        s += d;
    }
    *meane = s / (double)n;
}

/* Compares the CUDA engine in each of precs[0..np) with the CPU engine on
 * one size; fp32 must stay within tol. */
static void compare(const char *weights, int w, int h, uint64_t seed, double tol,
                    const char *const *precs, int np)
{
    px_image img = mk(w, h, 3), mask = mk(w, h, 1), out = mk(w, h, 3);
    synth(&img, &mask, seed);
    int H, W;
    float *ref = cpu_pred(weights, &img, &mask, &H, &W);
    printf("    %dx%d (padded %dx%d):", w, h, W, H);
    for (int k = 0; k < np; k++) {
        /* bf16 is refused unless asked for as a diagnosis */
        setenv("PX_LAMA_CUDA_UNVERIFIED_BF16", "1", 1);
        px_engine *e = open_cuda(weights, precs[k]);
        unsetenv("PX_LAMA_CUDA_UNVERIFIED_BF16");
        if (!e) break;
        px_engine_item it = {.image = &img, .mask = &mask, .out = &out};
        float *pred;
        int ph, pw;
        char err[256];
        if (px_lama_cuda_run_float(e, &it, 1, &pred, &ph, &pw, err, sizeof err))
            px_tfail(__FILE__, __LINE__, "cuda %s: %s", precs[k], err);
        T_EQ_INT(ph, H);
        T_EQ_INT(pw, W);
        double mx, mean;
        errors(pred, ref, (size_t)H * W * 3, &mx, &mean);
        printf(" %s max %.2e mean %.2e;", precs[k], mx, mean);
        fflush(stdout);
        if (!strcmp(precs[k], "fp32")) T_CMP_DBL(mx, <=, tol);
        /* TF32: a bound well above what it measures (about 5e-3 with random
         * big-lama weights) and far below a broken layer. The comparison
         * with PyTorch's own TF32 and the photo PSNR are
         * bench/lama_cuda_vs_torch.py's. */
        if (!strcmp(precs[k], "tf32")) T_CMP_DBL(mx, <=, 0.03);
        /* bf16 (not offered: it misses the photo PSNR bar) is printed, not
         * judged: it sometimes reaches 0.3 and more. fp16 has TF32's
         * mantissa and rounds the activations it stores: emulated on the
         * CPU (tools/lama_precision_emulate.py, fp16w) its errors stay
         * near TF32's, far under TF32's bound; an overflow (inf, NaN) or a
         * buffer of the wrong type fails it. */
        if (!strcmp(precs[k], "fp16")) T_CMP_DBL(mx, <=, 0.03);
        /* the contract: pixels outside the hole are the input's */
        for (size_t i = 0; i < (size_t)w * h; i++)
            if (!mask.px[i]) T_EQ_MEM(out.px + i * 3, img.px + i * 3, 3);
        free(pred);
        px_engine_close(e);
    }
    printf("\n");
    free(ref);
    px_image_free(&img);
    px_image_free(&mask);
    px_image_free(&out);
}

/* fp32, TF32 and BF16 (printed); fp16 has its own test, so that a miss
 * there leaves these verdicts standing. */
static const char *const k_precs[] = {"fp32", "tf32", "bf16"};
static const int k_tiny[][2] = {{64, 64}, {61, 45}, {100, 53}, {37, 120}, {200, 24}, {13, 10}};

TEST(t_tiny_sizes)
{
    char *wts = make_weights("tiny", 1);
    if (!wts) return;
    for (size_t i = 0; i < sizeof k_tiny / sizeof k_tiny[0]; i++)
        compare(wts, k_tiny[i][0], k_tiny[i][1], 7 + i, 2e-4, k_precs, 3);
}

TEST(t_big_lama)
{
    char *wts = make_weights("big-lama", 2);
    if (!wts) return;
    compare(wts, 256, 192, 11, 2e-4, k_precs, 3);
    compare(wts, 203, 141, 12, 2e-4, k_precs, 3);
}

/* Bytes of a and b (len) that differ, and the largest difference. */
static size_t bytes_apart(const uint8_t *a, const uint8_t *b, size_t len, int *maxd)
{
    size_t n = 0;
    *maxd = 0;
    for (size_t k = 0; k < len; k++) {
        int d = abs((int)a[k] - (int)b[k]);
        n += d != 0;
        if (d > *maxd) *maxd = d;
    }
    return n;
}

/* n items of w x h in one call, three times (the second captures a CUDA
 * graph, the third replays it): each must match a lone run. Not to the
 * byte: a plan per batch size picks its cuDNN algorithms by timing them
 * (cudnnFind), and two fp32 algorithms round apart, which moves a value
 * near a level's edge by one (seen on an H100, 2026-12-05: one byte of
 * 786,432 at 512², batch 4 against 1). A batchmate's pixels leaking in
 * would move many by more. */
#define BATCH_MAX_APART(len) ((len) / 1000 + 1)
/* maxd: the most two runs' bytes may differ by (1: and only on a few). */
static void batch_vs_single(px_engine *e, int w, int h, int n, int seed, int maxd_ok)
{
    px_image img[8], mask[8], out[8], one = mk(w, h, 3);
    px_engine_item items[8];
    for (int i = 0; i < n; i++) {
        img[i] = mk(w, h, 3);
        mask[i] = mk(w, h, 1);
        out[i] = mk(w, h, 3);
        synth(&img[i], &mask[i], seed + i);
        items[i] = (px_engine_item){.image = &img[i], .mask = &mask[i], .out = &out[i]};
    }
    for (int rep = 0; rep < 3; rep++) {
        T_EQ_INT(px_engine_run(e, items, n), 0);
        for (int i = 0; i < n; i++) {
            px_engine_item it = {.image = &img[i], .mask = &mask[i], .out = &one};
            T_EQ_INT(px_engine_run(e, &it, 1), 0);
            int maxd;
            size_t len = (size_t)w * h * 3, apart = bytes_apart(one.px, out[i].px, len, &maxd);
            if (apart)
                printf("    %dx%d item %d of %d: %zu bytes apart, by at most %d\n", w, h, i, n,
                       apart, maxd);
            T_CMP_INT(maxd, <=, maxd_ok);
            if (maxd_ok <= 1) T_CMP_INT((long)apart, <=, (long)BATCH_MAX_APART(len));
        }
    }
    for (int i = 0; i < n; i++) {
        px_image_free(&img[i]);
        px_image_free(&mask[i]);
        px_image_free(&out[i]);
    }
    px_image_free(&one);
}

TEST(t_batch_equals_single_runs)
{
    char *wts = make_weights("tiny", 3);
    if (!wts) return;
    px_engine *e = open_cuda(wts, "fp32");
    if (!e) return;
    batch_vs_single(e, 72, 40, 3, 100, 1);   /* small: padded to a plan of 4 */
    batch_vs_single(e, 512, 512, 7, 200, 1); /* large: run as 4 + 2 + 1 (run_split) */
    px_engine_shape s512 = {512, 512, 0, 0};
    T_TRUE(px_engine_mem_estimate(e, 4, s512) > px_engine_mem_estimate(e, 1, s512));
    T_TRUE(px_engine_free_memory(e) > 0);
    px_engine_close(e);
}

/* FP16, the default (the bias channel and the tensor-core stem and head
 * with it): against the CPU engine as TF32 is, then batches and repeated
 * runs through the engine's own path (CUDA graphs replayed on plans whose
 * arena held other values before: a buffer read as the wrong type would
 * show as NaN, far more than the few levels cuDNN's algorithm choices per
 * batch size move). Opened without a precision, the engine says fp16. */
TEST(t_fp16)
{
    static const char *const fp16[] = {"fp16"};
    char *wts = make_weights("tiny", 1); /* (a static buffer: one at a time) */
    if (!wts) return;
    for (size_t i = 0; i < sizeof k_tiny / sizeof k_tiny[0]; i++)
        compare(wts, k_tiny[i][0], k_tiny[i][1], 7 + i, 2e-4, fp16, 1);
    char *big = make_weights("big-lama", 2);
    if (!big) return;
    compare(big, 256, 192, 11, 2e-4, fp16, 1);
    px_engine *e = open_cuda(big, NULL);
    if (!e) return;
    px_buf d;
    px_buf_init(&d, 1 << 16);
    T_EQ_INT(px_engine_describe(e, &d), 0);
    T_TRUE(d.data != NULL);
    T_CONTAINS((const char *)d.data, "\"precision\":\"fp16\"");
    px_buf_free(&d);
    batch_vs_single(e, 72, 40, 3, 100, 16);
    batch_vs_single(e, 512, 384, 5, 300, 16);
    px_engine_close(e);
}

/* With env=value: precs against the CPU engine at the tiny sizes and two
 * big-lama ones (the same bounds as without the variable), then, when
 * fp16 is among them, fp16 batches against lone runs. */
static void check_variant(const char *env, const char *value, const char *const *precs, int np)
{
    setenv(env, value, 1);
    char *wts = make_weights("tiny", 1);
    if (wts)
        for (size_t i = 0; i < sizeof k_tiny / sizeof k_tiny[0]; i++)
            compare(wts, k_tiny[i][0], k_tiny[i][1], 7 + i, 2e-4, precs, np);
    char *big = wts ? make_weights("big-lama", 2) : NULL;
    if (big) {
        compare(big, 256, 192, 11, 2e-4, precs, np);
        compare(big, 203, 141, 12, 2e-4, precs, np);
        px_engine *e = !strcmp(precs[0], "fp16") ? open_cuda(big, "fp16") : NULL;
        if (e) {
            batch_vs_single(e, 512, 384, 5, 300, 16);
            px_engine_close(e);
        }
    }
    unsetenv(env);
}

/* The bias channel (lama_cuda_weights.h; 32 wide by default, whose groups
 * after the first must be zeros: the tests above): fp16 without it
 * (PX_LAMA_CUDA_BIASCH=0, for diagnosis), 8 wide (=8) and bf16 with it
 * (=1) within the same bounds;
 * the padded sizes take the channel through every padding kernel, and
 * TF32 is unchanged by it. */
TEST(t_bias_channel)
{
    static const char *const fp16[] = {"fp16"}, *const on[] = {"bf16", "tf32"};
    check_variant("PX_LAMA_CUDA_BIASCH", "0", fp16, 1);
    check_variant("PX_LAMA_CUDA_BIASCH", "8", fp16, 1);
    check_variant("PX_LAMA_CUDA_BIASCH", "1", on, 2);
}

/* The 7x7 stem and head: on the tensor cores (conv7.h) by default in every
 * precision but fp32 (which keeps the CUDA cores' kernels: its 2e-4 bound
 * would fail on fp16 inputs), covered by the tests above; here bf16 with
 * them and fp16 and tf32 without them (PX_LAMA_CUDA_TC7=0). The tiny model
 * (8 stem outputs, 8 head inputs: one n-tile, one half-empty chunk) and
 * big-lama (64, 64) at sizes whose tiles are mostly border. A fragment in
 * the wrong order moves whole pixels by far more than the bounds. */
TEST(t_tc7)
{
    static const char *const on[] = {"bf16"}, *const off[] = {"fp16", "tf32"};
    check_variant("PX_LAMA_CUDA_TC7", "1", on, 1);
    check_variant("PX_LAMA_CUDA_TC7", "0", off, 2);
}

/* The tensor-core stem writing the first down-sampling's reflection-padded
 * input (with the bias channel) itself is the default, covered above; here
 * without it (PX_LAMA_CUDA_STEM_PD=0) within the same bounds. */
TEST(t_stem_pd)
{
    static const char *const precs[] = {"fp16", "tf32"};
    check_variant("PX_LAMA_CUDA_STEM_PD", "0", precs, 2);
}

/* The Fourier unit's transforms at big-lama sizes whose 1/8-scale sides
 * are 32x32, 64x32 and 32x64 (most other tests' sizes have sides that only
 * cuFFT takes) in fp16, TF32 and (two of them) fp32 within the usual
 * bounds, and fp16 batches against lone runs; PX_LAMA_CUDA_FFT set to fft
 * (NULL: unset, the default: fft2.h's NHWC kernels, whose arithmetic
 * tests/host/fft2_host_check checks on the host). */
static void fft_sizes(const char *fft)
{
    static const char *const precs[] = {"fp16", "tf32", "fp32"};
    char *big = make_weights("big-lama", 2);
    if (!big) return;
    if (fft) setenv("PX_LAMA_CUDA_FFT", fft, 1);
    compare(big, 256, 256, 13, 2e-4, precs, 3);
    compare(big, 512, 256, 14, 2e-4, precs, 2);
    compare(big, 256, 512, 15, 2e-4, precs, 3);
    px_engine *e = open_cuda(big, "fp16");
    if (e) {
        batch_vs_single(e, 256, 256, 3, 400, 16);
        px_engine_close(e);
    }
    unsetenv("PX_LAMA_CUDA_FFT");
}

/* fft2.h's kernels, the default. */
TEST(t_fft_nhwc)
{
    fft_sizes(NULL);
}

/* PX_LAMA_CUDA_FFT=cufft: cuFFT's planar path at the same sizes. */
TEST(t_fft_cufft)
{
    fft_sizes("cufft");
}

/* One item of w x h through e; out must be allocated. */
static void run_one(px_engine *e, px_image *img, px_image *mask, px_image *out)
{
    px_engine_item it = {.image = img, .mask = mask, .out = out};
    T_EQ_INT(px_engine_run(e, &it, 1), 0);
}

TEST(t_plan_built_in_background)
{
    char *wts = make_weights("big-lama", 2);
    if (!wts) return;
    px_engine *e = open_cuda(wts, "fp32");
    if (!e) return;
    px_image si = mk(256, 256, 3), sm = mk(256, 256, 1), so = mk(256, 256, 3);
    px_image bi = mk(1024, 768, 3), bm = mk(1024, 768, 1), bo = mk(1024, 768, 3),
             ref = mk(1024, 768, 3);
    synth(&si, &sm, 31);
    synth(&bi, &bm, 32);
    run_one(e, &si, &sm, &so); /* 256²'s plan, built here */
    px_engine_shape big = {1024, 768, 0, 0}, small = {256, 256, 0, 0};
    T_EQ_INT(px_engine_ready(e, 1, small), 1);
    int64_t t0 = px_now_ns();
    T_EQ_INT(px_engine_ready(e, 1, big), 0); /* queued for the background */
    /* Batches of the built shape run while the other plan builds. */
    int runs = 0;
    double slowest = 0;
    while (!px_engine_ready(e, 1, big) && px_now_ns() - t0 < 120 * 1000000000LL) {
        int64_t t = px_now_ns();
        run_one(e, &si, &sm, &so);
        double ms = px_ns_to_ms(px_now_ns() - t);
        if (ms > slowest) slowest = ms;
        runs++;
    }
    double build_ms = px_ns_to_ms(px_now_ns() - t0);
    printf("    background build of 1024x768: %.0f ms; meanwhile %d batches of 256x256 ran, the "
           "slowest in %.1f ms\n",
           build_ms, runs, slowest);
    T_EQ_INT(px_engine_ready(e, 1, big), 1);
    T_CMP_INT(runs, >=, 3);
    T_TRUE(slowest < build_ms / 2);
    /* The handed-over plan computes what a plan built on the worker does
     * (another engine; cuDNN may time another algorithm: a few levels). */
    run_one(e, &bi, &bm, &bo);
    px_engine *e2 = open_cuda(wts, "fp32");
    run_one(e2, &bi, &bm, &ref);
    int worst = 0;
    for (size_t i = 0; i < (size_t)1024 * 768 * 3; i++) {
        int d = abs((int)bo.px[i] - (int)ref.px[i]);
        if (d > worst) worst = d;
    }
    printf("    its output against a plan built on the worker: at most %d levels apart\n", worst);
    T_CMP_INT(worst, <=, 2);
    px_engine_close(e2);
    px_engine_close(e);
    px_image *all[] = {&si, &sm, &so, &bi, &bm, &bo, &ref};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) px_image_free(all[i]);
}

/* A run's output bytes stay in the plan's arena until the next run; a
 * buffer sharing their memory, read by a fused convolution (times 0)
 * before it is written, would turn four bytes of 255 (a float NaN) into
 * NaN. So: a white image (one pixel of hole: the network runs), then a
 * photo-like one on the same plan, against that one on a fresh engine. */
TEST(t_previous_output_does_not_leak)
{
    char *wts = make_weights("big-lama", 2);
    if (!wts) return;
    px_engine *e = open_cuda(wts, "tf32"), *e2 = open_cuda(wts, "tf32");
    if (!e || !e2) return;
    int w = 320, h = 256;
    px_image wi = mk(w, h, 3), wm = mk(w, h, 1), wo = mk(w, h, 3);
    memset(wi.px, 255, (size_t)w * h * 3);
    memset(wm.px, 0, (size_t)w * h);
    wm.px[(size_t)(h / 2) * w + w / 2] = 255;
    px_image si = mk(w, h, 3), sm = mk(w, h, 1), so = mk(w, h, 3), ref = mk(w, h, 3);
    synth(&si, &sm, 41);
    run_one(e, &wi, &wm, &wo);
    run_one(e, &si, &sm, &so);
    run_one(e2, &si, &sm, &ref);
    int maxd;
    size_t apart = bytes_apart(so.px, ref.px, (size_t)w * h * 3, &maxd);
    printf("    after a white output: %zu bytes apart from a fresh engine's, by at most %d\n",
           apart, maxd);
    T_CMP_INT(maxd, <=, 2); /* another engine's cuDNN timing may pick other algorithms */
    px_engine_close(e);
    px_engine_close(e2);
    px_image *all[] = {&wi, &wm, &wo, &si, &sm, &so, &ref};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) px_image_free(all[i]);
}

TEST(t_bad_precision_and_device)
{
    /* Checked before any file is read, so no weights are needed. */
    const char *wts = "/nonexistent.safetensors";
    px_engine_config cfg = {.weights = wts, .device = "cuda", .precision = "fp8"};
    px_engine *e = NULL;
    char err[256];
    int rc = px_engine_open("lama", &cfg, &e, err, sizeof err);
    T_EQ_INT(rc, PX_EUNSUP); /* no such precision */
    T_TRUE(e == NULL);
    cfg.precision = NULL;
    cfg.device = "cuda:99";
    T_EQ_INT(px_engine_open("lama", &cfg, &e, err, sizeof err), PX_EUNSUP);
    cfg.device = "gpu";
    T_NE_INT(px_engine_open("lama", &cfg, &e, err, sizeof err), 0);
    cfg.device = "cuda";
    cfg.precision = "bf16";
    T_EQ_INT(px_engine_open("lama", &cfg, &e, err, sizeof err), PX_EUNSUP);
    if (!strstr(err, "without CUDA")) T_CONTAINS(err, "not offered");
    cfg.precision = "fp16"; /* offered (the default): only the missing file stops it */
    T_NE_INT(px_engine_open("lama", &cfg, &e, err, sizeof err), 0);
    T_TRUE(strstr(err, "not offered") == NULL);
    cfg.device = "cpu";
    T_EQ_INT(px_engine_open("lama", &cfg, &e, err, sizeof err), PX_EUNSUP);
    T_CONTAINS(err, "fp32");
}

TEST_MAIN(t_tiny_sizes, t_big_lama, t_batch_equals_single_runs, t_plan_built_in_background,
          t_previous_output_does_not_leak, t_bad_precision_and_device, t_fp16, t_bias_channel,
          t_tc7, t_stem_pd, t_fft_nhwc, t_fft_cufft)
