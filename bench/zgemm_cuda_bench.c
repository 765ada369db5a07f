/*
 * zgemm_cuda_bench.c — our Hopper GEMM (zhgemm.h) against cuBLASLt
 * (zc_gemm.h, the engine's GEMMs) on the same bf16 operands:
 *
 *   zgemm_cuda_bench check                 plain and SwiGLU GEMMs at ragged
 *                                          and DiT shapes; exit 1 on a miss
 *   zgemm_cuda_bench time [--iters N] [--json OUT.jsonl]
 *                                          the DiT's four linears at 1024²
 *                                          batch 1 (M = 4224) and 512² batch 8
 *                                          (M = 9216): median ms and TFLOP/s
 *                                          of each, and w1|w3 + SwiGLU as
 *                                          cuBLASLt + our SwiGLU kernel
 *                                          against one fused GEMM
 *
 * check's reference is cuBLASLt's output for the same inputs (both fp32
 * accumulation, bf16 out), and for SwiGLU cuBLASLt's [M, 2F] then
 * zc_swiglu, the unfused path, which rounds gate and up to bf16 first;
 * cases with an addend (the LoRA deltas' way in) give cuBLASLt a copy of
 * it to accumulate into. Each case runs with both of our output paths
 * (TMA stores where y allows, and the registers straight out). Pass: max|diff| ≤ 2^-6·max|ref| and mean|diff| ≤ 2^-9·mean|ref|:
 * the roundings differ by a bf16 step or so; a wrong fragment index, stage
 * or swizzle is off by the output's own size.
 *
 * Operands are random in [-1, 1) (x) and [-1/√K, 1/√K) (w), so that
 * outputs are O(1) like the DiT's.
 */
#include "core/err.h"
#include "core/rng.h"
#include "engine/cuda/cuda_blas.h"
#include "engine/cuda/cuda_device.h"
#include "engine/zimage/cuda/zc_gemm.h"
#include "engine/zimage/cuda/zhgemm.h"
#include "engine/zimage/cuda/zkernels.h"
#include "engine/zimage/zops.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Any CUDA error ends the bench (exit 2), naming the call. */
static void ck(int e, const char *call, int line)
{
    if (!e) return;
    fprintf(stderr, "zgemm_cuda_bench: %s: %s (line %d)\n", call,
            cudaGetErrorString((cudaError_t)e), line);
    exit(2);
}
#define CK(x) ck((int)(x), #x, __LINE__)

static px_rng rng;

/* A device bf16 matrix of n values, uniform in [-a, a). */
static void *rand_dev(size_t n, float a)
{
    uint16_t *h = malloc(n * 2);
    if (!h) exit(2);
    for (size_t i = 0; i < n; i++) h[i] = zi_f32_to_bf16(a * (2.0f * px_rng_float(&rng) - 1.0f));
    void *d;
    CK(cudaMalloc(&d, n * 2));
    CK(cudaMemcpy(d, h, n * 2, cudaMemcpyHostToDevice));
    free(h);
    return d;
}

typedef struct {
    px_cuda_pool *pool;
    px_cuda_ctx *ctx;
    zc_gemm *g;
} bench_env;

static void env_open(bench_env *e)
{
    char err[256];
    int dev = 0;
    if (px_cuda_pool_create(&dev, 1, 0, &e->pool, err, sizeof err) ||
        (e->ctx = px_cuda_pool_ctx(e->pool, 0), 0) ||
        px_cuda_blaslt_acquire(e->ctx, err, sizeof err) ||
        zc_gemm_create(e->ctx, (size_t)32 << 20, &e->g, err, sizeof err)) {
        fprintf(stderr, "zgemm_cuda_bench: %s\n", err);
        exit(2);
    }
    if (!zc_hgemm_available(0)) {
        fprintf(stderr, "zgemm_cuda_bench: zhgemm needs a compute capability 9.x GPU\n");
        exit(2);
    }
}

/* One shape's operands: x [M, K], w [rows, K], y (ours) [M, N], r (cuBLASLt's)
 * [M, 2N] for SwiGLU else [M, N]; with add, a (r's shape) added to the
 * products (zc_hgemm_args.add; cuBLASLt accumulates into a copy of it). */
typedef struct {
    int M, N, K, glu, direct, add; /* direct: zc_hgemm_args.direct_store */
    void *x, *w, *y, *r, *a;
} gcase;

static void case_open(gcase *c, int M, int N, int K, int glu, int add)
{
    *c = (gcase){.M = M, .N = N, .K = K, .glu = glu, .add = add};
    int wrows = glu ? 2 * N : N;
    c->x = rand_dev((size_t)M * K, 1.0f);
    c->w = rand_dev((size_t)wrows * K, 1.0f / sqrtf((float)K));
    c->a = add ? rand_dev((size_t)M * wrows, 0.5f) : NULL;
    CK(cudaMalloc(&c->y, (size_t)M * N * 2));
    CK(cudaMalloc(&c->r, (size_t)M * wrows * 2));
}

static void case_close(gcase *c)
{
    cudaFree(c->x);
    cudaFree(c->w);
    cudaFree(c->y);
    cudaFree(c->r);
    if (c->a) cudaFree(c->a);
}

static void run_ours(cudaStream_t s, const gcase *c)
{
    zc_hgemm_args a = {.x = c->x,
                       .ldx = c->K,
                       .M = c->M,
                       .K = c->K,
                       .w = c->w,
                       .N = c->N,
                       .glu = c->glu,
                       .glu_off = c->N,
                       .y = c->y,
                       .ldy = c->N,
                       .add = c->a,
                       .ld_add = c->glu ? 2 * c->N : c->N,
                       .direct_store = c->direct};
    CK(zc_hgemm_run(s, &a));
}

/* cuBLASLt (and for SwiGLU the engine's separate pass). */
static void run_ref(bench_env *e, const gcase *c)
{
    char err[256];
    int n = c->glu ? 2 * c->N : c->N;
    zc_gemm_args a = {.x = c->x,
                      .ldx = c->K,
                      .M = c->M,
                      .K = c->K,
                      .w = c->w,
                      .N = n,
                      .y = c->r,
                      .ldy = n,
                      .yt = ZC_BF16,
                      .accumulate = c->add};
    if (c->add) CK(cudaMemcpyAsync(c->r, c->a, (size_t)c->M * n * 2, cudaMemcpyDeviceToDevice,
                                   e->ctx->stream));
    if (zc_gemm_run(e->g, &a, err, sizeof err)) {
        fprintf(stderr, "zgemm_cuda_bench: cuBLASLt: %s\n", err);
        exit(2);
    }
    if (c->glu) CK(zc_swiglu(e->ctx->stream, c->r, n, c->M, c->N));
}

/* ours against the reference: 0 when within the bounds above. */
static int compare(const gcase *c)
{
    size_t n = (size_t)c->M * c->N, ldr = c->glu ? 2 * (size_t)c->N : (size_t)c->N;
    uint16_t *y = malloc(n * 2), *r = malloc((size_t)c->M * ldr * 2);
    if (!y || !r) exit(2);
    CK(cudaMemcpy(y, c->y, n * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(r, c->r, (size_t)c->M * ldr * 2, cudaMemcpyDeviceToHost));
    double dmax = 0, rmax = 0, dsum = 0, rsum = 0;
    long bad = -1; /* where the largest difference (or the first NaN) is: a miss's first clue */
    for (int i = 0; i < c->M; i++)
        for (int j = 0; j < c->N; j++) {
            double a = zi_bf16_to_f32(y[(size_t)i * c->N + j]), b = zi_bf16_to_f32(r[i * ldr + j]);
            double d = fabs(a - b);
            if (d != d) d = INFINITY; /* a NaN: never written (check fills y with NaNs) */
            if (d > dmax) dmax = d, bad = (long)i * c->N + j;
            rmax = fabs(b) > rmax ? fabs(b) : rmax;
            dsum += d;
            rsum += fabs(b);
        }
    int ok = dmax <= rmax / 64 && dsum <= rsum / 512 && rmax > 0;
    printf("%-5s %-6s%-5s M %5d N %5d K %5d: max|diff| %.3g (max|ref| %.3g), mean|diff| %.3g "
           "(mean|ref| %.3g): %s\n",
           c->glu ? "glu" : "plain", c->direct ? "direct" : "tma", c->add ? " +add" : "", c->M,
           c->N, c->K, dmax, rmax, dsum / n, rsum / n, ok ? "ok" : "FAIL");
    if (!ok && bad >= 0)
        printf("      worst at row %ld, column %ld: ours %g, reference %g\n", bad / c->N,
               bad % c->N, zi_bf16_to_f32(y[bad]),
               zi_bf16_to_f32(r[(bad / c->N) * ldr + bad % c->N]));
    free(y);
    free(r);
    return ok ? 0 : 1;
}

static int check(bench_env *e)
{
    static const int shapes[][5] = {
        /* M, N, K, glu, add: ragged M and K, a partial N tile, then the DiT's */
        {200, 256, 64, 0, 0},      {333, 512, 200, 0, 0},     {128, 130, 3840, 0, 0},
        {4224, 3840, 3840, 0, 0},  {4224, 11520, 3840, 0, 0}, {1000, 3840, 10240, 0, 0},
        {200, 128, 64, 1, 0},      {333, 384, 200, 1, 0},     {70, 170, 64, 1, 0},
        {4224, 10240, 3840, 1, 0}, {333, 512, 200, 0, 1},     {333, 384, 200, 1, 1},
        {70, 170, 64, 1, 1},       {4224, 10240, 3840, 1, 1}};
    int fails = 0;
    for (size_t i = 0; i < 2 * (sizeof shapes / sizeof shapes[0]); i++) {
        gcase c;
        size_t k = i / 2;
        case_open(&c, shapes[k][0], shapes[k][1], shapes[k][2], shapes[k][3], shapes[k][4]);
        c.direct = (int)(i % 2); /* both ways out: TMA stores where y allows, registers */
        CK(cudaMemset(c.y, 0xFF, (size_t)c.M * c.N * 2)); /* NaN: a tile never written shows */
        run_ours(e->ctx->stream, &c);
        run_ref(e, &c);
        CK(cudaStreamSynchronize(e->ctx->stream));
        fails += compare(&c);
        case_close(&c);
    }
    printf("zgemm_cuda_bench check: %s\n", fails ? "FAIL" : "PASS");
    return fails ? 1 : 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Median ms of `iters` runs after 3 untimed: ours (which = 0; c->direct
 * says how it stores) or cuBLASLt (1). */
static float time_one(bench_env *e, const gcase *c, int which, int iters)
{
    cudaStream_t s = e->ctx->stream;
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    float *ms = calloc((size_t)iters, sizeof *ms);
    for (int i = -3; i < iters; i++) {
        CK(cudaEventRecord(a, s));
        if (which == 0)
            run_ours(s, c);
        else
            run_ref(e, c);
        CK(cudaEventRecord(b, s));
        CK(cudaEventSynchronize(b));
        if (i >= 0) CK(cudaEventElapsedTime(&ms[i], a, b));
    }
    qsort(ms, (size_t)iters, sizeof *ms, cmp_float);
    float med = ms[iters / 2];
    free(ms);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return med;
}

static int timing(bench_env *e, int iters, const char *json)
{
    static const struct {
        const char *name;
        int N, K, glu;
    } lin[] = {{"qkv", 11520, 3840, 0},
               {"out", 3840, 3840, 0},
               {"w1|w3", 20480, 3840, 0},
               {"w2", 3840, 10240, 0},
               {"w1|w3+SwiGLU", 10240, 3840, 1}};
    static const int Ms[] = {4224, 9216};
    FILE *jf = json ? fopen(json, "a") : NULL;
    if (json && !jf) {
        fprintf(stderr, "zgemm_cuda_bench: %s: cannot open\n", json);
        return 2;
    }
    printf("%-14s %6s %6s %6s  %9s %9s %9s  %8s %8s  %s\n", "linear", "M", "N", "K", "ours ms",
           "direct ms", "cuBLAS ms", "ours TF", "cuBLAS TF", "ratio");
    for (size_t m = 0; m < 2; m++)
        for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
            gcase c;
            case_open(&c, Ms[m], lin[i].N, lin[i].K, lin[i].glu, 0);
            float t0 = time_one(e, &c, 0, iters), t1 = time_one(e, &c, 1, iters);
            c.direct = 1;
            float t2 = time_one(e, &c, 0, iters);
            double fl = 2.0 * c.M * (c.glu ? 2.0 * c.N : c.N) * c.K;
            printf("%-14s %6d %6d %6d  %9.3f %9.3f %9.3f  %8.0f %8.0f  %.3f\n", lin[i].name, c.M,
                   c.N, c.K, t0, t2, t1, fl / t0 / 1e9, fl / t1 / 1e9, t1 / t0);
            if (jf)
                fprintf(jf,
                        "{\"linear\":\"%s\",\"M\":%d,\"N\":%d,\"K\":%d,\"ours_ms\":%.4f,"
                        "\"ours_direct_ms\":%.4f,\"cublaslt_ms\":%.4f,\"ours_tflops\":%.1f,"
                        "\"cublaslt_tflops\":%.1f}\n",
                        lin[i].name, c.M, c.N, c.K, t0, t2, t1, fl / t0 / 1e9, fl / t1 / 1e9);
            case_close(&c);
        }
    if (jf) fclose(jf);
    return 0;
}

int main(int argc, char **argv)
{
    int iters = 20;
    const char *json = NULL;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout,
                "usage: zgemm_cuda_bench check | time [--iters N] [--json OUT.jsonl]\n");
        return argc < 2 ? 2 : 0;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json = argv[++i];
        else {
            fprintf(stderr, "zgemm_cuda_bench: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (iters < 1) iters = 1;
    px_rng_seed(&rng, 42, 1);
    bench_env e;
    env_open(&e);
    int rc;
    if (!strcmp(argv[1], "check"))
        rc = check(&e);
    else if (!strcmp(argv[1], "time"))
        rc = timing(&e, iters, json);
    else {
        fprintf(stderr, "zgemm_cuda_bench: unknown mode %s\n", argv[1]);
        rc = 2;
    }
    zc_gemm_free(e.g);
    px_cuda_blaslt_release(e.ctx);
    px_cuda_pool_destroy(e.pool);
    return rc;
}
