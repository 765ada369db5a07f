/*
 * sched.c — per-engine lanes of priority queues, the batcher, the memory
 * guard per device and the device workers (see sched.h for the contract).
 *
 * One mutex guards every queue and counter. A worker forms a batch under the
 * lock (unlinking its items, reserving their memory estimate), runs it
 * without the lock, then finishes the items and calls their callbacks with
 * the lock released. Items that end without running (cancelled while
 * queued, expired, too big for the device) are collected while locked and
 * completed after unlocking, so callbacks never run under the lock.
 */
#include "serve/sched.h"

#include "serve/sched_rate.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/proc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { S_NEW, S_QUEUED, S_RUNNING, S_DONE };

#define MAX_BATCH PX_SCHED_MAX_BATCH

const char *px_priority_name(enum px_priority p)
{
    static const char *names[] = {"high", "normal", "low"};
    return (unsigned)p < PX_PRIO_COUNT ? names[p] : "normal";
}

int px_priority_parse(const char *s)
{
    for (int p = 0; p < PX_PRIO_COUNT; p++)
        if (strcasecmp(s, px_priority_name((enum px_priority)p)) == 0) return p;
    return -1;
}

/* One device's memory: the engines that name the same device share it. */
struct device {
    const char *name;  /* px_engine_device of its first engine */
    size_t mem_in_use; /* estimates of the batches running on it */
};

struct lane {
    px_engine *engine;
    struct device *dev;
    px_sched_item *head[PX_PRIO_COUNT], *tail[PX_PRIO_COUNT];
    int queued[PX_PRIO_COUNT];
    int batching; /* may run more than one item per call */
    int joining;  /* continuous batching: items join running batches */
    int running;  /* items in batches now */
    int release;  /* the engine's caches for an item that did not fit: REL_* */
    px_rate_window rate; /* engine time per item (sched_rate.h) */
};

/* An item too big for an idle device is refused only after the engine
 * freed its caches (a GPU's plans of earlier shapes): wanted by form_batch,
 * done by a worker outside the lock, reset by a batch or the refusal. */
enum { REL_NONE, REL_WANTED, REL_RUNNING, REL_DONE };

struct worker {
    px_sched *s;
    struct lane *lane;
    pthread_t thread;
};

struct px_sched {
    px_sched_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t work; /* workers: items queued, memory freed, or stop */
    pthread_cond_t idle; /* drain: nothing queued or running */
    struct lane *lanes;
    int nlanes;
    struct device *devs;
    int ndevs;
    struct worker *workers;
    int nworkers;
    int running, draining, stop;
    uint64_t batches, items_run, oom_splits, joins, cache_releases, batch_hist[7];
};

/* A batch in continuous mode (sched.h): the items on the engine now. */
struct px_sched_run {
    px_sched *s;
    struct lane *lane;
    uint64_t key;             /* what joiners must match: the first item's key, */
    px_sched_run_join_fn fn;  /* adapter */
    px_engine_shape shape;    /* and shape (copied: that item may end first) */
    px_sched_item *active[MAX_BATCH];
    int nactive, peak;
    size_t mem;               /* reserved on the device for the active items */
    int64_t t_last;           /* the run's start, or when the rate was last noted */
    int64_t t_end;            /* the last item's end */
    int ended;                /* items ended since t_last */
};

void px_sched_defaults(px_sched_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_batch = 8;
    c->max_delay_ns = 5 * 1000000LL;
    c->workers_per_engine = 1;
    c->join = 1;
    c->mem_reserve = (size_t)256 << 20;
}

/* ------------------------------------------------------------ queues */

static void unlink_item(struct lane *l, px_sched_item *it)
{
    int p = it->prio;
    if (it->prev) it->prev->next = it->next; else l->head[p] = it->next;
    if (it->next) it->next->prev = it->prev; else l->tail[p] = it->prev;
    it->prev = it->next = NULL;
    l->queued[p]--;
}

/* Inserts in arrival order; items nearly always arrive in order, so the
 * scan from the tail stops at once. */
static void insert_item(struct lane *l, px_sched_item *it)
{
    int p = it->prio;
    px_sched_item *after = l->tail[p];
    while (after && after->arrival_ns > it->arrival_ns) after = after->prev;
    it->prev = after;
    it->next = after ? after->next : l->head[p];
    if (it->next) it->next->prev = it; else l->tail[p] = it;
    if (after) after->next = it; else l->head[p] = it;
    l->queued[p]++;
}

static int lane_empty(const struct lane *l)
{
    for (int p = 0; p < PX_PRIO_COUNT; p++)
        if (l->head[p]) return 0;
    return 1;
}

static struct lane *lane_of(px_sched *s, const px_engine *e)
{
    for (int i = 0; i < s->nlanes; i++)
        if (s->lanes[i].engine == e) return &s->lanes[i];
    return NULL;
}

/* Items that ended without running, completed after the lock is dropped. */
typedef struct {
    px_sched_item *items[64];
    int n;
} done_list;

static void end_locked(done_list *dl, px_sched_item *it, int status, const char *msg)
{
    it->status = status;
    snprintf(it->err, sizeof it->err, "%s", msg);
    it->state = S_DONE;
    it->t_finished = px_now_ns();
    dl->items[dl->n++] = it;
}

static void flush_done(px_sched *s, done_list *dl)
{
    if (!dl->n) return;
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < dl->n; i++) dl->items[i]->done(dl->items[i], dl->items[i]->done_arg);
    dl->n = 0;
    pthread_mutex_lock(&s->mu);
}

static void signal_idle_locked(px_sched *s)
{
    if (s->running) return;
    for (int i = 0; i < s->nlanes; i++)
        if (!lane_empty(&s->lanes[i])) return;
    pthread_cond_broadcast(&s->idle);
}

/* ------------------------------------------------------------ memory */

/* What a new batch of lane l may still use on its device. */
static size_t budget_locked(px_sched *s, struct lane *l)
{
    size_t avail;
    if (s->cfg.mem_limit) avail = s->cfg.mem_limit;
    else if (s->cfg.free_memory) avail = s->cfg.free_memory(s->cfg.free_memory_ctx, l->engine);
    else avail = px_engine_free_memory(l->engine);
    size_t taken = l->dev->mem_in_use + s->cfg.mem_reserve;
    return avail > taken ? avail - taken : 0;
}

/* ------------------------------------------------------------ running */

void px_sched_progress(void *arg, int step, int steps)
{
    px_sched_item *it = arg;
    if (it->event) it->event(it, PX_SCHED_PROGRESS, step, steps, it->done_arg);
}

/* Runs items[0..n) (one key) through their run adapter, splitting in
 * halves when the engine runs out of memory. Sets each item's status. */
static void run_items(px_sched *s, px_engine *e, px_sched_item **items, int n)
{
    items[0]->run(e, items, n);
    int oom = 0;
    for (int i = 0; i < n; i++) oom += items[i]->status == PX_ENOMEM;
    if (!oom || n == 1) return;
    /* The estimate was wrong or memory went elsewhere: halve and retry the
     * items that failed, never give up on a batch while halves can still
     * fit. */
    px_sched_item *again[MAX_BATCH];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (items[i]->status == PX_ENOMEM) again[k++] = items[i];
    pthread_mutex_lock(&s->mu);
    s->oom_splits++;
    pthread_mutex_unlock(&s->mu);
    int half = k / 2 ? k / 2 : 1;
    run_items(s, e, again, half);
    if (k > half) run_items(s, e, again + half, k - half);
}

static int hist_slot(int n)
{
    int slot = 0;
    for (int lim = 1; slot < 6 && n > lim; lim *= 2) slot++;
    return slot;
}

/* A GPU engine builds a plan for a shape it has not seen in the background
 * (seconds); meanwhile form_batch passes over that shape's items, up to
 * this many shapes, and polls again after NOT_READY_POLL_NS when nothing
 * else is queued. */
#define NOT_READY_MAX 8
#define NOT_READY_POLL_NS (20 * 1000000LL)

/* Whether it would batch with one of items[0..n). */
static int batches_with_any(px_sched_item *const *items, int n, const px_sched_item *it)
{
    for (int i = 0; i < n; i++)
        if (items[i]->key == it->key && items[i]->run == it->run) return 1;
    return 0;
}

/* The shape the engine will see for batch[0..n): the items' own size when
 * they all share it, else the bucket's (see px_sched_item.own). */
static px_engine_shape batch_shape(px_sched_item *const *batch, int n)
{
    px_engine_shape own = batch[0]->own;
    if (own.w <= 0 || own.h <= 0) return batch[0]->shape;
    for (int i = 1; i < n; i++)
        if (batch[i]->own.w != own.w || batch[i]->own.h != own.h) return batch[0]->shape;
    return own;
}

/* The first queued item, by priority, that does not batch with waiting[]
 * (keys still being prepared); expired items met on the way go to dl. */
static px_sched_item *pick_head(struct lane *l, int64_t now, px_sched_item *const *waiting,
                                int nwaiting, done_list *dl)
{
    for (int p = 0; p < PX_PRIO_COUNT; p++) {
        for (px_sched_item *it = l->head[p], *nx; it && dl->n < 64; it = nx) {
            nx = it->next;
            if (it->deadline_ns && it->deadline_ns <= now) {
                unlink_item(l, it);
                end_locked(dl, it, PX_ETIMEDOUT, "deadline passed while queued");
                continue;
            }
            if (!batches_with_any(waiting, nwaiting, it)) return it;
        }
    }
    return NULL;
}

/*
 * Under the lock: picks the next batch of lane l into batch[], or returns 0
 * with *wait_until set (0 = wait for a signal) when nothing should run yet.
 * Items that must end without running go to dl.
 */
static int form_batch(px_sched *s, struct lane *l, px_sched_item **batch, size_t *mem,
                      int64_t *wait_until, done_list *dl)
{
    int64_t now = px_now_ns();
    *wait_until = 0;
    /* Keys whose engine is still preparing (px_engine_ready said 0): their
     * items stay queued while other keys run. */
    px_sched_item *waiting[NOT_READY_MAX];
    int nwaiting = 0;
again:;
    px_sched_item *head = pick_head(l, now, waiting, nwaiting, dl);
    if (!head) {
        /* Everything queued waits for a preparation: look again soon. */
        if (nwaiting) *wait_until = now + NOT_READY_POLL_NS;
        return 0;
    }
    int limit = l->batching ? s->cfg.max_batch : 1;
    if (limit > MAX_BATCH) limit = MAX_BATCH;
    size_t budget = budget_locked(s, l);
    size_t need = px_engine_mem_estimate(l->engine, 1, head->shape);
    if (need > budget) {
        if (l->dev->mem_in_use > 0) {
            /* Running batches will give memory back: wait for them. */
            *wait_until = head->deadline_ns;
            return 0;
        }
        /* Idle: the engine's caches go first, only if that could make it fit. */
        if (l->release != REL_DONE && need - budget <= px_engine_cached_bytes(l->engine)) {
            if (l->release == REL_NONE) l->release = REL_WANTED;
            *wait_until = now + NOT_READY_POLL_NS; /* a worker frees them, then asks again */
            return 0;
        }
        l->release = REL_NONE;
        unlink_item(l, head);
        char msg[160];
        snprintf(msg, sizeof msg,
                 "a %dx%d input needs about %zu MiB of working memory; %zu MiB are available",
                 head->shape.w, head->shape.h, need >> 20, budget >> 20);
        end_locked(dl, head, PX_ENOMEM, msg);
        return 0;
    }
    int n = 0;
    batch[n++] = head;
    *mem = need;
    for (int p = 0; p < PX_PRIO_COUNT && n < limit; p++)
        for (px_sched_item *it = l->head[p]; it && n < limit; it = it->next) {
            if (it == head || it->key != head->key || it->run != head->run) continue;
            if (it->deadline_ns && it->deadline_ns <= now) continue; /* dropped next round */
            size_t m = px_engine_mem_estimate(l->engine, n + 1, head->shape);
            if (m > budget) goto formed;
            batch[n++] = it;
            *mem = m;
        }
formed:
    if (n < limit && l->batching && s->cfg.max_delay_ns > 0 &&
        now < head->t_queued + s->cfg.max_delay_ns && !s->draining) {
        /* Not full yet: give stragglers until the oldest item's delay runs out. */
        *wait_until = head->t_queued + s->cfg.max_delay_ns;
        return 0;
    }
    int m = px_engine_ready(l->engine, n, batch_shape(batch, n));
    if (m == 0) {
        if (nwaiting < NOT_READY_MAX) {
            waiting[nwaiting++] = head;
            goto again;
        }
        *wait_until = now + NOT_READY_POLL_NS;
        return 0;
    }
    if (m < n) {
        n = m; /* the rest wait for their plan, queued */
        *mem = px_engine_mem_estimate(l->engine, n, head->shape);
    }
    for (int i = 0; i < n; i++) {
        unlink_item(l, batch[i]);
        batch[i]->state = S_RUNNING;
        batch[i]->t_started = now;
        batch[i]->batch_size = n;
    }
    return n;
}

/* After the engine: a raised cancel flag wins over the result, and a
 * result past its deadline is late. */
static void settle_item(px_sched_item *it, int64_t now)
{
    it->t_finished = now;
    if (atomic_load(&it->cancel)) {
        it->status = PX_ECANCELED;
        snprintf(it->err, sizeof it->err, "cancelled");
    } else if (it->status == 0 && it->deadline_ns && it->deadline_ns < now) {
        it->status = PX_ETIMEDOUT;
        snprintf(it->err, sizeof it->err, "deadline passed while computing");
    }
}


/* A continuous batch's engine time per item: the time since the rate was
 * last noted over the items that ended in it. Noted when the engine next
 * asks for joiners (or the run ends), so items that end at one step
 * boundary count as one burst, not as one long gap and several empty ones. */
static void note_run_rate_locked(px_sched_run *r)
{
    if (!r->ended) return;
    px_rate_note(&r->lane->rate, r->t_end - r->t_last, r->ended);
    r->t_last = r->t_end;
    r->ended = 0;
}

/* ------------------------------------------------------------ joining */

static int joinable(const px_sched_run *r, const px_sched_item *it)
{
    return it->key == r->key && it->run_join == r->fn;
}

/* Whether the lane's next item (by priority, then arrival) cannot join r
 * and has waited max_delay: then r takes no more joiners and drains, so a
 * stream of one size does not starve the others. */
static int others_waiting_locked(const px_sched *s, const px_sched_run *r, int64_t now)
{
    for (int p = 0; p < PX_PRIO_COUNT; p++)
        for (const px_sched_item *it = r->lane->head[p]; it; it = it->next) {
            if (it->deadline_ns && it->deadline_ns <= now) continue; /* dropped later */
            return !joinable(r, it) && now - it->t_queued >= s->cfg.max_delay_ns;
        }
    return 0;
}

/* Moves the device's reservation for r to m bytes. */
static void reserve_locked(px_sched_run *r, size_t m)
{
    r->lane->dev->mem_in_use = r->lane->dev->mem_in_use - r->mem + m;
    r->mem = m;
}

int px_sched_join(px_sched_run *r, px_sched_item **out, int max)
{
    px_sched *s = r->s;
    struct lane *l = r->lane;
    done_list dl = {.n = 0};
    int k = 0;
    pthread_mutex_lock(&s->mu);
    note_run_rate_locked(r);
    int64_t now = px_now_ns();
    int limit = s->cfg.max_batch < MAX_BATCH ? s->cfg.max_batch : MAX_BATCH;
    if (max > limit - r->nactive) max = limit - r->nactive;
    if (s->stop || others_waiting_locked(s, r, now)) max = 0;
    size_t budget = budget_locked(s, l) + r->mem; /* what this run may hold */
    for (int p = 0; p < PX_PRIO_COUNT && k < max; p++)
        for (px_sched_item *it = l->head[p], *nx; it && k < max && dl.n < 64; it = nx) {
            nx = it->next;
            if (!joinable(r, it)) continue;
            if (it->deadline_ns && it->deadline_ns <= now) {
                unlink_item(l, it);
                end_locked(&dl, it, PX_ETIMEDOUT, "deadline passed while queued");
                continue;
            }
            size_t m = px_engine_mem_estimate(l->engine, r->nactive + 1, r->shape);
            if (m > budget) goto full; /* the memory guard: wait for items to leave */
            unlink_item(l, it);
            if (!r->nactive) r->peak = 0; /* an emptied run revived: a new batch */
            it->state = S_RUNNING;
            it->t_started = now;
            it->batch_size = r->nactive + 1;
            r->active[r->nactive++] = it;
            if (r->nactive > r->peak) r->peak = r->nactive;
            reserve_locked(r, m);
            s->running++, l->running++, s->joins++;
            out[k++] = it;
        }
full:
    flush_done(s, &dl);
    signal_idle_locked(s);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < k; i++)
        if (out[i]->event) out[i]->event(out[i], PX_SCHED_STARTED, 0, 0, out[i]->done_arg);
    return k;
}

void px_sched_finish(px_sched_run *r, px_sched_item *it)
{
    px_sched *s = r->s;
    struct lane *l = r->lane;
    int64_t now = px_now_ns();
    settle_item(it, now);
    pthread_mutex_lock(&s->mu);
    int i = 0;
    while (i < r->nactive && r->active[i] != it) i++;
    if (i == r->nactive) { /* not running here, or finished twice */
        pthread_mutex_unlock(&s->mu);
        return;
    }
    r->active[i] = r->active[--r->nactive];
    reserve_locked(r, r->nactive ? px_engine_mem_estimate(l->engine, r->nactive, r->shape) : 0);
    s->running--, l->running--;
    pthread_cond_broadcast(&s->work); /* memory is free again */
    if (it->status == PX_ENOMEM && r->nactive > 0 && !it->oom_requeued && !s->draining) {
        /* Out of memory beside others: once more, when they have gone. */
        it->oom_requeued = 1;
        it->state = S_QUEUED;
        s->oom_splits++;
        insert_item(l, it);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    it->state = S_DONE;
    s->items_run++;
    r->ended++;
    r->t_end = now;
    if (!r->nactive) {
        /* The batch ends with its last item: counted before that item's
         * done runs, so whoever it wakes sees the batch in the stats. */
        note_run_rate_locked(r);
        s->batches++;
        s->batch_hist[hist_slot(r->peak)]++;
    }
    pthread_mutex_unlock(&s->mu);
    it->done(it, it->done_arg);
    pthread_mutex_lock(&s->mu);
    signal_idle_locked(s);
    pthread_mutex_unlock(&s->mu);
}

/* Runs a formed batch (its memory reserved) in continuous mode; returns
 * with the lock released and every item done. */
static void run_joined(px_sched *s, struct lane *l, px_sched_item **batch, int n, size_t mem)
{
    px_sched_run r = {.s = s, .lane = l, .key = batch[0]->key, .fn = batch[0]->run_join,
                      .shape = batch[0]->shape, .nactive = n, .peak = n, .mem = mem,
                      .t_last = px_now_ns()};
    memcpy(r.active, batch, (size_t)n * sizeof *batch);
    r.fn(l->engine, batch, n, &r);
    /* The adapter ends every item; one it left would hang its request. */
    while (r.nactive) {
        px_sched_item *it = r.active[0];
        if (!it->status || it->status == PX_ENOMEM) {
            it->status = PX_EIO;
            snprintf(it->err, sizeof it->err, "the engine did not finish the item");
        }
        px_sched_finish(&r, it);
    } /* the last px_sched_finish counted the batch */
}

static void timed_wait(pthread_cond_t *c, pthread_mutex_t *mu, int64_t until)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t wait = until - px_now_ns();
    if (wait <= 0) return;
    ts.tv_sec += wait / 1000000000;
    ts.tv_nsec += wait % 1000000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_cond_timedwait(c, mu, &ts);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    px_sched *s = w->s;
    struct lane *l = w->lane;
    px_sched_item *batch[MAX_BATCH];
    done_list dl = {.n = 0};
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && lane_empty(l)) pthread_cond_wait(&s->work, &s->mu);
        if (lane_empty(l)) break; /* stop, with nothing left */
        if (l->release == REL_WANTED) {
            l->release = REL_RUNNING;
            pthread_mutex_unlock(&s->mu);
            px_engine_release_caches(l->engine);
            pthread_mutex_lock(&s->mu);
            l->release = REL_DONE;
            s->cache_releases++;
            continue;
        }
        size_t mem = 0;
        int64_t until;
        int n = form_batch(s, l, batch, &mem, &until, &dl);
        if (n > 0) {
            /* Taken before the lock is dropped to flush: the batch's
             * memory and items count from the moment it is formed. */
            l->release = REL_NONE;
            s->running += n;
            l->running += n;
            l->dev->mem_in_use += mem;
        }
        if (dl.n) {
            /* Items dropped while the batch was formed (expired ahead of
             * it, or too big): completed now; the batch still runs. */
            flush_done(s, &dl);
            signal_idle_locked(s);
            if (n == 0) continue;
        }
        if (n == 0) {
            /* Memory wait or batch delay: sleep on the condition (memory
             * freed or items queued wake us), bounded by until when set,
             * else re-check every 50 ms; a release of caches first. */
            if (l->release != REL_WANTED)
                timed_wait(&s->work, &s->mu, until ? until : px_now_ns() + 50 * 1000000LL);
            continue;
        }
        pthread_mutex_unlock(&s->mu);

        for (int i = 0; i < n; i++)
            if (batch[i]->event)
                batch[i]->event(batch[i], PX_SCHED_STARTED, 0, 0, batch[i]->done_arg);
        if (l->joining && batch[0]->run_join) {
            run_joined(s, l, batch, n, mem);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        int64_t t0 = px_now_ns();
        run_items(s, l->engine, batch, n);
        int64_t t1 = px_now_ns();
        for (int i = 0; i < n; i++) settle_item(batch[i], t1);

        pthread_mutex_lock(&s->mu);
        s->running -= n;
        l->running -= n;
        l->dev->mem_in_use -= mem;
        s->batches++;
        s->items_run += (uint64_t)n;
        s->batch_hist[hist_slot(n)]++;
        px_rate_note(&l->rate, t1 - t0, n);
        for (int i = 0; i < n; i++) batch[i]->state = S_DONE;
        pthread_cond_broadcast(&s->work); /* memory is free again */
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < n; i++) batch[i]->done(batch[i], batch[i]->done_arg);
        pthread_mutex_lock(&s->mu);
        signal_idle_locked(s);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ------------------------------------------------------------ public */

px_sched *px_sched_create(const px_sched_config *cfg, px_engine *const *engines, int nengines)
{
    if (nengines < 1) return NULL;
    px_sched *s = px_xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    if (s->cfg.max_batch < 1) s->cfg.max_batch = 1;
    if (s->cfg.workers_per_engine < 1) s->cfg.workers_per_engine = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->idle, NULL);
    s->lanes = px_xcalloc((size_t)nengines, sizeof *s->lanes);
    s->devs = px_xcalloc((size_t)nengines, sizeof *s->devs);
    s->nlanes = nengines;
    for (int i = 0; i < nengines; i++) {
        struct lane *l = &s->lanes[i];
        l->engine = engines[i];
        l->batching = (px_engine_caps(engines[i]) & PX_ENGINE_CAP_BATCH) && s->cfg.max_batch > 1;
        l->joining = l->batching && s->cfg.join &&
                     (px_engine_caps(engines[i]) & PX_ENGINE_CAP_JOIN);
        const char *dev = px_engine_device(engines[i]);
        for (int d = 0; d < s->ndevs && !l->dev; d++)
            if (!strcmp(s->devs[d].name, dev)) l->dev = &s->devs[d];
        if (!l->dev) {
            l->dev = &s->devs[s->ndevs++];
            l->dev->name = dev;
        }
    }
    int total = nengines * s->cfg.workers_per_engine;
    s->workers = px_xcalloc((size_t)total, sizeof *s->workers);
    for (int i = 0; i < total; i++) {
        struct worker *w = &s->workers[i];
        w->s = s;
        w->lane = &s->lanes[i / s->cfg.workers_per_engine];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            px_sched_destroy(s);
            return NULL;
        }
        s->nworkers++;
    }
    return s;
}

int px_sched_submit(px_sched *s, px_sched_item *const *items, int n)
{
    pthread_mutex_lock(&s->mu);
    if (s->draining || s->stop) {
        pthread_mutex_unlock(&s->mu);
        return PX_ECANCELED;
    }
    for (int i = 0; i < n; i++)
        if (!lane_of(s, items[i]->engine) || (unsigned)items[i]->prio >= PX_PRIO_COUNT ||
            !items[i]->run) {
            pthread_mutex_unlock(&s->mu);
            return PX_EINVAL;
        }
    int64_t now = px_now_ns();
    for (int i = 0; i < n; i++) {
        px_sched_item *it = items[i];
        struct lane *l = lane_of(s, it->engine);
        atomic_init(&it->cancel, 0);
        it->status = 0;
        it->err[0] = 0;
        it->batch_size = 0;
        it->t_queued = now;
        it->t_started = it->t_finished = 0;
        if (!it->arrival_ns) it->arrival_ns = now;
        it->state = S_QUEUED;
        insert_item(l, it);
    }
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void px_sched_cancel(px_sched *s, px_sched_item *it)
{
    pthread_mutex_lock(&s->mu);
    if (it->state == S_QUEUED) {
        unlink_item(lane_of(s, it->engine), it);
        it->status = PX_ECANCELED;
        snprintf(it->err, sizeof it->err, "cancelled");
        it->state = S_DONE;
        it->t_finished = px_now_ns();
        signal_idle_locked(s);
        pthread_mutex_unlock(&s->mu);
        it->done(it, it->done_arg);
        return;
    }
    if (it->state == S_RUNNING) atomic_store(&it->cancel, 1);
    pthread_mutex_unlock(&s->mu);
}

int px_sched_batches(const px_sched *s, const px_engine *e)
{
    /* Fixed at creation: no lock needed. */
    for (int i = 0; i < s->nlanes; i++)
        if (s->lanes[i].engine == e) return s->lanes[i].batching;
    return 0;
}

int px_sched_position(px_sched *s, const px_sched_item *it)
{
    pthread_mutex_lock(&s->mu);
    int pos = -1;
    if (it->state == S_QUEUED) {
        struct lane *l = lane_of(s, it->engine);
        pos = 0;
        for (int p = 0; p < (int)it->prio; p++) pos += l->queued[p];
        for (px_sched_item *x = l->head[it->prio]; x && x != it; x = x->next) pos++;
    }
    pthread_mutex_unlock(&s->mu);
    return pos;
}

void px_sched_stats_get(px_sched *s, px_sched_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nlanes; i++)
        for (int p = 0; p < PX_PRIO_COUNT; p++) st->queued[p] += s->lanes[i].queued[p];
    st->running = s->running;
    st->batches = s->batches;
    st->items_run = s->items_run;
    st->oom_splits = s->oom_splits;
    st->joins = s->joins;
    st->cache_releases = s->cache_releases;
    memcpy(st->batch_hist, s->batch_hist, sizeof st->batch_hist);
    for (int d = 0; d < s->ndevs; d++) st->mem_in_use += s->devs[d].mem_in_use;
    pthread_mutex_unlock(&s->mu);
}

int px_sched_lane_stats_get(px_sched *s, const px_engine *e, px_sched_lane_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&s->mu);
    struct lane *l = lane_of(s, e);
    if (l) {
        memcpy(st->queued, l->queued, sizeof st->queued);
        st->running = l->running;
        st->workers = s->cfg.workers_per_engine;
        st->mean_item_ms = px_rate_item_ms(&l->rate);
        st->mem_in_use = l->dev->mem_in_use;
    }
    pthread_mutex_unlock(&s->mu);
    return l ? 0 : PX_EINVAL;
}

void px_sched_drain(px_sched *s)
{
    pthread_mutex_lock(&s->mu);
    s->draining = 1;
    pthread_cond_broadcast(&s->work); /* batches stop waiting for stragglers */
    for (;;) {
        int busy = s->running > 0;
        for (int i = 0; i < s->nlanes && !busy; i++) busy = !lane_empty(&s->lanes[i]);
        if (!busy) break;
        pthread_cond_wait(&s->idle, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

void px_sched_destroy(px_sched *s)
{
    if (!s) return;
    if (s->nworkers == s->nlanes * s->cfg.workers_per_engine) px_sched_drain(s);
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nworkers; i++) pthread_join(s->workers[i].thread, NULL);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s->workers);
    free(s->devs);
    free(s->lanes);
    free(s);
}
