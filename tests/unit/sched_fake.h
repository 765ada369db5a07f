/*
 * sched_fake.h — sched_test.c's fixtures: a fake engine whose latency,
 * memory needs, failures and readiness the tests control, and jobs that
 * carry the inpaint kind's payloads and run adapter (bucket padding).
 * Static definitions: included by one test file.
 */
#ifndef PX_TESTS_SCHED_FAKE_H
#define PX_TESTS_SCHED_FAKE_H

#include "core/clock.h"
#include "core/err.h"
#include "engine/engine_impl.h"
#include "harness.h"
#include "serve/kind_inpaint.h"
#include "serve/sched.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ------------------------------------------------------------ fake engine */

struct fake {
    px_engine base;
    int latency_ms;      /* per batch */
    int steps;           /* progress reports per batch (0 = none) */
    int oom_above;       /* batches larger than this fail with PX_ENOMEM (0 = never) */
    size_t bytes_per_px; /* memory estimate per pixel per item */
    atomic_int hold;     /* while set, a run waits before computing: a test keeps a
                          * batch running for as long as it looks at the queue */
    atomic_int unready_w; /* batches of this width are "not ready" (0: none) */
    atomic_int ready_cap; /* at most this many start at once (0: all) */
    size_t *free_bytes;   /* the tests' fake device memory (t_memory_guard), */
    atomic_size_t cached; /* to which a release of caches adds this back */
    atomic_int releases;  /* px_engine_release_caches calls */
    pthread_mutex_t mu;
    int calls, sizes[256]; /* batch size of each call */
    int order[256], norder; /* seeds in the order they ran */
};

static int fake_create(const px_engine_config *cfg, px_engine **out, char *err, size_t errlen)
{
    (void)cfg, (void)err, (void)errlen;
    struct fake *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->bytes_per_px = 1;
    *out = &f->base;
    return 0;
}

static void fake_destroy(px_engine *e)
{
    struct fake *f = (struct fake *)e;
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static size_t fake_mem(const px_engine *e, int n, const px_engine_shape *s)
{
    const struct fake *f = (const struct fake *)e;
    return (size_t)n * (size_t)s->w * (size_t)s->h * f->bytes_per_px;
}

/* Output: the inverse of the input inside the hole, the input elsewhere.
 * Polls the cancel flags in 1 ms steps while "computing". */
static int fake_run(px_engine *e, px_engine_item *items, int n)
{
    struct fake *f = (struct fake *)e;
    pthread_mutex_lock(&f->mu);
    if (f->calls < 256) f->sizes[f->calls] = n;
    f->calls++;
    int oom = f->oom_above && n > f->oom_above;
    if (!oom)
        for (int i = 0; i < n && f->norder < 256; i++) f->order[f->norder++] = (int)items[i].seed;
    pthread_mutex_unlock(&f->mu);
    if (oom) {
        for (int i = 0; i < n; i++) {
            items[i].status = PX_ENOMEM;
            snprintf(items[i].err, sizeof items[i].err, "fake OOM");
        }
        return PX_ENOMEM;
    }
    while (atomic_load(&f->hold)) usleep(1000);
    for (int t = 0; t < f->latency_ms; t++) {
        int all = 1;
        for (int i = 0; i < n; i++) all &= items[i].cancel && atomic_load(items[i].cancel);
        if (all) break;
        usleep(1000);
        /* A step ends every latency/steps ms. */
        if (f->steps && f->latency_ms >= f->steps && (t + 1) % (f->latency_ms / f->steps) == 0)
            for (int i = 0; i < n; i++)
                px_engine_progress(&items[i], (t + 1) / (f->latency_ms / f->steps), f->steps);
    }
    for (int i = 0; i < n; i++) {
        px_engine_item *it = &items[i];
        if (it->cancel && atomic_load(it->cancel)) {
            it->status = PX_ECANCELED;
            continue;
        }
        size_t np = (size_t)it->image->w * it->image->h;
        for (size_t p = 0; p < np; p++)
            for (int k = 0; k < 3; k++)
                it->out->px[p * 3 + k] = it->mask->px[p] ? (uint8_t)(255 - it->image->px[p * 3 + k])
                                                         : it->image->px[p * 3 + k];
        it->status = 0;
    }
    return 0;
}

/* As a GPU engine whose plan for a shape is being built in the background
 * (unready_w), or has plans for only some batch sizes (ready_cap); with
 * both 0, as an engine that prepares nothing. */
static int fake_ready(px_engine *e, int n, const px_engine_shape *s)
{
    struct fake *f = (struct fake *)e;
    if (s->w == atomic_load(&f->unready_w)) return 0;
    int cap = atomic_load(&f->ready_cap);
    return cap && n > cap ? cap : n;
}

/* The scheduler's ask before refusing an item too big for the device:
 * what the engine had cached becomes free. */
static void fake_release(px_engine *e)
{
    struct fake *f = (struct fake *)e;
    atomic_fetch_add(&f->releases, 1);
    size_t c = atomic_exchange(&f->cached, 0);
    if (f->free_bytes) *f->free_bytes += c;
}

static size_t fake_cached(const px_engine *e)
{
    return atomic_load(&((struct fake *)e)->cached);
}

static const char *const fake_methods[] = {"default", NULL};
static const px_engine_ops fake_ops = {
    .name = "fake",
    .description = "test engine",
    .caps = PX_ENGINE_CAP_BATCH | PX_ENGINE_CAP_ANY_SIZE,
    .methods = fake_methods,
    .create = fake_create,
    .destroy = fake_destroy,
    .mem_estimate = fake_mem,
    .release_caches = fake_release,
    .cached_bytes = fake_cached,
    .ready = fake_ready,
    .run = fake_run,
};

static struct fake *fake_new(int latency_ms)
{
    px_engine *e;
    fake_create(NULL, &e, NULL, 0);
    e->ops = &fake_ops;
    struct fake *f = (struct fake *)e;
    f->latency_ms = latency_ms;
    return f;
}

/* ------------------------------------------------------------ items */

struct job {
    px_sched_item it;
    px_engine_item eit; /* the payload */
    px_image img, mask, out;
    atomic_int done;
    atomic_int started, progress; /* events received */
};

/* The bucket step and whether the lane batches, for job_init (set by
 * mk_sched). */
static int g_bucket, g_batching;

static void on_done(px_sched_item *it, void *arg)
{
    (void)it;
    atomic_fetch_add(&((struct job *)arg)->done, 1);
}

static void on_event(px_sched_item *it, enum px_sched_event ev, int step, int steps, void *arg)
{
    struct job *j = arg;
    if (ev == PX_SCHED_STARTED) {
        T_TRUE(it->t_started > 0);
        T_TRUE(it->batch_size > 0);
        atomic_fetch_add(&j->started, 1);
    } else {
        T_TRUE(step >= 1 && step <= steps);
        atomic_fetch_add(&j->progress, 1);
    }
}

static void job_init(struct job *j, struct fake *f, int w, int h, int seed, enum px_priority p)
{
    memset(j, 0, sizeof *j);
    px_image_alloc(&j->img, w, h, 3, NULL, NULL, 0);
    px_image_alloc(&j->mask, w, h, 1, NULL, NULL, 0);
    px_image_alloc(&j->out, w, h, 3, NULL, NULL, 0);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) j->img.px[i] = (uint8_t)(i * 7 + (size_t)seed);
    for (size_t i = 0; i < (size_t)w * h; i++) j->mask.px[i] = (i % 3 == 0) ? 255 : 0;
    j->eit = (px_engine_item){.image = &j->img, .mask = &j->mask, .out = &j->out,
                              .seed = (uint64_t)seed};
    int batching = g_batching && (f->base.ops->caps & PX_ENGINE_CAP_BATCH);
    px_kind_inpaint_item(&j->it, &j->eit, batching, g_bucket);
    j->it.engine = &f->base;
    j->it.run = px_kind_inpaint_run;
    j->it.prio = p;
    j->it.done = on_done;
    j->it.event = on_event;
    j->it.done_arg = j;
}

static void job_check_output(struct job *j)
{
    for (size_t p = 0; p < (size_t)j->img.w * j->img.h; p++)
        for (int k = 0; k < 3; k++) {
            uint8_t in = j->img.px[p * 3 + k];
            T_EQ_INT(j->out.px[p * 3 + k], j->mask.px[p] ? 255 - in : in);
        }
}

static void job_free(struct job *j)
{
    px_image_free(&j->img);
    px_image_free(&j->mask);
    px_image_free(&j->out);
}

static void wait_all(struct job *j, int n)
{
    for (int t = 0; t < 20000; t++) {
        int all = 1;
        for (int i = 0; i < n; i++) all &= atomic_load(&j[i].done) > 0;
        if (all) return;
        usleep(1000);
    }
    px_tfail(__FILE__, __LINE__, "items did not finish");
}

/* Waits (bounded) until j's STARTED event came, or j ended without one;
 * returns whether it started. Tests wait for this instead of sleeping: a
 * loaded machine may take any time to wake the worker. */
static int wait_started(struct job *j)
{
    for (int t = 0; t < 20000; t++) {
        if (atomic_load(&j->started)) return 1;
        if (atomic_load(&j->done)) return atomic_load(&j->started);
        usleep(1000);
    }
    px_tfail(__FILE__, __LINE__, "item did not start");
}

static px_sched *mk_sched(struct fake *f, int max_batch, int delay_ms, int bucket)
{
    px_sched_config c;
    px_sched_defaults(&c);
    c.max_batch = max_batch;
    c.max_delay_ns = (int64_t)delay_ms * 1000000;
    g_bucket = bucket;
    g_batching = max_batch > 1;
    c.mem_limit = (size_t)1 << 40;
    c.mem_reserve = 0;
    px_engine *e = &f->base;
    return px_sched_create(&c, &e, 1);
}

#endif
