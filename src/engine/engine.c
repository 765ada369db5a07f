/*
 * engine.c — the engine registry and the checks every engine gets for free:
 * lookup by name, item validation (per kind) before dispatch through the
 * const vtable, method names, the default warm-up, and the JSON
 * self-description used by /api/v1/engines.
 */
#include "engine/engine_impl.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/clock.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/proc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The registry: one const vtable per engine. Add new engines here. */
static const px_engine_ops *const g_engines[] = {
    &px_engine_classic_ops,
    &px_engine_lama_ops,
    &px_engine_zimage_ops,
};
#define N_ENGINES (sizeof g_engines / sizeof g_engines[0])

/* Names mirror g_engines; filled once because a vtable's field is not a
 * constant expression for a static initialiser. */
static const char *g_names[N_ENGINES + 1];
static pthread_once_t g_names_once = PTHREAD_ONCE_INIT;

static void fill_names(void)
{
    for (size_t i = 0; i < N_ENGINES; i++) g_names[i] = g_engines[i]->name;
    g_names[N_ENGINES] = NULL;
}

const char *const *px_engine_names(void)
{
    pthread_once(&g_names_once, fill_names);
    return g_names;
}

/* "a, b, c" of a NULL-terminated list into buf (truncated if it must be). */
static void join_names(const char *const *names, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (size_t i = 0; names[i] && at < len; i++) {
        int k = snprintf(buf + at, len - at, "%s%s", i ? ", " : "", names[i]);
        if (k < 0) break;
        at += (size_t)k;
    }
}

const char *px_engine_kind_name(enum px_engine_kind k)
{
    static const char *names[PX_ENGINE_KIND_COUNT] = {"inpaint", "generate"};
    return (unsigned)k < PX_ENGINE_KIND_COUNT ? names[k] : "unknown";
}

unsigned px_engine_caps_of(const char *name)
{
    for (size_t i = 0; name && i < N_ENGINES; i++)
        if (!strcmp(g_engines[i]->name, name)) return g_engines[i]->caps;
    return 0;
}

int px_engine_open(const char *name, const px_engine_config *cfg, px_engine **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    char known[256];
    join_names(px_engine_names(), known, sizeof known);
    if (!name) return px_errf(err, errlen, PX_ENOTFOUND, "no engine name given (known: %s)", known);
    for (size_t i = 0; i < N_ENGINES; i++) {
        if (strcmp(g_engines[i]->name, name) != 0) continue;
        px_engine_config def = {0};
        int rc = g_engines[i]->create(cfg ? cfg : &def, out, err, errlen);
        if (rc) {
            *out = NULL;
            return rc;
        }
        /* An engine may hand back an instance of another backend's vtable
         * under the same name (lama on CUDA); otherwise it is this one. */
        if (!(*out)->ops) (*out)->ops = g_engines[i];
        const char *dev = cfg && cfg->device && ((*out)->ops->caps & PX_ENGINE_CAP_DEVICES)
                              ? cfg->device
                              : "cpu";
        snprintf((*out)->device, sizeof (*out)->device, "%s", dev);
        return 0;
    }
    return px_errf(err, errlen, PX_ENOTFOUND, "unknown engine \"%s\" (known: %s)", name, known);
}

void px_engine_close(px_engine *e)
{
    if (e) e->ops->destroy(e);
}

const char *px_engine_name(const px_engine *e)
{
    return e->ops->name;
}

unsigned px_engine_caps(const px_engine *e)
{
    return e->ops->caps;
}

enum px_engine_kind px_engine_kind_of(const px_engine *e)
{
    return e->ops->kind;
}

const char *px_engine_device(const px_engine *e)
{
    return e->device[0] ? e->device : "cpu";
}

void px_engine_progress(const px_engine_item *it, int step, int steps)
{
    if (it->progress) it->progress(it->progress_arg, step, steps);
}

int px_engine_check_method(const px_engine *e, const char *method, char *err, size_t errlen)
{
    if (!method) return 0;
    for (const char *const *m = e->ops->methods; m && *m; m++)
        if (strcmp(*m, method) == 0) return 0;
    char known[256];
    join_names(e->ops->methods, known, sizeof known);
    return px_errf(err, errlen, PX_EINVAL, "unknown method \"%s\" for engine %s (accepted: %s)",
                   method, e->ops->name, known);
}

size_t px_engine_mem_estimate(const px_engine *e, int n, px_engine_shape shape)
{
    if (n <= 0 || shape.w <= 0 || shape.h <= 0) return 0;
    return e->ops->mem_estimate(e, n, &shape);
}

size_t px_engine_free_memory(const px_engine *e)
{
    if (e->ops->free_memory) return e->ops->free_memory(e);
    return (size_t)px_proc_mem_available();
}

void px_engine_release_caches(px_engine *e)
{
    if (e->ops->release_caches) e->ops->release_caches(e);
}

size_t px_engine_cached_bytes(const px_engine *e)
{
    return e->ops->cached_bytes ? e->ops->cached_bytes(e) : 0;
}

int px_engine_ready(px_engine *e, int n, px_engine_shape shape)
{
    if (n <= 0 || !e->ops->ready || shape.w <= 0 || shape.h <= 0) return n;
    int m = e->ops->ready(e, n, &shape);
    return m < 0 ? 0 : m > n ? n : m;
}

int px_engine_parallelism(const px_engine *e)
{
    int n = e->ops->parallelism ? e->ops->parallelism(e) : 1;
    return n > 0 ? n : 1;
}

/* Engines index pixels with int arithmetic in places; refuse anything whose
 * pixel count could overflow that long before an image gets this big. */
#define MAX_ITEM_PIXELS ((int64_t)1 << 28)

static bool image_ok(const px_image *im, int c)
{
    return im && im->px && im->c == c && im->w > 0 && im->h > 0;
}

/* Checks the output image of an item: allocated, RGB, w×h. */
static int check_out(px_engine_item *it, int w, int h)
{
    const px_image *o = it->out;
    if (image_ok(o, 3) && o->w == w && o->h == h) return 0;
    if (!o || !o->px)
        return it->status = px_errf(it->err, sizeof it->err, PX_EINVAL, "output image is not allocated");
    return it->status = px_errf(it->err, sizeof it->err, PX_EINVAL,
                                "output must be %dx%d with 3 channels, got %dx%d with %d", w, h,
                                o->w, o->h, o->c);
}

static int validate_generate(px_engine_item *it)
{
    char *err = it->err;
    size_t len = sizeof it->err;
    const px_engine_gen *g = &it->gen;
    if (!g->prompt) return it->status = px_errf(err, len, PX_EINVAL, "prompt is missing");
    if (g->width <= 0 || g->height <= 0 || (int64_t)g->width * g->height > MAX_ITEM_PIXELS)
        return it->status =
                   px_errf(err, len, PX_EINVAL, "size %dx%d is out of range", g->width, g->height);
    if (g->steps < 1)
        return it->status = px_errf(err, len, PX_EINVAL, "steps must be at least 1, got %d", g->steps);
    return check_out(it, g->width, g->height);
}

static int validate_inpaint(px_engine_item *it)
{
    char *err = it->err;
    size_t len = sizeof it->err;
    const px_image *im = it->image, *m = it->mask;
    if (!im || !im->px || im->w <= 0 || im->h <= 0)
        return it->status = px_errf(err, len, PX_EINVAL, "image is missing or empty");
    if (im->c != 3)
        return it->status =
                   px_errf(err, len, PX_EINVAL, "image must have 3 channels (RGB), got %d", im->c);
    if ((int64_t)im->w * im->h > MAX_ITEM_PIXELS)
        return it->status = px_errf(err, len, PX_ETOOBIG, "image %dx%d is too large for an engine",
                                    im->w, im->h);
    if (!m || !m->px)
        return it->status = px_errf(err, len, PX_EINVAL, "mask is missing or empty");
    if (m->c != 1)
        return it->status = px_errf(err, len, PX_EINVAL,
                                    "mask must have 1 channel (binary), got %d", m->c);
    if (m->w != im->w || m->h != im->h)
        return it->status = px_errf(err, len, PX_EINVAL, "mask is %dx%d but image is %dx%d",
                                    m->w, m->h, im->w, im->h);
    return check_out(it, im->w, im->h);
}

/* Checks one item; writes its status/err and returns the status. */
static int validate(const px_engine *e, px_engine_item *it)
{
    it->err[0] = 0;
    it->status = 0;
    int rc = e->ops->kind == PX_ENGINE_GENERATE ? validate_generate(it) : validate_inpaint(it);
    if (rc) return rc;
    return it->status = px_engine_check_method(e, it->method, it->err, sizeof it->err);
}

int px_engine_run(px_engine *e, px_engine_item *items, int n)
{
    if (!e || n < 0 || (n > 0 && !items)) return PX_EINVAL;
    int nvalid = 0;
    for (int i = 0; i < n; i++) nvalid += validate(e, &items[i]) == 0;
    if (nvalid > 0) {
        /* The engine sees one contiguous batch of the valid items; their
         * results are copied back into place. */
        px_engine_item *batch = items;
        if (nvalid < n) {
            batch = px_xmalloc((size_t)nvalid * sizeof *batch);
            for (int i = 0, k = 0; i < n; i++)
                if (items[i].status == 0) batch[k++] = items[i];
        }
        e->ops->run(e, batch, nvalid);
        if (batch != items) {
            for (int i = 0, k = 0; i < n; i++)
                if (items[i].status == 0) {
                    items[i].status = batch[k].status;
                    memcpy(items[i].err, batch[k].err, sizeof items[i].err);
                    k++;
                }
            free(batch);
        }
    }
    for (int i = 0; i < n; i++)
        if (items[i].status) return items[i].status;
    return 0;
}

/* The w×h an item computes at (the output's size). */
static void item_size(const px_engine *e, const px_engine_item *it, int *w, int *h)
{
    if (e->ops->kind == PX_ENGINE_GENERATE) *w = it->gen.width, *h = it->gen.height;
    else *w = it->image->w, *h = it->image->h;
}

/* The caller's feed with its joiners validated first: an invalid one (or
 * one of another size than the batch) is done at once, never seen by the
 * engine. */
typedef struct checked_feed {
    const px_engine_feed *user;
    const px_engine *e;
    int w, h;
} checked_feed;

static int checked_join(void *ctx, px_engine_item **items, int max)
{
    checked_feed *c = ctx;
    for (;;) {
        int n = c->user->join(c->user->ctx, items, max), k = 0;
        if (n <= 0) return 0;
        for (int i = 0; i < n; i++) {
            px_engine_item *it = items[i];
            int w, h;
            if (validate(c->e, it) == 0) {
                item_size(c->e, it, &w, &h);
                if (w != c->w || h != c->h)
                    px_errf(it->err, sizeof it->err, PX_EINVAL,
                            "a %dx%d item cannot join a batch of %dx%d", w, h, c->w, c->h),
                        it->status = PX_EINVAL;
            }
            if (it->status) c->user->done(c->user->ctx, it);
            else items[k++] = it;
        }
        /* All refused: the queue may hold good ones behind them. */
        if (k) return k;
    }
}

static void checked_done(void *ctx, px_engine_item *it)
{
    checked_feed *c = ctx;
    c->user->done(c->user->ctx, it);
}

int px_engine_run_feed(px_engine *e, px_engine_item **items, int n, const px_engine_feed *feed)
{
    if (!e || n < 1 || !items || !feed || !feed->join || !feed->done) return PX_EINVAL;
    if (!(e->ops->caps & PX_ENGINE_CAP_JOIN) || !e->ops->run_feed) return PX_EUNSUP;
    checked_feed c = {.user = feed, .e = e};
    px_engine_feed wrap = {.join = checked_join, .done = checked_done, .ctx = &c};
    /* The first valid item sets the batch's size; the others must match. */
    int k = 0;
    for (int i = 0; i < n; i++) {
        px_engine_item *it = items[i];
        int w, h;
        if (validate(e, it) == 0) {
            item_size(e, it, &w, &h);
            if (!k) c.w = w, c.h = h;
            if (w != c.w || h != c.h)
                it->status = px_errf(it->err, sizeof it->err, PX_EINVAL,
                                     "a %dx%d item in a batch of %dx%d", w, h, c.w, c.h);
        }
        if (it->status) feed->done(feed->ctx, it);
        else items[k++] = it;
    }
    if (!k) return 0; /* every item done already; the queue forms the next batch */
    return e->ops->run_feed(e, items, k, &wrap);
}

/* A batch of n w×h inpaint items on a synthetic image (a square hole in
 * the middle), for the default warm-up. */
static int warm_inpaint(px_engine *e, int w, int h, int n, char *err, size_t errlen)
{
    px_image img = {0}, mask = {0}, out[64] = {{0}};
    px_engine_item it[64];
    if (n > 64) n = 64;
    int rc = px_image_alloc(&img, w, h, 3, NULL, NULL, 0);
    if (!rc) rc = px_image_alloc(&mask, w, h, 1, NULL, NULL, 0);
    for (int i = 0; i < n && !rc; i++) rc = px_image_alloc(&out[i], w, h, 3, NULL, NULL, 0);
    if (!rc) {
        for (size_t i = 0; i < (size_t)w * h * 3; i++) img.px[i] = (uint8_t)(i * 31);
        for (int y = h * 3 / 8; y < h * 5 / 8; y++)
            memset(mask.px + (size_t)y * w + w * 3 / 8, 255, (size_t)w / 4);
        for (int i = 0; i < n; i++)
            it[i] = (px_engine_item){.image = &img, .mask = &mask, .out = &out[i]};
        rc = px_engine_run(e, it, n);
        if (rc)
            px_errf(err, errlen, rc, "warm-up of engine %s (%d x %dx%d) failed: %s",
                    px_engine_name(e), n, w, h, it[0].err);
    } else {
        px_errf(err, errlen, rc, "out of memory warming up");
    }
    px_image_free(&img);
    px_image_free(&mask);
    for (int i = 0; i < n; i++) px_image_free(&out[i]);
    return rc;
}

/* The default warm-up of inpaint engines (see px_engine_warm_up). */
static int warm_up_inpaint(px_engine *e, const px_engine_warmup *wu, char *err, size_t errlen)
{
    int rc = warm_inpaint(e, 64, 64, 1, err, errlen);
    int nw = wu && (px_engine_caps(e) & PX_ENGINE_CAP_GPU) ? wu->nsizes : 0;
    int maxb = wu && wu->max_batch > 0 ? wu->max_batch : 1;
    for (int k = 0; k < nw && !rc; k++) {
        int64_t t0 = px_now_ns();
        for (int n = 1; !rc; n = n * 2 > maxb && n < maxb ? maxb : n * 2) {
            for (int twice = 0; twice < 2 && !rc; twice++)
                rc = warm_inpaint(e, wu->w[k], wu->h[k], n, err, errlen);
            if (n >= maxb) break;
        }
        if (!rc)
            PX_INFO("%s: warmed %dx%d at batches up to %d in %.1f s", px_engine_name(e), wu->w[k],
                    wu->h[k], maxb, px_ns_to_ms(px_now_ns() - t0) / 1000);
    }
    return rc;
}

int px_engine_warm_up(px_engine *e, const px_engine_warmup *wu, char *err, size_t errlen)
{
    if (e->ops->warmup) return e->ops->warmup(e, wu, err, errlen);
    if (e->ops->kind == PX_ENGINE_INPAINT) return warm_up_inpaint(e, wu, err, errlen);
    return 0; /* other kinds warm up in their own op, or not at all */
}

static const struct {
    unsigned bit;
    const char *name;
} g_caps[] = {
    {PX_ENGINE_CAP_BATCH, "batch"},
    {PX_ENGINE_CAP_ANY_SIZE, "any_size"},
    {PX_ENGINE_CAP_DETERMINISTIC, "deterministic"},
    {PX_ENGINE_CAP_GPU, "gpu"},
    {PX_ENGINE_CAP_WEIGHTS, "weights"},
    {PX_ENGINE_CAP_DEVICES, "devices"},
};

int px_engine_describe(const px_engine *e, px_buf *out)
{
    const px_engine_ops *o = e->ops;
    int rc = px_buf_puts(out, "{\"name\":");
    if (!rc) rc = px_json_str(out, o->name);
    if (!rc) rc = px_buf_puts(out, ",\"description\":");
    if (!rc) rc = px_json_str(out, o->description ? o->description : "");
    if (!rc) rc = px_buf_printf(out, ",\"kind\":\"%s\",\"device\":", px_engine_kind_name(o->kind));
    if (!rc) rc = px_json_str(out, px_engine_device(e));
    if (!rc) rc = px_buf_puts(out, ",\"capabilities\":[");
    int k = 0;
    for (size_t i = 0; !rc && i < sizeof g_caps / sizeof g_caps[0]; i++) {
        if (!(o->caps & g_caps[i].bit)) continue;
        if (k++) rc = px_buf_puts(out, ",");
        if (!rc) rc = px_json_str(out, g_caps[i].name);
    }
    if (!rc) rc = px_buf_puts(out, "],\"methods\":[");
    for (int i = 0; !rc && o->methods && o->methods[i]; i++) {
        if (i) rc = px_buf_puts(out, ",");
        if (!rc) rc = px_json_str(out, o->methods[i]);
    }
    if (!rc) rc = px_buf_puts(out, "],\"default_method\":");
    if (!rc) {
        if (o->methods && o->methods[0]) rc = px_json_str(out, o->methods[0]);
        else rc = px_buf_puts(out, "null");
    }
    /* Examples rather than a formula: the formula is the engine's business,
     * and these are what an operator sizing a queue wants to read. */
    static const int sides[] = {512, 1024, 2048};
    if (!rc) rc = px_buf_puts(out, ",\"memory_estimate_bytes\":{");
    for (size_t i = 0; !rc && i < sizeof sides / sizeof sides[0]; i++)
        rc = px_buf_printf(out, "%s\"%dx%d\":%zu", i ? "," : "", sides[i], sides[i],
                           px_engine_mem_estimate(e, 1, (px_engine_shape){sides[i], sides[i], 0, 0}));
    if (!rc) rc = px_buf_puts(out, "},\"config\":{");
    if (!rc && o->describe_config) rc = o->describe_config(e, out);
    if (!rc) rc = px_buf_puts(out, "}}");
    return rc;
}

int px_engine_lora_open(px_engine *e, const char *path, px_engine_lora **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    if (!e->ops->lora_open)
        return px_errf(err, errlen, PX_EUNSUP, "engine %s takes no LoRAs", e->ops->name);
    int rc = e->ops->lora_open(e, path, out, err, errlen);
    if (!rc) ((struct px_engine_lora_head *)*out)->ops = e->ops;
    return rc;
}

void px_engine_lora_close(px_engine_lora *l)
{
    if (l) ((struct px_engine_lora_head *)l)->ops->lora_close(l);
}

int px_engine_lora_describe(const px_engine_lora *l, px_buf *out)
{
    return ((const struct px_engine_lora_head *)l)->ops->lora_describe(l, out);
}
