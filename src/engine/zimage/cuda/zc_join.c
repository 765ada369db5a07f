/*
 * zc_join.c — continuous batching of the Z-Image DiT on one GPU (see
 * zc_join.h): the running set of images, admitting joiners between steps,
 * rebinding the batch to a plan when its members change, and handing
 * each image back as soon as its own steps are done.
 *
 * Written without a GPU at hand (2026-12-05); zimage_cuda_test's
 * t_joined_item_equals_solo checks it on the next device run.
 */
#include "engine/zimage/cuda/zc_join.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/env.h"
#include "core/err.h"
#include "core/pool.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_device.h"
#include "engine/zimage/sampler.h"
#include "engine/zimage/tokenizer.h"
#include "engine/zimage/zimage_lora_engine.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

int zc_text_bucket(int len)
{
    int lp = (len + 31) / 32 * 32, b = 32;
    while (b < lp) b *= 2;
    return b;
}

int zc_item_prepare(const zi_model *m, px_engine_item *it, int32_t *ids[2], int len[2],
                    zi_lora_use *uses, int *nl, float *lat, size_t per, char *err,
                    size_t errlen)
{
    px_engine_gen *g = &it->gen;
    int n = g->cfg_scale > 0 ? 2 : 1, rc;
    ids[0] = ids[1] = NULL;
    if ((*nl = zi_engine_lora_uses(g, uses, err, errlen)) < 0) return *nl;
    for (int h = 0; h < n; h++) {
        const char *pr = h ? (g->negative_prompt ? g->negative_prompt : "") : g->prompt;
        size_t nid = 0;
        bool trunc = false;
        if (!(ids[h] = px_alloc_array(ZI_TOK_MAX_PROMPT, sizeof *ids[h])))
            return px_errf(err, errlen, PX_ENOMEM, "out of memory");
        if ((rc = zi_model_tokenize(m, pr, ids[h], ZI_TOK_MAX_PROMPT, &nid, &trunc, err, errlen)))
            return rc;
        if (!h) g->prompt_tokens = (int)nid, g->prompt_truncated = trunc;
        len[h] = (int)nid;
    }
    if (g->latents) {
        memcpy(lat, g->latents, per * sizeof *lat);
    } else {
        int64_t seed = zi_sampler_resolve_seed((int64_t)(it->seed & ((UINT64_C(1) << 62) - 1)));
        /* over the host's threads: ~4-5 ms a 1024² image on one, before its first step */
        zi_sampler_noise(px_pool_default(), (uint64_t)seed, lat, per);
    }
    return n;
}

/* ------------------------------------------------------------ the set */

/* One image of the running batch. */
typedef struct jimg {
    px_engine_item *it;
    int nitems;     /* its DiT items: 1, or 2 when guided */
    int len[2];     /* their prompts' tokens */
    float *feat[2]; /* device: their encoder features, len x hidden */
    zi_lora_use uses[PX_ENGINE_MAX_LORAS];
    int nl;
    float *lat;     /* device C x H x W: its latents while the batch is rebound */
    float *sigmas;  /* host: its schedule, steps + 1 */
    int step;       /* steps done */
    int slot;       /* its image index in the bound plan; -1: not bound yet */
    int64_t t_denoise; /* when its first step began */
} jimg;

typedef struct jrun {
    const zc_join_env *env;
    const px_engine_feed *feed;
    jimg img[ZC_MAX_ITEMS];
    int n, nitems; /* images, DiT items */
    int lat_h, lat_w;
    size_t per;    /* latent floats per image */
    zc_plan *p;    /* the bound plan; NULL: none */
    int dirty;     /* members changed since it was bound */
} jrun;

static void img_free(jimg *m)
{
    for (int h = 0; h < 2; h++)
        if (m->feat[h]) cudaFree(m->feat[h]);
    if (m->lat) cudaFree(m->lat);
    free(m->sigmas);
    memset(m, 0, sizeof *m);
}

/* Ends image k: its status and err set; done is told and the image leaves
 * the set (the last one takes its place: slots keep the plan's order). */
static void img_end(jrun *r, int k)
{
    px_engine_item *it = r->img[k].it;
    r->nitems -= r->img[k].nitems;
    img_free(&r->img[k]);
    if (k != r->n - 1) r->img[k] = r->img[r->n - 1];
    memset(&r->img[r->n - 1], 0, sizeof r->img[0]);
    r->n--;
    r->dirty = 1;
    r->feed->done(r->feed->ctx, it);
}

static void img_fail(jrun *r, int k, int rc, const char *msg)
{
    px_engine_item *it = r->img[k].it;
    if (msg != it->err) px_errf(it->err, sizeof it->err, rc, "%s", msg);
    it->status = rc;
    img_end(r, k);
}

/* Every image ends with the error that stopped the batch. */
static int fail_all(jrun *r, int rc, const char *msg)
{
    while (r->n) img_fail(r, r->n - 1, rc, msg);
    return rc;
}

/* ------------------------------------------------------------ admitting */

/* Image slot k's inputs on the host (ids) and device (latents, schedule). */
static int img_prepare(jrun *r, jimg *m, px_engine_item *it, int32_t *ids[2], char *err,
                       size_t errlen)
{
    const zi_model *md = r->env->model;
    int rc = 0;
    float *hl = px_alloc_array(r->per, sizeof *hl);
    m->it = it, m->slot = -1;
    if (!hl) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    int n = zc_item_prepare(md, it, ids, m->len, m->uses, &m->nl, hl, r->per, err, errlen);
    if (n < 0) {
        rc = n;
        goto fail;
    }
    m->nitems = n;
    if (!(m->sigmas = px_alloc_array((size_t)it->gen.steps + 1, sizeof *m->sigmas))) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = zi_sampler_sigmas(zi_model_sampler_config(md), it->gen.steps, m->sigmas, err,
                                errlen)))
        goto fail;
    PX_CUDA_CHECK(cudaMalloc((void **)&m->lat, r->per * sizeof(float)));
    /* On the engine's stream, which later reads it (the legacy stream a
     * plain cudaMemcpy uses is not ordered with it); hl is staged by then. */
    PX_CUDA_CHECK(cudaMemcpyAsync(m->lat, hl, r->per * sizeof(float), cudaMemcpyHostToDevice,
                                  r->env->d->ctx->stream));
fail:
    free(hl);
    return rc;
}

/* The new images' prompts through the text encoder at once; each DiT
 * item's features copied into its own buffer. */
static int encode_new(jrun *r, int from, int32_t *(*ids)[2], char *err, size_t errlen)
{
    zc_dev *d = r->env->d;
    const int32_t *list[ZC_MAX_ITEMS];
    int len[ZC_MAX_ITEMS], k = 0, lmax = 0, rc = 0;
    size_t H = (size_t)d->qc.hidden;
    for (int i = from; i < r->n; i++)
        for (int h = 0; h < r->img[i].nitems; h++)
            list[k] = ids[i - from][h], len[k++] = r->img[i].len[h];
    if (!k) return 0;
    int64_t t0 = px_now_ns();
    if ((rc = zc_text_encode(d, list, len, k, &lmax, err, errlen))) return rc;
    k = 0;
    for (int i = from; i < r->n; i++)
        for (int h = 0; h < r->img[i].nitems; h++, k++) {
            size_t bytes = (size_t)len[k] * H * sizeof(float);
            PX_CUDA_CHECK(cudaMalloc((void **)&r->img[i].feat[h], bytes));
            PX_CUDA_CHECK(cudaMemcpyAsync(r->img[i].feat[h], d->tb.x + (size_t)k * lmax * H,
                                          bytes, cudaMemcpyDeviceToDevice, d->ctx->stream));
        }
    PX_CUDA_CHECK(cudaStreamSynchronize(d->ctx->stream));
    uint64_t mem = px_cuda_mem_used(d->ctx->dev);
    for (int i = from; i < r->n; i++) {
        px_engine_gen *g = &r->img[i].it->gen;
        g->encode_ns = px_now_ns() - t0;
        g->encode_peak_bytes = mem;
        g->mem_source = PX_GEN_MEM_GPU;
    }
fail:
    return rc;
}

/* Takes items[0..k) into the set; one that cannot be prepared ends at
 * once, an encoder failure ends the newcomers. */
static void admit(jrun *r, px_engine_item **items, int k)
{
    int32_t *ids[ZC_MAX_ITEMS][2];
    int from = r->n;
    for (int i = 0; i < k; i++) {
        px_engine_item *it = items[i];
        int cost = it->gen.cfg_scale > 0 ? 2 : 1;
        if (r->nitems + cost > ZC_MAX_ITEMS) { /* more than the plans hold: later */
            it->status = px_errf(it->err, sizeof it->err, PX_ENOMEM,
                                 "the running batch is full (%d DiT items)", ZC_MAX_ITEMS);
            r->feed->done(r->feed->ctx, it);
            continue;
        }
        jimg *m = &r->img[r->n];
        int32_t **mine = ids[r->n - from];
        mine[0] = mine[1] = NULL;
        if ((it->status = img_prepare(r, m, it, mine, it->err, sizeof it->err))) {
            for (int h = 0; h < 2; h++) free(mine[h]);
            img_free(m);
            r->feed->done(r->feed->ctx, it);
            continue;
        }
        r->n++, r->nitems += m->nitems, r->dirty = 1;
    }
    char err[160];
    int rc = encode_new(r, from, ids, err, sizeof err);
    for (int i = 0; i < r->n - from; i++) free(ids[i][0]), free(ids[i][1]);
    while (rc && r->n > from) img_fail(r, r->n - 1, rc, err);
}

/* ------------------------------------------------------------ rebinding */

/* The bound images' latents out of the plan into their own buffers (in
 * stream order: the next plan's begin copies them in after). */
static int unbind(jrun *r, char *err, size_t errlen)
{
    int rc = 0;
    if (!r->p) return 0;
    const float *pl = zc_plan_latents(r->p);
    for (int i = 0; i < r->n; i++)
        if (r->img[i].slot >= 0)
            PX_CUDA_CHECK(cudaMemcpyAsync(r->img[i].lat, pl + (size_t)r->img[i].slot * r->per,
                                          r->per * sizeof(float), cudaMemcpyDeviceToDevice,
                                          r->env->d->ctx->stream));
    zc_plan_end(r->env->d, r->p);
    r->p = NULL;
fail:
    return rc;
}

/* The members' DiT items as a zc_batch, and the largest text bucket. */
static void describe(const jrun *r, zc_batch *b, int *T)
{
    memset(b, 0, sizeof *b);
    int k = 0;
    *T = 0;
    for (int i = 0; i < r->n; i++) {
        const jimg *m = &r->img[i];
        b->pos_of[i] = k, b->neg_of[i] = -1;
        b->cfg_w[i] = m->nitems > 1 ? m->it->gen.cfg_scale : 0;
        b->lat_dev[i] = m->lat;
        for (int h = 0; h < m->nitems; h++, k++) {
            b->text_len[k] = m->len[h];
            b->lat_of[k] = i;
            b->loras[k] = m->nl ? m->uses : NULL, b->nloras[k] = m->nl;
            if (h) b->neg_of[i] = k;
            if (zc_text_bucket(m->len[h]) > *T) *T = zc_text_bucket(m->len[h]);
            if (m->len[h] > b->lmax) b->lmax = m->len[h];
        }
    }
    b->n_items = k, b->n_images = r->n;
}

/* The kept encoder features into the text buffers, as zc_text_encode
 * leaves them (items of lmax rows), for zc_plan_begin. */
static int gather_text(jrun *r, const zc_batch *b, char *err, size_t errlen)
{
    zc_dev *d = r->env->d;
    size_t H = (size_t)d->qc.hidden;
    int rc = zc_text_bufs_reserve(d, (size_t)b->n_items * b->lmax, b->lmax, err, errlen);
    if (rc) return rc;
    cudaStream_t s = d->ctx->stream;
    PX_CUDA_CHECK(cudaMemsetAsync(d->tb.x, 0, (size_t)b->n_items * b->lmax * H * sizeof(float), s));
    int k = 0;
    for (int i = 0; i < r->n; i++)
        for (int h = 0; h < r->img[i].nitems; h++, k++)
            PX_CUDA_CHECK(cudaMemcpyAsync(d->tb.x + (size_t)k * b->lmax * H, r->img[i].feat[h],
                                          (size_t)r->img[i].len[h] * H * sizeof(float),
                                          cudaMemcpyDeviceToDevice, s));
fail:
    return rc;
}

/* Binds the current members to the plan of their shape. */
static int rebind(jrun *r, char *err, size_t errlen)
{
    zc_dev *d = r->env->d;
    zc_batch b;
    int T, rc;
    if ((rc = unbind(r, err, errlen))) return rc;
    describe(r, &b, &T);
    zc_plan_key key = {b.n_items, b.n_images, r->lat_h / d->dc.patch, r->lat_w / d->dc.patch, T};
    if ((rc = gather_text(r, &b, err, errlen)) || (rc = zc_plan_get(d, &key, &r->p, err, errlen)) ||
        (rc = zc_plan_begin(d, r->p, &b, NULL, err, errlen)))
        return rc;
    for (int i = 0; i < r->n; i++) r->img[i].slot = i;
    r->dirty = 0;
    return 0;
}

/* ------------------------------------------------------------ stepping */

static int step(jrun *r, char *err, size_t errlen)
{
    float sig[ZC_MAX_ITEMS], nxt[ZC_MAX_ITEMS];
    int rc = 0;
    int64_t t0 = px_now_ns();
    for (int i = 0; i < r->n; i++) {
        jimg *m = &r->img[i];
        sig[i] = m->sigmas[m->step], nxt[i] = m->sigmas[m->step + 1];
        if (!m->step) m->t_denoise = t0;
    }
    /* LoRA'd batches run direct (zc_plan_step says why). */
    int direct = px_env_is("PX_ZIMAGE_CUDA_GRAPHS", "0");
    if ((rc = zc_plan_step(r->env->d, r->p, sig, nxt, direct, NULL, err, errlen))) return rc;
    PX_CUDA_CHECK(cudaStreamSynchronize(r->env->d->ctx->stream));
    float ms = (float)px_ns_to_ms(px_now_ns() - t0);
    for (int i = 0; i < r->n; i++) {
        jimg *m = &r->img[i];
        px_engine_gen *g = &m->it->gen;
        if (m->step < PX_ENGINE_GEN_MAX_STEPS) g->step_ms[m->step] = ms, g->nstep_ms = m->step + 1;
        m->step++;
        px_engine_progress(m->it, m->step, g->steps);
    }
fail:
    return rc;
}

/* Image k's final latents (slot in the bound plan) through the VAE into
 * its output. */
static int decode(jrun *r, int k, char *err, size_t errlen)
{
    const zc_join_env *env = r->env;
    jimg *m = &r->img[k];
    px_engine_item *it = m->it;
    const float *dl = zc_plan_latents(r->p) + (size_t)m->slot * r->per;
    int64_t t0 = px_now_ns();
    int rc = 0;
    it->gen.denoise_ns = t0 - m->t_denoise;
    it->gen.denoise_peak_bytes = px_cuda_mem_used(r->env->d->ctx->dev);
    if (env->vae) {
        rc = zc_vae_decode(env->vae, dl, r->lat_h, r->lat_w, it->out->px, err, errlen);
    } else {
        px_image img = {0};
        float *hl = px_alloc_array(r->per, sizeof *hl);
        if (!hl) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
        PX_CUDA_CHECK(cudaMemcpy(hl, dl, r->per * sizeof(float), cudaMemcpyDeviceToHost));
        rc = zi_model_vae_decode(env->model, env->vae_ctx, hl, r->lat_h, r->lat_w, &img, err,
                                 errlen);
        if (!rc) memcpy(it->out->px, img.px, (size_t)it->gen.width * it->gen.height * 3);
        px_image_free(&img);
    fail:
        free(hl);
    }
    it->gen.decode_ns = px_now_ns() - t0;
    it->gen.decode_peak_bytes = px_cuda_mem_used(r->env->d->ctx->dev);
    return rc;
}

/* Images whose steps are done are decoded and handed back, cancelled ones
 * too (before the next step: a cancel costs at most one step). The plan
 * stays bound: the survivors' latents are still in it. */
static void hand_back(jrun *r, int after_step)
{
    for (int k = r->n - 1; k >= 0; k--) {
        jimg *m = &r->img[k];
        px_engine_item *it = m->it;
        if (it->cancel && atomic_load(it->cancel)) {
            img_fail(r, k, PX_ECANCELED, "cancelled");
        } else if (after_step && m->step >= it->gen.steps) {
            int rc = decode(r, k, it->err, sizeof it->err);
            if (!rc) it->status = 0, img_end(r, k);
            else img_fail(r, k, rc, it->err);
        }
    }
}

/* Asks the queue for joiners while DiT items are free. Guided images
 * take two, so the room is counted in the costlier unit when any is. */
static void take_joiners(jrun *r)
{
    int cost = 1;
    for (int i = 0; i < r->n; i++)
        if (r->img[i].nitems > cost) cost = r->img[i].nitems;
    int room = (ZC_MAX_ITEMS - r->nitems) / cost;
    px_engine_item *got[ZC_MAX_ITEMS];
    int k = room > 0 ? r->feed->join(r->feed->ctx, got, room) : 0;
    if (k > 0) admit(r, got, k);
}

int zc_join_run(const zc_join_env *env, px_engine_item **items, int n,
                const px_engine_feed *feed)
{
    jrun *r = px_xcalloc(1, sizeof *r);
    const zi_dit_config *c = zi_model_dit_config(env->model);
    int f = zi_model_size_multiple(env->model) / c->patch, rc = 0;
    char err[160];
    r->env = env, r->feed = feed;
    r->lat_h = items[0]->gen.height / f, r->lat_w = items[0]->gen.width / f;
    r->per = (size_t)c->in_channels * r->lat_h * r->lat_w;
    admit(r, items, n);
    for (;;) {
        take_joiners(r);
        hand_back(r, 0);
        if (!r->n) break;
        if (r->dirty && (rc = rebind(r, err, sizeof err))) break;
        if ((rc = step(r, err, sizeof err))) break;
        hand_back(r, 1);
    }
    if (rc) fail_all(r, rc, err);
    if (r->p) zc_plan_end(env->d, r->p);
    free(r);
    return rc;
}
