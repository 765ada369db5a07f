/*
 * zimage_cuda_bench.c — speed of the zimage engine's CUDA backend (bf16, or
 * fp8 DiT linears with --precision fp8), for bench/zimage_cuda_vs_torch.py
 * and docs/benchmarks/zimage-cuda.md. (fp8's accuracy gate against bf16:
 * bench/zimage_fp8_cuda_bench.c.)
 *
 *   zimage_cuda_bench --model DIR [--sizes 1024x1024,512x512] [--batches 1,2,4,8]
 *                     [--steps 8] [--iters 3] [--words 118] [--device cuda]
 *                     [--precision bf16|fp8] [--mixed-words N] [--engines N]
 *                     [--json OUT.jsonl]
 *
 * Per (size, batch): one untimed generation (plan building, cuBLASLt
 * heuristics, CUDA graph capture), then --iters timed ones of a full batch
 * through px_engine_run (tokenizing, host copies and the VAE included, as
 * the server sees it). Prints the median seconds per image (the upper
 * median of an even count: at --iters 2 the slower iteration), the stages
 * of item 0 in the last iteration (text, denoise, VAE ms), the median
 * denoising step, the prompt's
 * token count (--words repeated words make about 128 tokens with the
 * template) and the peak device memory in use (sampled after every step:
 * weights + plans + the CUDA context). With --json, one JSON object per
 * line appended to the file (a rerun keeps the rows before): impl
 * (pixserve-bf16, pixserve-fp8), size, batch, s_per_image, peak_gib,
 * text_ms, denoise_ms, vae_ms, step_ms, tokens, vae (the decoder the
 * engine reports: cuda-tf32, cuda-bf16, ...), fused (false under
 * PX_ZIMAGE_CUDA_FUSE=0), gemm_tune (PX_ZIMAGE_CUDA_GEMM_TUNE=1),
 * fp8_fast_accum (fp8 without PX_ZIMAGE_CUDA_FP8_FASTACC=0), residual
 * (the DiT's residual stream as the engine describes it: bf16, fp32 under
 * PX_ZIMAGE_CUDA_RESID=fp32) and
 * the cuDNN and cuBLASLt versions the process loaded (cudnn, cublaslt: a
 * row measured with another library on the path says so) and first_s, the
 * untimed first generation's batch time (its plan built on the way: what
 * a request pays that meets a shape nothing warmed). --mixed-words N: the
 * odd items' prompts are the first N words only, so a batch holds items
 * of different text lengths (padded keys: what the attention's first
 * checks then see; rows say "mixed_words"; stages are item 0's).
 * --engines N (a probe, not a product setting): N engines on the one
 * device, each with its own weights and stream, run a batch of B at the
 * same time from N threads; a row's s_per_image is the wall time over N·B
 * images ("engines": N). It asks whether kernels of independent batches
 * overlapping on the GPU (one's element-wise passes and GEMM tails beside
 * the other's GEMMs) beats one batch of N·B: what two streams inside one
 * engine would gain. Each engine holds the weights (~20 GB at full size).
 * The engines share the process's cuDNN attention plans (zattn_cudnn.c:
 * one per shape and device, its workspace too), so concurrent attentions
 * of one shape may write one workspace: the images are not checked here,
 * only timed.
 *
 * Ran on an H200 on 2026-12-05 (docs/benchmarks/zimage-cuda.md).
 */
#include "core/buf.h"
#include "core/clock.h"
#include "core/env.h"
#include "core/err.h"
#include "engine/cuda/cuda_blas.h"
#include "engine/engine.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXB 64
#define MAXE 4 /* --engines */

static _Atomic size_t g_peak; /* device bytes in use, the largest sample (every lane's) */

static void sample_mem(void)
{
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) return;
    size_t was = atomic_load(&g_peak);
    while (tot - fr > was && !atomic_compare_exchange_weak(&g_peak, &was, tot - fr)) {
    }
}

static void on_step(void *arg, int step, int steps)
{
    (void)arg, (void)step, (void)steps;
    sample_mem();
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int parse_list(const char *s, int *v, int max)
{
    int n = 0;
    while (s && *s && n < max) {
        v[n++] = atoi(s);
        s = strchr(s, ',');
        if (s) s++;
    }
    return n;
}

typedef struct opts {
    const char *model, *sizes, *device, *json, *precision;
    int batches[16], nb, steps, iters, words, mixed; /* mixed: the odd items' words */
    int engines;
    char vae[32];   /* the engine's decoder, from its description */
    char resid[16]; /* its DiT's residual stream's type, from its description */
} opts;

/* One engine's batch of one iteration (k: -1 the untimed first), run by
 * the main thread or, with --engines, one thread per further engine. */
typedef struct lane {
    px_engine *e;
    const opts *o;
    const char **prompt;
    int w, h, B, k, rc;
    px_image out[MAXB];
    px_engine_item it[MAXB];
} lane;

static void *lane_run(void *arg)
{
    lane *l = arg;
    for (int i = 0; i < l->B; i++)
        l->it[i] = (px_engine_item){
            .out = &l->out[i],
            .seed = (uint64_t)(1000 * l->k + i + 7),
            .progress = on_step,
            .gen = {
                .prompt = l->prompt[i % 2], .width = l->w, .height = l->h, .steps = l->o->steps}};
    l->rc = px_engine_run(l->e, l->it, l->B);
    return NULL;
}

/* One iteration over every lane at once: 0, or the first failure with
 * *why its message. */
static int lanes_run(lane *ls, int n, int k, const char **why)
{
    pthread_t th[MAXE];
    int started[MAXE] = {0};
    for (int i = 0; i < n; i++) ls[i].k = k;
    for (int i = 1; i < n; i++) started[i] = !pthread_create(&th[i], NULL, lane_run, &ls[i]);
    lane_run(&ls[0]);
    int rc = ls[0].rc;
    *why = ls[0].it[0].err;
    for (int i = 1; i < n; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        if (rc) continue;
        if (!started[i])
            rc = -1, *why = "no thread for an engine";
        else if (ls[i].rc)
            rc = ls[i].rc, *why = ls[i].it[0].err;
    }
    return rc;
}

static int bench_one(px_engine **es, const opts *o, int w, int h, int B, const char *prompt[2],
                     FILE *js)
{
    static lane ls[MAXE];
    int ne = o->engines, rc = 0;
    for (int e = 0; e < ne; e++) {
        ls[e] = (lane){.e = es[e], .o = o, .prompt = prompt, .w = w, .h = h, .B = B};
        for (int i = 0; i < B && !rc; i++)
            rc = px_image_alloc(&ls[e].out[i], w, h, 3, NULL, NULL, 0);
    }
    px_engine_item *it = ls[0].it;
    const char *why = "";
    double t[64], first = 0;
    int iters = o->iters < 64 ? o->iters : 64;
    g_peak = 0;
    for (int k = -1; k < iters && !rc; k++) {
        int64_t t0 = px_now_ns();
        rc = lanes_run(ls, ne, k, &why);
        double sec = px_ns_to_ms(px_now_ns() - t0) / 1000.0;
        if (k >= 0)
            t[k] = sec;
        else
            first = sec; /* the plan's build (cuDNN, cuBLASLt, graph) included */
    }
    if (rc) {
        fprintf(stderr, "%dx%d batch %d: %s\n", w, h, B, why);
        goto done;
    }
    qsort(t, (size_t)iters, sizeof *t, cmp_dbl);
    const px_engine_gen *g = &it[0].gen;
    double steps[PX_ENGINE_GEN_MAX_STEPS];
    int ns = g->nstep_ms;
    for (int i = 0; i < ns; i++) steps[i] = g->step_ms[i];
    qsort(steps, (size_t)ns, sizeof *steps, cmp_dbl);
    double spi = t[iters / 2] / (B * ne), step = ns ? steps[ns / 2] : 0,
           gib = (double)g_peak / (1 << 30);
    printf("%s %5dx%-5d batch %2d%s: %.3f s/image  text %.1f ms  denoise %.1f ms  VAE %.1f ms  "
           "step %.1f ms  %d tokens  peak %.1f GiB  first %.2f s\n",
           o->precision, w, h, B, ne > 1 ? (ne == 2 ? " x 2 engines" : " x N engines") : "", spi,
           g->encode_ns / 1e6, g->denoise_ns / 1e6, g->decode_ns / 1e6, step, g->prompt_tokens, gib,
           first);
    if (js)
        fprintf(js,
                "{\"impl\":\"pixserve-%s\",\"size\":\"%dx%d\",\"batch\":%d,\"s_per_image\":%.4f,"
                "\"peak_gib\":%.2f,\"text_ms\":%.2f,\"denoise_ms\":%.2f,\"vae_ms\":%.2f,"
                "\"step_ms\":%.2f,\"tokens\":%d,\"vae\":\"%s\",\"fused\":%s,\"gemm_tune\":%s,"
                "\"fp8_fast_accum\":%s,\"residual\":\"%s\",\"cudnn\":%zu,\"cublaslt\":%d,"
                "\"first_s\":%.3f,\"mixed_words\":%d,\"engines\":%d}\n",
                o->precision, w, h, B, spi, gib, g->encode_ns / 1e6, g->denoise_ns / 1e6,
                g->decode_ns / 1e6, step, g->prompt_tokens, o->vae,
                px_env_is("PX_ZIMAGE_CUDA_FUSE", "0") ? "false" : "true",
                px_env_is("PX_ZIMAGE_CUDA_GEMM_TUNE", "1") ? "true" : "false",
                !strcmp(o->precision, "fp8") && !px_env_is("PX_ZIMAGE_CUDA_FP8_FASTACC", "0")
                    ? "true"
                    : "false",
                o->resid, cudnnGetVersion(), px_cuda_blaslt_version(), first, o->mixed, ne);
    if (js) fflush(js); /* a run stopped at its time limit keeps its rows */
done:
    for (int e = 0; e < ne; e++)
        for (int i = 0; i < B; i++) px_image_free(&ls[e].out[i]);
    return rc;
}

/* The engine's description's string field key ("vae":"cuda-tf32",
 * "residual_stream":"bf16" ...) into out; "?" when it has none. */
static void described(const px_engine *e, const char *key, char *out, size_t n)
{
    px_buf d;
    char pat[64];
    px_buf_init(&d, 1 << 16);
    snprintf(out, n, "?");
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *v = px_engine_describe(e, &d) ? NULL : strstr((const char *)d.data, pat);
    if (v) {
        v += strlen(pat);
        size_t k = strcspn(v, "\"");
        snprintf(out, n, "%.*s", (int)(k < n ? k : n - 1), v);
    }
    px_buf_free(&d);
}

int main(int argc, char **argv)
{
    opts o = {.sizes = "1024x1024,512x512",
              .device = "cuda",
              .steps = 8,
              .iters = 3,
              .words = 118,
              .precision = "bf16",
              .engines = 1};
    o.nb = parse_list("1,2,4,8", o.batches, 16);
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--model"))
            o.model = v;
        else if (!strcmp(k, "--sizes"))
            o.sizes = v;
        else if (!strcmp(k, "--batches"))
            o.nb = parse_list(v, o.batches, 16);
        else if (!strcmp(k, "--steps"))
            o.steps = atoi(v);
        else if (!strcmp(k, "--iters"))
            o.iters = atoi(v);
        else if (!strcmp(k, "--words"))
            o.words = atoi(v);
        else if (!strcmp(k, "--device"))
            o.device = v;
        else if (!strcmp(k, "--json"))
            o.json = v;
        else if (!strcmp(k, "--precision"))
            o.precision = v;
        else if (!strcmp(k, "--mixed-words"))
            o.mixed = atoi(v);
        else if (!strcmp(k, "--engines"))
            o.engines = atoi(v);
        else {
            fprintf(stderr, "unknown option %s\n", k);
            return 2;
        }
    }
    if (!o.model || o.iters < 1 || o.engines < 1 || o.engines > MAXE) {
        fprintf(stderr, "usage: zimage_cuda_bench --model DIR [--sizes WxH,..] [--batches 1,2,..] "
                        "[--steps 8] [--iters 3] [--words 118] [--precision bf16|fp8] "
                        "[--mixed-words N] [--engines 1..4] [--json OUT]\n");
        return 2;
    }
    static char prompt[8192], shorter[8192];
    size_t at = 0;
    for (int i = 0; i < o.words && at + 8 < sizeof prompt; i++) {
        if (i == o.mixed) memcpy(shorter, prompt, at + 1); /* its first o.mixed words */
        at += (size_t)snprintf(prompt + at, sizeof prompt - at, "%scat", i ? " " : "");
    }
    const char *prompts[2] = {prompt, o.mixed > 0 && o.mixed < o.words ? shorter : prompt};
    char err[512];
    px_engine *es[MAXE] = {NULL}, *e = NULL;
    px_engine_config cfg = {.weights = o.model, .device = o.device, .precision = o.precision};
    for (int i = 0; i < o.engines; i++) {
        int64_t t0 = px_now_ns();
        if (px_engine_open("zimage", &cfg, &es[i], err, sizeof err)) {
            fprintf(stderr, "engine %d: %s\n", i, err);
            for (int j = 0; j < i; j++) px_engine_close(es[j]);
            return 1;
        }
        printf("engine open (weights to the GPU): %.1f s (cuDNN %zu, cuBLASLt %d)\n",
               px_ns_to_ms(px_now_ns() - t0) / 1000, cudnnGetVersion(), px_cuda_blaslt_version());
    }
    e = es[0];
    described(e, "vae", o.vae, sizeof o.vae);
    described(e, "residual_stream", o.resid, sizeof o.resid);
    FILE *js = o.json ? fopen(o.json, "a") : NULL;
    int rc = 0;
    for (const char *s = o.sizes; s && *s && !rc; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL) {
        int w = 0, h = 0;
        if (sscanf(s, "%dx%d", &w, &h) != 2) break;
        for (int b = 0; b < o.nb && !rc; b++)
            if (o.batches[b] >= 1 && o.batches[b] <= MAXB)
                rc = bench_one(es, &o, w, h, o.batches[b], prompts, js);
    }
    if (js) fclose(js);
    for (int i = 0; i < o.engines; i++) px_engine_close(es[i]);
    return rc ? 1 : 0;
}
