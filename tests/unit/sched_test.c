/*
 * sched_test.c — the device scheduler against a fake engine whose latency,
 * memory needs and failures the tests control: batches form and respect
 * max_batch, buckets and the delay bound; priorities order; expired and
 * cancelled work is dropped in every state; out-of-memory batches are split
 * and retried; the memory guard holds, per device; start and progress
 * events reach the owner; the service rate is kept per engine; shapes the
 * engine is still preparing wait while others run, and batches shrink to
 * what is ready. The fake engine and the jobs are in sched_fake.h.
 */
#include "sched_fake.h"

/* ------------------------------------------------------------ tests */

TEST(t_batches_form_up_to_max)
{
    struct fake *f = fake_new(20);
    px_sched *s = mk_sched(f, 4, 100, 0);
    struct job j[8];
    px_sched_item *items[8];
    for (int i = 0; i < 8; i++) job_init(&j[i], f, 16, 16, i, PX_PRIO_NORMAL), items[i] = &j[i].it;
    T_EQ_INT(px_sched_submit(s, items, 8), 0);
    wait_all(j, 8);
    T_EQ_INT(f->calls, 2);
    T_EQ_INT(f->sizes[0], 4);
    T_EQ_INT(f->sizes[1], 4);
    for (int i = 0; i < 8; i++) {
        T_EQ_INT(j[i].it.status, 0);
        T_EQ_INT(j[i].it.batch_size, 4);
        T_EQ_INT(atomic_load(&j[i].done), 1);
        job_check_output(&j[i]);
    }
    px_sched_stats st;
    px_sched_stats_get(s, &st);
    T_EQ_INT(st.batches, 2);
    T_EQ_INT(st.items_run, 8);
    T_EQ_INT(st.batch_hist[2], 2); /* the 3-4 slot */
    px_sched_destroy(s);
    for (int i = 0; i < 8; i++) job_free(&j[i]);
    fake_destroy(&f->base);
}

TEST(t_delay_bound_holds)
{
    struct fake *f = fake_new(0);
    px_sched *s = mk_sched(f, 8, 60, 0);
    struct job j;
    job_init(&j, f, 8, 8, 1, PX_PRIO_NORMAL);
    px_sched_item *it = &j.it;
    T_EQ_INT(px_sched_submit(s, &it, 1), 0);
    wait_all(&j, 1);
    int64_t waited = j.it.t_started - j.it.t_queued;
    /* Waits for stragglers, but no longer than the bound (+ scheduling slack). */
    T_CMP_INT(waited, >=, 55 * 1000000LL);
    T_CMP_INT(waited, <, 1000 * 1000000LL);
    T_EQ_INT(j.it.batch_size, 1);
    px_sched_destroy(s);
    /* A full batch does not wait: against a 10 s bound it starts well
     * before half of it, however slowly a loaded machine wakes the worker. */
    s = mk_sched(f, 8, 10000, 0);
    struct job k[8];
    px_sched_item *ks[8];
    for (int i = 0; i < 8; i++) job_init(&k[i], f, 8, 8, i, PX_PRIO_NORMAL), ks[i] = &k[i].it;
    T_EQ_INT(px_sched_submit(s, ks, 8), 0);
    wait_all(k, 8);
    T_EQ_INT(k[0].it.batch_size, 8);
    T_CMP_INT(k[0].it.t_started - k[0].it.t_queued, <, 5000 * 1000000LL);
    px_sched_destroy(s);
    job_free(&j);
    for (int i = 0; i < 8; i++) job_free(&k[i]);
    fake_destroy(&f->base);
}

TEST(t_shapes_and_buckets)
{
    /* Without buckets only identical shapes batch. */
    struct fake *f = fake_new(5);
    px_sched *s = mk_sched(f, 8, 30, 0);
    struct job j[3];
    px_sched_item *items[3];
    job_init(&j[0], f, 60, 60, 0, PX_PRIO_NORMAL);
    job_init(&j[1], f, 64, 50, 1, PX_PRIO_NORMAL);
    job_init(&j[2], f, 60, 60, 2, PX_PRIO_NORMAL);
    for (int i = 0; i < 3; i++) items[i] = &j[i].it;
    T_EQ_INT(px_sched_submit(s, items, 3), 0);
    wait_all(j, 3);
    T_EQ_INT(j[0].it.batch_size, 2);
    T_EQ_INT(j[1].it.batch_size, 1);
    T_EQ_INT(j[2].it.batch_size, 2);
    px_sched_destroy(s);
    for (int i = 0; i < 3; i++) job_free(&j[i]);
    fake_destroy(&f->base);

    /* With 64-pixel buckets the three share one padded batch, and each
     * output is cropped back to its own size, correct. */
    f = fake_new(5);
    s = mk_sched(f, 8, 30, 64);
    job_init(&j[0], f, 60, 60, 0, PX_PRIO_NORMAL);
    job_init(&j[1], f, 64, 50, 1, PX_PRIO_NORMAL);
    job_init(&j[2], f, 33, 17, 2, PX_PRIO_NORMAL);
    for (int i = 0; i < 3; i++) items[i] = &j[i].it;
    T_EQ_INT(px_sched_submit(s, items, 3), 0);
    wait_all(j, 3);
    for (int i = 0; i < 3; i++) {
        T_EQ_INT(j[i].it.batch_size, 3);
        T_EQ_INT(j[i].it.status, 0);
        job_check_output(&j[i]);
    }
    px_sched_destroy(s);
    for (int i = 0; i < 3; i++) job_free(&j[i]);
    fake_destroy(&f->base);
}

TEST(t_expired_work_is_dropped)
{
    struct fake *f = fake_new(50);
    px_sched *s = mk_sched(f, 1, 0, 0);
    struct job blocker, late;
    job_init(&blocker, f, 8, 8, 1, PX_PRIO_NORMAL);
    job_init(&late, f, 8, 8, 2, PX_PRIO_NORMAL);
    late.it.deadline_ns = px_now_ns() + 10 * 1000000LL; /* expires behind the blocker */
    px_sched_item *a = &blocker.it, *b = &late.it;
    px_sched_submit(s, &a, 1);
    px_sched_submit(s, &b, 1);
    wait_all(&late, 1);
    wait_all(&blocker, 1);
    T_EQ_INT(late.it.status, PX_ETIMEDOUT);
    T_EQ_INT(late.it.batch_size, 0);
    T_EQ_INT(f->calls, 1); /* the engine never saw it */
    T_EQ_INT(blocker.it.status, 0);
    /* An item queued behind an expired one runs in the same round that
     * drops the expired one (it used to be stranded, never done). */
    struct job b2, late2, after;
    job_init(&b2, f, 8, 8, 4, PX_PRIO_NORMAL);
    job_init(&late2, f, 8, 8, 5, PX_PRIO_NORMAL);
    job_init(&after, f, 8, 8, 6, PX_PRIO_NORMAL);
    late2.it.deadline_ns = px_now_ns() + 10 * 1000000LL;
    px_sched_item *q[3] = {&b2.it, &late2.it, &after.it};
    px_sched_submit(s, &q[0], 1);
    usleep(5000);
    px_sched_submit(s, &q[1], 2);
    wait_all(&b2, 1);
    wait_all(&late2, 1);
    wait_all(&after, 1);
    T_EQ_INT(late2.it.status, PX_ETIMEDOUT);
    T_EQ_INT(after.it.status, 0);
    job_free(&b2);
    job_free(&late2);
    job_free(&after);
    /* A deadline that passes while the batch computes is reported when it
     * returns. The run is held until the deadline has passed; the item must
     * start before it, so a worker too slow to wake in time is given a
     * longer deadline and another try. */
    int computed = 0;
    for (int64_t margin = 20; margin <= 20480 && !computed; margin *= 4) {
        struct job slow;
        job_init(&slow, f, 8, 8, 3, PX_PRIO_NORMAL);
        atomic_store(&f->hold, 1);
        slow.it.deadline_ns = px_now_ns() + margin * 1000000LL;
        px_sched_item *c = &slow.it;
        px_sched_submit(s, &c, 1);
        computed = wait_started(&slow);
        while (computed && px_now_ns() <= slow.it.deadline_ns) usleep(1000);
        atomic_store(&f->hold, 0);
        wait_all(&slow, 1);
        T_EQ_INT(slow.it.status, PX_ETIMEDOUT);
        if (computed) T_CONTAINS(slow.it.err, "computing");
        else T_CONTAINS(slow.it.err, "queued");
        job_free(&slow);
    }
    T_TRUE(computed);
    px_sched_destroy(s);
    job_free(&blocker);
    job_free(&late);
    fake_destroy(&f->base);
}

TEST(t_priorities_order)
{
    struct fake *f = fake_new(30);
    px_sched *s = mk_sched(f, 1, 0, 0);
    struct job j[7];
    px_sched_item *it;
    /* j[0] runs first (the queue is empty) and is held running until the
     * queue behind it has been looked at: the worker can take nothing else
     * meanwhile, however the threads are scheduled. */
    job_init(&j[0], f, 8, 8, 0, PX_PRIO_NORMAL);
    it = &j[0].it;
    atomic_store(&f->hold, 1);
    px_sched_submit(s, &it, 1);
    T_TRUE(wait_started(&j[0]));
    const enum px_priority pr[6] = {PX_PRIO_LOW, PX_PRIO_NORMAL, PX_PRIO_HIGH,
                                    PX_PRIO_LOW, PX_PRIO_HIGH, PX_PRIO_NORMAL};
    for (int i = 1; i <= 6; i++) {
        job_init(&j[i], f, 8, 8, i, pr[i - 1]);
        it = &j[i].it;
        px_sched_submit(s, &it, 1);
    }
    T_EQ_INT(px_sched_position(s, &j[3].it), 0); /* first high */
    T_EQ_INT(px_sched_position(s, &j[5].it), 1); /* second high */
    T_EQ_INT(px_sched_position(s, &j[4].it), 5); /* last low */
    atomic_store(&f->hold, 0);
    wait_all(j, 7);
    T_EQ_INT(px_sched_position(s, &j[3].it), -1);
    const int want[7] = {0, 3, 5, 2, 6, 1, 4};
    T_EQ_INT(f->norder, 7);
    for (int i = 0; i < 7; i++) T_EQ_INT(f->order[i], want[i]);
    px_sched_destroy(s);
    for (int i = 0; i < 7; i++) job_free(&j[i]);
    fake_destroy(&f->base);
}

TEST(t_fifo_by_arrival_not_submission)
{
    struct fake *f = fake_new(20);
    px_sched *s = mk_sched(f, 1, 0, 0);
    struct job j[4];
    px_sched_item *it;
    job_init(&j[0], f, 8, 8, 0, PX_PRIO_NORMAL); /* occupies the worker until released */
    it = &j[0].it;
    atomic_store(&f->hold, 1);
    px_sched_submit(s, &it, 1);
    T_TRUE(wait_started(&j[0]));
    /* Prepared out of order: arrival times 30, 10, 20. */
    const int64_t arrival[3] = {30, 10, 20};
    for (int i = 1; i <= 3; i++) {
        job_init(&j[i], f, 8, 8, i, PX_PRIO_NORMAL);
        j[i].it.arrival_ns = arrival[i - 1];
        it = &j[i].it;
        px_sched_submit(s, &it, 1);
    }
    T_EQ_INT(px_sched_position(s, &j[2].it), 0);
    T_EQ_INT(px_sched_position(s, &j[3].it), 1);
    T_EQ_INT(px_sched_position(s, &j[1].it), 2);
    atomic_store(&f->hold, 0);
    wait_all(j, 4);
    const int want[4] = {0, 2, 3, 1};
    T_EQ_INT(f->norder, 4);
    for (int i = 0; i < 4; i++) T_EQ_INT(f->order[i], want[i]);
    T_EQ_INT(px_sched_position(s, &j[1].it), -1);
    T_CMP_INT(j[1].it.t_started, >, 0);
    for (int i = 0; i < 4; i++) T_EQ_INT(atomic_load(&j[i].started), 1);
    px_sched_destroy(s);
    for (int i = 0; i < 4; i++) job_free(&j[i]);
    fake_destroy(&f->base);
}

TEST(t_cancel_in_every_state)
{
    /* The engine would compute for 20 s: only a cancel ends it sooner. */
    struct fake *f = fake_new(20000);
    px_sched *s = mk_sched(f, 1, 0, 0);
    struct job run, queued;
    job_init(&run, f, 8, 8, 1, PX_PRIO_NORMAL);
    job_init(&queued, f, 8, 8, 2, PX_PRIO_NORMAL);
    px_sched_item *a = &run.it, *b = &queued.it;
    px_sched_submit(s, &a, 1);
    px_sched_submit(s, &b, 1);
    T_TRUE(wait_started(&run)); /* then queued waits behind it */
    px_sched_cancel(s, &queued.it); /* queued: done at once */
    T_EQ_INT(atomic_load(&queued.done), 1);
    T_EQ_INT(queued.it.status, PX_ECANCELED);
    int64_t t0 = px_now_ns();
    px_sched_cancel(s, &run.it); /* running: the engine stops at its next check */
    wait_all(&run, 1);
    T_CMP_INT(px_now_ns() - t0, <, 10000 * 1000000LL);
    T_EQ_INT(run.it.status, PX_ECANCELED);
    px_sched_cancel(s, &run.it); /* done: no-op, no second callback */
    T_EQ_INT(atomic_load(&run.done), 1);
    T_EQ_INT(f->calls, 1);
    px_sched_destroy(s);
    job_free(&run);
    job_free(&queued);
    fake_destroy(&f->base);
}

TEST(t_oom_split_and_retry)
{
    struct fake *f = fake_new(1);
    f->oom_above = 2;
    px_sched *s = mk_sched(f, 8, 50, 0);
    struct job j[8];
    px_sched_item *items[8];
    for (int i = 0; i < 8; i++) job_init(&j[i], f, 8, 8, i, PX_PRIO_NORMAL), items[i] = &j[i].it;
    px_sched_submit(s, items, 8);
    wait_all(j, 8);
    for (int i = 0; i < 8; i++) {
        T_EQ_INT(j[i].it.status, 0);
        job_check_output(&j[i]);
    }
    /* 8 fails, 4+4 fail, then 2+2+2+2 succeed */
    T_EQ_INT(f->calls, 7);
    px_sched_stats st;
    px_sched_stats_get(s, &st);
    T_EQ_INT(st.oom_splits, 3);
    px_sched_destroy(s);
    for (int i = 0; i < 8; i++) job_free(&j[i]);
    fake_destroy(&f->base);
}

static size_t fake_free_memory(void *ctx, px_engine *e)
{
    (void)e;
    return *(size_t *)ctx;
}

TEST(t_memory_guard)
{
    struct fake *f = fake_new(10);
    f->bytes_per_px = 1;
    size_t free_bytes = 1000; /* room for 3 items of 16x16 = 256 B each */
    px_sched_config c;
    px_sched_defaults(&c);
    c.max_batch = 8;
    c.max_delay_ns = 20 * 1000000LL;
    g_bucket = 0;
    g_batching = 1;
    c.mem_reserve = 0;
    c.free_memory = fake_free_memory;
    c.free_memory_ctx = &free_bytes;
    px_engine *e = &f->base;
    px_sched *s = px_sched_create(&c, &e, 1);
    struct job j[8];
    px_sched_item *items[8];
    for (int i = 0; i < 8; i++) job_init(&j[i], f, 16, 16, i, PX_PRIO_NORMAL), items[i] = &j[i].it;
    px_sched_submit(s, items, 8);
    wait_all(j, 8);
    for (int i = 0; i < f->calls; i++) T_CMP_INT(f->sizes[i], <=, 3);
    for (int i = 0; i < 8; i++) T_EQ_INT(j[i].it.status, 0);
    /* An item that can never fit fails clearly instead of running. */
    struct job big;
    job_init(&big, f, 40, 40, 9, PX_PRIO_NORMAL);
    px_sched_item *b = &big.it;
    int calls = f->calls;
    px_sched_submit(s, &b, 1);
    wait_all(&big, 1);
    T_EQ_INT(big.it.status, PX_ENOMEM);
    T_CONTAINS(big.it.err, "40x40");
    T_EQ_INT(f->calls, calls);
    T_EQ_INT(atomic_load(&f->releases), 0); /* nothing was cached: not asked */
    /* With the engine's caches holding what is missing, the same item runs
     * once they are freed (an idle GPU whose plans of earlier shapes fill
     * it), and is refused at once when even that is not enough, the
     * caches kept (the next requests of common shapes still use them). */
    struct job big2, big3;
    job_init(&big2, f, 40, 40, 10, PX_PRIO_NORMAL);
    f->free_bytes = &free_bytes;
    atomic_store(&f->cached, 1000); /* 1000 + 1000 >= 1600 */
    px_sched_item *b2 = &big2.it;
    px_sched_submit(s, &b2, 1);
    wait_all(&big2, 1);
    T_EQ_INT(big2.it.status, 0);
    T_EQ_INT(f->calls, calls + 1);
    T_EQ_INT(atomic_load(&f->releases), 1);
    job_init(&big3, f, 64, 64, 11, PX_PRIO_NORMAL); /* 4096 > 2000 free + 500 cached */
    atomic_store(&f->cached, 500);
    px_sched_item *b3 = &big3.it;
    px_sched_submit(s, &b3, 1);
    wait_all(&big3, 1);
    T_EQ_INT(big3.it.status, PX_ENOMEM);
    T_EQ_INT(atomic_load(&f->releases), 1);
    T_EQ_INT((int)atomic_load(&f->cached), 500);
    px_sched_stats st;
    px_sched_stats_get(s, &st);
    T_EQ_INT((int)st.cache_releases, 1);
    px_sched_destroy(s);
    for (int i = 0; i < 8; i++) job_free(&j[i]);
    job_free(&big), job_free(&big2), job_free(&big3);
    fake_destroy(&f->base);
}

TEST(t_non_batching_engine_runs_one_at_a_time)
{
    static const px_engine_ops single_ops = {
        .name = "single", .caps = PX_ENGINE_CAP_ANY_SIZE, .methods = fake_methods,
        .create = fake_create, .destroy = fake_destroy, .mem_estimate = fake_mem,
        .run = fake_run};
    struct fake *f = fake_new(2);
    f->base.ops = &single_ops;
    px_sched *s = mk_sched(f, 8, 10000, 64);
    struct job j[4];
    px_sched_item *items[4];
    for (int i = 0; i < 4; i++) job_init(&j[i], f, 10 + i, 9, i, PX_PRIO_NORMAL), items[i] = &j[i].it;
    px_sched_submit(s, items, 4);
    wait_all(j, 4);
    T_EQ_INT(f->calls, 4);
    for (int i = 0; i < 4; i++) {
        T_EQ_INT(j[i].it.batch_size, 1);
        /* no delay for engines that cannot batch: each starts long
         * before the 10 s batch delay would let it */
        T_CMP_INT(j[i].it.t_started - j[i].it.t_queued, <, 5000 * 1000000LL);
        job_check_output(&j[i]);
    }
    px_sched_destroy(s);
    for (int i = 0; i < 4; i++) job_free(&j[i]);
    fake_destroy(&f->base);
}

TEST(t_unready_shape_waits_while_others_run)
{
    struct fake *f = fake_new(5);
    atomic_store(&f->unready_w, 60);
    px_sched *s = mk_sched(f, 8, 0, 0);
    struct job j[3];
    px_sched_item *items[3];
    job_init(&j[0], f, 60, 60, 0, PX_PRIO_HIGH); /* first in line, but not ready */
    job_init(&j[1], f, 32, 32, 1, PX_PRIO_NORMAL);
    job_init(&j[2], f, 40, 32, 2, PX_PRIO_LOW);
    for (int i = 0; i < 3; i++) items[i] = &j[i].it;
    T_EQ_INT(px_sched_submit(s, items, 3), 0);
    wait_all(&j[1], 2);
    usleep(50000); /* several polls later it still waits */
    T_EQ_INT(atomic_load(&j[0].done), 0);
    T_EQ_INT(atomic_load(&j[0].started), 0);
    /* Ready now: it runs at the next poll. */
    atomic_store(&f->unready_w, 0);
    wait_all(j, 1);
    T_EQ_INT(j[0].it.status, 0);
    for (int i = 0; i < 3; i++) job_check_output(&j[i]);
    T_EQ_INT(f->order[2], 0); /* it ran last */
    px_sched_destroy(s);
    for (int i = 0; i < 3; i++) job_free(&j[i]);
    fake_destroy(&f->base);
}

TEST(t_partly_ready_batches_shrink)
{
    struct fake *f = fake_new(5);
    atomic_store(&f->ready_cap, 2);
    px_sched *s = mk_sched(f, 8, 20, 0);
    struct job j[5];
    px_sched_item *items[5];
    for (int i = 0; i < 5; i++) job_init(&j[i], f, 32, 32, i, PX_PRIO_NORMAL), items[i] = &j[i].it;
    T_EQ_INT(px_sched_submit(s, items, 5), 0);
    wait_all(j, 5);
    int sum = 0;
    for (int c = 0; c < f->calls; c++) {
        T_CMP_INT(f->sizes[c], <=, 2);
        sum += f->sizes[c];
    }
    T_EQ_INT(sum, 5);
    T_CMP_INT(f->calls, >=, 3);
    for (int i = 0; i < 5; i++) {
        T_EQ_INT(j[i].it.status, 0);
        job_check_output(&j[i]);
    }
    px_sched_destroy(s);
    for (int i = 0; i < 5; i++) job_free(&j[i]);
    fake_destroy(&f->base);
}

TEST(t_drain_finishes_everything_and_refuses_more)
{
    struct fake *f = fake_new(3);
    px_sched *s = mk_sched(f, 2, 0, 0);
    struct job j[6];
    px_sched_item *items[6];
    for (int i = 0; i < 6; i++) job_init(&j[i], f, 8, 8, i, PX_PRIO_LOW), items[i] = &j[i].it;
    px_sched_submit(s, items, 6);
    px_sched_drain(s);
    for (int i = 0; i < 6; i++) T_EQ_INT(atomic_load(&j[i].done), 1);
    struct job k;
    job_init(&k, f, 8, 8, 9, PX_PRIO_LOW);
    px_sched_item *kk = &k.it;
    T_EQ_INT(px_sched_submit(s, &kk, 1), PX_ECANCELED);
    px_sched_destroy(s);
    for (int i = 0; i < 6; i++) job_free(&j[i]);
    job_free(&k);
    fake_destroy(&f->base);
}

TEST(t_events_reach_the_owner)
{
    struct fake *f = fake_new(20);
    f->steps = 4;
    px_sched *s = mk_sched(f, 2, 0, 0);
    struct job j[3];
    px_sched_item *items[3];
    for (int i = 0; i < 3; i++) job_init(&j[i], f, 8, 8, i, PX_PRIO_NORMAL), items[i] = &j[i].it;
    T_EQ_INT(px_sched_submit(s, items, 3), 0);
    wait_all(j, 3);
    for (int i = 0; i < 3; i++) {
        T_EQ_INT(atomic_load(&j[i].started), 1);
        T_EQ_INT(atomic_load(&j[i].progress), 4);
    }
    /* A cancelled queued item never starts. */
    struct job run, queued;
    job_init(&run, f, 8, 8, 1, PX_PRIO_NORMAL);
    job_init(&queued, f, 8, 8, 2, PX_PRIO_NORMAL);
    /* run is held running until queued (behind it, never batched with it)
     * was cancelled */
    atomic_store(&f->hold, 1);
    px_sched_item *a = &run.it, *b = &queued.it;
    px_sched_submit(s, &a, 1);
    T_TRUE(wait_started(&run));
    px_sched_submit(s, &b, 1);
    px_sched_cancel(s, &queued.it);
    T_EQ_INT(atomic_load(&queued.done), 1);
    atomic_store(&f->hold, 0);
    wait_all(&run, 1);
    T_EQ_INT(atomic_load(&queued.started), 0);
    T_EQ_INT(atomic_load(&run.started), 1);
    px_sched_destroy(s);
    for (int i = 0; i < 3; i++) job_free(&j[i]);
    job_free(&run);
    job_free(&queued);
    fake_destroy(&f->base);
}

/* Two engines in one scheduler, on the given devices, with room for one
 * 16x16 item per device. */
static px_sched *two_engines(struct fake *a, struct fake *b, const char *da, const char *db)
{
    snprintf(a->base.device, sizeof a->base.device, "%s", da);
    snprintf(b->base.device, sizeof b->base.device, "%s", db);
    px_sched_config c;
    px_sched_defaults(&c);
    c.max_batch = 1;
    c.max_delay_ns = 0;
    c.mem_limit = 300;
    c.mem_reserve = 0;
    g_bucket = 0;
    g_batching = 0;
    px_engine *e[2] = {&a->base, &b->base};
    return px_sched_create(&c, e, 2);
}

TEST(t_memory_is_accounted_per_device)
{
    for (int same = 0; same < 2; same++) {
        struct fake *a = fake_new(100), *b = fake_new(100);
        px_sched *s = two_engines(a, b, "cuda:0", same ? "cuda:0" : "cuda:1");
        struct job ja, jb;
        job_init(&ja, a, 16, 16, 1, PX_PRIO_NORMAL);
        job_init(&jb, b, 16, 16, 2, PX_PRIO_NORMAL);
        px_sched_item *ia = &ja.it, *ib = &jb.it;
        /* Different devices run side by side: both start while both runs
         * are held (one device's memory would keep the second waiting). */
        if (!same) atomic_store(&a->hold, 1), atomic_store(&b->hold, 1);
        px_sched_submit(s, &ia, 1);
        px_sched_submit(s, &ib, 1);
        if (!same) {
            T_TRUE(wait_started(&ja));
            T_TRUE(wait_started(&jb));
            T_EQ_INT(atomic_load(&ja.done) + atomic_load(&jb.done), 0);
            atomic_store(&a->hold, 0), atomic_store(&b->hold, 0);
        }
        wait_all(&ja, 1);
        wait_all(&jb, 1);
        T_EQ_INT(ja.it.status, 0);
        T_EQ_INT(jb.it.status, 0);
        /* One device runs one at a time: the second starts only after the
         * first's 100 ms of computing. */
        if (same) T_CMP_INT(llabs(ja.it.t_started - jb.it.t_started), >=, 80 * 1000000LL);
        px_sched_destroy(s);
        job_free(&ja);
        job_free(&jb);
        fake_destroy(&a->base);
        fake_destroy(&b->base);
    }
}

TEST(t_service_rate_is_per_engine)
{
    /* 0 ms against 100 ms a batch: a loaded machine stretches the fast
     * lane's few microseconds, but not to half the slow lane's time. */
    struct fake *fast = fake_new(0), *slow = fake_new(100);
    px_sched *s = two_engines(fast, slow, "cpu", "cuda:0");
    struct job j[6];
    px_sched_item *items[6];
    for (int i = 0; i < 6; i++)
        job_init(&j[i], i < 3 ? fast : slow, 8, 8, i, PX_PRIO_NORMAL), items[i] = &j[i].it;
    T_EQ_INT(px_sched_submit(s, items, 6), 0);
    wait_all(j, 6);
    px_sched_lane_stats lf, ls;
    T_EQ_INT(px_sched_lane_stats_get(s, &fast->base, &lf), 0);
    T_EQ_INT(px_sched_lane_stats_get(s, &slow->base, &ls), 0);
    T_CMP_DBL(ls.mean_item_ms, >, 90.0);
    T_CMP_DBL(lf.mean_item_ms, <, ls.mean_item_ms / 2);
    T_EQ_INT(lf.workers, 1);
    T_EQ_INT(ls.running, 0);
    px_sched_destroy(s);
    for (int i = 0; i < 6; i++) job_free(&j[i]);
    fake_destroy(&fast->base);
    fake_destroy(&slow->base);
}

TEST_MAIN(t_batches_form_up_to_max, t_unready_shape_waits_while_others_run,
          t_partly_ready_batches_shrink, t_delay_bound_holds, t_shapes_and_buckets,
          t_expired_work_is_dropped, t_priorities_order, t_fifo_by_arrival_not_submission,
          t_cancel_in_every_state,
          t_oom_split_and_retry, t_memory_guard, t_non_batching_engine_runs_one_at_a_time,
          t_drain_finishes_everything_and_refuses_more, t_events_reach_the_owner,
          t_memory_is_accounted_per_device, t_service_rate_is_per_engine)
