/*
 * workers.c — the bounded work item queue, its worker threads and the deadline
 * reaper (see workers.h for the contract).
 *
 * All work item state transitions happen under the pool's one mutex, which makes
 * "ends exactly once" easy to see: a transition out of QUEUED or RUNNING is
 * made only by whoever holds the lock and finds the work item still there. Notify
 * callbacks run after the lock is released.
 */
#include "serve/workers.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct px_work {
    atomic_int refs;
    atomic_int cancel;
    px_work_fn fn;
    void *ctx;
    void (*ctx_free)(void *);
    px_work_notify_fn notify;
    void *notify_arg;
    int64_t deadline_ns;
    int64_t t_submit, t_start, t_end;
    /* Below: guarded by the pool mutex once submitted. */
    enum px_work_state state;
    int result;
    px_work *next; /* queue link */
    px_work *run_prev, *run_next; /* running-list links */
};

struct px_workers {
    pthread_mutex_t mu;
    pthread_cond_t work;    /* workers: a work item was queued, or stop */
    pthread_cond_t reaper;  /* reaper: the earliest deadline may have changed, or stop */
    pthread_cond_t idle;    /* drain: queued + running reached zero */
    px_work *head, *tail;    /* FIFO */
    px_work *running;        /* work items whose work is executing */
    int queued, nrunning, cap, nworkers;
    int notifying; /* notify callbacks decided but not yet returned */
    int draining, stop;
    uint64_t submitted, rejected, completed, timed_out, cancelled;
    double ewma_ms;
    pthread_t *threads;
    pthread_t reaper_thread;
    int nthreads_started, reaper_started;
};

px_work *px_work_new(px_work_fn fn, void *ctx, void (*ctx_free)(void *), int64_t deadline_ns,
                   px_work_notify_fn notify, void *notify_arg)
{
    px_work *j = px_xcalloc(1, sizeof *j);
    atomic_init(&j->refs, 1);
    atomic_init(&j->cancel, 0);
    j->fn = fn;
    j->ctx = ctx;
    j->ctx_free = ctx_free;
    j->deadline_ns = deadline_ns;
    j->notify = notify;
    j->notify_arg = notify_arg;
    j->state = PX_WORK_NEW;
    return j;
}

void px_work_ref(px_work *wk)
{
    atomic_fetch_add(&wk->refs, 1);
}

void px_work_unref(px_work *wk)
{
    if (!wk || atomic_fetch_sub(&wk->refs, 1) != 1) return;
    if (wk->ctx_free) wk->ctx_free(wk->ctx);
    free(wk);
}

void *px_work_ctx(const px_work *wk)
{
    return wk->ctx;
}

/* State and times are read without the pool lock by the work item's owner after
 * its notify fired (the final state is then stable); atomics are not needed
 * because the notify path orders the writes before the reader wakes. */
enum px_work_state px_work_state(const px_work *wk)
{
    return __atomic_load_n(&wk->state, __ATOMIC_ACQUIRE);
}

int px_work_result(const px_work *wk)
{
    return __atomic_load_n(&wk->result, __ATOMIC_ACQUIRE);
}

int64_t px_work_queue_ns(const px_work *wk)
{
    int64_t s = __atomic_load_n(&wk->t_start, __ATOMIC_ACQUIRE);
    int64_t e = __atomic_load_n(&wk->t_end, __ATOMIC_ACQUIRE);
    if (!wk->t_submit) return 0;
    return (s ? s : e ? e : px_now_ns()) - wk->t_submit;
}

int64_t px_work_run_ns(const px_work *wk)
{
    int64_t s = __atomic_load_n(&wk->t_start, __ATOMIC_ACQUIRE);
    int64_t e = __atomic_load_n(&wk->t_end, __ATOMIC_ACQUIRE);
    if (!s) return 0;
    return (e ? e : px_now_ns()) - s;
}

/* Under the lock: moves a work item to a final state. Returns 1 if it did (the
 * caller must then call the notify after unlocking). */
static int finish_locked(px_workers *w, px_work *j, enum px_work_state st, int result)
{
    if (j->state != PX_WORK_QUEUED && j->state != PX_WORK_RUNNING) return 0;
    __atomic_store_n(&j->result, result, __ATOMIC_RELEASE);
    __atomic_store_n(&j->t_end, px_now_ns(), __ATOMIC_RELEASE);
    __atomic_store_n(&j->state, st, __ATOMIC_RELEASE);
    if (st == PX_WORK_TIMEDOUT) w->timed_out++;
    else if (st == PX_WORK_CANCELLED) w->cancelled++;
    else w->completed++;
    return 1;
}

static void unlink_queued_locked(px_workers *w, px_work *j)
{
    px_work **pp = &w->head, *prev = NULL;
    while (*pp && *pp != j) prev = *pp, pp = &(*pp)->next;
    if (!*pp) return;
    *pp = j->next;
    if (w->tail == j) w->tail = prev;
    j->next = NULL;
    w->queued--;
}

static void signal_idle_locked(px_workers *w)
{
    if (w->queued == 0 && w->nrunning == 0 && w->notifying == 0) pthread_cond_broadcast(&w->idle);
}

/* Runs a work item's notify outside the lock and drops the reference the caller
 * held for it; drain waits for these too, so that after px_workers_drain()
 * every callback has returned and the pool holds no work item. */
static void notify_unlocked(px_workers *w, px_work *j, int unref)
{
    if (j->notify) j->notify(j, j->notify_arg);
    if (unref) px_work_unref(j);
    pthread_mutex_lock(&w->mu);
    w->notifying--;
    signal_idle_locked(w);
    pthread_mutex_unlock(&w->mu);
}

static void *worker_main(void *arg)
{
    px_workers *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && !w->head) pthread_cond_wait(&w->work, &w->mu);
        if (!w->head) break; /* stop, and nothing left */
        px_work *j = w->head;
        w->head = j->next;
        if (!w->head) w->tail = NULL;
        j->next = NULL;
        w->queued--;
        __atomic_store_n(&j->t_start, px_now_ns(), __ATOMIC_RELEASE);
        __atomic_store_n(&j->state, PX_WORK_RUNNING, __ATOMIC_RELEASE);
        j->run_prev = NULL;
        j->run_next = w->running;
        if (w->running) w->running->run_prev = j;
        w->running = j;
        w->nrunning++;
        pthread_cond_signal(&w->reaper);
        pthread_mutex_unlock(&w->mu);

        int rc = j->fn(j->ctx, &j->cancel);

        pthread_mutex_lock(&w->mu);
        if (j->run_prev) j->run_prev->run_next = j->run_next; else w->running = j->run_next;
        if (j->run_next) j->run_next->run_prev = j->run_prev;
        int64_t ran = px_now_ns() - j->t_start;
        /* Moving average over roughly the last ten work items. */
        double ms = px_ns_to_ms(ran);
        w->ewma_ms = w->ewma_ms == 0 ? ms : 0.9 * w->ewma_ms + 0.1 * ms;
        int notify = finish_locked(w, j, PX_WORK_DONE, rc);
        pthread_mutex_unlock(&w->mu);
        /* Still counted as running until the notify returned and the pool's
         * reference is gone (drain relies on it). */
        if (notify && j->notify) j->notify(j, j->notify_arg);
        px_work_unref(j);
        pthread_mutex_lock(&w->mu);
        w->nrunning--;
        signal_idle_locked(w);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void *reaper_main(void *arg)
{
    px_workers *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        int64_t now = px_now_ns(), next = 0;
        /* Collect the expired work items (at most a batch at a time) to notify
         * outside the lock; the pool's reference keeps each alive. */
        enum { BATCH = 64 };
        px_work *expired[BATCH];
        int nexp = 0;
        for (px_work *j = w->head, *nx; j && nexp < BATCH; j = nx) {
            nx = j->next;
            if (!j->deadline_ns) continue;
            if (j->deadline_ns <= now) {
                unlink_queued_locked(w, j);
                finish_locked(w, j, PX_WORK_TIMEDOUT, PX_ETIMEDOUT);
                expired[nexp++] = j; /* the queue's reference moves to this list */
            } else if (!next || j->deadline_ns < next) {
                next = j->deadline_ns;
            }
        }
        for (px_work *j = w->running; j && nexp < BATCH; j = j->run_next) {
            if (!j->deadline_ns || j->state != PX_WORK_RUNNING) continue;
            if (j->deadline_ns <= now) {
                atomic_store(&j->cancel, 1);
                finish_locked(w, j, PX_WORK_TIMEDOUT, PX_ETIMEDOUT);
                px_work_ref(j); /* the worker keeps its own reference */
                expired[nexp++] = j;
            } else if (!next || j->deadline_ns < next) {
                next = j->deadline_ns;
            }
        }
        if (nexp) {
            w->notifying += nexp;
            pthread_mutex_unlock(&w->mu);
            for (int i = 0; i < nexp; i++) notify_unlocked(w, expired[i], 1);
            pthread_mutex_lock(&w->mu);
            continue; /* rescan: more may have expired meanwhile */
        }
        if (!next) {
            pthread_cond_wait(&w->reaper, &w->mu);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait = next - now;
            ts.tv_sec += wait / 1000000000;
            ts.tv_nsec += wait % 1000000000;
            if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&w->reaper, &w->mu, &ts);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

px_workers *px_workers_create(int nworkers, int queue_cap)
{
    if (nworkers < 1 || queue_cap < 0) return NULL;
    px_workers *w = px_xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->idle, NULL);
    /* The reaper sleeps on the monotonic clock, like the deadlines. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->reaper, &ca);
    pthread_condattr_destroy(&ca);
    w->cap = queue_cap;
    w->nworkers = nworkers;
    w->threads = px_xcalloc((size_t)nworkers, sizeof *w->threads);
    for (int i = 0; i < nworkers; i++) {
        if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0) goto fail;
        w->nthreads_started++;
    }
    if (pthread_create(&w->reaper_thread, NULL, reaper_main, w) != 0) goto fail;
    w->reaper_started = 1;
    return w;
fail:
    px_workers_destroy(w);
    return NULL;
}

/* Under the lock: links the work item in (at the head when urgent) and wakes a
 * worker. */
static void enqueue_locked(px_workers *w, px_work *j, int urgent)
{
    px_work_ref(j);
    j->t_submit = px_now_ns();
    __atomic_store_n(&j->state, PX_WORK_QUEUED, __ATOMIC_RELEASE);
    if (urgent) {
        j->next = w->head;
        w->head = j;
        if (!w->tail) w->tail = j;
    } else {
        j->next = NULL;
        if (w->tail) w->tail->next = j; else w->head = j;
        w->tail = j;
    }
    w->queued++;
    w->submitted++;
    pthread_cond_signal(&w->work);
    if (j->deadline_ns) pthread_cond_signal(&w->reaper);
}

int px_workers_submit(px_workers *w, px_work *j)
{
    pthread_mutex_lock(&w->mu);
    if (w->draining || w->stop) {
        pthread_mutex_unlock(&w->mu);
        return PX_ECANCELED;
    }
    /* A free worker takes the work item at once, so idle workers count as slots. */
    int idle = w->nworkers - w->nrunning - w->queued;
    if (w->queued >= w->cap + (idle > 0 ? idle : 0)) {
        w->rejected++;
        pthread_mutex_unlock(&w->mu);
        return PX_EBUSY;
    }
    enqueue_locked(w, j, 0);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int px_workers_submit_urgent(px_workers *w, px_work *j)
{
    pthread_mutex_lock(&w->mu);
    if (w->stop) {
        pthread_mutex_unlock(&w->mu);
        return PX_ECANCELED;
    }
    enqueue_locked(w, j, 1);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int px_workers_cancel(px_workers *w, px_work *j)
{
    pthread_mutex_lock(&w->mu);
    enum px_work_state st = j->state;
    if (st != PX_WORK_QUEUED && st != PX_WORK_RUNNING) {
        pthread_mutex_unlock(&w->mu);
        return PX_EINVAL;
    }
    int drop_queue_ref = 0;
    if (st == PX_WORK_QUEUED) {
        unlink_queued_locked(w, j);
        drop_queue_ref = 1;
    } else {
        atomic_store(&j->cancel, 1);
    }
    finish_locked(w, j, PX_WORK_CANCELLED, PX_ECANCELED);
    w->notifying++;
    pthread_mutex_unlock(&w->mu);
    notify_unlocked(w, j, drop_queue_ref);
    return 0;
}

void px_workers_stats_get(px_workers *w, px_workers_stats *s)
{
    pthread_mutex_lock(&w->mu);
    s->workers = w->nworkers;
    s->queue_capacity = w->cap;
    s->queued = w->queued;
    s->running = w->nrunning;
    s->submitted = w->submitted;
    s->rejected = w->rejected;
    s->completed = w->completed;
    s->timed_out = w->timed_out;
    s->cancelled = w->cancelled;
    s->mean_service_ms = w->ewma_ms;
    pthread_mutex_unlock(&w->mu);
}

int px_workers_retry_after_s(px_workers *w)
{
    pthread_mutex_lock(&w->mu);
    double per_item = w->ewma_ms > 0 ? w->ewma_ms : 1000.0;
    double ms = per_item * (w->queued + w->nrunning) / w->nworkers;
    pthread_mutex_unlock(&w->mu);
    int s = (int)(ms / 1000.0 + 0.999);
    return s < 1 ? 1 : s;
}

void px_workers_drain(px_workers *w)
{
    pthread_mutex_lock(&w->mu);
    w->draining = 1;
    while (w->queued > 0 || w->nrunning > 0 || w->notifying > 0)
        pthread_cond_wait(&w->idle, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void px_workers_destroy(px_workers *w)
{
    if (!w) return;
    px_workers_drain(w);
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->work);
    pthread_cond_broadcast(&w->reaper);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nthreads_started; i++) pthread_join(w->threads[i], NULL);
    if (w->reaper_started) pthread_join(w->reaper_thread, NULL);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->reaper);
    pthread_cond_destroy(&w->idle);
    pthread_mutex_destroy(&w->mu);
    free(w->threads);
    free(w);
}
