/*
 * task.c — tasks through prep (CPU pool) → device (scheduler) → finish
 * (CPU pool), with one deadline timer per task; the kind's hooks do the
 * request-specific work (see task.h, kind.h).
 *
 * Ending exactly once: end_task() decides under the task's mutex; the first
 * caller wins, records the reply, and then (without the lock) releases the
 * admission slot, cancels whatever work is still in flight and calls the
 * owner. Every holder of in-flight work (the CPU work item, the scheduler
 * items, the timer) holds its own reference, so a task lives until the last
 * of them lets go, whatever order they finish in.
 *
 * Lock order: task, then scheduler (items are submitted and positions read
 * under the task's lock); the scheduler calls back without its lock.
 * What a task shows (reply, timings, jobs-API status) is task_status.c.
 */
#include "serve/task.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "serve/task_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ references */

void px_task_ref(px_task *t)
{
    atomic_fetch_add(&t->refs, 1);
}

/* ------------------------------------------------------------ watchers */

/* Tells every watcher that something changed; drops those that say they
 * are done. Never called with the task's lock held (watchers read the
 * task's status). */
static void notify(px_task *t)
{
    pthread_mutex_lock(&t->wmu);
    for (int i = 0; i < PX_TASK_MAX_WATCHERS; i++) {
        if (!t->watch[i].fn || !t->watch[i].fn(t->watch[i].arg)) continue;
        if (t->watch[i].release) t->watch[i].release(t->watch[i].arg);
        t->watch[i].fn = NULL;
    }
    pthread_mutex_unlock(&t->wmu);
}

static void release_watchers(px_task *t)
{
    pthread_mutex_lock(&t->wmu);
    for (int i = 0; i < PX_TASK_MAX_WATCHERS; i++) {
        if (t->watch[i].fn && t->watch[i].release) t->watch[i].release(t->watch[i].arg);
        t->watch[i].fn = NULL;
    }
    pthread_mutex_unlock(&t->wmu);
}

int px_task_watch(px_task *t, px_task_watch_fn fn, void (*release)(void *arg), void *arg)
{
    int rc = PX_EBUSY;
    pthread_mutex_lock(&t->wmu);
    pthread_mutex_lock(&t->mu);
    int ended = t->outcome != OUT_NONE;
    pthread_mutex_unlock(&t->mu);
    if (ended) rc = PX_EINVAL;
    for (int i = 0; !ended && i < PX_TASK_MAX_WATCHERS; i++)
        if (!t->watch[i].fn) {
            t->watch[i].fn = fn;
            t->watch[i].release = release;
            t->watch[i].arg = arg;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&t->wmu);
    return rc;
}

/* ------------------------------------------------------------ references */

void px_task_unref(px_task *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1) return;
    px_tasks *p = t->p;
    release_watchers(t);
    pthread_mutex_destroy(&t->wmu);
    if (t->req) t->kind->free(t->req);
    free(t->items);
    free(t->body);
    px_buf_free(&t->reply);
    pthread_mutex_destroy(&t->mu);
    free(t);
    pthread_mutex_lock(&p->mu);
    p->tasks--;
    pthread_mutex_unlock(&p->mu);
}

/* px_work context hooks: a CPU work item holds a task reference. */
static void work_ctx_free(void *ctx)
{
    px_task_unref(ctx);
}

static px_kind_ctx kind_ctx(px_task *t)
{
    px_engine *e = t->engine_index >= 0 ? t->p->engines[t->engine_index] : NULL;
    return (px_kind_ctx){.env = &t->p->env,
                         .task = t,
                         .engine = e,
                         .dialect = t->dialect,
                         .async = t->async,
                         .content_type = t->content_type, .host = t->host};
}

/* ------------------------------------------------------------ admission */

/* What the scheduler knows of the task's engine: the items ahead of a new
 * one of the task's priority, the engine's workers and time per item. */
static px_admit_load engine_load(px_tasks *p, const px_task *t)
{
    px_sched_lane_stats st;
    px_sched_lane_stats_get(p->sched, p->engines[t->engine_index], &st);
    px_admit_load l = {.sched_ahead = st.running,
                       .workers = st.workers > 0 ? st.workers : 1,
                       .item_ms = st.mean_item_ms,
                       .budget_ms = (t->deadline_ns - px_now_ns()) / 1000000};
    for (int i = 0; i <= (int)t->prio; i++) l.sched_ahead += st.queued[i];
    return l;
}

/* Seconds a client refused by a safety bound should wait: the work ahead
 * on the task's engine at its measured time per item, spread over its
 * device workers; at least 1. */
static int retry_after(const px_admit_load *l)
{
    double per = l->item_ms > 0 ? l->item_ms : 1000.0;
    int s = (int)(per * (l->sched_ahead + 1) / l->workers / 1000.0 + 0.999);
    return s < 1 ? 1 : s;
}

/* Admits the task (deadline test, then the safety bounds) or explains why
 * not, with the Retry-After seconds in *retry_s. Called with the task's
 * lock held, so that end_task sees either no slot or a slot it must
 * release (never a slot being taken). */
static int admit(px_tasks *p, px_task *t, int *retry_s, char *err, size_t errlen)
{
    *retry_s = 0;
    if (t->outcome != OUT_NONE) return px_errf(err, errlen, PX_ECANCELED, "ended");
    px_admit_load load = engine_load(p, t);
    int rc = px_admit_take(p->admit, t->engine_index, t->prio, t->client, &load, retry_s, err,
                           errlen);
    if (rc && *retry_s <= 0) *retry_s = retry_after(&load);
    t->admitted = rc == 0;
    return rc;
}

/* ------------------------------------------------------------ ending */

/* The task's error reply: the kind's shape for its dialect, else ours. */
static void error_body(const px_task *t, px_buf *b, int code, const char *msg)
{
    px_buf_free(b);
    px_buf_init(b, 1 << 16);
    if (t->kind->error_body) {
        t->kind->error_body(t->dialect, code, msg, b);
        return;
    }
    px_kind_error_json(code, msg, b);
}

static enum px_outcome metric_outcome(enum outcome out, int code)
{
    return out == OUT_DONE        ? PX_OUTCOME_COMPLETED
           : out == OUT_EXPIRED   ? PX_OUTCOME_TIMEOUT
           : out == OUT_CANCELLED ? PX_OUTCOME_CANCELLED
           : code == PX_EBUSY     ? PX_OUTCOME_REJECTED
                                  : PX_OUTCOME_FAILED;
}

/*
 * Ends the task once. reply (may be NULL) is moved in. from_timer says the
 * caller is the task's own deadline callback (which must not disarm
 * itself). Returns 1 if this call ended it.
 */
static int end_task(px_task *t, enum outcome out, int code, const char *msg, px_kind_reply *reply,
                    int from_timer)
{
    px_tasks *p = t->p;
    pthread_mutex_lock(&t->mu);
    if (t->outcome != OUT_NONE) {
        pthread_mutex_unlock(&t->mu);
        if (reply) px_buf_free(&reply->body);
        return 0;
    }
    t->outcome = out;
    t->stage = ST_ENDED;
    t->t_finished = px_now_ns();
    t->code = code;
    t->http_status = reply ? 200 : out == OUT_CANCELLED ? 499 : px_err_http_status(code);
    if (reply) {
        px_buf_free(&t->reply);
        t->reply = reply->body;
        px_buf_init(&reply->body, 0);
        t->content_type_out = reply->content_type;
        if (reply->header_name) {
            t->hdr_name = reply->header_name;
            snprintf(t->hdr_value, sizeof t->hdr_value, "%s", reply->header_value);
        }
    } else {
        error_body(t, &t->reply, code, msg);
        t->content_type_out = "application/json";
    }
    px_work *wk = t->cpu_work;
    t->cpu_work = NULL;
    int submitted = t->items_submitted;
    uint64_t timer = t->timer_id;
    px_task_done_fn done = t->done;
    void *done_arg = t->done_arg;
    int admitted = t->admitted, engine_index = t->engine_index;
    pthread_mutex_unlock(&t->mu);

    if (admitted) px_admit_release(p->admit, engine_index, t->prio, t->client);
    pthread_mutex_lock(&p->mu);
    if (--p->active == 0) pthread_cond_broadcast(&p->idle);
    pthread_mutex_unlock(&p->mu);
    if (engine_index >= 0) px_metrics_inference(p->env.metrics, engine_index, code);
    px_metrics_outcome(p->env.metrics, px_kind_index(t->kind), metric_outcome(out, code));
    if (code) px_metrics_error(p->env.metrics, code);
    /* Stop the work still in flight; its results are dropped. */
    if (wk) {
        px_workers_cancel(p->cpu, wk);
        px_work_unref(wk);
    }
    if (submitted)
        for (int i = 0; i < t->nitems; i++) px_sched_cancel(p->sched, &t->items[i]);
    if (!from_timer && timer && px_timer_disarm(p->timers, timer)) px_task_unref(t);
    notify(t);
    release_watchers(t); /* nothing changes any more */
    if (done) done(t, done_arg);
    return 1;
}

static void fail_task(px_task *t, int code, const char *msg)
{
    end_task(t, OUT_FAILED, code, msg, NULL, 0);
}

/* Ends the task as expired: its deadline passed, whether its own timer
 * or the scheduler (an item's deadline, the same one) noticed it first. */
static void expire_task(px_task *t, int from_timer)
{
    pthread_mutex_lock(&t->mu);
    double q, inf;
    px_task_stage_ms(t, &q, &inf);
    int64_t waited = px_now_ns() - t->arrival_ns;
    pthread_mutex_unlock(&t->mu);
    char msg[200];
    snprintf(msg, sizeof msg,
             "the request did not finish within its deadline (%.0f ms: %.0f ms queued, %.0f ms "
             "computing); the work was abandoned",
             px_ns_to_ms(waited), q, inf);
    end_task(t, OUT_EXPIRED, PX_ETIMEDOUT, msg, NULL, from_timer);
}

static void on_deadline(void *arg)
{
    px_task *t = arg;
    expire_task(t, 1);
    px_task_unref(t); /* the timer's reference */
}

int px_task_cancel(px_task *t)
{
    return end_task(t, OUT_CANCELLED, PX_ECANCELED, "the request was cancelled", NULL, 0)
               ? 0
               : PX_EINVAL;
}

void px_task_detach(px_task *t)
{
    pthread_mutex_lock(&t->mu);
    t->done = NULL;
    t->done_arg = NULL;
    pthread_mutex_unlock(&t->mu);
}

/* The CPU work item is done with the task's own work (what remains is
 * handed on): forget it so that end_task does not cancel it. */
static void release_cpu_work(px_task *t)
{
    pthread_mutex_lock(&t->mu);
    px_work *wk = t->cpu_work;
    t->cpu_work = NULL;
    pthread_mutex_unlock(&t->mu);
    if (wk) px_work_unref(wk);
}

/* Queues fn on the CPU pool as the task's current work (with its own task
 * reference); urgent work (finish) goes ahead of new requests and is never
 * refused for capacity. Returns 0 (also when the task has ended: nothing
 * is queued then), or the pool's error. */
static int queue_cpu_work(px_task *t, px_work_fn fn, int urgent)
{
    px_tasks *p = t->p;
    px_task_ref(t);
    px_work *wk = px_work_new(fn, t, work_ctx_free, 0, NULL, NULL);
    pthread_mutex_lock(&t->mu);
    if (t->outcome != OUT_NONE) { /* ended meanwhile: nothing left to do */
        pthread_mutex_unlock(&t->mu);
        px_work_unref(wk); /* drops the reference just taken */
        return 0;
    }
    t->cpu_work = wk;
    px_work_ref(wk);
    pthread_mutex_unlock(&t->mu);
    int rc = urgent ? px_workers_submit_urgent(p->cpu, wk) : px_workers_submit(p->cpu, wk);
    if (rc) {
        pthread_mutex_lock(&t->mu);
        if (t->cpu_work == wk) t->cpu_work = NULL, px_work_unref(wk);
        pthread_mutex_unlock(&t->mu);
    }
    px_work_unref(wk);
    return rc;
}

/* ------------------------------------------------------------ stage times */

void px_task_note_stage(px_task *t, enum px_stage stage, int64_t ns)
{
    pthread_mutex_lock(&t->mu);
    if (stage == PX_STAGE_DECODE)
        t->decode_ns = ns;
    else if (stage == PX_STAGE_ENCODE)
        t->encode_ns = ns;
    pthread_mutex_unlock(&t->mu);
    px_metrics_stage(t->p->env.metrics, px_kind_index(t->kind), stage, (double)ns / 1e9);
}

void px_task_note_save(px_task *t, int64_t ns)
{
    pthread_mutex_lock(&t->mu);
    t->save_ns = ns;
    pthread_mutex_unlock(&t->mu);
}

/* After a hook: the stage's time is the hook's unless the kind noted it. */
static void note_default(px_task *t, enum px_stage stage, int64_t ns)
{
    pthread_mutex_lock(&t->mu);
    int noted = stage == PX_STAGE_DECODE ? t->decode_ns != 0 : t->encode_ns != 0;
    pthread_mutex_unlock(&t->mu);
    if (!noted) px_task_note_stage(t, stage, ns);
}

/* ------------------------------------------------------------ finish */

static int finish_work(void *ctx, const atomic_int *cancel)
{
    px_task *t = ctx;
    (void)cancel;
    char err[256];
    release_cpu_work(t);
    pthread_mutex_lock(&t->mu);
    int ended = t->outcome != OUT_NONE;
    if (!ended) t->stage = ST_FINISH;
    pthread_mutex_unlock(&t->mu);
    if (ended) return 0;
    notify(t);

    px_kind_ctx kc = kind_ctx(t);
    px_kind_reply r = {.content_type = NULL};
    px_buf_init(&r.body, 0);
    int64_t t0 = px_now_ns();
    int rc = t->kind->finish(&kc, t->req, &r, err, sizeof err);
    if (rc) {
        px_buf_free(&r.body);
        fail_task(t, rc, err);
        return rc;
    }
    pthread_mutex_lock(&t->mu);
    int64_t hook_ns = px_now_ns() - t0 - t->save_ns;
    pthread_mutex_unlock(&t->mu);
    note_default(t, PX_STAGE_ENCODE, hook_ns);
    end_task(t, OUT_DONE, 0, NULL, &r, 0);
    return 0;
}

/* Queues the task's finish work; on a failure to queue, ends the task. */
static void start_finish(px_task *t)
{
    if (queue_cpu_work(t, finish_work, 1)) fail_task(t, PX_ECANCELED, "shutting down");
}

/* ------------------------------------------------------------ device */

/* Scheduler events: the device started on an item, or reports a step. */
static void on_item_event(px_sched_item *it, enum px_sched_event ev, int step, int steps, void *arg)
{
    px_task *t = arg;
    pthread_mutex_lock(&t->mu);
    if (ev == PX_SCHED_STARTED) {
        if (!t->t_started || it->t_started < t->t_started) t->t_started = it->t_started;
        if (it->batch_size > t->batch_size) t->batch_size = it->batch_size;
        if (t->stage == ST_QUEUED) t->stage = ST_INFER;
        t->step = 0; /* the next item's steps (a request's items run one by one) */
    } else if (ev == PX_SCHED_PROGRESS) {
        if (step != t->step || steps != t->steps) {
            int k = t->ticks++ % PX_TASK_TICK_LOG;
            t->tick_log[k].step = (short)step;
            t->tick_log[k].steps = (short)steps;
        }
        t->step = step;
        t->steps = steps;
    }
    pthread_mutex_unlock(&t->mu);
    notify(t);
}

/* The engine is done with the task's items, or never got them: the kind
 * lets go of what only they needed. Called by whichever path owns the
 * items then (prep before they are queued, the last item's end after). */
static void release_items(px_task *t)
{
    if (t->kind->release && t->req) t->kind->release(t->req);
}

static void on_item_done(px_sched_item *it, void *arg)
{
    px_task *t = arg;
    px_tasks *p = t->p;
    pthread_mutex_lock(&t->mu);
    if (it->status && !t->item_rc) {
        t->item_rc = it->status;
        snprintf(t->item_err, sizeof t->item_err, "%s", it->err);
    }
    int last = --t->items_left == 0;
    if (last) t->t_infer_end = px_now_ns();
    int rc = t->item_rc;
    char msg[160];
    snprintf(msg, sizeof msg, "%s", t->item_err);
    int64_t started = t->t_started, queued = t->t_queued, end = t->t_infer_end;
    /* The scheduler drops items whose deadline (the task's) passed; on a
     * loaded machine it may see that before the task's timer fires. */
    int expired = rc == PX_ETIMEDOUT && t->deadline_ns && px_now_ns() >= t->deadline_ns;
    pthread_mutex_unlock(&t->mu);
    if (!last) return;
    release_items(t);
    if (started) {
        int k = px_kind_index(t->kind);
        px_metrics_stage(p->env.metrics, k, PX_STAGE_QUEUE, (double)(started - queued) / 1e9);
        px_metrics_stage(p->env.metrics, k, PX_STAGE_INFER, (double)(end - started) / 1e9);
    }
    if (expired)
        expire_task(t, 0);
    else if (rc)
        fail_task(t, rc, msg);
    else
        start_finish(t);
    px_task_unref(t); /* the items' reference */
}

/* Makes the kind's n engine items and queues them on the scheduler.
 * Returns 0 (also when the task ended meanwhile) or PX_ECANCELED. */
static int submit_items(px_task *t, px_kind_ctx *kc, int n)
{
    px_tasks *p = t->p;
    t->items = px_xcalloc((size_t)n, sizeof *t->items);
    t->kind->make_items(kc, t->req, t->items, n);
    px_sched_item *ptrs[64];
    px_sched_item **list = n <= 64 ? ptrs : px_xmalloc((size_t)n * sizeof *list);
    for (int i = 0; i < n; i++) {
        px_sched_item *it = &t->items[i];
        it->engine = kc->engine;
        it->run = t->kind->run;
        it->run_join = t->kind->run_join;
        it->prio = t->prio;
        it->deadline_ns = t->deadline_ns;
        it->arrival_ns = t->arrival_ns;
        it->done = on_item_done;
        it->event = on_item_event;
        it->done_arg = t;
        list[i] = it;
    }
    /* The items hold one reference between them, dropped by the last. */
    px_task_ref(t);
    pthread_mutex_lock(&t->mu);
    int rc = 0;
    if (t->outcome == OUT_NONE) {
        t->nitems = t->items_left = n;
        t->stage = ST_QUEUED;
        t->t_queued = px_now_ns();
        t->items_submitted = 1;
        /* Submitting under the task lock: an end_task racing with us either
         * happened before (seen above) or waits and then cancels the items. */
        rc = px_sched_submit(p->sched, list, n);
        if (rc) t->items_submitted = 0;
    }
    int queued = t->items_submitted;
    pthread_mutex_unlock(&t->mu);
    if (list != ptrs) free(list);
    if (!queued) {
        release_items(t); /* ended meanwhile: the items never run */
        px_task_unref(t);
    }
    return rc ? PX_ECANCELED : 0;
}

/* ------------------------------------------------------------ prep */

/* Picks the request's engine among those of the kind's engine kind (the
 * first is the default) and its priority. */
static int choose_engine(px_task *t, const px_kind_opts *o, char *err, size_t errlen)
{
    px_tasks *p = t->p;
    int ei = -1;
    const char *want = o->engine[0] ? o->engine : t->default_engine;
    for (int i = 0; i < p->nengines && ei < 0; i++) {
        if (px_engine_kind_of(p->engines[i]) != t->kind->engine_kind) continue;
        if (!want[0] || !strcmp(px_engine_name(p->engines[i]), want)) ei = i;
    }
    if (ei < 0 && !o->engine[0]) /* the server's choice went away: its kind's first */
        for (int i = 0; i < p->nengines && ei < 0; i++)
            if (px_engine_kind_of(p->engines[i]) == t->kind->engine_kind) ei = i;
    if (ei < 0) {
        char names[200] = "";
        for (int i = 0; i < p->nengines; i++)
            if (px_engine_kind_of(p->engines[i]) == t->kind->engine_kind)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                         names[0] ? ", " : "", px_engine_name(p->engines[i]));
        if (!o->engine[0])
            return px_errf(err, errlen, PX_EUNAVAIL, "no %s engine is loaded", t->kind->name);
        int code = t->kind->unknown_engine_code ? t->kind->unknown_engine_code : PX_EINVAL;
        return px_errf(err, errlen, code, "engine '%s' is not loaded (loaded: %s)", o->engine,
                       names);
    }
    pthread_mutex_lock(&t->mu);
    t->engine_index = ei;
    t->prio = o->priority >= 0 ? (enum px_priority)o->priority : PX_PRIO_NORMAL;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

/* The body asked for its own deadline: move the timer (its reference
 * passes to the new one). */
static void move_deadline(px_task *t, int64_t timeout_ms)
{
    px_tasks *p = t->p;
    int64_t dl = t->arrival_ns + timeout_ms * 1000000;
    pthread_mutex_lock(&t->mu);
    uint64_t old = t->outcome == OUT_NONE ? t->timer_id : 0;
    pthread_mutex_unlock(&t->mu);
    if (!old || !px_timer_disarm(p->timers, old)) return;
    pthread_mutex_lock(&t->mu);
    t->deadline_ns = dl;
    int keep = t->outcome == OUT_NONE && t->timer_id == old;
    t->timer_id = keep ? px_timer_arm(p->timers, dl, on_deadline, t) : 0;
    pthread_mutex_unlock(&t->mu);
    if (!keep) px_task_unref(t);
}

static int prep_work(void *ctx, const atomic_int *cancel)
{
    px_task *t = ctx;
    px_tasks *p = t->p;
    char err[320];
    (void)cancel;
    px_kind_ctx kc = kind_ctx(t);
    px_kind_opts opts = {.priority = -1};
    /* Parse (the body is freed as soon as it is parsed). */
    int rc = t->kind->parse(&kc, t->body, t->body_len, &t->req, &opts, err, sizeof err);
    free(t->body);
    t->body = NULL;
    if (rc || (rc = choose_engine(t, &opts, err, sizeof err))) goto fail;
    kc = kind_ctx(t);
    if (t->kind->check && (rc = t->kind->check(&kc, t->req, err, sizeof err))) goto fail;
    if (opts.timeout_ms > 0) move_deadline(t, opts.timeout_ms);

    /* Admission: the request holds a slot of its priority until it ends. */
    int retry_s = 0;
    pthread_mutex_lock(&t->mu);
    rc = admit(p, t, &retry_s, err, sizeof err);
    pthread_mutex_unlock(&t->mu);
    if (rc) {
        snprintf(t->hdr_value, sizeof t->hdr_value, "%d", retry_s);
        t->hdr_name = "Retry-After";
        goto fail;
    }

    pthread_mutex_lock(&t->mu);
    if (t->outcome == OUT_NONE) t->stage = ST_PREPARE;
    pthread_mutex_unlock(&t->mu);
    notify(t);
    int n = 0;
    int64_t t0 = px_now_ns();
    if ((rc = t->kind->prepare(&kc, t->req, &n, err, sizeof err))) goto fail;
    note_default(t, PX_STAGE_DECODE, px_now_ns() - t0);
    release_cpu_work(t); /* from here on the work is handed on, not cancelled */

    if (n == 0) { /* nothing for the engine (an empty mask): finish at once */
        release_items(t);
        start_finish(t);
        return 0;
    }
    if (submit_items(t, &kc, n)) {
        rc = px_errf(err, sizeof err, PX_ECANCELED, "the service is shutting down");
        goto fail;
    }
    return 0;
fail:
    fail_task(t, rc, err);
    release_items(t); /* no item was queued */
    return rc;
}

/* ------------------------------------------------------------ public */

px_tasks *px_tasks_create(const px_serve_config *cfg, px_engine *const *engines, int nengines,
                          px_outputs *outputs, px_metrics *metrics, char *err, size_t errlen)
{
    px_tasks *p = px_xcalloc(1, sizeof *p);
    p->cfg = cfg;
    p->engines = engines;
    p->nengines = nengines;
    p->env = (px_kind_env){.cfg = cfg,
                           .outputs = outputs,
                           .metrics = metrics,
                           .limits = {.max_pixels = cfg->max_pixels, .max_side = cfg->max_side}};
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->idle, NULL);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int cpu = cfg->cpu_workers > 0 ? cfg->cpu_workers : (ncpu > 0 ? (int)ncpu : 2);
    px_sched_config sc;
    px_sched_defaults(&sc);
    sc.max_batch = cfg->max_batch;
    sc.max_delay_ns = (int64_t)cfg->max_queue_delay_ms * 1000000;
    sc.join = cfg->continuous_batching;
    /* --workers, else one per device of the engine that has the most. */
    p->workers_per_engine = cfg->workers;
    for (int i = 0; cfg->workers <= 0 && i < nengines; i++) {
        int n = px_engine_parallelism(engines[i]);
        if (n > p->workers_per_engine) p->workers_per_engine = n;
    }
    sc.workers_per_engine = p->workers_per_engine;
    sc.mem_limit = cfg->memory_limit;
    sc.mem_reserve = cfg->memory_reserve;
    p->admit = px_admit_create(nengines, cfg->queue, cfg->max_per_client);
    p->cpu = px_workers_create(cpu, cfg->cpu_queue);
    p->sched = px_sched_create(&sc, engines, nengines);
    p->timers = px_timers_create();
    if (!p->cpu || !p->sched || !p->timers) {
        px_errf(err, errlen, PX_ENOMEM, "cannot start the serving threads");
        px_workers_destroy(p->cpu);
        px_sched_destroy(p->sched);
        px_timers_destroy(p->timers);
        px_admit_destroy(p->admit);
        free(p);
        return NULL;
    }
    p->env.sched = p->sched;
    const char *names[PX_METRICS_MAX_ENGINES];
    for (int i = 0; i < nengines && i < PX_METRICS_MAX_ENGINES; i++)
        names[i] = px_engine_name(engines[i]);
    px_metrics_set_engines(metrics, names, nengines);
    px_kind_register_metrics(metrics);
    return p;
}

static px_task *task_new(px_tasks *p, px_task_spec *spec)
{
    px_task *t = px_xcalloc(1, sizeof *t);
    atomic_init(&t->refs, 1); /* the caller's */
    t->p = p;
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->wmu, NULL);
    t->kind = spec->kind;
    t->dialect = spec->dialect;
    t->async = spec->async;
    snprintf(t->content_type, sizeof t->content_type, "%s",
             spec->content_type ? spec->content_type : "");
    t->body = spec->body;
    t->body_len = spec->body_len;
    spec->body = NULL;
    snprintf(t->client, sizeof t->client, "%s", spec->client ? spec->client : "");
    snprintf(t->host, sizeof t->host, "%s", spec->host ? spec->host : "");
    snprintf(t->default_engine, sizeof t->default_engine, "%s",
             spec->default_engine ? spec->default_engine : "");
    t->arrival_ns = spec->arrival_ns ? spec->arrival_ns : px_now_ns();
    t->created_ms = px_wall_ms();
    int64_t timeout = spec->timeout_ms > 0 ? spec->timeout_ms : p->cfg->timeout_ms;
    t->deadline_ns = t->arrival_ns + timeout * 1000000;
    t->done = spec->done;
    t->done_arg = spec->done_arg;
    t->engine_index = -1;
    t->stage = ST_PREP;
    px_buf_init(&t->reply, 0);
    return t;
}

int px_tasks_submit(px_tasks *p, px_task_spec *spec, px_task **out, int *retry_after_s)
{
    *out = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->draining || !spec->kind) {
        pthread_mutex_unlock(&p->mu);
        free(spec->body);
        spec->body = NULL;
        return PX_ECANCELED;
    }
    p->tasks++;
    p->active++;
    pthread_mutex_unlock(&p->mu);

    px_task *t = task_new(p, spec);
    /* The deadline holds whatever stage the task is in; armed before the
     * prep work can run (prep may move it to the body's timeout_ms). */
    px_task_ref(t);
    pthread_mutex_lock(&t->mu); /* the timer may fire (and end it) at once */
    t->timer_id = px_timer_arm(p->timers, t->deadline_ns, on_deadline, t);
    pthread_mutex_unlock(&t->mu);
    int rc = queue_cpu_work(t, prep_work, 0);
    if (rc) {
        /* Nobody else has seen the task: take it apart quietly; the caller
         * answers this request itself (and counts it). */
        *retry_after_s = px_workers_retry_after_s(p->cpu);
        pthread_mutex_lock(&t->mu);
        t->outcome = OUT_FAILED;
        uint64_t timer = t->timer_id;
        pthread_mutex_unlock(&t->mu);
        if (px_timer_disarm(p->timers, timer)) px_task_unref(t);
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0) pthread_cond_broadcast(&p->idle);
        pthread_mutex_unlock(&p->mu);
        px_task_unref(t);
        return rc;
    }
    *out = t;
    return 0;
}

void px_tasks_set_loras(px_tasks *p, px_loras *loras)
{
    p->env.loras = loras;
}

void px_tasks_stats_get(px_tasks *p, px_tasks_stats *s)
{
    memset(s, 0, sizeof *s);
    px_sched_stats_get(p->sched, &s->sched);
    px_workers_stats ws;
    px_workers_stats_get(p->cpu, &ws);
    s->cpu_queued = ws.queued;
    s->cpu_running = ws.running;
    s->workers = p->nengines * p->workers_per_engine;
    px_admit_pending(p->admit, s->pending);
    pthread_mutex_lock(&p->mu);
    s->tasks = p->tasks;
    pthread_mutex_unlock(&p->mu);
}

void px_tasks_drain(px_tasks *p)
{
    pthread_mutex_lock(&p->mu);
    p->draining = 1;
    while (p->active > 0) pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
    /* Every task has ended; let the work still running for ended tasks
     * (cancelled, timed out) return before anything is torn down. */
    px_sched_drain(p->sched);
    px_workers_drain(p->cpu);
}

void px_tasks_destroy(px_tasks *p)
{
    if (!p) return;
    px_tasks_drain(p);
    px_timers_destroy(p->timers);
    px_sched_destroy(p->sched);
    px_workers_destroy(p->cpu);
    px_admit_destroy(p->admit);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
