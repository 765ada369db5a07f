/*
 * workers_test.c — the bounded queue: FIFO execution, 429-style refusal when
 * full, deadlines while queued and while running (answered at once, work
 * cancelled), explicit cancel, drain, and that every work item ends exactly once.
 */
#include "core/clock.h"
#include "core/err.h"
#include "harness.h"
#include "serve/workers.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct ctx {
    int sleep_ms;       /* how long the work "computes", in 1 ms steps */
    int id;
    atomic_int *order;  /* shared counter: records start order */
    int started_as;
    atomic_int notified;
    atomic_int saw_cancel;
    int64_t notified_at;
    atomic_int started;  /* the work began */
    atomic_int *hold;    /* while set, the work waits (until cancelled) before computing */
};

static int work(void *p, const atomic_int *cancel)
{
    struct ctx *c = p;
    if (c->order) c->started_as = atomic_fetch_add(c->order, 1);
    atomic_store(&c->started, 1);
    while (c->hold && atomic_load(c->hold) && !atomic_load(cancel)) usleep(1000);
    for (int i = 0; i < c->sleep_ms; i++) {
        if (atomic_load(cancel)) {
            atomic_store(&c->saw_cancel, 1);
            return PX_ECANCELED;
        }
        usleep(1000);
    }
    return c->id == 99 ? PX_EINVAL : 0;
}

static void notify(px_work *j, void *arg)
{
    (void)j;
    struct ctx *c = arg;
    c->notified_at = px_now_ns();
    atomic_fetch_add(&c->notified, 1);
}

static void wait_notified(struct ctx *c, int ms)
{
    for (int i = 0; i < ms && !atomic_load(&c->notified); i++) usleep(1000);
}

/* Waits (bounded) until c's work began or c was answered; returns whether
 * it began. Tests wait for this rather than sleep: a loaded machine may
 * take any time to run the worker. */
static int wait_started(struct ctx *c)
{
    for (int i = 0; i < 20000 && !atomic_load(&c->started) && !atomic_load(&c->notified); i++)
        usleep(1000);
    return atomic_load(&c->started);
}

TEST(t_runs_in_order_and_reports)
{
    px_workers *w = px_workers_create(1, 8);
    atomic_int order = 0;
    struct ctx c[5] = {{0}};
    px_work *j[5];
    for (int i = 0; i < 5; i++) {
        c[i].sleep_ms = 5;
        c[i].id = i == 4 ? 99 : i;
        c[i].order = &order;
        j[i] = px_work_new(work, &c[i], NULL, 0, notify, &c[i]);
        T_EQ_INT(px_work_state(j[i]), PX_WORK_NEW);
        T_EQ_INT(px_workers_submit(w, j[i]), 0);
    }
    px_workers_drain(w);
    for (int i = 0; i < 5; i++) {
        T_EQ_INT(atomic_load(&c[i].notified), 1);
        T_EQ_INT(c[i].started_as, i);
        T_EQ_INT(px_work_state(j[i]), PX_WORK_DONE);
        T_EQ_INT(px_work_result(j[i]), i == 4 ? PX_EINVAL : 0);
        T_CMP_INT(px_work_run_ns(j[i]), >=, 4000000);
        px_work_unref(j[i]);
    }
    px_workers_stats s;
    px_workers_stats_get(w, &s);
    T_EQ_INT(s.completed, 5);
    T_EQ_INT(s.submitted, 5);
    T_CMP_DBL(s.mean_service_ms, >=, 4.0);
    px_workers_destroy(w);
}

TEST(t_full_queue_refuses_then_recovers)
{
    px_workers *w = px_workers_create(1, 2);
    struct ctx c[6] = {{0}};
    px_work *j[6];
    int busy = 0, ok = 0;
    atomic_int hold = 1;
    c[0].hold = &hold; /* the first runs, held, until all six were offered */
    for (int i = 0; i < 6; i++) {
        c[i].sleep_ms = 40;
        j[i] = px_work_new(work, &c[i], NULL, 0, notify, &c[i]);
        int rc = px_workers_submit(w, j[i]);
        if (rc == PX_EBUSY) busy++;
        else if (rc == 0) ok++;
        /* the first work item starts, so it leaves the queue */
        if (i == 0) T_TRUE(wait_started(&c[0]));
    }
    /* one running + two queued; the other three refused */
    T_EQ_INT(ok, 3);
    T_EQ_INT(busy, 3);
    T_CMP_INT(px_workers_retry_after_s(w), >=, 1);
    atomic_store(&hold, 0);
    px_workers_drain(w);
    px_workers_stats s;
    px_workers_stats_get(w, &s);
    T_EQ_INT(s.rejected, 3);
    T_EQ_INT(s.completed, 3);
    for (int i = 0; i < 6; i++) {
        T_EQ_INT(atomic_load(&c[i].notified), px_work_state(j[i]) == PX_WORK_NEW ? 0 : 1);
        px_work_unref(j[i]);
    }
    px_workers_destroy(w);
    /* after a drain, a fresh pool accepts again (recovery is per pool) */
    w = px_workers_create(1, 2);
    struct ctx c2 = {.sleep_ms = 1};
    px_work *j2 = px_work_new(work, &c2, NULL, 0, notify, &c2);
    T_EQ_INT(px_workers_submit(w, j2), 0);
    px_workers_destroy(w);
    T_EQ_INT(px_work_state(j2), PX_WORK_DONE);
    px_work_unref(j2);
}

TEST(t_deadline_while_running_answers_at_once)
{
    /* The work would compute for 20 s. Its deadline must pass while it
     * runs: when a loaded machine starts it too late (it timed out while
     * queued), another try gets a longer deadline. */
    int ran = 0;
    for (int64_t margin = 50; margin <= 12800 && !ran; margin *= 4) {
        px_workers *w = px_workers_create(1, 4);
        struct ctx c = {.sleep_ms = 20000};
        int64_t t0 = px_now_ns();
        px_work *j = px_work_new(work, &c, NULL, t0 + margin * 1000000LL, notify, &c);
        T_EQ_INT(px_workers_submit(w, j), 0);
        wait_notified(&c, (int)margin + 10000);
        T_EQ_INT(atomic_load(&c.notified), 1);
        T_EQ_INT(px_work_state(j), PX_WORK_TIMEDOUT);
        T_EQ_INT(px_work_result(j), PX_ETIMEDOUT);
        /* answered near the deadline, not when the work stops */
        T_CMP_INT(c.notified_at - t0, <, (margin + 5000) * 1000000LL);
        px_workers_drain(w);
        ran = atomic_load(&c.started);
        if (ran) T_EQ_INT(atomic_load(&c.saw_cancel), 1);
        T_EQ_INT(atomic_load(&c.notified), 1); /* exactly once */
        px_workers_stats s;
        px_workers_stats_get(w, &s);
        T_EQ_INT(s.timed_out, 1);
        T_EQ_INT(s.completed, 0);
        px_work_unref(j);
        px_workers_destroy(w);
    }
    T_TRUE(ran);
}

TEST(t_deadline_while_queued)
{
    px_workers *w = px_workers_create(1, 4);
    struct ctx blocker = {.sleep_ms = 300};
    px_work *jb = px_work_new(work, &blocker, NULL, 0, notify, &blocker);
    T_EQ_INT(px_workers_submit(w, jb), 0);
    struct ctx c = {.sleep_ms = 1, .order = NULL};
    int64_t dl = px_now_ns() + 30 * 1000000LL;
    px_work *j = px_work_new(work, &c, NULL, dl, notify, &c);
    T_EQ_INT(px_workers_submit(w, j), 0);
    int64_t queued_by = px_now_ns();
    wait_notified(&c, 10000);
    T_EQ_INT(px_work_state(j), PX_WORK_TIMEDOUT);
    T_EQ_INT(px_work_run_ns(j), 0); /* never started */
    /* queued at the latest when submit returned, until the deadline */
    T_CMP_INT(px_work_queue_ns(j), >=, dl - queued_by);
    px_workers_drain(w);
    T_EQ_INT(px_work_state(jb), PX_WORK_DONE);
    T_EQ_INT(atomic_load(&c.notified), 1);
    px_work_unref(j);
    px_work_unref(jb);
    px_workers_destroy(w);
}

TEST(t_cancel_queued_and_running)
{
    px_workers *w = px_workers_create(1, 4);
    struct ctx a = {.sleep_ms = 20000}, b = {.sleep_ms = 1};
    px_work *ja = px_work_new(work, &a, NULL, 0, notify, &a);
    px_work *jb = px_work_new(work, &b, NULL, 0, notify, &b);
    T_EQ_INT(px_workers_submit(w, ja), 0);
    T_EQ_INT(px_workers_submit(w, jb), 0);
    T_TRUE(wait_started(&a)); /* b waits behind it */
    T_EQ_INT(px_workers_cancel(w, jb), 0); /* queued */
    T_EQ_INT(px_work_state(jb), PX_WORK_CANCELLED);
    T_EQ_INT(px_workers_cancel(w, ja), 0); /* running */
    T_EQ_INT(px_work_state(ja), PX_WORK_CANCELLED);
    T_EQ_INT(px_workers_cancel(w, ja), PX_EINVAL); /* already final */
    int64_t t0 = px_now_ns();
    px_workers_drain(w);
    T_CMP_INT(px_now_ns() - t0, <, 10000 * 1000000LL); /* the 20 s of work stopped early */
    T_EQ_INT(atomic_load(&a.saw_cancel), 1);
    T_EQ_INT(atomic_load(&a.notified), 1);
    T_EQ_INT(atomic_load(&b.notified), 1);
    px_work_unref(ja);
    px_work_unref(jb);
    px_workers_destroy(w);
}

static void count_free(void *p)
{
    atomic_fetch_add((atomic_int *)p, 1);
}

static int quick(void *p, const atomic_int *cancel)
{
    (void)p;
    (void)cancel;
    return 0;
}

TEST(t_ctx_freed_with_last_reference)
{
    atomic_int freed = 0;
    px_workers *w = px_workers_create(2, 4);
    px_work *j = px_work_new(quick, &freed, count_free, 0, NULL, NULL);
    T_EQ_INT(px_workers_submit(w, j), 0);
    px_workers_drain(w);
    T_EQ_INT(atomic_load(&freed), 0); /* the caller still holds it */
    px_work_unref(j);
    T_EQ_INT(atomic_load(&freed), 1);
    /* draining pools refuse new work */
    px_work *k = px_work_new(quick, &freed, count_free, 0, NULL, NULL);
    T_EQ_INT(px_workers_submit(w, k), PX_ECANCELED);
    px_work_unref(k);
    T_EQ_INT(atomic_load(&freed), 2);
    px_workers_destroy(w);
}

struct storm {
    px_workers *w;
    atomic_int finals;
};

static void storm_notify(px_work *j, void *arg)
{
    (void)j;
    atomic_fetch_add(&((struct storm *)arg)->finals, 1);
}

static int storm_work(void *p, const atomic_int *cancel)
{
    (void)p;
    for (int i = 0; i < 3 && !atomic_load(cancel); i++) usleep(300);
    return 0;
}

static void *storm_thread(void *arg)
{
    struct storm *s = arg;
    for (int i = 0; i < 200; i++) {
        /* a mix: no deadline, an instant deadline, a short one; some cancelled */
        int64_t dl = i % 3 == 0 ? 0 : px_now_ns() + (i % 3 == 1 ? 1 : 2000000);
        px_work *j = px_work_new(storm_work, NULL, NULL, dl, storm_notify, s);
        if (px_workers_submit(s->w, j) == 0) {
            if (i % 5 == 0) px_workers_cancel(s->w, j);
        } else {
            atomic_fetch_add(&s->finals, 1); /* refused: counts as ended */
        }
        px_work_unref(j);
    }
    return NULL;
}

TEST(t_every_work_item_ends_exactly_once_under_contention)
{
    struct storm s = {.w = px_workers_create(3, 16)};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, storm_thread, &s);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    px_workers_drain(s.w);
    T_EQ_INT(atomic_load(&s.finals), 800);
    px_workers_stats st;
    px_workers_stats_get(s.w, &st);
    T_EQ_INT(st.completed + st.timed_out + st.cancelled + st.rejected, 800);
    T_EQ_INT(st.queued, 0);
    T_EQ_INT(st.running, 0);
    px_workers_destroy(s.w);
}

TEST_MAIN(t_runs_in_order_and_reports, t_full_queue_refuses_then_recovers,
          t_deadline_while_running_answers_at_once, t_deadline_while_queued,
          t_cancel_queued_and_running, t_ctx_freed_with_last_reference,
          t_every_work_item_ends_exactly_once_under_contention)
