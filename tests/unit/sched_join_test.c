/*
 * sched_join_test.c — continuous batching: the scheduler, the kinds'
 * joining run adapter and px_engine_run_feed against a fake generate
 * engine that runs its items step by step (each with its own step count)
 * and takes joiners between steps. Items join a running batch and leave it
 * when their own steps are done; another size at the head of the queue is
 * not starved; max_batch and the memory guard cap the joins; cancelled,
 * expired and invalid joiners end properly; joins off runs plain batches.
 */
#include "core/clock.h"
#include "core/err.h"
#include "engine/engine_impl.h"
#include "harness.h"
#include "serve/kind.h"
#include "serve/sched.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ fake engine */

#define CAP 16

struct jfake {
    px_engine base;
    int step_ms;
    int item_us;   /* more per item in the step (a GPU at a size where batching adds no speed) */
    int finish_us; /* per finished item (its decode) */
    pthread_mutex_t mu;
    int feed_calls, plain_calls;
    int max_active; /* the most items that ran one step together */
    int joined;     /* items handed out by join */
};

static int jf_create(const px_engine_config *cfg, px_engine **out, char *err, size_t errlen)
{
    (void)cfg, (void)err, (void)errlen;
    struct jfake *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    *out = &f->base;
    return 0;
}

static void jf_destroy(px_engine *e)
{
    struct jfake *f = (struct jfake *)e;
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static size_t jf_mem(const px_engine *e, int n, const px_engine_shape *s)
{
    (void)e;
    return (size_t)n * (size_t)s->w * (size_t)s->h;
}

/* The image an item must end with: a function of its seed and steps only,
 * whatever ran beside it. */
static uint8_t expected_px(uint64_t seed, int steps, size_t i)
{
    return (uint8_t)(seed * 31 + (uint64_t)steps * 7 + i);
}

static void finish_ok(px_engine_item *it)
{
    size_t n = (size_t)it->gen.width * it->gen.height * 3;
    for (size_t i = 0; i < n; i++) it->out->px[i] = expected_px(it->seed, it->gen.steps, i);
    it->status = 0;
}

/* Runs the active items one step (step_ms), reporting progress. */
static void one_step(struct jfake *f, px_engine_item **act, int *step, int na)
{
    pthread_mutex_lock(&f->mu);
    if (na > f->max_active) f->max_active = na;
    pthread_mutex_unlock(&f->mu);
    usleep((useconds_t)(f->step_ms * 1000 + f->item_us * na));
    for (int i = 0; i < na; i++) px_engine_progress(act[i], ++step[i], act[i]->gen.steps);
}

static int jf_run_feed(px_engine *e, px_engine_item **items, int n, const px_engine_feed *feed)
{
    struct jfake *f = (struct jfake *)e;
    px_engine_item *act[CAP];
    int step[CAP] = {0}, na = n;
    memcpy(act, items, (size_t)n * sizeof *act);
    pthread_mutex_lock(&f->mu);
    f->feed_calls++;
    pthread_mutex_unlock(&f->mu);
    for (;;) {
        if (na < CAP) {
            int k = feed->join(feed->ctx, act + na, CAP - na);
            for (int i = 0; i < k; i++) step[na + i] = 0;
            na += k;
            pthread_mutex_lock(&f->mu);
            f->joined += k;
            pthread_mutex_unlock(&f->mu);
        }
        if (!na) return 0;
        one_step(f, act, step, na);
        for (int i = 0; i < na;) {
            px_engine_item *it = act[i];
            int cancelled = it->cancel && atomic_load(it->cancel);
            if (!cancelled && step[i] < it->gen.steps) {
                i++;
                continue;
            }
            if (cancelled) it->status = px_errf(it->err, sizeof it->err, PX_ECANCELED, "cancelled");
            else finish_ok(it);
            if (f->finish_us) usleep((useconds_t)f->finish_us);
            act[i] = act[na - 1], step[i] = step[na - 1], na--;
            feed->done(feed->ctx, it);
        }
    }
}

static int jf_run(px_engine *e, px_engine_item *items, int n)
{
    struct jfake *f = (struct jfake *)e;
    pthread_mutex_lock(&f->mu);
    f->plain_calls++;
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < n; i++) finish_ok(&items[i]);
    return 0;
}

static const px_engine_ops jf_ops = {
    .name = "jfake",
    .description = "test engine that takes joiners",
    .caps = PX_ENGINE_CAP_BATCH | PX_ENGINE_CAP_ANY_SIZE | PX_ENGINE_CAP_JOIN,
    .kind = PX_ENGINE_GENERATE,
    .create = jf_create,
    .destroy = jf_destroy,
    .mem_estimate = jf_mem,
    .run = jf_run,
    .run_feed = jf_run_feed,
};

static struct jfake *jf_new(int step_ms)
{
    px_engine *e;
    jf_create(NULL, &e, NULL, 0);
    e->ops = &jf_ops;
    struct jfake *f = (struct jfake *)e;
    f->step_ms = step_ms;
    return f;
}

/* ------------------------------------------------------------ items */

struct job {
    px_sched_item it;
    px_engine_item eit; /* the payload */
    px_image out;
    atomic_int done, started;
    int done_order; /* 1-based position among all ends */
    int started_with; /* batch_size when it started */
    int batches_seen; /* the scheduler's batch count as its done ran */
};

static atomic_int g_ends;
static px_sched *g_sched; /* the test's scheduler, read from done */

static void on_done(px_sched_item *it, void *arg)
{
    (void)it;
    struct job *j = arg;
    px_sched_stats st;
    px_sched_stats_get(g_sched, &st);
    j->batches_seen = (int)st.batches;
    j->done_order = atomic_fetch_add(&g_ends, 1) + 1;
    atomic_store(&j->done, 1);
}

static void on_event(px_sched_item *it, enum px_sched_event ev, int step, int steps, void *arg)
{
    struct job *j = arg;
    if (ev == PX_SCHED_STARTED) {
        j->started_with = it->batch_size;
        atomic_store(&j->started, 1);
    } else {
        T_TRUE(step >= 1 && step <= steps);
    }
}

static void job_init(struct job *j, struct jfake *f, int side, int steps, int seed)
{
    memset(j, 0, sizeof *j);
    px_image_alloc(&j->out, side, side, 3, NULL, NULL, 0);
    j->eit = (px_engine_item){.out = &j->out, .seed = (uint64_t)seed,
                              .gen = {.prompt = "a cat", .width = side, .height = side,
                                      .steps = steps}};
    j->it.payload = &j->eit;
    j->it.shape = (px_engine_shape){side, side, steps, 0};
    j->it.key = px_kind_key3(side, side, steps);
    j->it.engine = &f->base;
    j->it.run = px_kind_run_engine_items;
    j->it.run_join = px_kind_run_engine_items_join;
    j->it.prio = PX_PRIO_NORMAL;
    j->it.done = on_done;
    j->it.event = on_event;
    j->it.done_arg = j;
}

static void submit(px_sched *s, struct job *j)
{
    px_sched_item *p = &j->it;
    T_EQ_INT(px_sched_submit(s, &p, 1), 0);
}

static void check_output(const struct job *j)
{
    T_EQ_INT(j->it.status, 0);
    size_t n = (size_t)j->out.w * j->out.h * 3;
    for (size_t i = 0; i < n; i++)
        if (j->out.px[i] != expected_px(j->eit.seed, j->eit.gen.steps, i)) {
            px_tfail(__FILE__, __LINE__, "item %llu: byte %zu differs",
                     (unsigned long long)j->eit.seed, i);
        }
}

static void wait_done(struct job *j, int n)
{
    for (int t = 0; t < 20000; t++) {
        int all = 1;
        for (int i = 0; i < n; i++) all &= atomic_load(&j[i].done);
        if (all) return;
        usleep(1000);
    }
    px_tfail(__FILE__, __LINE__, "items did not finish");
}

static void wait_started(struct job *j)
{
    for (int t = 0; t < 20000 && !atomic_load(&j->started) && !atomic_load(&j->done); t++)
        usleep(1000);
    T_TRUE(atomic_load(&j->started));
}

static px_sched *mk_sched(struct jfake *f, int max_batch, int delay_ms, size_t mem_limit, int join)
{
    px_sched_config c;
    px_sched_defaults(&c);
    T_EQ_INT(c.join, 1); /* on by default */
    c.max_batch = max_batch;
    c.max_delay_ns = (int64_t)delay_ms * 1000000;
    c.mem_limit = mem_limit ? mem_limit : (size_t)1 << 40;
    c.mem_reserve = 0;
    c.join = join;
    px_engine *e = &f->base;
    atomic_store(&g_ends, 0);
    g_sched = px_sched_create(&c, &e, 1);
    return g_sched;
}

static void free_jobs(struct job *j, int n)
{
    for (int i = 0; i < n; i++) px_image_free(&j[i].out);
}

/* n jobs of one key: the first submitted alone, the rest once it runs;
 * waits for all and checks every output. */
static void run_after_first(px_sched *s, struct jfake *f, struct job *j, int n, int side,
                            int steps, int seed)
{
    for (int i = 0; i < n; i++) job_init(&j[i], f, side, steps, seed + i);
    submit(s, &j[0]);
    wait_started(&j[0]);
    for (int i = 1; i < n; i++) submit(s, &j[i]);
    wait_done(j, n);
    for (int i = 0; i < n; i++) check_output(&j[i]);
}

static void teardown(px_sched *s, struct jfake *f, struct job *j, int n)
{
    px_sched_destroy(s);
    free_jobs(j, n);
    jf_destroy(&f->base);
}

/* ------------------------------------------------------------ tests */

TEST(t_items_join_between_steps_and_leave_when_done)
{
    struct jfake *f = jf_new(2);
    px_sched *s = mk_sched(f, 4, 0, 0, 1);
    struct job j[3];
    run_after_first(s, f, j, 3, 16, 30, 10);
    /* The late ones ran beside the first instead of after it ... */
    T_TRUE(j[1].it.t_started < j[0].it.t_finished);
    T_TRUE(j[2].it.t_started < j[0].it.t_finished);
    T_TRUE(j[1].started_with >= 2);
    /* ... and each left when its own steps were done: the first first. */
    T_EQ_INT(j[0].done_order, 1);
    T_TRUE(j[0].it.t_finished < j[1].it.t_finished);
    px_sched_stats st;
    px_sched_stats_get(s, &st);
    T_EQ_INT((int)st.joins, 2);
    T_EQ_INT((int)st.items_run, 3);
    T_EQ_INT((int)st.batches, 1);
    /* The batch is counted as its last item ends, before that item's done
     * runs (a reader woken by it sees it); not before. */
    for (int i = 0; i < 3; i++) T_EQ_INT(j[i].batches_seen, (j[i].done_order == 3 ? 1 : 0));
    T_EQ_INT(f->max_active, 3);
    T_EQ_INT(f->plain_calls, 0);
    /* The service rate: engine time per item, between 0 and the run's. */
    px_sched_lane_stats ls;
    T_EQ_INT(px_sched_lane_stats_get(s, &f->base, &ls), 0);
    double run_ms = (double)(j[2].it.t_finished - j[0].it.t_started) / 1e6;
    T_TRUE(ls.mean_item_ms > 0);
    T_CMP_DBL(ls.mean_item_ms, <=, run_ms);
    teardown(s, f, j, 3);
}

TEST(t_another_size_at_the_head_is_not_starved)
{
    struct jfake *f = jf_new(2);
    px_sched *s = mk_sched(f, 4, 1, 0, 1);
    struct job j[3]; /* a, then another size, then one that could join a */
    job_init(&j[0], f, 16, 25, 1);
    job_init(&j[1], f, 32, 5, 2);
    job_init(&j[2], f, 16, 25, 3);
    submit(s, &j[0]);
    wait_started(&j[0]);
    submit(s, &j[1]); /* cannot join a's batch */
    usleep(5000);     /* it has waited past max_delay (1 ms) at the head */
    submit(s, &j[2]); /* could join a's batch, but must not jump the queue */
    wait_done(j, 3);
    for (int i = 0; i < 3; i++) check_output(&j[i]);
    T_TRUE(j[1].it.t_started < j[2].it.t_started);
    T_TRUE(j[2].it.t_started >= j[0].it.t_finished);
    teardown(s, f, j, 3);
}

TEST(t_max_batch_and_memory_cap_the_joins)
{
    struct jfake *f = jf_new(1);
    px_sched *s = mk_sched(f, 3, 0, 0, 1);
    struct job j[7];
    run_after_first(s, f, j, 7, 8, 10, 20);
    T_TRUE(f->max_active <= 3);
    T_TRUE(f->max_active >= 2);
    teardown(s, f, j, 7);

    /* Memory for two 8x8 items: a third waits for one to leave. */
    f = jf_new(1);
    s = mk_sched(f, 8, 0, 2 * 8 * 8, 1);
    run_after_first(s, f, j, 5, 8, 10, 40);
    T_EQ_INT(f->max_active, 2);
    px_sched_stats st;
    px_sched_stats_get(s, &st);
    T_EQ_INT((int)st.mem_in_use, 0); /* every reservation given back */
    T_EQ_INT(st.running, 0);
    teardown(s, f, j, 5);
}

TEST(t_cancelled_expired_and_invalid_joiners_end)
{
    struct jfake *f = jf_new(2);
    px_sched *s = mk_sched(f, 8, 0, 0, 1);
    struct job j[4];
    for (int i = 0; i < 4; i++) job_init(&j[i], f, 16, 40, 60 + i);
    submit(s, &j[0]);
    wait_started(&j[0]);
    submit(s, &j[1]);
    wait_started(&j[1]);
    px_sched_cancel(s, &j[1].it); /* joined, running: stops at the next step */
    j[2].it.deadline_ns = px_now_ns() - 1; /* expired while queued */
    submit(s, &j[2]);
    j[3].eit.gen.prompt = NULL; /* invalid: refused at the join, not run */
    submit(s, &j[3]);
    wait_done(j, 4);
    check_output(&j[0]);
    T_EQ_INT(j[1].it.status, PX_ECANCELED);
    T_TRUE(j[1].it.t_finished < j[0].it.t_finished); /* it left early */
    T_EQ_INT(j[2].it.status, PX_ETIMEDOUT);
    T_EQ_INT(j[3].it.status, PX_EINVAL);
    T_TRUE(strstr(j[3].it.err, "prompt") != NULL);
    teardown(s, f, j, 4);
}

TEST(t_joins_off_runs_plain_batches)
{
    struct jfake *f = jf_new(1);
    px_sched *s = mk_sched(f, 4, 0, 0, 0);
    struct job j[3];
    for (int i = 0; i < 3; i++) job_init(&j[i], f, 8, 4, 80 + i);
    for (int i = 0; i < 3; i++) submit(s, &j[i]);
    wait_done(j, 3);
    for (int i = 0; i < 3; i++) check_output(&j[i]);
    T_EQ_INT(f->feed_calls, 0);
    T_TRUE(f->plain_calls >= 1);
    teardown(s, f, j, 3);
}

static int no_join(void *ctx, px_engine_item **items, int max)
{
    (void)ctx, (void)items, (void)max;
    return 0;
}

static void no_done(void *ctx, px_engine_item *it)
{
    (void)ctx, (void)it;
    px_tfail(__FILE__, __LINE__, "done called by a refused run");
}

TEST(t_run_feed_refuses_engines_without_joins)
{
    struct jfake *f = jf_new(1);
    px_engine_ops plain = jf_ops;
    plain.caps &= ~PX_ENGINE_CAP_JOIN;
    f->base.ops = &plain;
    struct job j;
    job_init(&j, f, 8, 2, 1);
    px_engine_item *p = &j.eit;
    px_engine_feed feed = {.join = NULL, .done = NULL};
    T_EQ_INT(px_engine_run_feed(&f->base, &p, 1, &feed), PX_EINVAL);
    feed.join = no_join;
    feed.done = no_done;
    T_EQ_INT(px_engine_run_feed(&f->base, &p, 1, &feed), PX_EUNSUP);
    free_jobs(&j, 1);
    jf_destroy(&f->base);
}


/* A closed loop of clients, each sending its next item when the last one
 * ends (pixbench's generate sweep without think time). */
struct client {
    px_sched *s;
    struct jfake *f;
    int id, items;
    int64_t until;
};

static void *client_loop(void *arg)
{
    struct client *c = arg;
    struct job j;
    while (px_now_ns() < c->until) {
        job_init(&j, c->f, 8, 8, c->id * 1000 + c->items);
        px_sched_item *p = &j.it;
        if (px_sched_submit(c->s, &p, 1) == 0) {
            while (!atomic_load(&j.done)) usleep(200);
            if (j.it.status == 0) c->items++;
        }
        px_image_free(&j.out);
    }
    return NULL;
}

TEST(t_service_rate_under_a_closed_loop)
{
    /* 24 clients on a batch of at most 8: every step boundary has joiners
     * waiting, items end staggered, one or a few at a time. The rate that
     * admission divides the work ahead by must be the engine's real time
     * per item (a burst-by-burst average swung to twice it on the GPU and
     * refused requests that would have made their deadline). */
    struct jfake *f = jf_new(0);
    f->item_us = 1000, f->finish_us = 600;
    px_sched *s = mk_sched(f, 8, 0, 0, 1);
    enum { NC = 24 };
    struct client c[NC];
    pthread_t th[NC];
    int64_t t0 = px_now_ns();
    for (int i = 0; i < NC; i++) {
        c[i] = (struct client){.s = s, .f = f, .id = i, .until = t0 + 1500000000LL};
        pthread_create(&th[i], NULL, client_loop, &c[i]);
    }
    double worst = 0, lo = 1e9;
    for (int k = 0; k < 10; k++) { /* the estimate as admission sees it, over time */
        usleep(100000);
        px_sched_lane_stats ls;
        px_sched_lane_stats_get(s, &f->base, &ls);
        if (k < 4 || ls.mean_item_ms <= 0) continue; /* past the ramp */
        if (ls.mean_item_ms > worst) worst = ls.mean_item_ms;
        if (ls.mean_item_ms < lo) lo = ls.mean_item_ms;
    }
    int total = 0;
    for (int i = 0; i < NC; i++) pthread_join(th[i], NULL), total += c[i].items;
    double real_ms = (double)(px_now_ns() - t0) / 1e6 / total;
    printf("  closed loop: %d items, %.2f ms each; the estimate %.2f..%.2f ms\n", total, real_ms,
           lo, worst);
    T_TRUE(total > 0);
    T_CMP_DBL(worst, <=, 1.4 * real_ms);
    T_CMP_DBL(lo, >=, 0.6 * real_ms);
    px_sched_destroy(s);
    jf_destroy(&f->base);
}

TEST_MAIN(t_service_rate_under_a_closed_loop, t_items_join_between_steps_and_leave_when_done, t_another_size_at_the_head_is_not_starved,
          t_max_batch_and_memory_cap_the_joins, t_cancelled_expired_and_invalid_joiners_end,
          t_joins_off_runs_plain_batches, t_run_feed_refuses_engines_without_joins)
