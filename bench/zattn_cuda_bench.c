/*
 * zattn_cuda_bench.c — the Z-Image CUDA backend's attention kernels
 * (zattn.h: mma.sync, the default, WMMA, mma2 and cuDNN's), checked and timed:
 *
 *   zattn_cuda_bench check          every kernel against a host reference
 *                                   (double, from the same bf16 inputs)
 *   zattn_cuda_bench time [--iters N] [--json OUT.jsonl]
 *                                   both kernels at the DiT's shapes
 *   zattn_cuda_bench deviceprop OUT.json
 *                                   this GPU's properties as cuDNN serializes
 *                                   them (for deviceless plan builds)
 *   zattn_cuda_bench spellings DEVPROP.json
 *                                   which spellings of the cuDNN graph that
 *                                   GPU's engines take (needs no GPU)
 *
 * check: head sizes 16/32/64/128, GQA, causal, items of different key
 * lengths (one with none: zeros), query counts that are not multiples of
 * the 64-row tile; rows past n_q must stay untouched. Pass: max|diff| ≤
 * 1e-2·max|ref| for each case (bf16 probabilities and a bf16 output round
 * at 2^-9 relative each; anything wrong in a fragment's indexing is off by
 * the output's own size). Exit 1 on any failure. cudnn runs only the
 * cases zattn_cudnn takes (the others print "skipped (not supported)"), and
 * fails every case once it turned itself off (its reason printed).
 * time: the DiT's attention at 1024² (4096 image + 128 text tokens) and
 * 512² (1024 + 128), 30 heads of 128, q/k/v interleaved in one fused qkv
 * buffer as the engine lays them out; median ms of --iters (default 20)
 * after 3 untimed, TFLOP/s counted as 4·S²·128·30 per item. A cudnn that
 * turned itself off prints "cudnn disabled (why)" instead of its row.
 *
 * Ran on an H200 on 2026-12-05 (docs/benchmarks/zimage-cuda.md).
 */
#include "engine/zimage/cuda/zattn.h"
#include "engine/zimage/cuda/zattn_cudnn.h"
#include "engine/zimage/cuda/zattn_cudnn_graph.h"

#include <cuda_runtime.h>
#include <cudnn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(x)                                                                                     \
    do {                                                                                          \
        int e_ = (int)(x);                                                                        \
        if (e_) {                                                                                 \
            fprintf(stderr, "zattn_cuda_bench: %s: %s (line %d)\n", #x,                           \
                    cudaGetErrorString((cudaError_t)e_), __LINE__);                               \
            exit(2);                                                                              \
        }                                                                                         \
    } while (0)

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float urand(void) /* [-1, 1) */
{
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) / (double)(1 << 23)) - 1.0f;
}

typedef struct acase {
    int hd, nh, nkv, items, S, n_q, causal;
    int kv_len[3];
} acase;

/* Host reference of one (item, head, query) row into out[hd]. */
static void ref_row(const acase *c, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                    int ld, int b, int h, int i, double *out)
{
    int hk = h / (c->nh / c->nkv), koff = c->nh * c->hd, voff = koff + c->nkv * c->hd;
    int nk = c->kv_len[b] < c->S ? c->kv_len[b] : c->S;
    if (c->causal && nk > i + 1) nk = i + 1;
    double mx = -INFINITY, sum = 0, *s = malloc(sizeof(double) * (nk ? nk : 1));
    const uint16_t *qr = q + ((size_t)b * c->S + i) * ld + (size_t)h * c->hd;
    for (int j = 0; j < nk; j++) {
        const uint16_t *kr = k + ((size_t)b * c->S + j) * ld + koff + (size_t)hk * c->hd;
        double d = 0;
        for (int x = 0; x < c->hd; x++) d += (double)from_bf16(qr[x]) * from_bf16(kr[x]);
        s[j] = d / sqrt((double)c->hd);
        if (s[j] > mx) mx = s[j];
    }
    for (int x = 0; x < c->hd; x++) out[x] = 0;
    for (int j = 0; j < nk; j++) {
        double p = exp(s[j] - mx);
        sum += p;
        const uint16_t *vr = v + ((size_t)b * c->S + j) * ld + voff + (size_t)hk * c->hd;
        for (int x = 0; x < c->hd; x++) out[x] += p * from_bf16(vr[x]);
    }
    for (int x = 0; x < c->hd; x++) out[x] = nk ? out[x] / sum : 0;
    free(s);
}

#define SENTINEL 0x7fc1 /* a NaN pattern no kernel writes */

/* Whether zattn_cudnn takes the case (else the dispatcher would run mma
 * under cudnn's name). */
static int cudnn_takes(const acase *c)
{
    int ld = (c->nh + 2 * c->nkv) * c->hd;
    zc_attn a = {.ldq = ld, .ldk = ld, .ldv = ld, .ldo = c->nh * c->hd, .n_items = c->items,
                 .S_q = c->S, .S_kv = c->S, .n_q = c->n_q, .n_heads = c->nh,
                 .n_kv_heads = c->nkv, .head_dim = c->hd, .causal = c->causal};
    return zattn_cudnn_supports(&a);
}

/* One case through one kernel: the fused buffer [items·S, (nh+2·nkv)·hd],
 * the output [items·S, nh·hd] pre-filled with SENTINEL. */
static int check_case(const acase *c, int impl)
{
    if (impl == ZC_ATTN_CUDNN && !cudnn_takes(c)) {
        printf("cudnn hd %3d heads %2d/%d items %d S %3d n_q %3d causal %d: skipped (not "
               "supported)\n",
               c->hd, c->nh, c->nkv, c->items, c->S, c->n_q, c->causal);
        return 1;
    }
    int ld = (c->nh + 2 * c->nkv) * c->hd, ldo = c->nh * c->hd;
    size_t nin = (size_t)c->items * c->S * ld, nout = (size_t)c->items * c->S * ldo;
    uint16_t *x = malloc(nin * 2), *o = malloc(nout * 2);
    for (size_t i = 0; i < nin; i++) x[i] = to_bf16(2.0f * urand());
    for (size_t i = 0; i < nout; i++) o[i] = SENTINEL;
    void *dx, *dout;
    int *dlen;
    CK(cudaMalloc(&dx, nin * 2));
    CK(cudaMalloc(&dout, nout * 2));
    CK(cudaMalloc((void **)&dlen, sizeof c->kv_len));
    CK(cudaMemcpy(dx, x, nin * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dout, o, nout * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dlen, c->kv_len, sizeof c->kv_len, cudaMemcpyHostToDevice));
    zc_attn a = {.q = dx, .k = (uint16_t *)dx + c->nh * c->hd,
                 .v = (uint16_t *)dx + (c->nh + c->nkv) * c->hd, .o = dout, .ldq = ld, .ldk = ld,
                 .ldv = ld, .ldo = ldo, .n_items = c->items, .S_q = c->S, .S_kv = c->S,
                 .n_q = c->n_q, .kv_len = dlen, .n_heads = c->nh, .n_kv_heads = c->nkv,
                 .head_dim = c->hd, .scale = 1.0f / sqrtf((float)c->hd), .causal = c->causal};
    CK(zc_attention_with(0, &a, impl));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(o, dout, nout * 2, cudaMemcpyDeviceToHost));
    double maxref = 0, maxdiff = 0, *ref = malloc(sizeof(double) * c->hd);
    int touched = 0;
    for (int b = 0; b < c->items; b++)
        for (int i = 0; i < c->S; i++)
            for (int h = 0; h < c->nh; h++) {
                const uint16_t *orow = o + ((size_t)b * c->S + i) * ldo + (size_t)h * c->hd;
                if (i >= c->n_q) {
                    for (int d = 0; d < c->hd; d++) touched += orow[d] != SENTINEL;
                    continue;
                }
                ref_row(c, x, x, x, ld, b, h, i, ref);
                for (int d = 0; d < c->hd; d++) {
                    double diff = fabs(from_bf16(orow[d]) - ref[d]);
                    if (!(diff <= maxdiff)) maxdiff = isnan(diff) ? INFINITY : diff;
                    if (fabs(ref[d]) > maxref) maxref = fabs(ref[d]);
                }
            }
    int ok = maxdiff <= 1e-2 * maxref && !touched;
    const char *off = impl == ZC_ATTN_CUDNN ? zattn_cudnn_disabled() : NULL;
    if (off) ok = 0, printf("cudnn turned itself off (%s); mma ran:\n", off);
    printf("%-4s hd %3d heads %2d/%d items %d S %3d n_q %3d causal %d kv_len %d,%d,%d: "
           "max|diff| %.3g of max|ref| %.3g, rows past n_q written %d: %s\n",
           zc_attn_impl_name(impl), c->hd, c->nh, c->nkv, c->items, c->S, c->n_q,
           c->causal, c->kv_len[0], c->kv_len[1], c->kv_len[2], maxdiff, maxref, touched,
           ok ? "ok" : "FAIL");
    cudaFree(dx), cudaFree(dout), cudaFree(dlen), free(x), free(o), free(ref);
    return ok;
}

static int run_check(void)
{
    static const acase cases[] = {
        {128, 4, 4, 2, 200, 200, 0, {200, 137, 0}},   /* DiT-like: padded items */
        {128, 8, 2, 1, 130, 130, 1, {130, 0, 0}},     /* Qwen3-like: GQA, causal */
        {64, 2, 1, 3, 96, 70, 0, {96, 65, 0}},        /* n_q < S; an item without keys */
        {32, 3, 3, 2, 64, 64, 1, {64, 33, 0}},        /* tiny models' head sizes */
        {16, 2, 2, 2, 150, 150, 0, {1, 150, 0}},      /* a single key */
        {64, 3, 3, 3, 96, 96, 0, {96, 50, 1}},        /* cudnn's head size 64 */
    };
    int fails = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int impl = 0; impl < ZC_ATTN_COUNT; impl++) fails += !check_case(&cases[i], impl);
    const char *sp = zattn_cudnn_spelling();
    printf("cudnn graph spelling taken: %s\n", sp ? sp : "none (no plan was built)");
    printf("attention check: %s (%d failed)\n", fails ? "FAIL" : "PASS", fails);
    return fails ? 1 : 0;
}

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The DiT's attention: S tokens per item (all valid), B items. */
static void time_shape(const char *size, int S, int B, int iters, FILE *js)
{
    const int hd = 128, nh = 30, ld = 3 * nh * hd;
    size_t nin = (size_t)B * S * ld;
    void *dx, *dout;
    int *dlen, lens[8];
    for (int i = 0; i < B; i++) lens[i] = S;
    CK(cudaMalloc(&dx, nin * 2));
    CK(cudaMalloc(&dout, (size_t)B * S * nh * hd * 2));
    CK(cudaMalloc((void **)&dlen, sizeof lens));
    CK(cudaMemset(dx, 0x3c, nin * 2)); /* bf16 0x3c3c ≈ 0.0115: finite scores */
    CK(cudaMemcpy(dlen, lens, sizeof lens, cudaMemcpyHostToDevice));
    zc_attn a = {.q = dx, .k = (uint16_t *)dx + nh * hd, .v = (uint16_t *)dx + 2 * nh * hd,
                 .o = dout, .ldq = ld, .ldk = ld, .ldv = ld, .ldo = nh * hd, .n_items = B,
                 .S_q = S, .S_kv = S, .n_q = S, .kv_len = dlen, .n_heads = nh,
                 .n_kv_heads = nh, .head_dim = hd, .scale = 1.0f / sqrtf(128.0f)};
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int impl = 0; impl < ZC_ATTN_COUNT; impl++) {
        float ms[200];
        for (int it = -3; it < iters; it++) {
            CK(cudaEventRecord(e0, 0));
            CK(zc_attention_with(0, &a, impl));
            CK(cudaEventRecord(e1, 0));
            CK(cudaEventSynchronize(e1));
            if (it >= 0) CK(cudaEventElapsedTime(&ms[it], e0, e1));
        }
        const char *off = impl == ZC_ATTN_CUDNN ? zattn_cudnn_disabled() : NULL;
        if (off) { /* mma ran under its name: no row */
            printf("cudnn disabled (%s)\n", off);
            continue;
        }
        qsort(ms, (size_t)iters, sizeof ms[0], cmp_f);
        double med = ms[iters / 2], tf = 4.0 * S * S * hd * nh * B / (med * 1e-3) / 1e12;
        const char *name = zc_attn_impl_name(impl);
        printf("%s %s batch %d (S %d): %.3f ms, %.0f TFLOP/s\n", name, size, B, S, med, tf);
        if (js)
            fprintf(js,
                    "{\"impl\":\"%s\",\"size\":\"%s\",\"batch\":%d,\"tokens\":%d,\"heads\":%d,"
                    "\"head_dim\":%d,\"ms\":%.4f,\"tflops\":%.1f}\n",
                    name, size, B, S, nh, hd, med, tf);
    }
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    cudaFree(dx), cudaFree(dout), cudaFree(dlen);
}

/* This GPU's properties as cuDNN (9.8+) serializes them: with that file,
 * cuDNN's heuristics and plan builds run on a machine without the GPU
 * (deviceless compilation), so the graph spellings zattn_cudnn.c tries can
 * be checked against this GPU's engines from the development machine. */
static int save_deviceprop(const char *path)
{
    cudnnHandle_t h = NULL;
    cudnnBackendDescriptor_t d = NULL;
    int64_t n = 0;
    char *buf = NULL;
    cudnnStatus_t st;
    if (!(st = cudnnCreate(&h)) &&
        !(st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR, &d)) &&
        !(st = cudnnBackendSetAttribute(d, CUDNN_ATTR_DEVICEPROP_HANDLE, CUDNN_TYPE_HANDLE, 1,
                                        &h)) &&
        !(st = cudnnBackendFinalize(d)) &&
        !(st = cudnnBackendGetAttribute(d, CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION,
                                        CUDNN_TYPE_CHAR, 0, &n, NULL)) &&
        n > 0 && (buf = malloc((size_t)n)))
        st = cudnnBackendGetAttribute(d, CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION,
                                      CUDNN_TYPE_CHAR, n, &n, buf);
    int rc = 1;
    FILE *f = NULL;
    if (st)
        fprintf(stderr, "zattn_cuda_bench: cuDNN %zu: device properties: %s\n",
                cudnnGetVersion(), cudnnGetErrorString(st));
    else if (!buf)
        fprintf(stderr, "zattn_cuda_bench: cuDNN gave no device properties\n");
    else if (!(f = fopen(path, "wb")) || fwrite(buf, 1, (size_t)n, f) != (size_t)n)
        perror(path);
    else
        rc = 0, printf("device properties (cuDNN %zu, %lld bytes) written to %s\n",
                       cudnnGetVersion(), (long long)n, path);
    if (f) fclose(f);
    free(buf);
    if (d) cudnnBackendDestroyDescriptor(d);
    if (h) cudnnDestroy(h);
    return rc;
}

/* Which spellings of the cuDNN graph (zattn_cudnn_graph.h) the GPU of a
 * saved deviceprop file takes, at the DiT's 1024² and 512² shapes, asked
 * of cuDNN's heuristics without that GPU. Exit 0 if some spelling is taken
 * at every shape. */
static int probe_spellings(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return perror(path), 2;
    static char json[1 << 16];
    size_t len = fread(json, 1, sizeof json, f);
    fclose(f);
    cudnnBackendDescriptor_t dp = NULL;
    cudnnStatus_t st = zcg_deviceprop(json, len, &dp);
    if (st) {
        fprintf(stderr, "zattn_cuda_bench: cuDNN %zu: %s: not device properties (%s)\n",
                cudnnGetVersion(), path, cudnnGetErrorString(st));
        return 2;
    }
    static const struct { const char *size; int S, B; } shapes[] = {
        {"1024x1024", 4096 + 128, 1}, {"1024x1024", 4096 + 128, 2}, {"512x512", 1024 + 128, 4}};
    int ok_all = 1;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int hd = 128, nh = 30, ld = 3 * nh * hd;
        zc_attn a = {.ldq = ld, .ldk = ld, .ldv = ld, .ldo = nh * hd, .n_items = shapes[k].B,
                     .S_q = shapes[k].S, .S_kv = shapes[k].S, .n_q = shapes[k].S,
                     .n_heads = nh, .n_kv_heads = nh, .head_dim = hd, .scale = 0.0883883f};
        int ok = 0;
        for (int i = 0; i < zcg_n_spells; i++) {
            const char *what = NULL;
            zcg *z = zcg_build(NULL, dp, &a, &zcg_spells[i], &st, &what);
            if (z)
                printf("%s batch %d: %-30s taken (workspace %lld bytes)\n", shapes[k].size,
                       shapes[k].B, zcg_spells[i].name, (long long)zcg_workspace(z)), ok = 1;
            else
                printf("%s batch %d: %-30s %s (%s)\n", shapes[k].size, shapes[k].B,
                       zcg_spells[i].name, what, cudnnGetErrorString(st));
            zcg_free(z);
        }
        ok_all &= ok;
    }
    cudnnBackendDestroyDescriptor(dp);
    printf("spellings (cuDNN %zu, deviceless): %s\n", cudnnGetVersion(),
           ok_all ? "some taken at every shape" : "NONE taken at some shape");
    return ok_all ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "deviceprop")) return save_deviceprop(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "spellings")) return probe_spellings(argv[2]);
    if (argc < 2 || (strcmp(argv[1], "check") && strcmp(argv[1], "time"))) {
        fprintf(stderr, "usage: zattn_cuda_bench check | time [--iters N] [--json OUT.jsonl] | "
                        "deviceprop OUT.json | spellings DEVPROP.json\n");
        return 2;
    }
    int iters = 20;
    const char *json = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--json")) json = argv[i + 1];
        else return fprintf(stderr, "zattn_cuda_bench: unknown option %s\n", argv[i]), 2;
    }
    if (iters < 1 || iters > 200) iters = 20;
    int n = 0;
    if (cudaGetDeviceCount(&n) || n < 1) {
        fprintf(stderr, "zattn_cuda_bench: no CUDA device\n");
        return 3;
    }
    CK(zc_attn_init());
    if (!strcmp(argv[1], "check")) return run_check();
    FILE *js = json ? fopen(json, "a") : NULL;
    if (json && !js) return perror(json), 2;
    time_shape("1024x1024", 4096 + 128, 1, iters, js);
    time_shape("1024x1024", 4096 + 128, 2, iters, js);
    time_shape("512x512", 1024 + 128, 1, iters, js);
    time_shape("512x512", 1024 + 128, 4, iters, js);
    if (js) fclose(js);
    return 0;
}
