/*
 * lama.c — the "lama" engine's vtable: weights loading, a cache of plans per
 * input shape shared by concurrent callers, the quantisation and compose of
 * the result, the memory estimate and the self-description. The network is
 * graph.c; pre-processing (masking, symmetric padding) happens there.
 *
 * Concurrency: the network (weights) is read-only and shared. A plan holds
 * the activation memory of one shape and is used by one run at a time: run()
 * takes an idle plan of its shape from the cache or builds a new one, and
 * gives it back afterwards; the cache keeps at most PX_LAMA_MAX_PLANS idle
 * plans and PX_LAMA_IDLE_PLAN_BYTES of them, dropping the least recently
 * used. Two workers on the same shape therefore run in parallel on two
 * plans, and the lock is held only to take or return one.
 */
#include "engine/lama/lama.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "engine/engine_impl.h"
#include "engine/lama/graph.h"
#include "engine/lama/lama_cuda.h"

#include <dnnl.h>
#include <fftw3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    px_lama_plan *plan;
    bool busy;
    uint64_t used; /* tick of the last return */
} slot;

typedef struct {
    px_engine base; /* first: the registry sees a px_engine */
    px_pool *pool;
    px_lama_net *net;
    char *weights;
    pthread_mutex_t mu;
    slot slots[PX_LAMA_MAX_PLANS];
    uint64_t tick;
} lama;

static const char *const g_methods[] = {"default", NULL};

static px_lama_plan *acquire(lama *e, int H, int W, char *err, size_t errlen, int *rc)
{
    pthread_mutex_lock(&e->mu);
    for (int i = 0; i < PX_LAMA_MAX_PLANS; i++) {
        slot *s = &e->slots[i];
        if (s->plan && !s->busy && px_lama_plan_h(s->plan) == H && px_lama_plan_w(s->plan) == W) {
            s->busy = true;
            pthread_mutex_unlock(&e->mu);
            *rc = 0;
            return s->plan;
        }
    }
    pthread_mutex_unlock(&e->mu);
    /* Built outside the lock: planning takes milliseconds and other shapes
     * need not wait for it. */
    px_lama_plan *p = NULL;
    *rc = px_lama_plan_create(e->net, H, W, px_pool_threads(e->pool), &p, err, errlen);
    return p;
}

static void release(lama *e, px_lama_plan *p)
{
    px_lama_plan *drop[PX_LAMA_MAX_PLANS + 1];
    int ndrop = 0;
    pthread_mutex_lock(&e->mu);
    slot *mine = NULL;
    for (int i = 0; i < PX_LAMA_MAX_PLANS && !mine; i++)
        if (e->slots[i].plan == p) mine = &e->slots[i];
    if (!mine)
        for (int i = 0; i < PX_LAMA_MAX_PLANS && !mine; i++)
            if (!e->slots[i].plan) mine = &e->slots[i];
    if (!mine) { /* full: replace the least recently used idle plan */
        for (int i = 0; i < PX_LAMA_MAX_PLANS; i++) {
            slot *s = &e->slots[i];
            if (!s->busy && (!mine || s->used < mine->used)) mine = s;
        }
        if (mine) drop[ndrop++] = mine->plan;
    }
    if (!mine) {
        drop[ndrop++] = p; /* every slot busy: do not keep it */
    } else {
        mine->plan = p;
        mine->busy = false;
        mine->used = ++e->tick;
        /* Keep the idle plans under the byte budget, oldest out first (the
         * one just returned last of all). */
        for (;;) {
            size_t idle = 0;
            slot *old = NULL;
            for (int i = 0; i < PX_LAMA_MAX_PLANS; i++) {
                slot *s = &e->slots[i];
                if (!s->plan || s->busy) continue;
                idle += px_lama_plan_bytes(s->plan);
                if (!old || s->used < old->used) old = s;
            }
            if (idle <= PX_LAMA_IDLE_PLAN_BYTES || !old) break;
            drop[ndrop++] = old->plan;
            old->plan = NULL;
            if (old == mine) break;
        }
    }
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < ndrop; i++) px_lama_plan_destroy(drop[i]);
}

static int run_one(lama *e, px_engine_item *it)
{
    char *err = it->err;
    size_t errlen = sizeof it->err;
    if (it->cancel && atomic_load(it->cancel))
        return px_errf(err, errlen, PX_ECANCELED, "lama: cancelled before start");
    const px_lama_arch *a = px_lama_net_arch(e->net);
    const px_image *img = it->image, *mask = it->mask;
    int H = px_lama_padded_side(a, img->h), W = px_lama_padded_side(a, img->w);
    int rc;
    px_lama_plan *p = acquire(e, H, W, err, errlen, &rc);
    if (!p) return rc;
    rc = px_lama_plan_run(p, e->pool, img, mask, NULL, it->cancel, NULL, NULL, err, errlen);
    if (!rc) {
        /* The original predictors' quantisation: clip(pred * 255, 0, 255)
         * then astype(uint8), which truncates. In the hole the composed
         * result is exactly pred (mask = 1); elsewhere it is the input. */
        const float *pred = px_lama_plan_pred(p);
        for (int y = 0; y < img->h; y++) {
            const float *pr = pred + (size_t)y * W * 3;
            const uint8_t *mr = mask->px + (size_t)y * img->w;
            uint8_t *o = it->out->px + (size_t)y * img->w * 3;
            const uint8_t *in = img->px + (size_t)y * img->w * 3;
            for (int x = 0; x < img->w * 3; x++) {
                float v = pr[x] * 255.0f;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                o[x] = mr[x / 3] ? (uint8_t)v : in[x];
            }
        }
        px_image_compose(img, it->out, mask, it->out);
    }
    release(e, p);
    return rc;
}

static int lama_run(px_engine *pe, px_engine_item *items, int n)
{
    lama *e = (lama *)pe;
    int first = 0;
    /* One item at a time: each already uses every core. */
    for (int i = 0; i < n; i++) {
        items[i].err[0] = 0;
        items[i].status = run_one(e, &items[i]);
        if (items[i].status && !first) first = items[i].status;
    }
    return first;
}

static void lama_destroy(px_engine *pe)
{
    lama *e = (lama *)pe;
    for (int i = 0; i < PX_LAMA_MAX_PLANS; i++) px_lama_plan_destroy(e->slots[i].plan);
    px_lama_net_free(e->net);
    pthread_mutex_destroy(&e->mu);
    free(e->weights);
    free(e);
}

static int lama_create(const px_engine_config *cfg, px_engine **out, char *err, size_t errlen)
{
    if (cfg->device && strncmp(cfg->device, "cuda", 4) == 0)
        return px_lama_cuda_create(cfg, out, err, errlen);
    if (cfg->device && strcmp(cfg->device, "cpu") != 0)
        return px_errf(err, errlen, PX_EUNSUP,
                       "lama engine runs on \"cpu\" or \"cuda[:N]\", not \"%s\"", cfg->device);
    if (cfg->precision && strcmp(cfg->precision, "fp32") != 0)
        return px_errf(err, errlen, PX_EUNSUP, "lama on the CPU computes in fp32 only, not %s",
                       cfg->precision);
    if (!cfg->weights || !cfg->weights[0])
        return px_errf(err, errlen, PX_EINVAL,
                       "lama engine needs --weights FILE.safetensors (convert big-lama with "
                       "tools/lama_convert.py)");
    lama *e = px_xcalloc(1, sizeof *e);
    int rc = px_lama_net_load(cfg->weights, &e->net, err, errlen);
    if (rc) {
        free(e);
        return rc;
    }
    e->base.ops = &px_engine_lama_ops;
    e->pool = cfg->pool ? cfg->pool : px_pool_default();
    e->weights = px_xstrdup(cfg->weights);
    pthread_mutex_init(&e->mu, NULL);
    *out = &e->base;
    return 0;
}

static size_t lama_mem_estimate(const px_engine *pe, int n, const px_engine_shape *s)
{
    int w = s->w, h = s->h;
    const lama *e = (const lama *)pe;
    (void)n; /* items run one after another on one plan, so the peak is one item's */
    const px_lama_arch *a = px_lama_net_arch(e->net);
    size_t arena = px_lama_plan_arena_bytes(a, px_lama_padded_side(a, h), px_lama_padded_side(a, w));
    if (!arena) return SIZE_MAX;
    return arena + PX_LAMA_SCRATCH_ESTIMATE;
}

static int lama_describe_config(const px_engine *pe, px_buf *out)
{
    const lama *e = (const lama *)pe;
    const px_lama_arch *a = px_lama_net_arch(e->net);
    const dnnl_version_t *v = dnnl_version();
    int rc = px_lama_arch_describe(out, e->weights, a);
    if (!rc)
        rc = px_buf_printf(out,
                           ",\"trunk_channels\":%d,"
                           "\"local_channels\":%d,\"global_channels\":%d,\"parameters\":%zu,"
                           "\"weight_bytes\":%zu,\"pad_multiple\":%d,\"min_padded_side\":%d,"
                           "\"device\":\"cpu\",\"precision\":\"fp32\","
                           "\"conv_backend\":\"oneDNN %d.%d.%d\",\"fft\":",
                           a->dim, a->cl, a->cg,
                           px_lama_net_params(e->net), px_lama_net_weight_bytes(e->net),
                           1 << a->n_down, 2 << a->n_down, v->major, v->minor, v->patch);
    if (!rc) rc = px_json_str(out, fftwf_version);
    if (!rc) rc = px_buf_printf(out, ",\"threads\":%d,\"max_cached_plans\":%d", px_pool_threads(e->pool),
                                PX_LAMA_MAX_PLANS);
    return rc;
}

const px_engine_ops px_engine_lama_ops = {
    .name = "lama",
    .description = "LaMa (big-lama, Fast Fourier Convolutions) inpainting on the CPU in fp32, "
                   "from weights converted with tools/lama_convert.py.",
    /* Deterministic on a given CPU whatever the thread count (tested):
     * oneDNN computes each output element on one thread, FFTW splits only
     * independent transforms, and the rest is element-wise. */
    .caps = PX_ENGINE_CAP_ANY_SIZE | PX_ENGINE_CAP_DETERMINISTIC | PX_ENGINE_CAP_WEIGHTS |
            PX_ENGINE_CAP_DEVICES,
    .methods = g_methods,
    .create = lama_create,
    .destroy = lama_destroy,
    .mem_estimate = lama_mem_estimate,
    .run = lama_run,
    .describe_config = lama_describe_config,
};
