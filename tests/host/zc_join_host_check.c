/*
 * zc_join_host_check.c — the CUDA backend's continuous batching (zc_join.c:
 * admitting joiners, keeping each image's encoder features and latents,
 * rebinding to a plan when members change, each image at its own timestep,
 * handing images back as their steps end) checked on a machine without a
 * GPU: zc_join.o (from `make CUDA=1`) is linked against host stand-ins for
 * the text encoder, the DiT plans and the VAE (tests/host/cuda_fakes.c for
 * the runtime). The stand-in DiT moves each image's latents by a function
 * of its own prompt features (read back from the rows zc_join gathered),
 * its guidance and its own timestep, so a joined image must come out
 * byte-identical to the same image run alone — any mix-up of rows, slots,
 * timesteps or a plan used after the cache dropped it (its latents are
 * poisoned with NaN) shows. tests/host/zc_join_host_check.sh builds and
 * runs it with the tiny test model (its tokenizer, sampler and sizes).
 */
#include "core/err.h"
#include "engine/zimage/cuda/zc_join.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The CUDA runtime calls: tests/host/cuda_fakes.c. */

#define HID 8 /* the stand-in encoder's feature width */

#include "host_check.h"

/* The shared runtime's reading of device memory in use (cuda_device.c):
 * a value the replies' per-stage figures must carry through. */
#define FAKE_MEM_USED ((uint64_t)5 << 30)
uint64_t px_cuda_mem_used(int dev)
{
    (void)dev;
    return FAKE_MEM_USED;
}

/* ------------------------------------------------------------ the encoder */

int zc_text_bufs_reserve(zc_dev *d, size_t rows, int cs_rows, char *err, size_t errlen)
{
    (void)cs_rows, (void)err, (void)errlen;
    if (d->tb.rows >= rows) return 0;
    free(d->tb.x);
    d->tb.x = calloc(rows * HID, sizeof(float));
    d->tb.rows = rows;
    return 0;
}

/* Row t of item i: its token id, spread over the columns. */
int zc_text_encode(zc_dev *d, const int32_t *const *ids, const int *len, int n, int *lmax,
                   char *err, size_t errlen)
{
    *lmax = 0;
    for (int i = 0; i < n; i++) *lmax = len[i] > *lmax ? len[i] : *lmax;
    zc_text_bufs_reserve(d, (size_t)n * *lmax, *lmax, err, errlen);
    memset(d->tb.x, 0xff, (size_t)n * *lmax * HID * sizeof(float)); /* NaN past each len */
    for (int i = 0; i < n; i++)
        for (int t = 0; t < len[i]; t++)
            for (int j = 0; j < HID; j++)
                d->tb.x[((size_t)i * *lmax + t) * HID + j] = (float)ids[i][t] * 0.25f + (float)j;
    return 0;
}

/* ------------------------------------------------------------ the plans */

struct zc_plan {
    zc_plan_key k;
    float *lat;
    zc_batch b;
    double sig[ZC_MAX_ITEMS]; /* each item's prompt signature, from the gathered rows */
    int live;
};

#define CACHE 2 /* small: joins evict plans */
static zc_plan *g_cache[CACHE];
static zc_plan *g_dead[256];
static int g_ndead, g_begins, g_steps;
static size_t g_per; /* latent floats per image */

int zc_plan_get(zc_dev *d, const zc_plan_key *k, zc_plan **out, char *err, size_t errlen)
{
    (void)d;
    for (int i = 0; i < CACHE; i++)
        if (g_cache[i] && !memcmp(&g_cache[i]->k, k, sizeof *k)) {
            *out = g_cache[i];
            return 0;
        }
    if (k->B < 1 || k->B > ZC_MAX_ITEMS || k->n_images > k->B || k->T % 32)
        return px_errf(err, errlen, PX_EINVAL, "plan key %d/%d/%d", k->B, k->n_images, k->T);
    zc_plan *old = g_cache[CACHE - 1];
    if (old) { /* evicted: poisoned, kept to catch late reads */
        for (size_t i = 0; i < (size_t)old->k.n_images * g_per; i++) old->lat[i] = NAN;
        old->live = 0;
        g_dead[g_ndead++] = old;
    }
    memmove(g_cache + 1, g_cache, (CACHE - 1) * sizeof *g_cache);
    zc_plan *p = calloc(1, sizeof *p);
    p->k = *k, p->live = 1;
    p->lat = calloc((size_t)k->n_images * g_per, sizeof(float));
    g_cache[0] = p;
    *out = p;
    return 0;
}

int zc_plan_begin(zc_dev *d, zc_plan *p, const zc_batch *b, const float *latents, char *err,
                  size_t errlen)
{
    g_begins++;
    if (!p->live || latents || b->n_items != p->k.B || b->n_images != p->k.n_images)
        return px_errf(err, errlen, PX_EINVAL, "begin: batch %d/%d for plan %d/%d", b->n_items,
                       b->n_images, p->k.B, p->k.n_images);
    p->b = *b;
    for (int i = 0; i < b->n_images; i++) memcpy(p->lat + i * g_per, b->lat_dev[i], g_per * 4);
    for (int k = 0; k < b->n_items; k++) {
        CHECK(b->text_len[k] <= b->lmax && ((b->text_len[k] + 31) / 32 * 32) <= p->k.T,
              "item %d: %d tokens, lmax %d, T %d", k, b->text_len[k], b->lmax, p->k.T);
        double s = 0;
        for (int t = 0; t < b->lmax; t++)
            for (int j = 0; j < HID; j++) {
                float v = d->tb.x[((size_t)k * b->lmax + t) * HID + j];
                if (t < b->text_len[k]) s += v * (t + 1);
                else CHECK(v == 0, "item %d row %d (past its %d tokens) holds %g", k, t,
                           b->text_len[k], v);
            }
        p->sig[k] = s;
    }
    return 0;
}

/* Each image's Euler step from its own prompt, guidance and timestep. */
int zc_plan_step(zc_dev *d, zc_plan *p, const float *sigma, const float *sigma_next, int direct,
                 float *pred_out, char *err, size_t errlen)
{
    (void)d, (void)direct, (void)pred_out;
    g_steps++;
    if (!p->live) return px_errf(err, errlen, PX_EINVAL, "step on an evicted plan");
    const zc_batch *b = &p->b;
    for (int i = 0; i < b->n_images; i++) {
        float *l = p->lat + i * g_per;
        double pos = p->sig[b->pos_of[i]], neg = b->neg_of[i] >= 0 ? p->sig[b->neg_of[i]] : 0;
        for (size_t j = 0; j < g_per; j++) {
            /* sin(): bounded, and any change of the signature shows */
            double v = 0.3 * sin(pos + j) + 1e-3 * (double)j * sigma[i] + 0.1 * l[j];
            if (b->neg_of[i] >= 0) {
                double vn = 0.3 * sin(neg + j) + 1e-3 * (double)j * sigma[i] + 0.1 * l[j];
                v = v + b->cfg_w[i] * (v - vn);
            }
            l[j] += (float)((sigma_next[i] - sigma[i]) * v);
        }
    }
    return 0;
}

const float *zc_plan_latents(const zc_plan *p)
{
    return p->lat;
}

void zc_plan_end(zc_dev *d, zc_plan *p)
{
    (void)d, (void)p;
}

/* ------------------------------------------------------------ the VAE */

int zc_vae_decode(zc_vae *v, const float *lat, int lh, int lw, uint8_t *rgb, char *err,
                  size_t errlen)
{
    (void)v, (void)err, (void)errlen;
    for (int y = 0; y < 8 * lh; y++)
        for (int x = 0; x < 8 * lw; x++)
            for (int c = 0; c < 3; c++) {
                double u = 128 + 60 * lat[((size_t)c * lh + y / 8) * lw + x / 8];
                if (!(u >= 0)) u = 0; /* NaN too: a poisoned plan shows as black */
                rgb[((size_t)y * 8 * lw + x) * 3 + c] = (uint8_t)(u > 255 ? 255 : u);
            }
    return 0;
}

/* ------------------------------------------------------------ the feed */

typedef struct feedq {
    px_engine_item *at[16][4]; /* joiners handed out at join call k */
    int calls;
    px_engine_item *ended[16];
    int nended;
} feedq;

static int q_join(void *ctx, px_engine_item **items, int max)
{
    feedq *q = ctx;
    int k = 0, c = ++q->calls;
    for (; c < 16 && k < 4 && k < max && q->at[c][k]; k++) items[k] = q->at[c][k];
    return k;
}

static void q_done(void *ctx, px_engine_item *it)
{
    feedq *q = ctx;
    q->ended[q->nended++] = it;
}

/* Cancels the item in arg when its watcher reaches step 5. */
static void cancel_at_5(void *arg, int step, int steps)
{
    (void)steps;
    if (step == 5) atomic_store((atomic_int *)arg, 1);
}

#define W 32
#define H 64

static void item(px_engine_item *it, px_image *out, const char *prompt, int steps, int seed)
{
    memset(it, 0, sizeof *it);
    px_image_alloc(out, W, H, 3, NULL, NULL, 0);
    *it = (px_engine_item){.out = out, .seed = (uint64_t)seed,
                           .gen = {.prompt = prompt, .width = W, .height = H, .steps = steps}};
}

static int run(const zc_join_env *env, px_engine_item *first, feedq *q)
{
    px_engine_feed feed = {.join = q_join, .done = q_done, .ctx = q};
    return zc_join_run(env, &first, 1, &feed);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: zc_join_host_check MODEL_DIR (the tiny test model)\n");
        return 2;
    }
    char err[600];
    zi_model *m;
    zi_model_paths paths = {.dir = argv[1]};
    if (zi_model_open(&paths, NULL, &m, err, sizeof err)) {
        printf("open: %s\n", err);
        return 1;
    }
    const zi_dit_config *c = zi_model_dit_config(m);
    int f = zi_model_size_multiple(m) / c->patch;
    g_per = (size_t)c->in_channels * (H / f) * (W / f);
    px_cuda_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    zc_dev d;
    memset(&d, 0, sizeof d);
    d.ctx = &ctx, d.dc = *c, d.qc.hidden = HID;
    zc_join_env env = {.model = m, .ctx = &ctx, .d = &d, .vae = (zc_vae *)&d};

    enum { A, B, C, D, E, N };
    const char *prompt[N] = {"a lighthouse at dusk",
                             "a very long prompt about a red bicycle leaning on a stone wall in "
                             "the rain, with puddles, reflections and a cat watching",
                             "a bowl of fruit", "snow", "a ship"};
    int steps[N] = {4, 8, 4, 3, 6};
    px_engine_item solo[N], it[N];
    px_image so[N], out[N];
    for (int i = 0; i < N; i++) {
        item(&solo[i], &so[i], prompt[i], steps[i], 10 + i);
        if (i == C) solo[i].gen.cfg_scale = 3.0f, solo[i].gen.negative_prompt = "blurry";
        feedq q = {0};
        CHECK(run(&env, &solo[i], &q) == 0 && q.nended == 1 && solo[i].status == 0,
              "solo %d: %s", i, solo[i].err);
        item(&it[i], &out[i], prompt[i], steps[i], 10 + i);
        it[i].gen = solo[i].gen;
        it[i].gen.nstep_ms = 0;
    }
    /* B alone, then A and C (guided) join at the third join call (before
     * B's 3rd step), E at the 4th, D at the 5th; B's progress cancels E at
     * B's 5th step. */
    atomic_int cancel_e = 0;
    it[E].cancel = &cancel_e;
    it[B].progress = cancel_at_5, it[B].progress_arg = &cancel_e;
    feedq q = {0};
    q.at[3][0] = &it[A], q.at[3][1] = &it[C], q.at[4][0] = &it[E], q.at[5][0] = &it[D];
    int begins0 = g_begins;
    CHECK(run(&env, &it[B], &q) == 0, "joined run failed");
    CHECK(q.nended == N, "%d items ended, expected %d", q.nended, N);
    CHECK(it[E].status == PX_ECANCELED, "E: status %d (%s)", it[E].status, it[E].err);
    for (int i = 0; i < N; i++) {
        if (i == E) continue;
        CHECK(it[i].status == 0, "item %d: %s", i, it[i].err);
        CHECK(it[i].gen.nstep_ms == steps[i], "item %d: %d step times", i, it[i].gen.nstep_ms);
        const px_engine_gen *g = &it[i].gen;
        CHECK(g->mem_source == PX_GEN_MEM_GPU && g->encode_peak_bytes == FAKE_MEM_USED &&
                  g->denoise_peak_bytes == FAKE_MEM_USED && g->decode_peak_bytes == FAKE_MEM_USED,
              "item %d: per-stage GPU memory not reported (source %d)", i, g->mem_source);
        CHECK(!memcmp(out[i].px, so[i].px, (size_t)W * H * 3),
              "item %d joined differs from item %d alone", i, i);
        int lo = 255, hi = 0; /* the check needs images that are not flat */
        for (size_t p = 0; p < (size_t)W * H * 3; p++)
            lo = so[i].px[p] < lo ? so[i].px[p] : lo, hi = so[i].px[p] > hi ? so[i].px[p] : hi;
        CHECK(hi - lo > 50, "item %d: a flat image (%d..%d)", i, lo, hi);
    }
    CHECK(q.ended[N - 1] == &it[B], "B (8 steps from the start) did not end last");
    CHECK(g_ndead > 0, "no plan was evicted: the check would not catch a stale plan");
    printf("zc_join host check: %d items, %d rebinds, %d plans evicted, %d step calls: %s\n", N,
           g_begins - begins0, g_ndead, g_steps, g_fail ? "FAIL" : "PASS");
    for (int i = 0; i < N; i++) px_image_free(&so[i]), px_image_free(&out[i]);
    zi_model_close(m);
    return g_fail;
}
