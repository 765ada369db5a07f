/*
 * zattn_engines_cuda_bench.c — which of cuDNN's engine configurations runs
 * the DiT's attention fastest. zattn_cudnn.c takes the first configuration
 * of heuristics mode A whose plan finalizes; this survey builds every
 * configuration heuristics modes A, B and FALLBACK name, and each knob of
 * the first one moved through its range (one knob at a time, the others
 * kept), then checks and times each plan on the same operands:
 *
 *   zattn_engines_cuda_bench [--shapes LIST] [--iters N] [--budget S] [--json OUT.jsonl]
 *       LIST: WxH:BATCH:PREC,... (W, H multiples of 16 in 256..2048, the
 *       DiT's tokens W/16·H/16 + 128; BATCH 1..8; PREC bf16 or fp8;
 *       default 1024x1024:8:fp8,1024x1024:1:bf16,1024x1024:8:bf16,
 *       512x512:8:bf16); median ms of N calls (default 10) after 2
 *       untimed; candidates stop after S seconds a shape (default 120:
 *       runtime-compiled engines take seconds to build)
 *
 * A plan's output is compared with the default plan's on the valid rows
 * (max|diff| relative to max|ref|: bf16 within 2e-2, fp8 — e4m3 outputs —
 * within 0.2) and with its own second run (bit for bit or not): a fast
 * plan that computes something else, or varies from run to run, is marked
 * so, not counted as a win. The operands are random (one item's rows
 * repeated over the batch), every item with its last two keys padded off
 * as the engine's 126-token prompts have.
 *
 * Ran on H100s on 2026-12-07 (bench/gpu_session.sh engines;
 * docs/benchmarks/zimage-cuda.md, thirty-first session).
 */
#include "engine/zimage/cuda/zattn.h"
#include "engine/zimage/cuda/zattn_cudnn_graph.h"
#include "engine/zimage/cuda/zc_fp8.h"
#include "engine/zimage/zops.h"

#include <cuda_runtime.h>
#include <cudnn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CK(x)                                                                                      \
    do {                                                                                           \
        int e_ = (int)(x);                                                                         \
        if (e_) {                                                                                  \
            fprintf(stderr, "zattn_engines: %s: error %d (line %d)\n", #x, e_, __LINE__);          \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

enum { NH = 30, HD = 128, D = NH * HD, MAX_CAND = 96 };

static int same_cfg(const zcg_cfg *a, const zcg_cfg *b)
{
    if (a->engine != b->engine || a->n_knobs != b->n_knobs) return 0;
    for (int i = 0; i < a->n_knobs; i++)
        if (a->knob[i].type != b->knob[i].type || a->knob[i].value != b->knob[i].value) return 0;
    return 1;
}

typedef struct shape {
    char size[16];
    int S, B, fp8;
} shape;

static zc_attn attn_of(const shape *s)
{
    int ld = 3 * D; /* the engine's fused qkv rows: elements (bf16) or bytes (fp8) */
    zc_attn a = {.ldq = ld,
                 .ldk = ld,
                 .ldv = ld,
                 .ldo = D,
                 .n_items = s->B,
                 .S_q = s->S,
                 .S_kv = s->S,
                 .n_q = s->S,
                 .n_heads = NH,
                 .n_kv_heads = NH,
                 .head_dim = HD,
                 .scale = 1.0f / sqrtf((float)HD),
                 .fp8 = s->fp8};
    return a;
}

/* The first spelling of a's precision an engine takes (zattn_cudnn.c's
 * order), or NULL. */
static const zcg_spell *spelling_for(cudnnHandle_t h, const zc_attn *a)
{
    for (int i = 0; i < zcg_n_spells; i++) {
        if (zcg_spells[i].fp8 != (a->fp8 != 0)) continue;
        cudnnStatus_t st;
        const char *what;
        zcg *z = zcg_build(h, NULL, a, &zcg_spells[i], &st, &what);
        if (z) return zcg_free(z), &zcg_spells[i];
    }
    return NULL;
}

/* The candidates: heuristics modes A, B, FALLBACK, deduplicated, then the
 * first one's knobs moved one at a time (ranges of at most 64 values). */
static int candidates(cudnnHandle_t h, const zc_attn *a, const zcg_spell *sp, zcg_cfg *out,
                      char (*from)[24])
{
    static const int modes[3] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_B, CUDNN_HEUR_MODE_FALLBACK};
    static const char *mname[3] = {"A", "B", "fallback"};
    int n = 0;
    for (int m = 0; m < 3; m++) {
        zcg_cfg got[8];
        cudnnStatus_t st;
        const char *what;
        int k = zcg_configs(h, NULL, a, sp, modes[m], got, 8, &st, &what);
        if (k < 0) printf("  heuristics %s: %s (%s)\n", mname[m], what, cudnnGetErrorString(st));
        for (int i = 0; i < k && n < MAX_CAND; i++) {
            int dup = 0;
            for (int j = 0; j < n; j++) dup |= same_cfg(&out[j], &got[i]);
            if (dup) continue;
            snprintf(from[n], sizeof from[n], "%s#%d", mname[m], i);
            out[n++] = got[i];
        }
    }
    int base_n = n;
    for (int b = 0; b < base_n && b < 1; b++)
        for (int r = 0; r < out[b].n_ranges; r++) {
            const zcg_knob_range *kr = &out[b].range[r];
            if (kr->stride <= 0 || (kr->max - kr->min) / kr->stride >= 64) continue;
            for (int64_t v = kr->min; v <= kr->max && n < MAX_CAND; v += kr->stride) {
                zcg_cfg c = out[b];
                int at = -1;
                for (int i = 0; i < c.n_knobs; i++)
                    if (c.knob[i].type == kr->type) at = i;
                if (at < 0 && c.n_knobs < ZCG_MAX_KNOBS) at = c.n_knobs++;
                if (at < 0) continue;
                c.knob[at].type = kr->type, c.knob[at].value = v;
                int dup = 0;
                for (int j = 0; j < n; j++) dup |= same_cfg(&out[j], &c);
                if (dup) continue;
                snprintf(from[n], sizeof from[n], "%s=%lld", zcg_knob_name(kr->type), (long long)v);
                out[n++] = c;
            }
        }
    return n;
}

static void print_ranges(const zcg_cfg *c)
{
    printf("  engine %lld knobs:", (long long)c->engine);
    for (int r = 0; r < c->n_ranges; r++)
        printf(" %s[%lld..%lld/%lld]", zcg_knob_name(c->range[r].type), (long long)c->range[r].min,
               (long long)c->range[r].max, (long long)c->range[r].stride);
    printf("\n");
}

/* ------------------------------------------------------------- on the GPU */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 32);
}

/* One shape's device operands, the plan-independent ones. */
typedef struct ops {
    void *x, *o, *o2, *ref; /* o2: a plan's second run */
    int *seq_q, *seq_kv;
    float *stats, *f8, *dq, *sdev;
    size_t out_bytes;
    int kv_len;
} ops;

static void ops_new(ops *p, const shape *s)
{
    size_t es = s->fp8 ? 1 : 2, rows = (size_t)s->B * s->S, item = (size_t)s->S * 3 * D * es;
    uint8_t *h = malloc(item);
    if (!h) exit(2);
    for (size_t i = 0; i < item; i += es) {
        if (s->fp8) /* magnitudes 2^-3 .. ~3, either sign: no NaN codes */
            h[i] = (uint8_t)((0x20 + rnd() % 0x25) | (rnd() & 0x80));
        else {
            uint16_t b = zi_f32_to_bf16((float)((int)(rnd() % 4001) - 2000) / 1000.0f);
            memcpy(h + i, &b, 2);
        }
    }
    p->out_bytes = rows * D * es;
    CK(cudaMalloc(&p->x, item * (size_t)s->B));
    for (int b = 0; b < s->B; b++)
        CK(cudaMemcpy((uint8_t *)p->x + item * (size_t)b, h, item, cudaMemcpyHostToDevice));
    free(h);
    CK(cudaMalloc(&p->o, p->out_bytes));
    CK(cudaMalloc(&p->ref, p->out_bytes));
    CK(cudaMalloc(&p->o2, p->out_bytes));
    int sq[8], sk[8];
    p->kv_len = s->S - 2;
    for (int b = 0; b < 8; b++) sq[b] = s->S, sk[b] = p->kv_len;
    CK(cudaMalloc((void **)&p->seq_q, sizeof sq));
    CK(cudaMalloc((void **)&p->seq_kv, sizeof sk));
    CK(cudaMemcpy(p->seq_q, sq, sizeof sq, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(p->seq_kv, sk, sizeof sk, cudaMemcpyHostToDevice));
    CK(cudaMalloc((void **)&p->stats, (size_t)s->B * NH * s->S * 4));
    const float f8[ZCG_FP8_N_SCALARS] = {1, 1, 1, 1.0f / 448.0f, 448.0f, 1, 0, 0};
    const float one[2] = {1, 1}, sc = 1.0f / sqrtf((float)HD);
    CK(cudaMalloc((void **)&p->f8, sizeof f8));
    CK(cudaMalloc((void **)&p->dq, sizeof one));
    CK(cudaMalloc((void **)&p->sdev, sizeof sc));
    CK(cudaMemcpy(p->f8, f8, sizeof f8, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(p->dq, one, sizeof one, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(p->sdev, &sc, sizeof sc, cudaMemcpyHostToDevice));
}

static void ops_free(ops *p)
{
    cudaFree(p->x), cudaFree(p->o), cudaFree(p->o2), cudaFree(p->ref), cudaFree(p->seq_q),
        cudaFree(p->seq_kv);
    cudaFree(p->stats), cudaFree(p->f8), cudaFree(p->dq), cudaFree(p->sdev);
}

static cudnnStatus_t run(cudnnHandle_t h, const zcg *z, const zcg_spell *sp, const zc_attn *a,
                         ops *p, void *out, void *ws)
{
    static const float neg = -1e30f;
    size_t es = a->fp8 ? 1 : 2;
    zcg_io io = {.q = p->x,
                 .k = (uint8_t *)p->x + D * es,
                 .v = (uint8_t *)p->x + 2 * D * es,
                 .o = out,
                 .scale = sp->sdev ? (const void *)p->sdev : (const void *)&a->scale,
                 .seq_q = p->seq_q,
                 .seq_kv = p->seq_kv,
                 .neg = &neg,
                 .stats = p->stats,
                 .descale_qk = p->dq,
                 .f8 = p->f8,
                 .ws = ws};
    return zcg_execute(h, z, &io);
}

/* max|x − ref| / max|ref| over the valid rows; *same: x equals y bit for bit. */
static double rel_diff(const shape *s, const ops *p, const void *out2, int *same)
{
    size_t n = p->out_bytes;
    uint8_t *x = malloc(n), *r = malloc(n), *y = malloc(n);
    if (!x || !r || !y) exit(2);
    CK(cudaMemcpy(x, p->o, n, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(r, p->ref, n, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(y, out2, n, cudaMemcpyDeviceToHost));
    *same = !memcmp(x, y, n);
    double md = 0, mr = 0;
    size_t es = s->fp8 ? 1 : 2;
    for (int b = 0; b < s->B; b++)
        for (int row = 0; row < p->kv_len; row++)
            for (int c = 0; c < D; c++) {
                size_t i = ((size_t)b * s->S + row) * D + c;
                double v, w;
                if (es == 1)
                    v = zc_fp8_to_float(x[i]), w = zc_fp8_to_float(r[i]);
                else {
                    uint16_t hv, hw;
                    memcpy(&hv, x + 2 * i, 2), memcpy(&hw, r + 2 * i, 2);
                    v = zi_bf16_to_f32(hv), w = zi_bf16_to_f32(hw);
                }
                double d = isfinite(v) ? fabs(v - w) : INFINITY;
                if (!(d <= md)) md = isnan(d) ? INFINITY : d;
                if (fabs(w) > mr) mr = fabs(w);
            }
    free(x), free(r), free(y);
    return mr > 0 ? md / mr : md;
}

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static double time_plan(cudnnHandle_t h, const zcg *z, const zcg_spell *sp, const zc_attn *a,
                        ops *p, void *ws, int iters)
{
    float ms[100];
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int it = -2; it < iters; it++) {
        CK(cudaEventRecord(e0, 0));
        CK(run(h, z, sp, a, p, p->o, ws));
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        if (it >= 0) CK(cudaEventElapsedTime(&ms[it], e0, e1));
    }
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    qsort(ms, (size_t)iters, sizeof ms[0], cmp_f);
    return ms[iters / 2];
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Builds, checks and times every candidate for shape s; one line (and a
 * JSON row) each, the default (heuristics A's first that finalizes) first. */
static void survey(cudnnHandle_t h, const shape *s, int iters, double budget, FILE *js)
{
    zc_attn a = attn_of(s);
    const zcg_spell *sp = spelling_for(h, &a);
    const char *prec = s->fp8 ? "fp8" : "bf16";
    printf("%s batch %d %s: spelling %s\n", s->size, s->B, prec, sp ? sp->name : "(none taken)");
    if (!sp) return;
    static zcg_cfg c[MAX_CAND];
    static char from[MAX_CAND][24];
    int n = candidates(h, &a, sp, c, from);
    if (n) print_ranges(&c[0]);
    ops p;
    ops_new(&p, s);
    cudnnStatus_t st;
    const char *what;
    zcg *dz = zcg_build(h, NULL, &a, sp, &st, &what);
    void *dws = NULL;
    if (!dz || (zcg_workspace(dz) && cudaMalloc(&dws, (size_t)zcg_workspace(dz))) ||
        run(h, dz, sp, &a, &p, p.ref, dws) || cudaDeviceSynchronize()) {
        printf("  the default plan did not run\n");
        zcg_free(dz), cudaFree(dws), ops_free(&p);
        return;
    }
    double t_def = time_plan(h, dz, sp, &a, &p, dws, iters), t0 = now_s();
    double fl = 4.0 * s->S * (double)s->S * HD * NH * s->B;
    char dcfg[200] = "(heuristics A, first)";
    if (zcg_config(dz)) zcg_cfg_str(zcg_config(dz), dcfg, sizeof dcfg);
    printf("  %-18s %-62s %8.3f ms %5.0f TFLOP/s\n", "default", dcfg, t_def,
           fl / (t_def * 1e-3) / 1e12);
    zcg_free(dz), cudaFree(dws);
    for (int i = 0; i < n; i++) {
        char kb[400];
        zcg_cfg_str(&c[i], kb, sizeof kb);
        if (now_s() - t0 > budget) {
            printf("  (budget of %.0f s spent: %d candidates not tried)\n", budget, n - i);
            break;
        }
        double tb = now_s();
        zcg *z = zcg_build_cfg(h, NULL, &a, sp, &c[i], &st, &what);
        void *ws = NULL;
        if (!z) {
            printf("  %-18s %-62s refused: %s\n", from[i], kb, what);
            continue;
        }
        double build_s = now_s() - tb;
        if (zcg_workspace(z) && cudaMalloc(&ws, (size_t)zcg_workspace(z))) {
            printf("  %-18s %-62s no memory for its workspace\n", from[i], kb);
            zcg_free(z);
            continue;
        }
        cudnnStatus_t r1 = run(h, z, sp, &a, &p, p.o, ws),
                      r2 = r1 ? r1 : run(h, z, sp, &a, &p, p.o2, ws);
        if (r1 || r2 || cudaDeviceSynchronize()) {
            (void)cudaGetLastError();
            printf("  %-18s %-62s execute failed (%s)\n", from[i], kb,
                   cudnnGetErrorString(r1 ? r1 : r2));
            zcg_free(z), cudaFree(ws);
            continue;
        }
        int same = 0;
        double rd = rel_diff(s, &p, p.o2, &same), ms = time_plan(h, z, sp, &a, &p, ws, iters);
        int ok = rd <= (s->fp8 ? 0.2 : 2e-2);
        printf("  %-18s %-62s %8.3f ms %5.0f TFLOP/s %5.2fx  diff %.2g%s%s  build %.1f s\n",
               from[i], kb, ms, fl / (ms * 1e-3) / 1e12, t_def / ms, rd, ok ? "" : " WRONG",
               same ? "" : " VARIES", build_s);
        if (js)
            fprintf(js,
                    "{\"size\":\"%s\",\"batch\":%d,\"precision\":\"%s\",\"spelling\":\"%s\","
                    "\"from\":\"%s\",\"cfg\":\"%s\",\"ms\":%.4f,"
                    "\"default_ms\":%.4f,\"tflops\":%.1f,\"rel_diff\":%.3g,\"ok\":%s,"
                    "\"same_twice\":%s,\"workspace\":%lld}\n",
                    s->size, s->B, prec, sp->name, from[i], kb, ms, t_def, fl / (ms * 1e-3) / 1e12,
                    rd, ok ? "true" : "false", same ? "true" : "false",
                    (long long)zcg_workspace(z));
        if (js) fflush(js); /* rows kept if a later plan hangs and the call's limit ends it */
        fflush(stdout);
        zcg_free(z), cudaFree(ws);
    }
    ops_free(&p);
}

static int parse_shapes(const char *list, shape *out, int max)
{
    int n = 0;
    for (const char *t = list; t && *t && n < max; t = strchr(t, ','), t = t ? t + 1 : t) {
        int w = 0, hh = 0, b = 0;
        char prec[8] = "";
        if (sscanf(t, "%dx%d:%d:%7[a-z0-9]", &w, &hh, &b, prec) != 4 || w % 16 || hh % 16 ||
            w < 256 || hh < 256 || w > 2048 || hh > 2048 || b < 1 || b > 8 ||
            (strcmp(prec, "fp8") && strcmp(prec, "bf16")))
            return -1;
        shape *s = &out[n++];
        snprintf(s->size, sizeof s->size, "%dx%d", w, hh);
        s->S = (w / 16) * (hh / 16) + 128, s->B = b, s->fp8 = !strcmp(prec, "fp8");
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *list = "1024x1024:8:fp8,1024x1024:1:bf16,1024x1024:8:bf16,512x512:8:bf16";
    const char *json = NULL;
    int iters = 10;
    double budget = 120;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc || (strcmp(argv[i], "--shapes") && strcmp(argv[i], "--iters") &&
                              strcmp(argv[i], "--budget") && strcmp(argv[i], "--json"))) {
            fprintf(stderr, "usage: zattn_engines_cuda_bench [--shapes SIZE:BATCH:PREC,...] "
                            "[--iters N] [--budget S] [--json OUT.jsonl]\n");
            return 2;
        }
        if (!strcmp(argv[i], "--shapes")) list = argv[i + 1];
        if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--budget")) budget = atof(argv[i + 1]);
        if (!strcmp(argv[i], "--json")) json = argv[i + 1];
    }
    if (iters < 1 || iters > 100) iters = 10;
    shape shapes[16];
    int ns = parse_shapes(list, shapes, 16);
    if (ns <= 0) return fprintf(stderr, "zattn_engines: bad --shapes %s\n", list), 2;
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) || ndev < 1)
        return fprintf(stderr, "zattn_engines: no CUDA device\n"), 3;
    cudnnHandle_t h;
    CK(cudnnCreate(&h));
    FILE *js = json ? fopen(json, "a") : NULL;
    if (json && !js) return perror(json), 2;
    printf("cuDNN %zu\n", cudnnGetVersion());
    for (int i = 0; i < ns; i++) survey(h, &shapes[i], iters, budget, js);
    if (js) fclose(js);
    cudnnDestroy(h);
    return 0;
}
