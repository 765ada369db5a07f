/*
 * cuda_plan_async.c — plans built in the background (see
 * cuda_plan_async.h).
 *
 * Locks: build_mu is held for the whole of every build (so builds run one
 * at a time); mu guards everything else, briefly, and is the only lock
 * px_cuda_aplans_ready takes (its callers hold a scheduler's lock). Where
 * both are held, build_mu is taken first.
 */
#include "engine/cuda/cuda_plan_async.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys queued, being built and handed over together: a scheduler asks for
 * the few shapes at the head of its queue, so a handful suffices. */
#define QCAP 8

struct px_cuda_aplans {
    px_cuda_plans *cache;
    px_cuda_plan_ops ops;
    size_t ksz;
    char who[32];
    pthread_mutex_t mu, build_mu;
    pthread_cond_t cv;
    pthread_t thread;
    int started, stop, no_thread;
    unsigned char want[QCAP][PX_CUDA_APLANS_MAX_KEY]; /* FIFO */
    int nwant;
    unsigned char done[QCAP][PX_CUDA_APLANS_MAX_KEY]; /* built, not yet cached */
    void *done_plan[QCAP];
    int ndone;
    unsigned char failed[QCAP][PX_CUDA_APLANS_MAX_KEY]; /* recent failures, oldest first */
    int nfailed;
    unsigned char building[PX_CUDA_APLANS_MAX_KEY];
    int is_building, bg_builds;
};

static int index_of(const px_cuda_aplans *c, unsigned char (*keys)[PX_CUDA_APLANS_MAX_KEY], int n,
                    const void *key)
{
    for (int i = 0; i < n; i++)
        if (!memcmp(keys[i], key, c->ksz)) return i;
    return -1;
}

/* mu held: whether a get, or a failure to report, is waiting for key. */
static int known_locked(px_cuda_aplans *c, const void *key)
{
    return px_cuda_plans_find(c->cache, key) || index_of(c, c->done, c->ndone, key) >= 0 ||
           index_of(c, c->failed, c->nfailed, key) >= 0;
}

/* mu held, device holder: finished plans into the cache (evicting). */
static void drain_locked(px_cuda_aplans *c)
{
    for (int i = 0; i < c->ndone; i++) {
        if (px_cuda_plans_find(c->cache, c->done[i]))
            c->ops.destroy(c->ops.arg, c->done_plan[i]); /* cannot happen: builds check */
        else
            px_cuda_plans_put(c->cache, c->done[i], c->done_plan[i]);
    }
    c->ndone = 0;
}

static void drop_failure_locked(px_cuda_aplans *c, int i)
{
    memmove(c->failed[i], c->failed[i + 1], (size_t)(c->nfailed - i - 1) * sizeof c->failed[0]);
    c->nfailed--;
}

static void forget_failure_locked(px_cuda_aplans *c, const void *key)
{
    int i = index_of(c, c->failed, c->nfailed, key);
    if (i >= 0) drop_failure_locked(c, i);
}

/* The background thread: builds the queued keys in order. */
static void *builder_main(void *arg)
{
    px_cuda_aplans *c = arg;
    char err[256];
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->stop && !c->nwant) pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop) break;
        memcpy(c->building, c->want[0], c->ksz);
        memmove(c->want[0], c->want[1], (size_t)(c->nwant - 1) * sizeof c->want[0]);
        c->nwant--;
        c->is_building = 1;
        pthread_mutex_unlock(&c->mu);

        pthread_mutex_lock(&c->build_mu);
        pthread_mutex_lock(&c->mu);
        int skip = known_locked(c, c->building); /* a get built it meanwhile */
        pthread_mutex_unlock(&c->mu);
        void *plan = NULL;
        int rc = skip ? 0 : c->ops.build(c->ops.arg, c->building, &plan, err, sizeof err);
        /* Handed over before build_mu is released: a get that takes it next
         * finds the plan instead of building it again. */
        pthread_mutex_lock(&c->mu);
        if (!skip && !rc) {
            memcpy(c->done[c->ndone], c->building, c->ksz);
            c->done_plan[c->ndone++] = plan;
            c->bg_builds++;
        } else if (!skip) {
            PX_WARN("%s: a plan built in the background failed (%s); the next batch of its "
                    "shape builds it on the device's worker",
                    c->who, err);
            if (c->nfailed == QCAP) drop_failure_locked(c, 0);
            memcpy(c->failed[c->nfailed++], c->building, c->ksz);
        }
        c->is_building = 0;
        pthread_mutex_unlock(&c->build_mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

px_cuda_aplans *px_cuda_aplans_create(size_t key_size, int max_plans, const px_cuda_plan_ops *ops,
                                      const char *who)
{
    if (key_size > PX_CUDA_APLANS_MAX_KEY) abort(); /* a programming error */
    px_cuda_aplans *c = px_xcalloc(1, sizeof *c);
    c->cache = px_cuda_plans_create(key_size, max_plans, ops);
    c->ops = *ops;
    c->ksz = key_size;
    snprintf(c->who, sizeof c->who, "%s", who);
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->build_mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return c;
}

int px_cuda_aplans_ready(px_cuda_aplans *c, const void *key, int want)
{
    pthread_mutex_lock(&c->mu);
    int r = known_locked(c, key) || c->no_thread;
    int queued = index_of(c, c->want, c->nwant, key) >= 0 ||
                 (c->is_building && !memcmp(c->building, key, c->ksz));
    if (!r && want && !queued && c->nwant + c->ndone + c->is_building < QCAP) {
        if (!c->started) {
            if (pthread_create(&c->thread, NULL, builder_main, c)) {
                PX_WARN("%s: no thread for background plan builds; building on the worker",
                        c->who);
                c->no_thread = 1;
                r = 1;
            }
            c->started = !c->no_thread;
        }
        if (!r) {
            memcpy(c->want[c->nwant++], key, c->ksz);
            pthread_cond_signal(&c->cv);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* build_mu held, not mu: a build on the caller's thread; on PX_ENOMEM the
 * cached and handed-over plans (none in use: the caller holds the device)
 * are freed and the build tried once more. */
static int build_here(px_cuda_aplans *c, const void *key, void **plan, char *err, size_t errlen)
{
    int rc = c->ops.build(c->ops.arg, key, plan, err, errlen);
    if (rc == PX_ENOMEM) {
        pthread_mutex_lock(&c->mu);
        drain_locked(c);
        px_cuda_plans_clear(c->cache);
        pthread_mutex_unlock(&c->mu);
        rc = c->ops.build(c->ops.arg, key, plan, err, errlen);
    }
    return rc;
}

int px_cuda_aplans_get(px_cuda_aplans *c, const void *key, void **plan, char *err, size_t errlen)
{
    pthread_mutex_lock(&c->mu);
    drain_locked(c);
    *plan = px_cuda_plans_find(c->cache, key);
    pthread_mutex_unlock(&c->mu);
    if (*plan) return 0;
    pthread_mutex_lock(&c->build_mu);
    pthread_mutex_lock(&c->mu);
    drain_locked(c); /* the background may have finished it meanwhile */
    *plan = px_cuda_plans_find(c->cache, key);
    if (!*plan) px_cuda_plans_make_room(c->cache);
    pthread_mutex_unlock(&c->mu);
    int rc = 0;
    if (!*plan) {
        rc = build_here(c, key, plan, err, errlen);
        pthread_mutex_lock(&c->mu);
        if (!rc) px_cuda_plans_put(c->cache, key, *plan);
        forget_failure_locked(c, key);
        pthread_mutex_unlock(&c->mu);
        if (rc) *plan = NULL;
    }
    pthread_mutex_unlock(&c->build_mu);
    return rc;
}

int px_cuda_aplans_background_builds(px_cuda_aplans *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->bg_builds;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void px_cuda_aplans_destroy(px_cuda_aplans *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->started) pthread_join(c->thread, NULL);
    for (int i = 0; i < c->ndone; i++) c->ops.destroy(c->ops.arg, c->done_plan[i]);
    px_cuda_plans_destroy(c->cache);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->build_mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}
