/*
 * zimage_cuda.c — the zimage engine on NVIDIA GPUs (zimage_cuda.h): the
 * model opened once (the CPU engine's loaders and checks), its DiT and
 * text-encoder weights uploaded once per GPU (zc_net.h), one pool context
 * per GPU; a batch takes a free context, so --workers = the GPU count keeps
 * every GPU busy.
 *
 * A batch of requests of one size runs as one DiT batch: every prompt
 * (and, with guidance, every negative prompt: CFG's halves are batch
 * items) through the text encoder at once, then `steps` Euler steps of
 * the DiT over all items (one CUDA graph per (items, patch grid, text
 * rows) plan), with progress reported and cancellation checked between
 * steps. The text rows are bucketed to a power of two (>= 32) so a few
 * plans serve every prompt length.
 *
 * Continuous batching (px_engine_run_feed, zc_join.h): the scheduler's
 * batch keeps its context while requests of its size join between steps
 * and leave when their own steps are done; px_engine_run (warm-up, the
 * CLI, the tests' plain batches) runs a fixed group as above.
 *
 * LoRAs (px_engine_lora_open) are applied per item at run time next to
 * the DiT's GEMMs (zc_lora.h), so a batch mixes LoRAs and scales; each
 * GPU caches the LoRAs it has used (bf16, PX_ZIMAGE_CUDA_LORA_MB, default
 * 2048, least recently used out), and closing a LoRA evicts it everywhere
 * (zi_cuda_lora_forget). Steps with LoRAs run without the CUDA graph
 * (zc_net.h says why); PX_ZIMAGE_CUDA_GRAPHS=0 runs every step so.
 *
 * The VAE decoder runs on the GPU in fp32 (zc_vae.c), image by image, from
 * the plan's latents; PX_ZIMAGE_CUDA_CPU_VAE=1 decodes on the CPU instead
 * (the model's own zi_vae, latents copied back), to tell a GPU VAE bug from
 * a DiT one.
 *
 * Ran on an H200 (2026-12-05): zimage_cuda_test passes, tiny and full size.
 */
#include "engine/zimage/zimage_cuda.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/env.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "engine/cuda/cuda_blas.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_device.h"
#include "engine/cuda/cuda_plan.h"
#include "engine/zimage/cuda/zattn.h"
#include "engine/zimage/cuda/zc_attn8.h"
#include "engine/zimage/cuda/zc_join.h"
#include "engine/zimage/cuda/zc_net.h"
#include "engine/zimage/sampler.h"
#include "engine/zimage/tokenizer.h"
#include "engine/zimage/zimage.h"
#include "engine/zimage/zimage_lora_engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct zcuda_engine {
    px_engine base;
    zi_model *model;
    px_cuda_pool *pool;
    int ndev;
    zc_dev *dev[PX_CUDA_MAX_DEVICES];
    zc_vae *vae[PX_CUDA_MAX_DEVICES];
    zi_ctx *vae_ctx[PX_CUDA_MAX_DEVICES]; /* the CPU VAE's workspace per context */
    bool cpu_vae;                         /* PX_ZIMAGE_CUDA_CPU_VAE=1 */
    size_t lora_cap;                      /* bytes of LoRAs cached per GPU */
    struct zcuda_engine *next_open;       /* g_engines' list */
    char path[1024];
} zcuda_engine;

/* Every open CUDA engine, for zi_cuda_lora_forget (a LoRA handle does not
 * say which engine ran it). */
static pthread_mutex_t g_engines_mu = PTHREAD_MUTEX_INITIALIZER;
static zcuda_engine *g_engines;

static const px_engine_ops k_ops;

int zi_cuda_probe(char *err, size_t errlen)
{
    return px_cuda_probe(err, errlen);
}

/* ------------------------------------------------------------- a batch */

typedef struct job {
    zcuda_engine *e;
    px_cuda_ctx *ctx;
    zc_dev *d;
    px_engine_item *items;
    int n;               /* images */
    int lat_h, lat_w, C; /* latent size */
    int32_t *ids[ZC_MAX_ITEMS + 1]; /* + 1: zc_item_prepare writes a pair */
    int len[ZC_MAX_ITEMS];
    zc_batch b;
    zi_lora_use uses[ZC_MAX_ITEMS][PX_ENGINE_MAX_LORAS]; /* per image (both CFG halves) */
    float *lat;    /* host, n x C x lat_h x lat_w */
    float *sigmas; /* steps + 1 */
    zc_plan *p;    /* the DiT plan (its latents: the decoder's input) */
    int steps;
} job;

static void job_free(job *j)
{
    for (int i = 0; i <= ZC_MAX_ITEMS; i++) free(j->ids[i]);
    free(j->lat);
    free(j->sigmas);
}

/* Each image's DiT items (positive, then negative when guided: see
 * zc_item_prepare), their LoRAs and initial latents, as one zc_batch. */
static int job_prepare(job *j, char *err, size_t errlen)
{
    int k = 0;
    size_t per = (size_t)j->C * j->lat_h * j->lat_w;
    if (!(j->lat = px_alloc_array((size_t)j->n * per, sizeof *j->lat)))
        return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    for (int i = 0; i < j->n; i++) {
        px_engine_gen *g = &j->items[i].gen;
        int nl, len[2];
        int nd = zc_item_prepare(j->e->model, &j->items[i], &j->ids[k], len, j->uses[i], &nl,
                                 j->lat + i * per, per, err, errlen);
        if (nd < 0) return nd;
        j->b.pos_of[i] = k, j->b.neg_of[i] = nd > 1 ? k + 1 : -1;
        j->b.cfg_w[i] = nd > 1 ? g->cfg_scale : 0;
        for (int h = 0; h < nd; h++, k++) {
            j->len[k] = j->b.text_len[k] = len[h];
            j->b.lat_of[k] = i;
            j->b.loras[k] = j->uses[i], j->b.nloras[k] = nl;
        }
    }
    j->b.n_items = k;
    j->b.n_images = j->n;
    if (!(j->sigmas = px_alloc_array((size_t)j->steps + 1, sizeof *j->sigmas)))
        return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    return zi_sampler_sigmas(zi_model_sampler_config(j->e->model), j->steps, j->sigmas, err,
                             errlen);
}

static bool all_cancelled(const job *j)
{
    for (int i = 0; i < j->n; i++)
        if (!j->items[i].cancel || !atomic_load(j->items[i].cancel)) return false;
    return true;
}

/* Text, denoising; the final latents back into j->lat. */
static int job_denoise(job *j, char *err, size_t errlen)
{
    int rc = 0, T = 0;
    int64_t t0 = px_now_ns();
    const int32_t *ids[ZC_MAX_ITEMS];
    for (int k = 0; k < j->b.n_items; k++) {
        ids[k] = j->ids[k];
        int tb = zc_text_bucket(j->len[k]);
        if (tb > T) T = tb;
    }
    if ((rc = zc_text_encode(j->d, ids, j->len, j->b.n_items, &j->b.lmax, err, errlen))) goto fail;
    int64_t t1 = px_now_ns();
    uint64_t mem_text = px_cuda_mem_used(j->ctx->dev);
    zc_plan_key key = {j->b.n_items, j->n, j->lat_h / j->d->dc.patch, j->lat_w / j->d->dc.patch,
                       T};
    if ((rc = zc_plan_get(j->d, &key, &j->p, err, errlen))) goto fail;
    zc_plan *p = j->p;
    /* PX_ZIMAGE_CUDA_GRAPHS=0: every step direct (profiling; the LoRA
     * bench's baseline, LoRA'd steps being direct). Read per generation so
     * one process can compare. */
    int direct = px_env_is("PX_ZIMAGE_CUDA_GRAPHS", "0");
    if ((rc = zc_plan_begin(j->d, p, &j->b, j->lat, err, errlen))) goto fail;
    for (int s = 0; s < j->steps; s++) {
        if (all_cancelled(j)) {
            rc = px_errf(err, errlen, PX_ECANCELED, "cancelled before step %d of %d", s + 1,
                         j->steps);
            goto fail;
        }
        int64_t ts = px_now_ns();
        float sig[ZC_MAX_ITEMS], nxt[ZC_MAX_ITEMS]; /* one schedule for the whole batch */
        for (int i = 0; i < j->n; i++) sig[i] = j->sigmas[s], nxt[i] = j->sigmas[s + 1];
        if ((rc = zc_plan_step(j->d, p, sig, nxt, direct, NULL, err, errlen))) goto fail;
        PX_CUDA_CHECK(cudaStreamSynchronize(j->ctx->stream));
        double ms = px_ns_to_ms(px_now_ns() - ts);
        for (int i = 0; i < j->n; i++) {
            px_engine_gen *g = &j->items[i].gen;
            if (s < PX_ENGINE_GEN_MAX_STEPS) g->step_ms[s] = (float)ms, g->nstep_ms = s + 1;
            px_engine_progress(&j->items[i], s + 1, j->steps);
        }
    }
    size_t per = (size_t)j->C * j->lat_h * j->lat_w;
    PX_CUDA_CHECK(cudaMemcpy(j->lat, zc_plan_latents(p), (size_t)j->n * per * sizeof(float),
                             cudaMemcpyDeviceToHost));
    int64_t t2 = px_now_ns();
    uint64_t mem_denoise = px_cuda_mem_used(j->ctx->dev);
    for (int i = 0; i < j->n; i++) {
        px_engine_gen *g = &j->items[i].gen;
        g->encode_ns = t1 - t0;
        g->denoise_ns = t2 - t1;
        g->encode_peak_bytes = mem_text;
        g->denoise_peak_bytes = mem_denoise;
        g->mem_source = PX_GEN_MEM_GPU;
    }
fail:
    return rc;
}

/* The VAE per image into the items' outputs: on the GPU (holding the
 * context) from the plan's latents, or on the CPU from j->lat. */
static int job_decode(job *j, bool gpu, char *err, size_t errlen)
{
    size_t per = (size_t)j->C * j->lat_h * j->lat_w;
    for (int i = 0; i < j->n; i++) {
        px_engine_item *it = &j->items[i];
        if (it->cancel && atomic_load(it->cancel)) continue;
        int64_t t0 = px_now_ns();
        int rc;
        if (gpu) {
            rc = zc_vae_decode(j->e->vae[j->ctx->index], zc_plan_latents(j->p) + i * per,
                               j->lat_h, j->lat_w, it->out->px, err, errlen);
        } else {
            px_image img = {0};
            rc = zi_model_vae_decode(j->e->model, j->e->vae_ctx[j->ctx->index], j->lat + i * per,
                                     j->lat_h, j->lat_w, &img, err, errlen);
            if (!rc) memcpy(it->out->px, img.px, (size_t)it->gen.width * it->gen.height * 3);
            px_image_free(&img);
        }
        if (rc) return rc;
        it->gen.decode_ns = px_now_ns() - t0;
        it->gen.decode_peak_bytes = px_cuda_mem_used(j->ctx->dev);
    }
    return 0;
}

/* Items [0, n) of one size; lat_out as zi_cuda_run_latents; on context
 * `at` (any free one when < 0). */
static int run_group(zcuda_engine *e, px_engine_item *items, int n, float *lat_out, int at,
                     char *err, size_t errlen)
{
    int f = zi_model_size_multiple(e->model) / zi_model_dit_config(e->model)->patch;
    job j;
    memset(&j, 0, sizeof j);
    j.e = e, j.items = items, j.n = n, j.steps = items[0].gen.steps;
    j.lat_h = items[0].gen.height / f, j.lat_w = items[0].gen.width / f;
    j.C = zi_model_dit_config(e->model)->in_channels;
    int rc = job_prepare(&j, err, errlen);
    if (rc) {
        job_free(&j);
        return rc;
    }
    j.ctx = at < 0 ? px_cuda_pool_take(e->pool) : px_cuda_pool_take_at(e->pool, at);
    j.d = j.ctx->user;
    PX_CUDA_CHECK(cudaSetDevice(j.ctx->dev));
    rc = job_denoise(&j, err, errlen);
    if (j.p) zc_plan_end(j.d, j.p); /* the LoRAs may go: the decoder reads latents only */
    if (!rc && !e->cpu_vae) rc = job_decode(&j, true, err, errlen);
fail:
    px_cuda_pool_give(e->pool, j.ctx);
    if (!rc && lat_out)
        memcpy(lat_out, j.lat, (size_t)n * j.C * j.lat_h * j.lat_w * sizeof(float));
    if (!rc && e->cpu_vae) rc = job_decode(&j, false, err, errlen);
    job_free(&j);
    return rc;
}

/* Images per DiT batch: CFG items count twice. */
static int group_end(const px_engine_item *items, int i, int n)
{
    int k = 0, j = i;
    const px_engine_gen *g0 = &items[i].gen;
    while (j < n) {
        const px_engine_gen *g = &items[j].gen;
        int cost = g->cfg_scale > 0 ? 2 : 1;
        if (g->width != g0->width || g->height != g0->height || g->steps != g0->steps ||
            k + cost > ZC_MAX_ITEMS)
            break;
        k += cost, j++;
    }
    return j > i ? j : i + 1;
}

static int run_items(zcuda_engine *e, px_engine_item *items, int n, float *lat_out, int at)
{
    int first = 0, i = 0;
    while (i < n) {
        int j = group_end(items, i, n);
        int rc = run_group(e, items + i, j - i, lat_out, at, items[i].err, sizeof items[i].err);
        for (int k = i; k < j; k++) {
            items[k].status = rc;
            if (rc && k != i) memcpy(items[k].err, items[i].err, sizeof items[k].err);
            if (!rc && items[k].cancel && atomic_load(items[k].cancel))
                items[k].status = px_errf(items[k].err, sizeof items[k].err, PX_ECANCELED,
                                          "cancelled");
            if (items[k].status && !first) first = items[k].status;
        }
        if (lat_out) {
            const zi_dit_config *c = zi_model_dit_config(e->model);
            int f = zi_model_size_multiple(e->model) / c->patch;
            lat_out += (size_t)(j - i) * c->in_channels * (items[i].gen.height / f) *
                       (items[i].gen.width / f);
        }
        i = j;
    }
    return first;
}

static int zcuda_run(px_engine *pe, px_engine_item *items, int n)
{
    return run_items((zcuda_engine *)pe, items, n, NULL, -1);
}

/* One warm-up generation: n items of w x h, two steps (the plan's first
 * runs direct, its second is captured as the CUDA graph), on context at. */
static int warm_one(zcuda_engine *e, int w, int h, int n, int at, char *err, size_t errlen)
{
    px_image out[ZC_MAX_ITEMS];
    px_engine_item it[ZC_MAX_ITEMS];
    memset(out, 0, sizeof out);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        rc = px_image_alloc(&out[i], w, h, 3, NULL, NULL, 0);
        it[i] = (px_engine_item){.out = &out[i], .seed = (uint64_t)i + 1,
                                 .gen = {.prompt = "warm-up", .width = w, .height = h, .steps = 2}};
    }
    if (rc) px_errf(err, errlen, rc, "out of memory warming up");
    else if ((rc = run_items(e, it, n, NULL, at)))
        px_errf(err, errlen, rc, "warm-up of engine zimage (%dx%d, batch %d): %s", w, h, n,
                it[0].err);
    for (int i = 0; i < n; i++) px_image_free(&out[i]);
    return rc;
}

/* px_engine_warm_up: a 1-step generation of the smallest size (first-use
 * costs out of the first request), then on every GPU each --warm-sizes
 * size at batches max_batch, ..., 4, 2, 1 (powers of two below it; the
 * plan cache keeps the four last built, so the small batches of light
 * load stay): the DiT plan with its attention plans, GEMM choices and
 * CUDA graph, and the VAE's, built before /readyz instead of on a
 * request's path. The short prompt gives the 32-row text bucket; longer
 * prompts' buckets build on first use. Sizes the model cannot make are
 * skipped with a warning. */
static int zcuda_warmup(px_engine *pe, const px_engine_warmup *wu, char *err, size_t errlen)
{
    zcuda_engine *e = (zcuda_engine *)pe;
    int m = zi_model_size_multiple(e->model);
    int rc = warm_one(e, m, m, 1, -1, err, errlen);
    int maxb = wu && wu->max_batch > 0 ? wu->max_batch : 1;
    maxb = maxb > ZC_MAX_ITEMS ? ZC_MAX_ITEMS : maxb;
    for (int k = 0; wu && k < wu->nsizes && !rc; k++) {
        int w = wu->w[k], h = wu->h[k];
        if (w <= 0 || h <= 0 || w % m || h % m || w > ZI_MAX_SIDE || h > ZI_MAX_SIDE) {
            PX_WARN("zimage: warm size %dx%d skipped (sides must be multiples of %d, at most %d)",
                    w, h, m, ZI_MAX_SIDE);
            continue;
        }
        for (int g = 0; g < e->ndev && !rc; g++) {
            int64_t t0 = px_now_ns();
            int n = 1;
            while (n * 2 < maxb) n *= 2;
            rc = warm_one(e, w, h, maxb, g, err, errlen);
            for (; n >= 1 && !rc && n < maxb; n /= 2) rc = warm_one(e, w, h, n, g, err, errlen);
            if (!rc)
                PX_INFO("zimage: warmed %dx%d at batches up to %d on GPU %d in %.1f s", w, h, maxb,
                        px_cuda_pool_ctx(e->pool, g)->dev, px_ns_to_ms(px_now_ns() - t0) / 1000);
        }
    }
    return rc;
}

/* Continuous batching (zc_join.h) on a free context: the batch holds it
 * until nothing is left to join. */
static int zcuda_run_feed(px_engine *pe, px_engine_item **items, int n,
                          const px_engine_feed *feed)
{
    zcuda_engine *e = (zcuda_engine *)pe;
    px_cuda_ctx *ctx = px_cuda_pool_take(e->pool);
    char err[160];
    size_t errlen = sizeof err;
    int rc = 0;
    PX_CUDA_CHECK(cudaSetDevice(ctx->dev));
    zc_join_env env = {.model = e->model, .ctx = ctx, .d = ctx->user,
                       .vae = e->cpu_vae ? NULL : e->vae[ctx->index],
                       .vae_ctx = e->vae_ctx[ctx->index]};
    rc = zc_join_run(&env, items, n, feed);
    px_cuda_pool_give(e->pool, ctx);
    return rc;
fail:
    px_cuda_pool_give(e->pool, ctx);
    for (int i = 0; i < n; i++) {
        items[i]->status = px_errf(items[i]->err, sizeof items[i]->err, rc, "%s", err);
        feed->done(feed->ctx, items[i]);
    }
    return rc;
}

int zi_cuda_run_latents(px_engine *pe, px_engine_item *items, int n, float *lat_out, char *err,
                        size_t errlen)
{
    if (!pe || pe->ops != &k_ops) return px_errf(err, errlen, PX_EINVAL, "not a zimage CUDA engine");
    int rc = run_items((zcuda_engine *)pe, items, n, lat_out, -1);
    if (rc) px_errf(err, errlen, rc, "%s", items[0].err);
    return rc;
}

/* ------------------------------------------------------------- stages */

int zi_cuda_encode(px_engine *pe, const int32_t *ids, int n, float *feat, char *err,
                   size_t errlen)
{
    if (!pe || pe->ops != &k_ops) return px_errf(err, errlen, PX_EINVAL, "not a zimage CUDA engine");
    zcuda_engine *e = (zcuda_engine *)pe;
    px_cuda_ctx *ctx = px_cuda_pool_take(e->pool);
    zc_dev *d = ctx->user;
    int rc = 0, lmax = 0;
    PX_CUDA_CHECK(cudaSetDevice(ctx->dev));
    if ((rc = zc_text_encode(d, &ids, &n, 1, &lmax, err, errlen))) goto fail;
    PX_CUDA_CHECK(cudaMemcpy(feat, d->tb.x, (size_t)n * d->qc.hidden * sizeof(float),
                             cudaMemcpyDeviceToHost));
fail:
    px_cuda_pool_give(e->pool, ctx);
    return rc;
}

int zi_cuda_vae_decode(px_engine *pe, const float *latent, int lat_h, int lat_w, uint8_t *rgb,
                       char *err, size_t errlen)
{
    if (!pe || pe->ops != &k_ops) return px_errf(err, errlen, PX_EINVAL, "not a zimage CUDA engine");
    zcuda_engine *e = (zcuda_engine *)pe;
    size_t n = (size_t)zi_model_vae_config(e->model)->latent_channels * lat_h * lat_w;
    px_cuda_ctx *ctx = px_cuda_pool_take(e->pool);
    float *d = NULL;
    int rc = 0;
    PX_CUDA_CHECK(cudaSetDevice(ctx->dev));
    PX_CUDA_CHECK(cudaMalloc((void **)&d, n * sizeof *d));
    PX_CUDA_CHECK(cudaMemcpyAsync(d, latent, n * sizeof *d, cudaMemcpyHostToDevice,
                                  ctx->stream)); /* the decoder's stream */
    rc = zc_vae_decode(e->vae[ctx->index], d, lat_h, lat_w, rgb, err, errlen);
fail:
    if (d) cudaFree(d);
    px_cuda_pool_give(e->pool, ctx);
    return rc;
}

/* The given text features into the text buffers (as the encoder leaves
 * them: items of lmax rows). */
static int put_text(zc_dev *d, const float *const *text, const int *len, int n, int *lmax,
                    char *err, size_t errlen)
{
    int rc = 0, H = d->qc.hidden;
    *lmax = 0;
    for (int i = 0; i < n; i++)
        if (len[i] > *lmax) *lmax = len[i];
    if ((rc = zc_text_bufs_reserve(d, (size_t)n * *lmax, *lmax, err, errlen))) return rc;
    /* On the stream the DiT runs on (the legacy stream of a plain cudaMemset
     * or cudaMemcpy is not ordered with it); text[] is staged on return. */
    cudaStream_t s = d->ctx->stream;
    PX_CUDA_CHECK(cudaMemsetAsync(d->tb.x, 0, (size_t)n * *lmax * H * sizeof(float), s));
    for (int i = 0; i < n; i++)
        PX_CUDA_CHECK(cudaMemcpyAsync(d->tb.x + (size_t)i * *lmax * H, text[i],
                                      (size_t)len[i] * H * sizeof(float), cudaMemcpyHostToDevice,
                                      s));
fail:
    return rc;
}

int zi_cuda_dit_forward(px_engine *pe, const float *const *lat, const float *const *text,
                        const int *text_len, const zi_lora_use *const *loras, const int *nloras,
                        int n, int lat_h, int lat_w, float sigma, float *const *out, char *err,
                        size_t errlen)
{
    if (!pe || pe->ops != &k_ops) return px_errf(err, errlen, PX_EINVAL, "not a zimage CUDA engine");
    if (n < 1 || n > ZC_MAX_ITEMS) return px_errf(err, errlen, PX_EINVAL, "%d items", n);
    zcuda_engine *e = (zcuda_engine *)pe;
    const zi_dit_config *c = zi_model_dit_config(e->model);
    size_t per = (size_t)c->in_channels * lat_h * lat_w;
    float *hl = px_alloc_array((size_t)n * per, sizeof *hl), *dpred = NULL;
    if (!hl) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    zc_batch b;
    memset(&b, 0, sizeof b);
    b.n_items = b.n_images = n;
    int T = 0;
    for (int i = 0; i < n; i++) {
        memcpy(hl + i * per, lat[i], per * sizeof *hl);
        b.text_len[i] = text_len[i], b.lat_of[i] = i, b.pos_of[i] = i, b.neg_of[i] = -1;
        if (loras) b.loras[i] = loras[i], b.nloras[i] = nloras[i];
        if (zc_text_bucket(text_len[i]) > T) T = zc_text_bucket(text_len[i]);
    }
    px_cuda_ctx *ctx = px_cuda_pool_take(e->pool);
    zc_dev *d = ctx->user;
    zc_plan *p = NULL;
    int rc = 0;
    zc_plan_key key = {n, n, lat_h / c->patch, lat_w / c->patch, T};
    float sig[ZC_MAX_ITEMS], nxt[ZC_MAX_ITEMS] = {0};
    for (int i = 0; i < n; i++) sig[i] = sigma;
    PX_CUDA_CHECK(cudaSetDevice(ctx->dev));
    PX_CUDA_CHECK(cudaMalloc((void **)&dpred, (size_t)n * per * sizeof(float)));
    if ((rc = put_text(d, text, text_len, n, &b.lmax, err, errlen)) ||
        (rc = zc_plan_get(d, &key, &p, err, errlen)) ||
        (rc = zc_plan_begin(d, p, &b, hl, err, errlen)) ||
        (rc = zc_plan_step(d, p, sig, nxt, 1, dpred, err, errlen)))
        goto fail;
    PX_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    for (int i = 0; i < n; i++)
        PX_CUDA_CHECK(cudaMemcpy(out[i], dpred + i * per, per * sizeof(float),
                                 cudaMemcpyDeviceToHost));
fail:
    if (p) zc_plan_end(d, p);
    if (dpred) cudaFree(dpred);
    px_cuda_pool_give(e->pool, ctx);
    free(hl);
    return rc;
}

/* ---------------------------------------------------------------- LoRAs */

void zi_cuda_lora_forget(const zi_lora *l)
{
    if (!l) return;
    pthread_mutex_lock(&g_engines_mu);
    for (zcuda_engine *e = g_engines; e; e = e->next_open)
        for (int i = 0; i < e->ndev; i++)
            if (e->dev[i]) zc_lora_dev_evict(e->dev[i]->lora, l);
    pthread_mutex_unlock(&g_engines_mu);
}

static void engines_add(zcuda_engine *e, bool add)
{
    pthread_mutex_lock(&g_engines_mu);
    zcuda_engine **at = &g_engines;
    while (*at && *at != e) at = &(*at)->next_open;
    if (!add && *at) *at = e->next_open;
    if (add && !*at) e->next_open = g_engines, g_engines = e;
    pthread_mutex_unlock(&g_engines_mu);
}

static int zcuda_lora_open(px_engine *pe, const char *path, px_engine_lora **out, char *err,
                           size_t errlen)
{
    const zcuda_engine *e = (const zcuda_engine *)pe;
    return zi_engine_lora_open(zi_model_dit_config(e->model), path, out, err, errlen);
}

/* The GPUs' copies go first: a later LoRA may be allocated at this one's
 * address. */
/* ------------------------------------------------------------- engine */

static void zcuda_destroy(px_engine *pe)
{
    zcuda_engine *e = (zcuda_engine *)pe;
    engines_add(e, false);
    for (int i = 0; i < e->ndev; i++) {
        zc_vae_free(e->vae[i]);
        zc_dev_free(e->dev[i]);
        zi_ctx_destroy(e->vae_ctx[i]);
        px_cuda_blaslt_release(px_cuda_pool_ctx(e->pool, i));
    }
    px_cuda_pool_destroy(e->pool);
    zi_model_close(e->model);
    free(e);
}

/*
 * Device memory of a batch of n images of w x h: the DiT plan (n items:
 * guidance, which doubles them, is not in the shape and is not counted),
 * with the largest text bucket (512 rows), and the text encoder's buffers
 * for n prompts of 512 tokens, and the VAE's plan (one image at a time).
 * Weights are already resident: not counted.
 */
static size_t zcuda_mem(const px_engine *pe, int n, const px_engine_shape *s)
{
    const zcuda_engine *e = (const zcuda_engine *)pe;
    const zi_dit_config *c = zi_model_dit_config(e->model);
    const zi_qwen3_config *q = zi_model_text_config(e->model);
    int mult = zi_model_size_multiple(e->model);
    int items = s->guided ? 2 * n : n; /* CFG: a negative item per image */
    if (items > ZC_MAX_ITEMS) items = ZC_MAX_ITEMS, n = s->guided ? items / 2 : items;
    zc_plan_key k = {items, n, s->h / mult, s->w / mult, 512};
    size_t rows = (size_t)items * 512, hd = (size_t)q->head_dim;
    size_t text = rows * ((size_t)q->hidden * 6 + (q->n_heads + 2 * (size_t)q->n_kv_heads) * hd * 2 +
                          (size_t)q->n_heads * hd * 2 + (size_t)q->intermediate * 4);
    const zi_vae_config *v = zi_model_vae_config(e->model);
    int f = mult / c->patch;
    size_t fp8 = e->dev[0] && e->dev[0]->fp8 ? zc_plan_fp8_bytes(c, &k) : 0;
    return zc_plan_bytes(c, &k) + fp8 + text + zc_vae_bytes(v, s->h / f, s->w / f) +
           ((size_t)256 << 20);
}

static size_t zcuda_free_memory(const px_engine *pe)
{
    return px_cuda_pool_min_free(((const zcuda_engine *)pe)->pool);
}

/* px_engine_release_caches: every GPU's cached DiT plans freed (gigabytes
 * each at 1024² batch 8), the GPU taken from the pool first so that no
 * batch is using them; the shapes rebuild theirs on next use. */
static void zcuda_release_caches(px_engine *pe)
{
    zcuda_engine *e = (zcuda_engine *)pe;
    for (int g = 0; g < e->ndev; g++) {
        px_cuda_ctx *c = px_cuda_pool_take_at(e->pool, g);
        if (cudaSetDevice(c->dev) == cudaSuccess) px_cuda_plans_clear(e->dev[g]->plans);
        (void)cudaGetLastError();
        px_cuda_pool_give(e->pool, c);
    }
}

static size_t zcuda_cached_bytes(const px_engine *pe)
{
    const zcuda_engine *e = (const zcuda_engine *)pe;
    size_t most = 0;
    for (int g = 0; g < e->ndev; g++) {
        size_t b = px_cuda_plans_bytes(e->dev[g]->plans);
        if (b > most) most = b;
    }
    return most;
}

static int zcuda_parallelism(const px_engine *pe)
{
    return ((const zcuda_engine *)pe)->ndev;
}

static size_t zcuda_weight_bytes(const void *arg, int i)
{
    const zcuda_engine *e = arg;
    return e->dev[i]->weight_bytes + zc_vae_weight_bytes(e->vae[i]);
}

static int zcuda_describe(const px_engine *pe, px_buf *out)
{
    const zcuda_engine *e = (const zcuda_engine *)pe;
    int rc = px_buf_puts(out, "\"model\":");
    if (!rc) rc = px_json_str(out, e->path);
    if (!rc)
        rc = px_buf_printf(out,
                           ",\"device\":\"cuda\",\"precision\":\"%s\",\"vae\":\"%s%s\","
                           "\"cuda_graphs\":true,\"continuous_batching\":true,\"cublaslt\":%d",
                           e->dev[0]->fp8 ? "fp8" : "bf16", e->cpu_vae ? "cpu" : "cuda-",
                           e->cpu_vae ? "" : zc_vae_precision(e->vae[0]),
                           px_cuda_blaslt_version());
    if (!rc)
        rc = px_buf_printf(out, ",\"attention\":\"%s\",\"residual_stream\":\"%s\"",
                           zc_attn_name(), e->dev[0]->xbf ? "bf16" : "fp32");
    if (!rc && e->dev[0]->fp8) {
        char st[900];
        rc = px_buf_puts(out, ",\"fp8_attention\":");
        if (!rc) rc = px_json_str(out, zc_attn8_state(e->dev[0], st, sizeof st));
        if (!rc)
            rc = px_buf_printf(out, ",\"fp8_accumulation\":\"%s\"",
                               zc_gemm_fp8_fast_accum() ? "fast" : "fp32");
    }
    if (!rc) rc = px_buf_puts(out, ",\"devices\":");
    if (!rc) rc = px_cuda_pool_describe(e->pool, e->ndev, zcuda_weight_bytes, e, out);
    /* DiT plans built so far per GPU (warm-up's effect shows: requests of
     * warmed shapes build none); a counter safe to read while batches run. */
    for (int i = 0; !rc && i < e->ndev; i++)
        rc = px_buf_printf(out, "%s%ld%s", i ? "," : ",\"dit_plans_built\":[",
                           px_cuda_plans_builds(e->dev[i]->plans), i == e->ndev - 1 ? "]" : "");
    for (int i = 0; !rc && i < e->ndev; i++) {
        zi_lora_cache_stats st;
        zc_lora_dev_stats(e->dev[i]->lora, &st);
        rc = px_buf_printf(out,
                           "%s{\"bytes\":%zu,\"cap\":%zu,\"entries\":%d,\"pinned\":%d,"
                           "\"hits\":%llu,\"misses\":%llu,\"drops\":%llu}%s",
                           i ? "," : ",\"lora_cache\":[", st.bytes, st.cap, st.entries, st.pinned,
                           (unsigned long long)st.hits, (unsigned long long)st.misses,
                           (unsigned long long)st.drops, i == e->ndev - 1 ? "]" : "");
    }
    return rc;
}

static int zcuda_create_unused(const px_engine_config *cfg, px_engine **out, char *err,
                               size_t errlen)
{
    return zi_cuda_engine_create(cfg, out, err, errlen);
}

static const px_engine_ops k_ops = {
    .name = "zimage",
    .description = "Z-Image-Turbo text to image on NVIDIA GPUs (bf16 or fp8 cuBLASLt GEMMs, "
                   "cuDNN's fused attention, CUDA graphs, continuous batching, cuDNN VAE)",
    .caps = PX_ENGINE_CAP_BATCH | PX_ENGINE_CAP_ANY_SIZE | PX_ENGINE_CAP_DETERMINISTIC |
            PX_ENGINE_CAP_GPU | PX_ENGINE_CAP_WEIGHTS | PX_ENGINE_CAP_DEVICES | PX_ENGINE_CAP_JOIN,
    .kind = PX_ENGINE_GENERATE,
    .create = zcuda_create_unused,
    .destroy = zcuda_destroy,
    .mem_estimate = zcuda_mem,
    .free_memory = zcuda_free_memory,
    .release_caches = zcuda_release_caches,
    .cached_bytes = zcuda_cached_bytes,
    .parallelism = zcuda_parallelism,
    .run = zcuda_run,
    .run_feed = zcuda_run_feed,
    .warmup = zcuda_warmup,
    .describe_config = zcuda_describe,
    .lora_open = zcuda_lora_open,
    .lora_close = zi_engine_lora_close, /* evicts from the GPUs too */
    .lora_describe = zi_engine_lora_describe,
};

/* The model's weights onto every device: the DiT's and the text
 * encoder's from the model's stores (the DiT blocks' big linears in e4m3
 * with fp8), the VAE's from its directory again (in fp32: the CPU VAE
 * keeps no store). */
static int setup_devices(zcuda_engine *e, const int *devs, int ndev, int fp8, char *err,
                         size_t errlen)
{
    zi_weights *vw = NULL;
    char vpath[1100];
    snprintf(vpath, sizeof vpath, "%s/vae", e->path);
    int rc = px_cuda_pool_create(devs, ndev, PX_CUDA_CTX_CUDNN, &e->pool, err, errlen);
    if (rc) return rc;
    e->ndev = ndev;
    const zi_weights *dw = zi_model_weights(e->model, ZI_PART_DIT);
    const zi_weights *tw = zi_model_weights(e->model, ZI_PART_TEXT);
    if ((rc = zi_weights_open(vpath, ZI_PART_VAE, NULL, &vw, err, errlen))) return rc;
    for (int i = 0; i < ndev; i++) {
        px_cuda_ctx *ctx = px_cuda_pool_ctx(e->pool, i);
        if ((rc = px_cuda_blaslt_acquire(ctx, err, errlen)) ||
            (rc = zc_dev_create(ctx, dw, zi_model_dit_config(e->model), tw,
                                zi_model_text_config(e->model), fp8, &e->dev[i], err, errlen)) ||
            (rc = zc_vae_create(ctx, e->dev[i]->gemm, vw, zi_model_vae_config(e->model),
                                &e->vae[i], err, errlen)) ||
            (rc = zi_ctx_create(NULL, &e->vae_ctx[i], err, errlen)))
            break;
        e->dev[i]->lora = zc_lora_dev_create(ctx, zi_model_dit_config(e->model), e->lora_cap);
        ctx->user = e->dev[i];
        /* The weights went up with plain cudaMemcpy (legacy stream, not
         * ordered with ctx->stream): landed before the first request. */
        if ((rc = (int)cudaSetDevice(ctx->dev)) || (rc = (int)cudaDeviceSynchronize()))
            rc = px_errf(err, errlen, PX_EIO, "zimage-cuda: device %d: %s", ctx->dev,
                         cudaGetErrorString((cudaError_t)rc));
        if (rc) break;
    }
    zi_weights_close(vw);
    return rc;
}

int zi_cuda_engine_create(const px_engine_config *cfg, px_engine **out, char *err, size_t errlen)
{
    *out = NULL;
    int devs[PX_CUDA_MAX_DEVICES], ndev = 0;
    int rc = px_cuda_devices(cfg->device ? cfg->device : "cuda", devs, &ndev, "zimage-cuda", err,
                             errlen);
    if (rc) return rc;
    /* bf16 is the default until fp8 passes its gate on a GPU
     * (docs/benchmarks/zimage-cuda.md, "FP8"). */
    int fp8 = cfg->precision && !strcmp(cfg->precision, "fp8");
    if (cfg->precision && !fp8 && strcmp(cfg->precision, "bf16") != 0)
        return px_errf(err, errlen, PX_EUNSUP,
                       "zimage-cuda: precision \"%s\": bf16 (the default) or fp8 (e4m3 DiT "
                       "linears)",
                       cfg->precision);
    if (!cfg->weights || !cfg->weights[0])
        return px_errf(err, errlen, PX_EINVAL,
                       "zimage needs its model: --engine zimage:model=DIR,device=cuda");
    zcuda_engine *e = px_xcalloc(1, sizeof *e);
    e->base.ops = &k_ops;
    snprintf(e->path, sizeof e->path, "%s", cfg->weights);
    const char *cv = getenv("PX_ZIMAGE_CUDA_CPU_VAE"), *lm = getenv("PX_ZIMAGE_CUDA_LORA_MB");
    e->cpu_vae = cv && !strcmp(cv, "1");
    long mb = lm ? strtol(lm, NULL, 10) : ZC_LORA_CACHE_DEFAULT_MB;
    e->lora_cap = (size_t)(mb > 0 ? mb : ZC_LORA_CACHE_DEFAULT_MB) << 20;
    zi_model_paths paths = {.dir = cfg->weights};
    zi_model_opts opts = {.keep_bf16 = 1, .pool = cfg->pool};
    if ((rc = zi_model_open(&paths, &opts, &e->model, err, errlen)) ||
        (rc = setup_devices(e, devs, ndev, fp8, err, errlen))) {
        zcuda_destroy(&e->base);
        return rc;
    }
    engines_add(e, true);
    PX_INFO("zimage-cuda: %d device(s), %s (%d of %d DiT block linears in fp8), weights %.1f GB "
            "per device",
            e->ndev, fp8 ? "fp8" : "bf16", e->dev[0]->nlin_fp8, 4 * e->dev[0]->nblocks,
            (double)e->dev[0]->weight_bytes / 1e9);
    *out = &e->base;
    return 0;
}
