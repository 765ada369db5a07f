/*
 * sched_test.c — the device scheduler against a fake engine whose latency,
 * memory needs and failures the tests control: batches form and respect
 * max_batch, buckets and the delay bound; priorities order; expired and
 * cancelled work is dropped in every state; out-of-memory batches are split
 * and retried; the memory guard holds.
 */
#include "core/clock.h"
#include "core/err.h"
#include "engine/engine_impl.h"
#include "harness.h"
#include "serve/sched.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ------------------------------------------------------------ fake engine */

struct fake {
    px_engine base;
    int latency_ms;      /* per batch */
    int oom_above;       /* batches larger than this fail with PX_ENOMEM (0 = never) */
    size_t bytes_per_px; /* memory estimate per pixel per item */
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
    for (int t = 0; t < f->latency_ms; t++) {
        int all = 1;
        for (int i = 0; i < n; i++) all &= items[i].cancel && atomic_load(items[i].cancel);
        if (all) break;
        usleep(1000);
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

static const char *const fake_methods[] = {"default", NULL};
static const px_engine_ops fake_ops = {
    .name = "fake",
    .description = "test engine",
    .caps = PX_ENGINE_CAP_BATCH | PX_ENGINE_CAP_ANY_SIZE,
    .methods = fake_methods,
    .create = fake_create,
    .destroy = fake_destroy,
    .mem_estimate = fake_mem,
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
    px_image img, mask, out;
    atomic_int done;
};

static void on_done(px_sched_item *it, void *arg)
{
    (void)it;
    atomic_fetch_add(&((struct job *)arg)->done, 1);
}

static void job_init(struct job *j, struct fake *f, int w, int h, int seed, enum px_priority p)
{
    memset(j, 0, sizeof *j);
    px_image_alloc(&j->img, w, h, 3, NULL, NULL, 0);
    px_image_alloc(&j->mask, w, h, 1, NULL, NULL, 0);
    px_image_alloc(&j->out, w, h, 3, NULL, NULL, 0);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) j->img.px[i] = (uint8_t)(i * 7 + (size_t)seed);
    for (size_t i = 0; i < (size_t)w * h; i++) j->mask.px[i] = (i % 3 == 0) ? 255 : 0;
    j->it.engine = &f->base;
    j->it.image = &j->img;
    j->it.mask = &j->mask;
    j->it.out = &j->out;
    j->it.seed = (uint64_t)seed;
    j->it.prio = p;
    j->it.done = on_done;
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

static px_sched *mk_sched(struct fake *f, int max_batch, int delay_ms, int bucket)
{
    px_sched_config c;
    px_sched_defaults(&c);
    c.max_batch = max_batch;
    c.max_delay_ns = (int64_t)delay_ms * 1000000;
    c.bucket_step = bucket;
    c.mem_limit = (size_t)1 << 40;
    c.mem_reserve = 0;
    px_engine *e = &f->base;
    return px_sched_create(&c, &e, 1);
}

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
    /* A full batch does not wait. */
    struct job k[8];
    px_sched_item *ks[8];
    for (int i = 0; i < 8; i++) job_init(&k[i], f, 8, 8, i, PX_PRIO_NORMAL), ks[i] = &k[i].it;
    T_EQ_INT(px_sched_submit(s, ks, 8), 0);
    wait_all(k, 8);
    T_CMP_INT(k[0].it.t_started - k[0].it.t_queued, <, 50 * 1000000LL);
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
    /* A deadline that passes while the batch computes is reported when it
     * returns. */
    struct job slow;
    job_init(&slow, f, 8, 8, 3, PX_PRIO_NORMAL);
    slow.it.deadline_ns = px_now_ns() + 20 * 1000000LL;
    px_sched_item *c = &slow.it;
    px_sched_submit(s, &c, 1);
    wait_all(&slow, 1);
    T_EQ_INT(slow.it.status, PX_ETIMEDOUT);
    T_CONTAINS(slow.it.err, "computing");
    px_sched_destroy(s);
    job_free(&blocker);
    job_free(&late);
    job_free(&slow);
    fake_destroy(&f->base);
}

TEST(t_priorities_order)
{
    struct fake *f = fake_new(30);
    px_sched *s = mk_sched(f, 1, 0, 0);
    struct job j[7];
    px_sched_item *it;
    job_init(&j[0], f, 8, 8, 0, PX_PRIO_NORMAL); /* runs first: the queue is empty */
    it = &j[0].it;
    px_sched_submit(s, &it, 1);
    usleep(10000);
    const enum px_priority pr[6] = {PX_PRIO_LOW, PX_PRIO_NORMAL, PX_PRIO_HIGH,
                                    PX_PRIO_LOW, PX_PRIO_HIGH, PX_PRIO_NORMAL};
    for (int i = 1; i <= 6; i++) {
        job_init(&j[i], f, 8, 8, i, pr[i - 1]);
        it = &j[i].it;
        px_sched_submit(s, &it, 1);
    }
    T_EQ_INT(px_sched_position(s, &j[3].it, NULL), 0); /* first high */
    T_EQ_INT(px_sched_position(s, &j[5].it, NULL), 1); /* second high */
    T_EQ_INT(px_sched_position(s, &j[4].it, NULL), 5); /* last low */
    wait_all(j, 7);
    T_EQ_INT(px_sched_position(s, &j[3].it, NULL), -1);
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
    job_init(&j[0], f, 8, 8, 0, PX_PRIO_NORMAL); /* occupies the worker */
    it = &j[0].it;
    px_sched_submit(s, &it, 1);
    usleep(5000);
    /* Prepared out of order: arrival times 30, 10, 20. */
    const int64_t arrival[3] = {30, 10, 20};
    for (int i = 1; i <= 3; i++) {
        job_init(&j[i], f, 8, 8, i, PX_PRIO_NORMAL);
        j[i].it.arrival_ns = arrival[i - 1];
        it = &j[i].it;
        px_sched_submit(s, &it, 1);
    }
    T_EQ_INT(px_sched_position(s, &j[2].it, NULL), 0);
    T_EQ_INT(px_sched_position(s, &j[3].it, NULL), 1);
    T_EQ_INT(px_sched_position(s, &j[1].it, NULL), 2);
    wait_all(j, 4);
    const int want[4] = {0, 2, 3, 1};
    for (int i = 0; i < 4; i++) T_EQ_INT(f->order[i], want[i]);
    int64_t started;
    T_EQ_INT(px_sched_position(s, &j[1].it, &started), -1);
    T_CMP_INT(started, >, 0);
    px_sched_destroy(s);
    for (int i = 0; i < 4; i++) job_free(&j[i]);
    fake_destroy(&f->base);
}

TEST(t_cancel_in_every_state)
{
    struct fake *f = fake_new(5000);
    px_sched *s = mk_sched(f, 1, 0, 0);
    struct job run, queued;
    job_init(&run, f, 8, 8, 1, PX_PRIO_NORMAL);
    job_init(&queued, f, 8, 8, 2, PX_PRIO_NORMAL);
    px_sched_item *a = &run.it, *b = &queued.it;
    px_sched_submit(s, &a, 1);
    px_sched_submit(s, &b, 1);
    usleep(20000);
    px_sched_cancel(s, &queued.it); /* queued: done at once */
    T_EQ_INT(atomic_load(&queued.done), 1);
    T_EQ_INT(queued.it.status, PX_ECANCELED);
    int64_t t0 = px_now_ns();
    px_sched_cancel(s, &run.it); /* running: the engine stops at its next check */
    wait_all(&run, 1);
    T_CMP_INT(px_now_ns() - t0, <, 2000 * 1000000LL);
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
    c.bucket_step = 0;
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
    px_sched_destroy(s);
    for (int i = 0; i < 8; i++) job_free(&j[i]);
    job_free(&big);
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
    px_sched *s = mk_sched(f, 8, 20, 64);
    struct job j[4];
    px_sched_item *items[4];
    for (int i = 0; i < 4; i++) job_init(&j[i], f, 10 + i, 9, i, PX_PRIO_NORMAL), items[i] = &j[i].it;
    px_sched_submit(s, items, 4);
    wait_all(j, 4);
    T_EQ_INT(f->calls, 4);
    for (int i = 0; i < 4; i++) {
        T_EQ_INT(j[i].it.batch_size, 1);
        /* no delay for engines that cannot batch */
        T_CMP_INT(j[i].it.t_started - j[i].it.t_queued, <, 1000 * 1000000LL);
        job_check_output(&j[i]);
    }
    px_sched_destroy(s);
    for (int i = 0; i < 4; i++) job_free(&j[i]);
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

TEST_MAIN(t_batches_form_up_to_max, t_delay_bound_holds, t_shapes_and_buckets,
          t_expired_work_is_dropped, t_priorities_order, t_fifo_by_arrival_not_submission,
          t_cancel_in_every_state,
          t_oom_split_and_retry, t_memory_guard, t_non_batching_engine_runs_one_at_a_time,
          t_drain_finishes_everything_and_refuses_more)
