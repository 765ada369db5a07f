/*
 * zimage_lora_cuda_bench.c — what LoRAs cost the zimage engine's CUDA
 * backend (run-time application, zc_lora.h), for bench/lora_gpu.sh and
 * docs/benchmarks/lora.md (GPU section):
 *
 *   zimage_lora_cuda_bench --model DIR --loras DIR [--size 1024x1024]
 *                          [--steps 8] [--iters 3] [--batch 1] [--json OUT.jsonl]
 *                          [--device cuda]   (cpu: the tiny model, a dry run)
 *
 * --loras holds the files bench/lora_gpu.sh writes with tools/zimage_lora.py:
 * r{16,32,64}_attn.safetensors, r{16,32,64}_attn_ffn.safetensors and
 * mix{0,1,2,3}.safetensors (four different LoRAs of one rank).
 *
 * Step time (median denoising step of item 0 over the timed generations;
 * the steps are synchronised, so this is the GPU's time per step): without
 * LoRA with the CUDA graph and without it (PX_ZIMAGE_CUDA_GRAPHS=0: LoRA'd
 * steps run direct, so the second is their fair baseline), then each
 * rank x targets file at scale 0.8 on every item of a --batch batch.
 * Throughput (seconds per image, the whole px_engine_run: text, steps,
 * VAE): a batch of four items each with a different mix LoRA, against the
 * same four run one LoRA at a time (four batches of one), a batch of four
 * sharing one LoRA (what a server that merges per window would batch) and
 * four without LoRA. Each configuration runs once untimed first (plans,
 * heuristics, the LoRA uploads). One JSON object per line with --json:
 * case, loras, rank, targets, batch, graph, step_ms, s_per_image, open_ms.
 *
 * Ran on an H200 on 2026-12-05 (docs/benchmarks/lora.md).
 */
#include "core/clock.h"
#include "core/err.h"
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXB 8

typedef struct bench {
    px_engine *e;
    int w, h, steps, iters;
    FILE *js;
    const char *prompt;
} bench;

typedef struct result {
    double step_ms, s_per_image;
} result;

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* n items; item i uses lora[i] (NULL: none) at scale 0.8. One untimed
 * run, then iters timed ones. */
static int run(bench *b, int n, px_engine_lora *const *lora, result *r)
{
    px_image out[MAXB];
    px_engine_item it[MAXB];
    memset(out, 0, sizeof out);
    static double steps[64 * PX_ENGINE_GEN_MAX_STEPS];
    double total = 0;
    int ns = 0, rc = 0;
    for (int i = 0; i < n && !rc; i++) rc = px_image_alloc(&out[i], b->w, b->h, 3, NULL, NULL, 0);
    for (int k = -1; k < b->iters && k < 64 && !rc; k++) {
        for (int i = 0; i < n; i++) {
            it[i] = (px_engine_item){
                .out = &out[i],
                .seed = (uint64_t)(100 * k + i + 3),
                .gen = {.prompt = b->prompt, .width = b->w, .height = b->h, .steps = b->steps}};
            if (lora[i]) it[i].gen.loras[0] = (px_engine_lora_use){lora[i], 0.8f};
            it[i].gen.nloras = lora[i] != NULL;
        }
        int64_t t0 = px_now_ns();
        rc = px_engine_run(b->e, it, n);
        if (k < 0 || rc) continue;
        total += px_ns_to_ms(px_now_ns() - t0) / 1000.0;
        for (int s = 0; s < it[0].gen.nstep_ms; s++) steps[ns++] = it[0].gen.step_ms[s];
    }
    if (rc) fprintf(stderr, "batch of %d: %s\n", n, it[0].err);
    qsort(steps, (size_t)ns, sizeof *steps, cmp_dbl);
    r->step_ms = ns ? steps[ns / 2] : 0;
    r->s_per_image = total / b->iters / n;
    for (int i = 0; i < n; i++) px_image_free(&out[i]);
    return rc;
}

static void row(bench *b, const char *cs, const char *loras, int rank, const char *targets,
                int batch, int graph, const result *r, double open_ms)
{
    printf("%-22s %-10s rank %2d %-9s batch %d graph %d: step %7.2f ms  %.3f s/image\n", cs, loras,
           rank, targets, batch, graph, r->step_ms, r->s_per_image);
    if (b->js)
        fprintf(b->js,
                "{\"case\":\"%s\",\"loras\":\"%s\",\"rank\":%d,\"targets\":\"%s\",\"batch\":%d,"
                "\"graph\":%s,\"size\":\"%dx%d\",\"steps\":%d,\"step_ms\":%.3f,"
                "\"s_per_image\":%.4f,\"open_ms\":%.1f}\n",
                cs, loras, rank, targets, batch, graph ? "true" : "false", b->w, b->h, b->steps,
                r->step_ms, r->s_per_image, open_ms);
    if (b->js) fflush(b->js); /* a run stopped at its time limit keeps its rows */
}

static int open_lora(bench *b, const char *dir, const char *name, px_engine_lora **l, double *ms)
{
    char path[1200], err[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    int64_t t0 = px_now_ns();
    int rc = px_engine_lora_open(b->e, path, l, err, sizeof err);
    *ms = px_ns_to_ms(px_now_ns() - t0);
    if (rc) fprintf(stderr, "%s: %s\n", path, err);
    return rc;
}

/* Step time without LoRA (graph, direct) and per rank x targets. */
static int step_costs(bench *b, const char *dir, int batch)
{
    static const int ranks[3] = {16, 32, 64};
    static const char *const targets[2] = {"attn", "attn_ffn"};
    px_engine_lora *none[MAXB] = {0}, *use[MAXB];
    result r;
    int rc = run(b, batch, none, &r);
    if (!rc) row(b, "step", "none", 0, "-", batch, 1, &r, 0);
    setenv("PX_ZIMAGE_CUDA_GRAPHS", "0", 1);
    if (!rc && !(rc = run(b, batch, none, &r))) row(b, "step", "none", 0, "-", batch, 0, &r, 0);
    unsetenv("PX_ZIMAGE_CUDA_GRAPHS");
    for (int t = 0; t < 2 && !rc; t++)
        for (int k = 0; k < 3 && !rc; k++) {
            char name[64];
            double ms;
            px_engine_lora *l = NULL;
            snprintf(name, sizeof name, "r%d_%s", ranks[k], targets[t]);
            if ((rc = open_lora(b, dir, name, &l, &ms))) break;
            for (int i = 0; i < batch; i++) use[i] = l;
            if (!(rc = run(b, batch, use, &r)))
                row(b, "step", name, ranks[k], targets[t], batch, 0, &r, ms);
            px_engine_lora_close(l);
        }
    return rc;
}

/* Four different LoRAs in one batch against one LoRA at a time. */
static int mixing(bench *b, const char *dir)
{
    px_engine_lora *l[4] = {0}, *use[MAXB] = {0};
    double ms[4], open = 0;
    result r, one;
    int rc = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        char name[32];
        snprintf(name, sizeof name, "mix%d", i);
        rc = open_lora(b, dir, name, &l[i], &ms[i]);
        open += ms[i] / 4;
    }
    if (!rc && !(rc = run(b, 4, l, &r))) row(b, "mixed_batch", "4 LoRAs", 0, "mix", 4, 0, &r, open);
    double sum = 0, step = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        use[0] = l[i];
        if ((rc = run(b, 1, use, &one))) break;
        sum += one.s_per_image / 4, step += one.step_ms / 4;
    }
    if (!rc) {
        result seq = {step, sum};
        row(b, "one_lora_at_a_time", "4 LoRAs", 0, "mix", 1, 0, &seq, open);
        for (int i = 0; i < 4; i++) use[i] = l[0];
        if (!(rc = run(b, 4, use, &r))) row(b, "same_lora_batch", "mix0", 0, "mix", 4, 0, &r, open);
        for (int i = 0; i < 4; i++) use[i] = NULL;
        if (!rc && !(rc = run(b, 4, use, &r))) row(b, "no_lora_batch", "none", 0, "-", 4, 1, &r, 0);
    }
    for (int i = 0; i < 4; i++) px_engine_lora_close(l[i]);
    return rc;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *dir = NULL, *size = "1024x1024", *json = NULL, *device = "cuda";
    int batch = 1;
    bench b = {.steps = 8, .iters = 3};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--model"))
            model = v;
        else if (!strcmp(k, "--loras"))
            dir = v;
        else if (!strcmp(k, "--size"))
            size = v;
        else if (!strcmp(k, "--steps"))
            b.steps = atoi(v);
        else if (!strcmp(k, "--iters"))
            b.iters = atoi(v);
        else if (!strcmp(k, "--batch"))
            batch = atoi(v);
        else if (!strcmp(k, "--json"))
            json = v;
        else if (!strcmp(k, "--device")) /* cpu: a dry run of the bench itself */
            device = v;
        else {
            fprintf(stderr, "unknown option %s\n", k);
            return 2;
        }
    }
    if (!model || !dir || b.iters < 1 || batch < 1 || batch > MAXB ||
        sscanf(size, "%dx%d", &b.w, &b.h) != 2) {
        fprintf(stderr, "usage: zimage_lora_cuda_bench --model DIR --loras DIR [--size WxH] "
                        "[--steps 8] [--iters 3] [--batch 1..8] [--json OUT]\n");
        return 2;
    }
    b.prompt = "a lighthouse on a cliff at dusk, waves below, oil painting";
    char err[512];
    px_engine_config cfg = {.weights = model, .device = device};
    int64_t t0 = px_now_ns();
    if (px_engine_open("zimage", &cfg, &b.e, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("engine open: %.1f s\n", px_ns_to_ms(px_now_ns() - t0) / 1000);
    b.js = json ? fopen(json, "w") : NULL;
    int rc = step_costs(&b, dir, batch);
    if (!rc) rc = mixing(&b, dir);
    if (b.js) fclose(b.js);
    px_engine_close(b.e);
    return rc ? 1 : 0;
}
