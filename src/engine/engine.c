/*
 * engine.c — the engine registry and the checks every engine gets for free:
 * lookup by name, item validation before dispatch through the const vtable,
 * method names, and the JSON self-description used by /api/v1/engines.
 */
#include "engine/engine_impl.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/jsonw.h"
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
        (*out)->ops = g_engines[i];
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

size_t px_engine_mem_estimate(const px_engine *e, int n, int w, int h)
{
    if (n <= 0 || w <= 0 || h <= 0) return 0;
    return e->ops->mem_estimate(e, n, w, h);
}

size_t px_engine_free_memory(const px_engine *e)
{
    if (e->ops->free_memory) return e->ops->free_memory(e);
    return (size_t)px_proc_mem_available();
}

/* Engines index pixels with int arithmetic in places; refuse anything whose
 * pixel count could overflow that long before an image gets this big. */
#define MAX_ITEM_PIXELS ((int64_t)1 << 28)

static bool image_ok(const px_image *im, int c)
{
    return im && im->px && im->c == c && im->w > 0 && im->h > 0;
}

/* Checks one item; writes its status/err and returns the status. */
static int validate(const px_engine *e, px_engine_item *it)
{
    char *err = it->err;
    size_t len = sizeof it->err;
    it->err[0] = 0;
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
    if (!image_ok(it->out, 3) || it->out->w != im->w || it->out->h != im->h) {
        const px_image *o = it->out;
        if (!o || !o->px)
            return it->status = px_errf(err, len, PX_EINVAL, "output image is not allocated");
        return it->status = px_errf(err, len, PX_EINVAL,
                                    "output must be %dx%d with 3 channels, got %dx%d with %d",
                                    im->w, im->h, o->w, o->h, o->c);
    }
    return it->status = px_engine_check_method(e, it->method, err, len);
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

static const struct {
    unsigned bit;
    const char *name;
} g_caps[] = {
    {PX_ENGINE_CAP_BATCH, "batch"},
    {PX_ENGINE_CAP_ANY_SIZE, "any_size"},
    {PX_ENGINE_CAP_DETERMINISTIC, "deterministic"},
    {PX_ENGINE_CAP_GPU, "gpu"},
    {PX_ENGINE_CAP_WEIGHTS, "weights"},
};

int px_engine_describe(const px_engine *e, px_buf *out)
{
    const px_engine_ops *o = e->ops;
    int rc = px_buf_puts(out, "{\"name\":");
    if (!rc) rc = px_json_str(out, o->name);
    if (!rc) rc = px_buf_puts(out, ",\"description\":");
    if (!rc) rc = px_json_str(out, o->description ? o->description : "");
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
                           px_engine_mem_estimate(e, 1, sides[i], sides[i]));
    if (!rc) rc = px_buf_puts(out, "},\"config\":{");
    if (!rc && o->describe_config) rc = o->describe_config(e, out);
    if (!rc) rc = px_buf_puts(out, "}}");
    return rc;
}
