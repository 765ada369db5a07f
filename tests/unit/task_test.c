/*
 * task_test.c — the kind-neutral task lifecycle (serve/task.c) with a test
 * request kind and a fake generate engine: a task ends exactly once, with
 * the owner's callback run once, whether completion, cancel (DELETE), the
 * deadline or a disconnect (detach + cancel, as the HTTP layer does) wins;
 * admission slots, references and tasks all come back; progress events
 * from the run adapter reach the status JSON; admission refuses with a
 * Retry-After from the engine's own service rate; the kind's release hook
 * runs on every path, and only once the engine is done with the items.
 *
 * The test kind's body is text: "n=ITEMS work=MS steps=S fail=CODE".
 */
#include "core/clock.h"
#include "core/err.h"
#include "core/rng.h"
#include "core/timer.h"
#include "engine/engine_impl.h"
#include "harness.h"
#include "serve/task.h"
#include "serve/task_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ fake engine */

static size_t fake_mem(const px_engine *e, int n, const px_engine_shape *s)
{
    (void)e;
    return (size_t)n * (size_t)s->w * (size_t)s->h;
}

static int fake_run(px_engine *e, px_engine_item *items, int n)
{
    (void)e, (void)items, (void)n;
    return PX_EINVAL; /* the test kind's adapter never calls the engine */
}

static const px_engine_ops fake_ops = {
    .name = "fakegen",
    .caps = PX_ENGINE_CAP_BATCH,
    .kind = PX_ENGINE_GENERATE,
    .mem_estimate = fake_mem,
    .run = fake_run,
};

static px_engine g_engine = {.ops = &fake_ops, .device = "cpu"};

/* ------------------------------------------------------------ test kind */

struct treq {
    int n, work_ms, steps, fail;
    int *units; /* one payload per item: its index */
    atomic_int released; /* the release hook ran (the engine is done with the items) */
};

/* Requests freed without the release hook having run, and batches that
 * saw their request released while they still ran: both must stay 0. */
static atomic_int g_unreleased, g_released_early;

static int tk_parse(const px_kind_ctx *c, const uint8_t *body, size_t len, void **out,
                    px_kind_opts *o, char *err, size_t errlen)
{
    (void)c, (void)o;
    char text[128];
    snprintf(text, sizeof text, "%.*s", (int)(len < 127 ? len : 127), (const char *)body);
    struct treq *r = calloc(1, sizeof *r);
    *out = r;
    if (sscanf(text, "n=%d work=%d steps=%d fail=%d", &r->n, &r->work_ms, &r->steps, &r->fail) != 4)
        return px_errf(err, errlen, PX_EINVAL, "bad test body '%s'", text);
    const char *e = strstr(text, "engine=");
    if (e) sscanf(e + 7, "%31s", o->engine);
    return 0;
}

static int tk_prepare(const px_kind_ctx *c, void *p, int *n, char *err, size_t errlen)
{
    (void)c, (void)err, (void)errlen;
    struct treq *r = p;
    *n = r->n;
    return 0;
}

static void tk_make_items(const px_kind_ctx *c, void *p, px_sched_item *items, int n)
{
    (void)c;
    struct treq *r = p;
    r->units = calloc((size_t)n, sizeof *r->units);
    for (int i = 0; i < n; i++) {
        items[i].payload = r;
        items[i].shape = (px_engine_shape){8, 8, r->steps, 0};
        items[i].key = px_kind_key3(8, 8, r->steps);
    }
}

/* While set, a batch that has done its work keeps running (until
 * cancelled): a test looks at a running task, or keeps admission slots
 * taken, for as long as it needs, however slowly a loaded machine runs it. */
static atomic_int g_hold;

static int all_cancelled(px_sched_item *const *items, int n)
{
    int all = 1;
    for (int i = 0; i < n; i++) all &= atomic_load(&items[i]->cancel) != 0;
    return all;
}

/* Works work_ms per batch in 1 ms slices, reporting steps and stopping at
 * the next slice once every item of the batch is cancelled. */
static void tk_run(px_engine *e, px_sched_item *const *items, int n)
{
    (void)e;
    const struct treq *r = items[0]->payload;
    for (int t = 0; t < r->work_ms; t++) {
        if (all_cancelled(items, n)) break;
        usleep(1000);
        if (r->steps && r->work_ms >= r->steps && (t + 1) % (r->work_ms / r->steps) == 0)
            for (int i = 0; i < n; i++)
                px_sched_progress(items[i], (t + 1) / (r->work_ms / r->steps), r->steps);
    }
    while (atomic_load(&g_hold) && !all_cancelled(items, n)) usleep(1000);
    for (int i = 0; i < n; i++) {
        struct treq *ri = items[i]->payload;
        if (atomic_load(&ri->released)) atomic_fetch_add(&g_released_early, 1);
        items[i]->status = atomic_load(&items[i]->cancel) ? PX_ECANCELED : ri->fail;
        if (items[i]->status) snprintf(items[i]->err, sizeof items[i]->err, "test failure");
    }
}

static int tk_finish(const px_kind_ctx *c, void *p, px_kind_reply *out, char *err, size_t errlen)
{
    (void)c, (void)err, (void)errlen;
    struct treq *r = p;
    px_buf_init(&out->body, 1024);
    out->content_type = "text/plain";
    return px_buf_printf(&out->body, "ok %d", r->n);
}

static int tk_status(const void *p, px_buf *b)
{
    return px_buf_printf(b, ",\"items\":%d", ((const struct treq *)p)->n);
}

static void tk_release(void *p)
{
    atomic_store(&((struct treq *)p)->released, 1);
}

static void tk_free(void *p)
{
    struct treq *r = p;
    if (!atomic_load(&r->released)) atomic_fetch_add(&g_unreleased, 1);
    free(r->units);
    free(r);
}

static const px_kind test_kind = {
    .name = "test",
    .engine_kind = PX_ENGINE_GENERATE,
    .prepare_stage = "tokenize",
    .finish_stage = "vae",
    .parse = tk_parse,
    .prepare = tk_prepare,
    .make_items = tk_make_items,
    .run = tk_run,
    .finish = tk_finish,
    .status_result = tk_status,
    .free = tk_free,
    .release = tk_release,
};

/* The same kind with every optional presentation hook, as a generate kind
 * would have them: its own stage names, two results, seeds and timings of
 * its own, a Server-Timing of its own, errors in another shape, and 404
 * for an engine that is not loaded. */
static const char *const k_results[2] = {"first", "second"};

static int tk_result(const void *p, int index, const uint8_t **data, size_t *len, const char **ct)
{
    (void)p;
    if (index < 0 || index > 1) return PX_ENOTFOUND;
    *data = (const uint8_t *)k_results[index];
    *len = strlen(k_results[index]);
    *ct = "image/png";
    return 0;
}

static int tk_extra(const void *p, const px_task_timings *tm, px_buf *b)
{
    (void)p;
    return px_buf_printf(b, ",\"seeds\":[7],\"timings\":{\"total_ms\":%.1f}", tm->total_ms);
}

static void tk_timing(const void *p, const px_task_timings *tm, char *out, size_t n)
{
    (void)p;
    snprintf(out, n, "queue;dur=%.2f, denoise;dur=%.2f", tm->queue_ms, tm->infer_ms);
}

static void tk_error(enum px_dialect d, int code, const char *msg, px_buf *b)
{
    (void)d;
    px_buf_printf(b, "{\"error\":{\"message\":\"%s\",\"type\":\"x%d\"}}\n", msg, -code);
}

static const px_kind test_kind2 = {
    .name = "test2",
    .engine_kind = PX_ENGINE_GENERATE,
    .prepare_stage = "text_encode",
    .infer_stage = "denoise",
    .finish_stage = "encode",
    .unknown_engine_code = PX_ENOTFOUND,
    .parse = tk_parse,
    .prepare = tk_prepare,
    .make_items = tk_make_items,
    .run = tk_run,
    .finish = tk_finish,
    .free = tk_free,
    .release = tk_release,
    .status_result = tk_status,
    .status_extra = tk_extra,
    .result = tk_result,
    .server_timing = tk_timing,
    .error_body = tk_error,
};

/* ------------------------------------------------------------ harness */

static px_serve_config g_cfg;
static px_metrics *g_metrics;

static int g_workers = 2, g_max_batch = 4; /* the rate test runs one item at a time */

static px_tasks *mk_tasks(int queue, int64_t timeout_ms)
{
    px_config_defaults(&g_cfg);
    g_cfg.cpu_workers = 2;
    g_cfg.cpu_queue = 10000;
    g_cfg.queue = queue;
    g_cfg.timeout_ms = timeout_ms;
    g_cfg.workers = g_workers;
    g_cfg.max_batch = g_max_batch;
    g_cfg.max_queue_delay_ms = 1;
    g_cfg.memory_limit = (size_t)1 << 30;
    g_metrics = px_metrics_new();
    px_engine *engines[1] = {&g_engine};
    static px_engine *keep[1];
    keep[0] = engines[0];
    char err[160];
    px_tasks *p = px_tasks_create(&g_cfg, keep, 1, NULL, g_metrics, err, sizeof err);
    T_TRUE(p != NULL);
    return p;
}

static void rm_tasks(px_tasks *p)
{
    px_tasks_destroy(p);
    px_metrics_free(g_metrics);
}

struct owner {
    atomic_int calls;
};

static void on_done(px_task *t, void *arg)
{
    (void)t;
    atomic_fetch_add(&((struct owner *)arg)->calls, 1);
}

/* The owner's callback runs after the task is marked ended (end_task in
 * task.c: the state first, then the callback outside the lock), so a test
 * that saw "ended" waits a moment for the call before counting. */
static int owner_calls(struct owner *o)
{
    for (int i = 0; i < 10000 && atomic_load(&o->calls) == 0; i++) usleep(1000);
    return atomic_load(&o->calls);
}

static px_task *start_kind(px_tasks *p, const px_kind *kind, const char *body, int64_t timeout_ms,
                           struct owner *o)
{
    px_task_spec spec = {.kind = kind,
                         .content_type = "text/plain",
                         .body = (uint8_t *)strdup(body),
                         .body_len = strlen(body),
                         .timeout_ms = timeout_ms,
                         .done = on_done,
                         .done_arg = o};
    px_task *t = NULL;
    int retry = 0;
    T_EQ_INT(px_tasks_submit(p, &spec, &t, &retry), 0);
    return t;
}

static px_task *start(px_tasks *p, const char *body, int64_t timeout_ms, struct owner *o)
{
    return start_kind(p, &test_kind, body, timeout_ms, o);
}

static int wait_ended(px_task *t, int ms)
{
    for (int i = 0; i < ms; i++) {
        if (px_task_ended(t, NULL)) return 1;
        usleep(1000);
    }
    return px_task_ended(t, NULL);
}

static void status_of(px_task *t, char *out, size_t n)
{
    px_buf b;
    px_buf_init(&b, 1 << 16);
    px_task_status_json(t, "j-test", &b);
    snprintf(out, n, "%.*s", (int)b.len, (const char *)b.data);
    px_buf_free(&b);
}

/* Every task ended and was released: nothing alive, no slot taken. A
 * deadline timer that fired just as its task ended elsewhere drops its
 * reference from the timer thread, which drain does not wait for: allow it
 * a moment. */
static void check_quiet(px_tasks *p)
{
    px_tasks_drain(p);
    px_tasks_stats st;
    px_tasks_stats_get(p, &st);
    for (int i = 0; i < 10000 && st.tasks > 0; i++) {
        usleep(1000);
        px_tasks_stats_get(p, &st);
    }
    T_EQ_INT(st.tasks, 0);
    for (int i = 0; i < PX_PRIO_COUNT; i++) T_EQ_INT(st.pending[i], 0);
    T_EQ_INT(st.sched.running, 0);
    /* Every request was released (done, failed, refused, cancelled,
     * expired), and never while the engine still had its items. */
    T_EQ_INT(atomic_load(&g_unreleased), 0);
    T_EQ_INT(atomic_load(&g_released_early), 0);
}

/* ------------------------------------------------------------ tests */

TEST(t_completes_with_progress_and_status)
{
    px_tasks *p = mk_tasks(8, 10000);
    struct owner o = {0};
    /* While it computes (held after its last step): stage infer, progress
     * pushed by the adapter. */
    atomic_store(&g_hold, 1);
    px_task *t = start(p, "n=2 work=40 steps=4 fail=0", 0, &o);
    char js[2048] = "";
    for (int i = 0; i < 20000 && !strstr(js, "\"step\":4"); i++) {
        status_of(t, js, sizeof js);
        usleep(1000);
    }
    T_CONTAINS(js, "\"status\":\"running\"");
    T_CONTAINS(js, "\"stage\":\"infer\"");
    T_CONTAINS(js, "\"progress\":{\"step\":4,\"steps\":4}");
    T_TRUE(!px_task_ended(t, NULL));
    atomic_store(&g_hold, 0);
    T_TRUE(wait_ended(t, 5000));
    int ok = 0;
    T_TRUE(px_task_ended(t, &ok));
    T_TRUE(ok);
    T_EQ_INT(owner_calls(&o), 1);
    px_task_reply r;
    px_task_reply_get(t, &r);
    T_EQ_INT(r.http_status, 200);
    T_EQ_STR(r.content_type, "text/plain");
    T_EQ_INT((int)r.body->len, 4);
    T_EQ_MEM(r.body->data, "ok 2", 4);
    T_CONTAINS(r.server_timing, "infer;dur=");
    status_of(t, js, sizeof js);
    T_CONTAINS(js, "\"status\":\"done\"");
    T_CONTAINS(js, "\"items\":2");
    T_CONTAINS(js, "\"bytes\":4");
    T_EQ_INT(px_task_cancel(t), PX_EINVAL); /* already ended: no second end */
    T_EQ_INT(atomic_load(&o.calls), 1);
    px_task_unref(t);
    check_quiet(p);
    rm_tasks(p);
}

TEST(t_failures_and_bad_bodies_end_once)
{
    px_tasks *p = mk_tasks(8, 10000);
    struct owner o1 = {0}, o2 = {0}, o3 = {0};
    px_task *bad = start(p, "garbage", 0, &o1);
    px_task *fail = start(p, "n=3 work=5 steps=0 fail=-5", 0, &o2);
    px_task *none = start(p, "n=0 work=0 steps=0 fail=0", 0, &o3); /* nothing to run */
    T_TRUE(wait_ended(bad, 5000) && wait_ended(fail, 5000) && wait_ended(none, 5000));
    px_task_reply r;
    px_task_reply_get(bad, &r);
    T_EQ_INT(r.http_status, 400);
    px_task_reply_get(fail, &r);
    T_EQ_INT(r.code, -5);
    T_CONTAINS((const char *)r.body->data, "test failure");
    px_task_reply_get(none, &r);
    T_EQ_INT(r.http_status, 200);
    T_EQ_INT(owner_calls(&o1) + owner_calls(&o2) + owner_calls(&o3), 3);
    px_task_unref(bad);
    px_task_unref(fail);
    px_task_unref(none);
    check_quiet(p);
    rm_tasks(p);
}

/* One racer per task: after a random delay it cancels (DELETE), or
 * disconnects (detach, cancel, release: the HTTP layer's on_completed),
 * or does nothing; the task's own deadline and its completion race it. */
struct racer {
    px_task *t;
    struct owner o;
    int action, delay_us, detached;
    pthread_t th;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    usleep((useconds_t)r->delay_us);
    if (r->action == 1) {
        px_task_cancel(r->t);
    } else if (r->action == 2) {
        px_task_detach(r->t);
        r->detached = 1;
        px_task_cancel(r->t);
    }
    return NULL;
}

/* Outcomes over all rounds: each must have happened for the races to
 * have been run at all. */
static int g_done, g_cancelled, g_expired;

static void race_round(px_tasks *p, int ntasks, uint64_t seed)
{
    struct racer *rs = calloc((size_t)ntasks, sizeof *rs);
    px_rng rng;
    px_rng_seed(&rng, seed, 1);
    for (int i = 0; i < ntasks; i++) {
        struct racer *r = &rs[i];
        int work = (int)px_rng_below(&rng, 12);
        int timeout = px_rng_below(&rng, 3) == 0 ? 1 + (int)px_rng_below(&rng, 15) : 0;
        char body[96];
        snprintf(body, sizeof body, "n=%d work=%d steps=%d fail=0", 1 + (int)px_rng_below(&rng, 3),
                 work, work >= 2 ? 2 : 0);
        r->action = (int)px_rng_below(&rng, 3);
        r->delay_us = (int)px_rng_below(&rng, 15000);
        r->t = start(p, body, timeout, &r->o);
        T_EQ_INT(pthread_create(&r->th, NULL, race, r), 0);
    }
    int done = 0, cancelled = 0, expired = 0, refused = 0;
    for (int i = 0; i < ntasks; i++) {
        struct racer *r = &rs[i];
        pthread_join(r->th, NULL);
        T_TRUE(wait_ended(r->t, 10000));
        int calls = r->detached ? atomic_load(&r->o.calls) : owner_calls(&r->o);
        /* Exactly once; after a detach at most once (it may have ended
         * before the owner left). */
        if (r->detached)
            T_CMP_INT(calls, <=, 1);
        else
            T_EQ_INT(calls, 1);
        px_task_reply rep;
        px_task_reply_get(r->t, &rep);
        /* 429: a short deadline the predicted wait would miss (admit.h). */
        T_TRUE(rep.http_status == 200 || rep.http_status == 499 || rep.http_status == 504 ||
               rep.http_status == 429);
        refused += rep.http_status == 429;
        done += rep.http_status == 200;
        cancelled += rep.http_status == 499;
        expired += rep.http_status == 504;
        px_task_unref(r->t);
    }
    T_EQ_INT(done + cancelled + expired + refused, ntasks);
    g_done += done, g_cancelled += cancelled, g_expired += expired;
    free(rs);
}

TEST(t_ends_once_under_cancel_timeout_disconnect_and_completion)
{
    px_tasks *p = mk_tasks(100000, 10000);
    for (int round = 0; round < 4; round++) race_round(p, 150, 1234 + (uint64_t)round);
    T_CMP_INT(g_done, >, 0);
    T_CMP_INT(g_cancelled, >, 0);
    T_CMP_INT(g_expired, >, 0);
    /* Let the work of ended tasks drain, then nothing is left. */
    check_quiet(p);
    /* Calls counted by the owners above; late work never called anyone. */
    rm_tasks(p);
}

TEST(t_admission_refuses_with_retry_after)
{
    px_tasks *p = mk_tasks(2, 10000);
    struct owner o[4] = {{0}};
    px_task *t[4];
    /* Both admitted (the queue cap is 2) and held running meanwhile. */
    atomic_store(&g_hold, 1);
    for (int i = 0; i < 2; i++) t[i] = start(p, "n=1 work=1 steps=0 fail=0", 0, &o[i]);
    px_tasks_stats st;
    px_tasks_stats_get(p, &st);
    for (int i = 0; i < 20000 && st.pending[PX_PRIO_NORMAL] < 2; i++) {
        usleep(1000);
        px_tasks_stats_get(p, &st);
    }
    T_EQ_INT(st.pending[PX_PRIO_NORMAL], 2);
    t[2] = start(p, "n=1 work=1 steps=0 fail=0", 0, &o[2]);
    T_TRUE(wait_ended(t[2], 5000));
    px_task_reply r;
    px_task_reply_get(t[2], &r);
    T_EQ_INT(r.http_status, 429);
    T_EQ_STR(r.header_name, "Retry-After");
    T_CMP_INT(owner_calls(&o[2]), ==, 1);
    for (int i = 0; i < 2; i++) T_TRUE(!px_task_ended(t[i], NULL));
    atomic_store(&g_hold, 0);
    for (int i = 0; i < 2; i++) T_TRUE(wait_ended(t[i], 5000));
    /* The slots came back: a new task is admitted and completes. */
    t[3] = start(p, "n=1 work=1 steps=0 fail=0", 0, &o[3]);
    T_TRUE(wait_ended(t[3], 5000));
    px_task_reply_get(t[3], &r);
    T_EQ_INT(r.http_status, 200);
    for (int i = 0; i < 4; i++) px_task_unref(t[i]);
    check_quiet(p);
    rm_tasks(p);
}

static double lane_item_ms(px_tasks *p, int *ahead)
{
    px_sched_lane_stats st;
    T_EQ_INT(px_sched_lane_stats_get(p->sched, &g_engine, &st), 0);
    *ahead = st.running + st.queued[0] + st.queued[1];
    return st.mean_item_ms;
}

static void run_one(px_tasks *p, const char *body)
{
    struct owner o = {0};
    px_task *t = start(p, body, 0, &o);
    T_TRUE(wait_ended(t, 10000));
    px_task_reply r;
    px_task_reply_get(t, &r);
    T_EQ_INT(r.http_status, 200);
    /* o lives on this frame: the owner's callback, which runs just after
     * the task shows ended, must have run before the frame goes. */
    T_EQ_INT(owner_calls(&o), 1);
    px_task_unref(t);
}

/* A fake engine with a known service time (40 ms per item, one worker, no
 * batching): far more requests than the old fixed cap (32) are admitted
 * when their deadlines allow; one whose predicted wait misses its deadline
 * gets 429 with Retry-After from the prediction; the rate adapts when the
 * engine gets faster. */
TEST(t_admission_from_the_deadline)
{
    g_workers = 1, g_max_batch = 1;
    px_tasks *p = mk_tasks(100000, 60000);
    int ahead = 0;
    T_TRUE(lane_item_ms(p, &ahead) == 0); /* nothing measured yet */
    for (int i = 0; i < 3; i++) run_one(p, "n=1 work=40 steps=0 fail=0");
    double per = lane_item_ms(p, &ahead);
    T_CMP_INT((int)per, >=, 40);
    T_CMP_INT((int)per, <, 2000); /* 40 ms, stretched by a loaded machine; not a unit error */

    enum { N = 48 };
    struct owner o[N + 2];
    memset(o, 0, sizeof o);
    px_task *t[N + 2];
    for (int i = 0; i < N; i++) t[i] = start(p, "n=1 work=40 steps=0 fail=0", 60000, &o[i]);
    /* Wait until all are admitted and queued (prep is quick). */
    for (int i = 0; i < 2000; i++) {
        px_tasks_stats st;
        px_tasks_stats_get(p, &st);
        if (st.pending[PX_PRIO_NORMAL] >= N - 2 && st.cpu_queued == 0) break;
        usleep(1000);
    }
    /* A short deadline behind them: refused, Retry-After = the excess of the
     * predicted finish over the deadline (bounded from both sides of the
     * moment it was decided, the queue moves meanwhile). */
    double per0 = lane_item_ms(p, &ahead);
    int ahead0 = ahead;
    t[N] = start(p, "n=1 work=40 steps=0 fail=0", 300, &o[N]);
    T_TRUE(wait_ended(t[N], 5000));
    double per1 = lane_item_ms(p, &ahead);
    px_task_reply r;
    px_task_reply_get(t[N], &r);
    T_EQ_INT(r.http_status, 429);
    T_EQ_STR(r.header_name, "Retry-After");
    T_CONTAINS((const char *)r.body->data, "deadline");
    int retry = atoi(r.header_value);
    double hi = (ahead0 + 1) * (per0 > per1 ? per0 : per1) - 300, lo = (ahead + 1) * (per0 < per1 ? per0 : per1) - 300;
    T_CMP_INT(retry, >=, (int)(lo / 1000.0 + 0.999) - 1);
    T_CMP_INT(retry, <=, (int)(hi / 1000.0 + 0.999) + 1);
    T_CMP_INT(retry, >=, 1);
    /* A long deadline behind the same queue is admitted. */
    t[N + 1] = start(p, "n=1 work=40 steps=0 fail=0", 60000, &o[N + 1]);
    for (int i = 0; i < N + 2; i++) {
        if (i == N) continue;
        T_TRUE(wait_ended(t[i], 20000));
        px_task_reply_get(t[i], &r);
        T_EQ_INT(r.http_status, 200);
    }
    /* The engine gets faster (5 ms): the estimate follows. */
    for (int i = 0; i < 40; i++) run_one(p, "n=1 work=5 steps=0 fail=0");
    double fast = lane_item_ms(p, &ahead);
    T_CMP_INT((int)(fast * 1000), <, (int)(per * 1000 / 2));
    for (int i = 0; i < N + 2; i++) px_task_unref(t[i]);
    check_quiet(p);
    rm_tasks(p);
    g_workers = 2, g_max_batch = 4;
}

TEST(t_deadline_in_every_stage)
{
    px_tasks *p = mk_tasks(8, 10000);
    struct owner o = {0};
    int64_t t0 = px_now_ns();
    px_task *t = start(p, "n=1 work=5000 steps=0 fail=0", 30, &o);
    T_TRUE(wait_ended(t, 3000));
    T_CMP_INT(px_now_ns() - t0, <, 2000 * 1000000LL); /* at the deadline, not after the work */
    px_task_reply r;
    px_task_reply_get(t, &r);
    T_EQ_INT(r.http_status, 504);
    T_CONTAINS((const char *)r.body->data, "deadline");
    T_EQ_INT(owner_calls(&o), 1);
    char js[2048];
    status_of(t, js, sizeof js);
    T_CONTAINS(js, "\"status\":\"expired\"");
    px_task_unref(t);
    check_quiet(p);
    rm_tasks(p);
}

/* Holds the timer thread until the test opens the gate. */
static atomic_int g_gate_in, g_gate_open;

static void gate_cb(void *arg)
{
    (void)arg;
    atomic_store(&g_gate_in, 1);
    while (!atomic_load(&g_gate_open)) usleep(1000);
}

/* The scheduler may see a deadline pass (an item that expired in its
 * queue) before the task's own timer fires: a loaded machine ran the timer
 * late. The task is expired all the same, not failed. Here the timer thread
 * is held so that the scheduler is first for certain. */
TEST(t_deadline_seen_first_by_the_scheduler_expires)
{
    g_workers = 1, g_max_batch = 1;
    px_tasks *p = mk_tasks(8, 10000);
    px_timer_arm(p->timers, px_now_ns(), gate_cb, NULL);
    for (int i = 0; i < 20000 && !atomic_load(&g_gate_in); i++) usleep(1000);
    T_TRUE(atomic_load(&g_gate_in));
    struct owner o[2] = {{0}};
    atomic_store(&g_hold, 1); /* the blocker keeps the one device worker */
    px_task *blocker = start(p, "n=1 work=1 steps=0 fail=0", 0, &o[0]);
    px_task *late = start(p, "n=1 work=1 steps=0 fail=0", 30, &o[1]);
    /* late's item queued behind the blocker, and its deadline passed */
    px_tasks_stats st;
    px_tasks_stats_get(p, &st);
    for (int i = 0; i < 20000 && (st.sched.running < 1 || st.sched.queued[PX_PRIO_NORMAL] < 1);
         i++) {
        usleep(1000);
        px_tasks_stats_get(p, &st);
    }
    T_EQ_INT(st.sched.running, 1);
    T_EQ_INT(st.sched.queued[PX_PRIO_NORMAL], 1);
    while (px_now_ns() <= late->deadline_ns) usleep(1000);
    atomic_store(&g_hold, 0);
    T_TRUE(wait_ended(late, 10000));
    px_task_reply r;
    px_task_reply_get(late, &r);
    T_EQ_INT(r.http_status, 504);
    T_CONTAINS((const char *)r.body->data, "deadline");
    char js[2048];
    status_of(late, js, sizeof js);
    T_CONTAINS(js, "\"status\":\"expired\"");
    T_EQ_INT(owner_calls(&o[1]), 1);
    T_TRUE(wait_ended(blocker, 10000));
    px_task_reply_get(blocker, &r);
    T_EQ_INT(r.http_status, 200);
    atomic_store(&g_gate_open, 1);
    px_task_unref(blocker);
    px_task_unref(late);
    check_quiet(p);
    rm_tasks(p);
    g_workers = 2, g_max_batch = 4;
}

TEST(t_kind_hooks_shape_what_a_task_shows)
{
    px_tasks *p = mk_tasks(8, 10000);
    struct owner o = {0};
    atomic_store(&g_hold, 1); /* running after its last step until released */
    px_task *t = start_kind(p, &test_kind2, "n=1 work=40 steps=4 fail=0", 0, &o);
    char js[2048] = "";
    for (int i = 0; i < 20000 && !strstr(js, "\"step\":4"); i++) {
        status_of(t, js, sizeof js);
        usleep(1000);
    }
    T_CONTAINS(js, "\"kind\":\"test2\"");
    T_CONTAINS(js, "\"stage\":\"denoise\"");
    T_CONTAINS(js, "\"status\":\"running\"");
    atomic_store(&g_hold, 0);
    T_TRUE(wait_ended(t, 5000));
    const uint8_t *data;
    size_t len;
    const char *ct;
    T_EQ_INT(px_task_result(t, 1, &data, &len, &ct), 0);
    T_EQ_INT((int)len, 6);
    T_EQ_MEM(data, "second", 6);
    T_EQ_INT(px_task_result(t, 2, &data, &len, &ct), PX_ENOTFOUND);
    T_TRUE(px_task_has_results(t));
    status_of(t, js, sizeof js);
    T_CONTAINS(js, "\"bytes\":5"); /* result 0, "first" */
    T_CONTAINS(js, "\"seeds\":[7]");
    T_CONTAINS(js, "\"progress\":{\"step\":4,\"steps\":4}"); /* kept after the end */
    T_TRUE(strstr(js, "decode_ms") == NULL);
    px_task_reply r;
    px_task_reply_get(t, &r);
    T_TRUE(!strncmp(r.server_timing, "queue;dur=", 10));
    T_CONTAINS(r.server_timing, "denoise;dur=");
    px_task_unref(t);
    /* Errors in the kind's shape; an unknown engine is its 404. */
    struct owner o2 = {0}, o3 = {0};
    px_task *bad = start_kind(p, &test_kind2, "garbage", 0, &o2);
    px_task *none = start_kind(p, &test_kind2, "n=1 work=1 steps=0 fail=0 engine=nosuch", 0, &o3);
    T_TRUE(wait_ended(bad, 5000) && wait_ended(none, 5000));
    px_task_reply_get(bad, &r);
    T_EQ_INT(r.http_status, 400);
    T_CONTAINS((const char *)r.body->data, "\"type\":\"x");
    px_task_reply_get(none, &r);
    T_EQ_INT(r.http_status, 404);
    T_CONTAINS((const char *)r.body->data, "nosuch");
    T_EQ_INT(px_task_result(none, 0, &data, &len, &ct), PX_EINVAL);
    px_task_unref(bad);
    px_task_unref(none);
    check_quiet(p);
    rm_tasks(p);
}

/* The step log followers replay (px_task_ticks): a request's images run
 * one at a time report 1..S each, in order; a long run keeps its last
 * PX_TASK_TICK_LOG reports and says where they start. */
TEST(t_step_log_across_images)
{
    g_workers = 1, g_max_batch = 1;
    px_tasks *p = mk_tasks(8, 10000);
    struct owner o[2] = {{0}};
    px_task *t = start(p, "n=2 work=40 steps=4 fail=0", 0, &o[0]);
    T_TRUE(wait_ended(t, 10000));
    int step[300], steps[300], first = -1;
    T_EQ_INT(px_task_ticks(t, 0, &first, step, steps, 300), 8);
    T_EQ_INT(first, 0);
    for (int i = 0; i < 8; i++) {
        T_EQ_INT(step[i], i % 4 + 1);
        T_EQ_INT(steps[i], 4);
    }
    T_EQ_INT(px_task_ticks(t, 5, &first, step, steps, 300), 3);
    T_EQ_INT(first, 5);
    T_EQ_INT(step[0], 2);
    T_EQ_INT(px_task_ticks(t, 8, &first, step, steps, 300), 0);
    px_task *lng = start(p, "n=1 work=200 steps=200 fail=0", 0, &o[1]);
    T_TRUE(wait_ended(lng, 20000));
    px_task_progress pr;
    px_task_progress_get(lng, &pr);
    T_EQ_INT(pr.ticks, 200);
    T_EQ_INT(px_task_ticks(lng, 0, &first, step, steps, 300), PX_TASK_TICK_LOG);
    T_EQ_INT(first, 200 - PX_TASK_TICK_LOG);
    T_EQ_INT(step[0], 200 - PX_TASK_TICK_LOG + 1);
    T_EQ_INT(step[PX_TASK_TICK_LOG - 1], 200);
    T_EQ_INT(owner_calls(&o[0]) + owner_calls(&o[1]), 2);
    px_task_unref(t);
    px_task_unref(lng);
    check_quiet(p);
    rm_tasks(p);
    g_workers = 2, g_max_batch = 4;
}

TEST_MAIN(t_completes_with_progress_and_status, t_failures_and_bad_bodies_end_once,
          t_ends_once_under_cancel_timeout_disconnect_and_completion, t_admission_from_the_deadline,
          t_admission_refuses_with_retry_after, t_deadline_in_every_stage,
          t_deadline_seen_first_by_the_scheduler_expires,
          t_kind_hooks_shape_what_a_task_shows, t_step_log_across_images)
