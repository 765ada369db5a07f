/*
 * zattn_cudnn.c — zattn_cudnn.h: cuDNN's fused attention for the DiT, its
 * execution plans cached per device and shape (the graphs and their
 * spellings: zattn_cudnn_graph.h).
 *
 * seq_kv is the caller's kv_len (int32, device); seq_q a per-plan device
 * array of S_q (every query row computed, so padded rows are finite). A
 * new plan takes the first spelling an engine accepts and checks itself
 * once against the mma kernel; a spelling that fails to run or to match is
 * dropped and the next one built. An fp8 plan checks itself twice against
 * the host's reference, and one that fails is dropped for its shape only:
 * when no fp8 spelling is left for a shape, that shape's calls return
 * ZATTN_CUDNN_UNSUPPORTED (the bf16 attention runs for it) and the other
 * shapes keep theirs — cuDNN 9.14's fp8 plan for 512² batch 4 gave varying
 * output on H100s while every other shape's passed (zimage-cuda.md).
 */
#include "engine/zimage/cuda/zattn_cudnn.h"

#include "engine/zimage/cuda/zattn_cudnn_graph.h"
#include "engine/zimage/cuda/zattn_q8_check.h"

#include "core/log.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEV   16
/* Plans per device: one per (batch size, padded token count) met under
 * continuous batching; never evicted (captured CUDA graphs use them). */
#define MAX_PLANS 128
#define CHECK_TOL 2e-2

typedef struct plan_key {
    int n_items, S_q, S_kv, heads, hd, ldq, ldk, ldv, ldo, fp8;
    uint32_t scale_bits;
} plan_key;

typedef struct plan {
    plan_key key;
    zcg *g;                       /* the graph and its execution plan */
    void *ws;                     /* its workspace (device), made at build */
    int *seq_q;                   /* device, n_items x S_q */
    float *scale_dev;             /* device, the scale (spellings with sdev) */
    float *stats;                 /* device, the training form only */
    float *f8;                    /* device, fp8 plans: ZCG_FP8_N_SCALARS (k_fp8_consts) */
    float scale, neg;             /* by-value operands */
    int with_stats;               /* the graph stores the statistics */
    const zcg_spell *spell;       /* the spelling an engine took */
    bool refused;                 /* fp8: no spelling passed for this shape */
} plan;

typedef struct dev_state {
    cudnnHandle_t h;
    int n;
    plan plans[MAX_PLANS];
} dev_state;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static dev_state g_dev[MAX_DEV];
/* Non-empty: cuDNN attention is off, and why; [1] the fp8 attention's,
 * apart (its failure leaves the bf16 graphs in use). */
static char g_off[2][800];

#define MAX_SPELL 16 /* room for zcg_spells' (a bit each in g_bad) */

static const char *g_spelling; /* the spelling the last plan built took */
static uint32_t g_bad;          /* spellings whose plans failed on the GPU */
static char g_bad_why[MAX_SPELL][224];

/* ------------------------------------------------------------ plans */

static plan_key key_of(const zc_attn *a)
{
    plan_key k;
    memset(&k, 0, sizeof k); /* compared with memcmp */
    k.n_items = a->n_items, k.S_q = a->S_q, k.S_kv = a->S_kv, k.heads = a->n_heads;
    k.hd = a->head_dim, k.ldq = a->ldq, k.ldk = a->ldk, k.ldv = a->ldv, k.ldo = a->ldo;
    k.fp8 = a->fp8 != 0;
    memcpy(&k.scale_bits, &a->scale, 4);
    return k;
}

/* Turns cuDNN attention off for the process, with one warning. */
static void turn_off(int fp8, const char *fmt, const char *a, const char *b)
{
    char *off = g_off[fp8 != 0];
    if (off[0]) return;
    snprintf(off, sizeof g_off[0], fmt, a, b);
    PX_WARN("zimage cuda: cuDNN %s off, %s runs instead: %s", fp8 ? "fp8 attention" : "attention",
            fp8 ? "the bf16 attention" : "the mma kernel", off);
}

/* PX_ZIMAGE_CUDA_ATTN_SKIP="name;name...": spellings never tried (a
 * diagnosis: e.g. "fp8 inference" makes the kernels' check run the next
 * fp8 spelling on its padded items). Their bits in zcg_spells' order. */
static uint32_t env_skip(void)
{
    static int done;
    static uint32_t mask;
    const char *v = getenv("PX_ZIMAGE_CUDA_ATTN_SKIP");
    for (int i = 0; !done && v && i < zcg_n_spells && i < MAX_SPELL; i++) {
        size_t n = strlen(zcg_spells[i].name);
        for (const char *t = v; t; t = strchr(t, ';'), t = t ? t + 1 : t) {
            while (*t == ' ') t++;
            if (!strncmp(t, zcg_spells[i].name, n) && (t[n] == ';' || t[n] == 0)) mask |= 1u << i;
        }
    }
    done = 1;
    return mask;
}

/* PX_ZIMAGE_CUDA_ATTN_CFG (bf16 graphs) and PX_ZIMAGE_CUDA_ATTN8_CFG (fp8):
 * "ENGINE[:knob=value,...]", an engine configuration to take instead of
 * the heuristics' first (a row of zattn_engines_cuda_bench's survey); NULL
 * when unset or not of that form (warned once). */
static const zcg_cfg *env_cfg(int fp8)
{
    static int done[2];
    static zcg_cfg cfg[2];
    static const zcg_cfg *use[2];
    const char *name = fp8 ? "PX_ZIMAGE_CUDA_ATTN8_CFG" : "PX_ZIMAGE_CUDA_ATTN_CFG";
    const char *v = getenv(name);
    if (!done[fp8] && v && *v) {
        if (zcg_cfg_parse(v, &cfg[fp8]))
            PX_WARN("zimage cuda: %s=\"%s\" is not ENGINE[:knob=value,...]: ignored", name, v);
        else
            use[fp8] = &cfg[fp8];
    }
    done[fp8] = 1;
    return use[fp8];
}

/* a's graph in spelling sp with its plan: of the configuration the
 * environment names when that engine takes it, else the heuristics'. */
static zcg *build_one(dev_state *d, const zc_attn *a, const zcg_spell *sp, cudnnStatus_t *st,
                      const char **what)
{
    const zcg_cfg *want = env_cfg(a->fp8 != 0);
    zcg *z = want ? zcg_build_cfg(d->h, NULL, a, sp, want, st, what) : NULL;
    if (want && !z)
        PX_WARN("zimage cuda: cuDNN attention \"%s\": the configuration asked for: %s (%s); the "
                "heuristics' runs", sp->name, *what, cudnnGetErrorString(*st));
    return z ? z : zcg_build(d->h, NULL, a, sp, st, what);
}

/* The graph in the first spelling an engine takes (and that has not
 * failed on the GPU, nor for this shape: skip), with its plan, into p->g;
 * NULL, or what failed for each spelling (the last status in *st). Called
 * under g_mu (the failure text is static). */
static const char *build_graph(dev_state *d, const zc_attn *a, plan *p, uint32_t skip,
                               cudnnStatus_t *st)
{
    static char why[640];
    size_t n = 0;
    why[0] = 0;
    for (int i = 0; i < zcg_n_spells && i < MAX_SPELL; i++) {
        const zcg_spell *sp = &zcg_spells[i];
        const char *what = NULL;
        if (sp->fp8 != (a->fp8 != 0)) continue; /* the other precision's spellings */
        if (skip & (1u << i)) continue;         /* failed for this shape */
        if (g_bad & (1u << i)) /* an engine took it, but it failed on the GPU */
            what = g_bad_why[i];
        else if ((p->g = build_one(d, a, sp, st, &what))) {
            p->spell = sp, p->with_stats = sp->stats == ZCG_STATS_OUTPUT;
            return NULL;
        }
        if (n < sizeof why)
            n += (size_t)snprintf(why + n, sizeof why - n, "%s%s: %s%s%s%s", i ? "; " : "",
                                  sp->name, what, g_bad & (1u << i) ? "" : " (",
                                  g_bad & (1u << i) ? "" : cudnnGetErrorString(*st),
                                  g_bad & (1u << i) ? "" : ")");
    }
    return why;
}

/* The fp8 graph's scalars after the two descales of Q and K (which come
 * with each call, zc_attn.descale_qk): V comes unscaled (zattn_q8.h keeps
 * its per-item scale in the output), P is stored as e4m3(P · 448) (P <= 1),
 * so its descale is 1/448, O is stored unscaled, then the two amax outputs.
 * Constant, so a static array the async upload may read at any time. */
static const float k_fp8_consts[ZCG_FP8_N_SCALARS] = {1.0f, 1.0f, 1.0f, 1.0f / 448.0f,
                                                      448.0f, 1.0f, 0.0f, 0.0f};

/* A new plan for a's shape into p: the graph, its workspace, seq_q (and
 * the statistics buffer). Outside stream capture only. NULL or why not. */
static const char *build(dev_state *d, zc_stream s, const zc_attn *a, plan *p, uint32_t skip,
                         cudnnStatus_t *st)
{
    memset(p, 0, sizeof *p);
    p->key = key_of(a), p->scale = a->scale, p->neg = -1e30f;
    *st = CUDNN_STATUS_SUCCESS;
    if (!d->h && (*st = cudnnCreate(&d->h))) return "cudnnCreate";
    const char *why = build_graph(d, a, p, skip, st);
    if (why) return why;
    int64_t ws = zcg_workspace(p->g);
    size_t n = (size_t)a->n_items;
    int *sq = malloc(n * sizeof *sq);
    if (!sq) return "out of host memory";
    for (size_t i = 0; i < n; i++) sq[i] = a->S_q;
    int e = (ws > 0 && cudaMalloc(&p->ws, (size_t)ws)) ||
            cudaMalloc((void **)&p->seq_q, n * sizeof *sq) ||
            /* on the stream the plan runs on: a plain cudaMemcpy goes on the
             * legacy stream, which a non-blocking one is not ordered with,
             * and from pageable memory may return before its DMA lands */
            cudaMemcpyAsync(p->seq_q, sq, n * sizeof *sq, cudaMemcpyHostToDevice,
                            (cudaStream_t)s) ||
            (p->spell->sdev &&
             (cudaMalloc((void **)&p->scale_dev, sizeof(float)) ||
              cudaMemcpyAsync(p->scale_dev, &p->scale, sizeof(float), cudaMemcpyHostToDevice,
                              (cudaStream_t)s))) ||
            (p->with_stats &&
             cudaMalloc((void **)&p->stats, n * (size_t)a->n_heads * (size_t)a->S_q * 4)) ||
            (a->fp8 && (cudaMalloc((void **)&p->f8, sizeof k_fp8_consts) ||
                        cudaMemcpyAsync(p->f8, k_fp8_consts, sizeof k_fp8_consts,
                                        cudaMemcpyHostToDevice, (cudaStream_t)s)));
    free(sq);
    if (e) {
        (void)cudaGetLastError();
        return "device memory for the plan";
    }
    return NULL;
}

/* Enqueues the plan on s with a's pointers (no allocation, no sync: safe
 * under stream capture). */
static cudnnStatus_t execute(dev_state *d, plan *p, zc_stream s, const zc_attn *a)
{
    zcg_io io = {.q = a->q, .k = a->k, .v = a->v, .o = a->o,
                 .scale = p->scale_dev ? (const void *)p->scale_dev : (const void *)&p->scale,
                 .seq_q = p->seq_q, .seq_kv = a->kv_len, .neg = &p->neg, .stats = p->stats,
                 .descale_qk = a->descale_qk, .f8 = p->f8, .ws = p->ws};
    cudnnStatus_t st = cudnnSetStream(d->h, (cudaStream_t)s);
    return st ? st : zcg_execute(d->h, p->g, &io);
}

/* A failed build's leftovers (a plan that was cached is never freed). */
static void plan_free(plan *p)
{
    zcg_free(p->g);
    cudaFree(p->ws), cudaFree(p->seq_q), cudaFree(p->stats), cudaFree(p->scale_dev);
    cudaFree(p->f8);
    (void)cudaGetLastError();
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------- the self-check */

static float bf16_to_f(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* max|x − ref| and max|ref| over the valid rows (row < kv_len of its item)
 * and the heads' columns; a non-finite x counts as an infinite diff. */
static void compare(const zc_attn *a, const uint16_t *x, const uint16_t *ref, const int *len,
                    double *maxdiff, double *maxref)
{
    int cols = a->n_heads * a->head_dim;
    *maxdiff = 0, *maxref = 0;
    for (int b = 0; b < a->n_items; b++) {
        int rows = len[b] < a->S_q ? len[b] : a->S_q;
        for (int r = 0; r < rows; r++) {
            size_t off = ((size_t)b * a->S_q + (size_t)r) * (size_t)a->ldo;
            for (int c = 0; c < cols; c++) {
                double v = bf16_to_f(x[off + c]), w = bf16_to_f(ref[off + c]);
                double dd = isfinite(v) ? fabs(v - w) : INFINITY;
                if (!(dd <= *maxdiff)) *maxdiff = isnan(dd) ? INFINITY : dd;
                if (fabs(w) > *maxref) *maxref = fabs(w);
            }
        }
    }
}

/* a->o (cuDNN's, just enqueued on s) against the mma kernel on the same
 * inputs: NULL when within CHECK_TOL of max|ref|, else why not (in buf).
 * Syncs s: called outside capture only, on a plan's first call. */
static const char *self_check(zc_stream s, const zc_attn *a, char *buf, size_t buflen)
{
    /* Up to the last row's last head column: the buffer may end there. */
    size_t n = ((size_t)a->n_items * (size_t)a->S_q - 1) * (size_t)a->ldo +
               (size_t)a->n_heads * (size_t)a->head_dim;
    uint16_t *x = malloc(n * 2), *ref = malloc(n * 2);
    int *len = malloc((size_t)a->n_items * sizeof *len);
    void *dref = NULL;
    const char *why = NULL;
    zc_attn m = *a;
    if (!x || !ref || !len)
        why = "out of host memory";
    else if (cudaMalloc(&dref, n * 2))
        why = "device memory for the check";
    else if ((m.o = dref, zc_attention_with(s, &m, ZC_ATTN_MMA)) ||
             cudaStreamSynchronize((cudaStream_t)s) ||
             cudaMemcpy(x, a->o, n * 2, cudaMemcpyDeviceToHost) ||
             cudaMemcpy(ref, dref, n * 2, cudaMemcpyDeviceToHost) ||
             cudaMemcpy(len, a->kv_len, (size_t)a->n_items * sizeof *len, cudaMemcpyDeviceToHost))
        why = "a CUDA call of the check failed";
    if (!why) {
        double md, mr;
        compare(a, x, ref, len, &md, &mr);
        if (!(md <= CHECK_TOL * mr)) {
            snprintf(buf, buflen, "differs from the mma kernel: max|diff| %.3g of max|ref| %.3g",
                     md, mr);
            why = buf;
        }
    }
    if (dref) cudaFree(dref);
    (void)cudaGetLastError();
    free(x), free(ref), free(len);
    return why;
}

/* --------------------------------------------------------------- the API */

int zattn_cudnn_supports(const zc_attn *a)
{
    int al = a->fp8 ? 16 : 8; /* 16-byte rows: elements of 1 or 2 bytes */
    return !a->causal && (a->head_dim == 128 || a->head_dim == 64) && a->n_heads == a->n_kv_heads &&
           a->n_q == a->S_q && a->n_items > 0 && a->S_q > 0 && a->S_kv > 0 && a->ldq % al == 0 &&
           a->ldk % al == 0 && a->ldv % al == 0 && a->ldo % al == 0 && (!a->fp8 || a->descale_qk);
}

const char *zattn_cudnn_disabled(void)
{
    pthread_mutex_lock(&g_mu);
    const char *r = g_off[0][0] ? g_off[0] : NULL;
    pthread_mutex_unlock(&g_mu);
    return r;
}

const char *zattn_cudnn_fp8_disabled(void)
{
    pthread_mutex_lock(&g_mu);
    const char *r = g_off[1][0] ? g_off[1] : g_off[0][0] ? g_off[0] : NULL;
    pthread_mutex_unlock(&g_mu);
    return r;
}

const char *zattn_cudnn_spelling(void)
{
    pthread_mutex_lock(&g_mu);
    const char *r = g_spelling;
    pthread_mutex_unlock(&g_mu);
    return r;
}

/* The cached plan of a's shape on device d, or a new one (built here when
 * s is not capturing) in a spelling outside skip: 0 with *pp set (and
 * *fresh for a new plan), ZATTN_CUDNN_UNSUPPORTED (also for an fp8 shape
 * refused: no fp8 spelling passed its checks there), or ZATTN_CUDNN_FAILED
 * (turned off). */
static int plan_for(dev_state *d, zc_stream s, const zc_attn *a, uint32_t skip, plan **pp,
                    int *fresh)
{
    plan_key k = key_of(a);
    for (int i = 0; i < d->n; i++)
        if (!memcmp(&d->plans[i].key, &k, sizeof k))
            return d->plans[i].refused ? ZATTN_CUDNN_UNSUPPORTED : (*pp = &d->plans[i], 0);
    enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing((cudaStream_t)s, &cs) || cs != cudaStreamCaptureStatusNone) {
        (void)cudaGetLastError();
        return ZATTN_CUDNN_UNSUPPORTED; /* building would allocate and sync */
    }
    if (d->n == MAX_PLANS) return ZATTN_CUDNN_UNSUPPORTED;
    plan *p = &d->plans[d->n];
    cudnnStatus_t st;
    const char *why = build(d, s, a, p, skip, &st);
    if (why) {
        plan_free(p);
        if (a->fp8 && skip) { /* spellings failed here: this shape alone goes without */
            p->key = k, p->refused = true, d->n++;
            PX_WARN("zimage cuda: cuDNN fp8 attention refused for %d item(s) of %d tokens (no "
                    "spelling passed its checks there): the bf16 attention runs for that shape",
                    a->n_items, a->S_q);
            return ZATTN_CUDNN_UNSUPPORTED;
        }
        turn_off(a->fp8, "no plan: %s (%s)", why, st ? cudnnGetErrorString(st) : "-");
        return ZATTN_CUDNN_FAILED;
    }
    d->n++;
    if (!a->fp8) g_spelling = p->spell->name; /* what zattn_cudnn_spelling reports: the bf16 graphs */
    *pp = p, *fresh = 1;
    return 0;
}

/* A fresh plan (the last built on d, on its first call) ran wrong or not
 * at all: the plan is freed and its spelling not tried again — for any
 * shape (a bf16 graph wrong once is wrong everywhere), or for this shape
 * only (fp8: into *skip; cuDNN's fp8 engines went wrong at one shape). */
static void drop_spelling(dev_state *d, zc_stream s, plan *p, const char *why, uint32_t *skip)
{
    int i = (int)(p->spell - zcg_spells);
    if (p->spell->fp8) {
        *skip |= 1u << i;
    } else {
        g_bad |= 1u << i;
        snprintf(g_bad_why[i], sizeof g_bad_why[i], "built, then %.200s", why);
    }
    PX_WARN("zimage cuda: cuDNN attention in the spelling \"%s\"%s: %s; trying the next",
            p->spell->name, p->spell->fp8 ? " (for this shape)" : "", why);
    (void)cudaStreamSynchronize((cudaStream_t)s); /* nothing queued may use it */
    plan_free(p);
    d->n--;
}

/* Runs p on a; checked (fresh plans) against the mma kernel, or for fp8
 * the host's reference, twice (a plan whose output varies from run to run
 * has two chances to show it). NULL, or what was wrong (into buf). */
static const char *run_checked(dev_state *d, plan *p, zc_stream s, const zc_attn *a, int check,
                               char *buf, size_t buflen)
{
    for (int run = 0; run < (check && a->fp8 ? 2 : 1); run++) {
        cudnnStatus_t st = execute(d, p, s, a);
        if (st) {
            snprintf(buf, buflen, "execute: %s", cudnnGetErrorString(st));
            return buf;
        }
        if (!check) return NULL;
        const char *why =
            a->fp8 ? zattn_q8_check(s, a, buf, buflen) : self_check(s, a, buf, buflen);
        if (why && run) {
            char t[200];
            snprintf(t, sizeof t, "%s", why);
            snprintf(buf, buflen, "its second run: %.150s", t);
            why = buf;
        }
        if (why) return why;
    }
    return NULL;
}

int zattn_cudnn(zc_stream s, const zc_attn *a)
{
    if (!zattn_cudnn_supports(a)) return ZATTN_CUDNN_UNSUPPORTED;
    int dev = -1;
    if (cudaGetDevice(&dev) || dev < 0 || dev >= MAX_DEV) {
        (void)cudaGetLastError();
        return ZATTN_CUDNN_UNSUPPORTED;
    }
    pthread_mutex_lock(&g_mu);
    dev_state *d = &g_dev[dev];
    plan *p = NULL;
    uint32_t skip = env_skip(); /* and fp8 spellings that failed for this shape */
    int fresh = 0, rc = g_off[0][0] || (a->fp8 && g_off[1][0])
                            ? ZATTN_CUDNN_UNSUPPORTED
                            : plan_for(d, s, a, skip, &p, &fresh);
    /* A new plan must run and match on its first call; if not, the next
     * spelling is built (plan_for turns cuDNN off, or for fp8 refuses the
     * shape, when none is left). */
    while (!rc) {
        char buf[200], again_buf[200];
        const char *bad = run_checked(d, p, s, a, fresh, buf, sizeof buf);
        if (bad && fresh) {
            /* Once more, for the log: a wrong graph is wrong again, a first
             * run that went wrong by chance is not. The spelling is dropped
             * either way (a plan that was wrong once is not trusted
             * unchecked). The fp8 "inference" spelling's plan for 512²
             * batch 4 failed its first run on two H100s in five fresh
             * processes of five, and its rerun on the same inputs in 2 of
             * 4 (2026-12-06, zimage-cuda.md): its output varies from run
             * to run at that shape. (Its spelling without the M/N/K
             * overrides, tried next then, ignores the padding: wrong for
             * items with fewer keys, so gone.) */
            const char *again = run_checked(d, p, s, a, 1, again_buf, sizeof again_buf);
            char cfg[160] = "?";
            if (zcg_config(p->g)) zcg_cfg_str(zcg_config(p->g), cfg, sizeof cfg);
            PX_WARN("zimage cuda: cuDNN attention in the spelling \"%s\" (engine configuration "
                    "%s), a new plan's first run: %s; run again: %s",
                    p->spell->name, cfg, bad, again ? again : "right");
        }
        if (!bad) break;
        if (!fresh) {
            turn_off(a->fp8, "%s%s", bad, "");
            rc = ZATTN_CUDNN_FAILED;
            break;
        }
        drop_spelling(d, s, p, bad, &skip);
        fresh = 0;
        rc = plan_for(d, s, a, skip, &p, &fresh);
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}
