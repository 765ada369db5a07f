/*
 * admit_test.c — admission from the deadline: the prediction, Retry-After
 * from its excess, the work admitted but not yet queued counted ahead,
 * priorities, and the safety bounds.
 */
#include "harness.h"

#include "core/err.h"
#include "serve/admit.h"

#include <string.h>

TEST(t_fits_predicts_finish_and_retry_after)
{
    double finish = -1;
    int retry = 0;
    /* 9 ahead at 100 ms on one worker: finish at 1000 ms, fits 1000. */
    T_EQ_INT(px_admit_fits(9, 100.0, 1, 1000, &finish, &retry), 1);
    T_TRUE(finish > 999.9 && finish < 1000.1);
    /* 10 ahead: 1100 ms, 100 ms late: refused, retry after 1 s. */
    T_EQ_INT(px_admit_fits(10, 100.0, 1, 1000, &finish, &retry), 0);
    T_EQ_INT(retry, 1);
    /* 99 ahead at 50 ms over 2 workers: 2500 ms vs 400 ms: 2.1 s late -> 3. */
    T_EQ_INT(px_admit_fits(99, 50.0, 2, 400, &finish, &retry), 0);
    T_TRUE(finish > 2499.9 && finish < 2500.1);
    T_EQ_INT(retry, 3);
    /* Many ahead still fit a long deadline. */
    T_EQ_INT(px_admit_fits(500, 50.0, 1, 60000, &finish, &retry), 1);
    /* Nothing ahead, or no rate measured yet: always tried. */
    T_EQ_INT(px_admit_fits(0, 5000.0, 1, 10, &finish, &retry), 1);
    T_EQ_INT(px_admit_fits(1000, 0.0, 1, 10, &finish, &retry), 1);
    T_TRUE(finish == 0);
}

TEST(t_take_counts_admitted_work_ahead)
{
    px_admit *a = px_admit_create(2, 100000, 0);
    px_admit_load l = {.sched_ahead = 0, .workers = 1, .item_ms = 100.0, .budget_ms = 1000};
    char err[256];
    int retry = -1, n = 0;
    /* A burst with an empty scheduler queue: the admitted requests count
     * ahead of the next, so exactly 10 fit 1000 ms at 100 ms each. */
    while (px_admit_take(a, 0, PX_PRIO_NORMAL, NULL, &l, &retry, err, sizeof err) == 0) n++;
    T_EQ_INT(n, 10);
    T_EQ_INT(retry, 1);
    T_CONTAINS(err, "deadline");
    /* The other engine has its own work ahead. */
    T_EQ_INT(px_admit_take(a, 1, PX_PRIO_NORMAL, NULL, &l, &retry, err, sizeof err), 0);
    /* Normal work is not ahead of a high-priority request... */
    T_EQ_INT(px_admit_take(a, 0, PX_PRIO_HIGH, NULL, &l, &retry, err, sizeof err), 0);
    /* ...but high work is ahead of a low one: 11 ahead, 1200 ms. */
    T_EQ_INT(px_admit_take(a, 0, PX_PRIO_LOW, NULL, &l, &retry, err, sizeof err), PX_EBUSY);
    T_EQ_INT(retry, 1);
    /* A longer deadline fits behind them all. */
    l.budget_ms = 60000;
    T_EQ_INT(px_admit_take(a, 0, PX_PRIO_LOW, NULL, &l, &retry, err, sizeof err), 0);
    /* The scheduler's count wins when larger (items of multi-item requests). */
    l.sched_ahead = 700;
    T_EQ_INT(px_admit_take(a, 0, PX_PRIO_LOW, NULL, &l, &retry, err, sizeof err), PX_EBUSY);
    T_EQ_INT(retry, 11); /* 701 * 100 ms - 60 s = 10.1 s -> 11 */
    /* Released slots make room again. */
    l.sched_ahead = 0;
    l.budget_ms = 1000;
    px_admit_release(a, 0, PX_PRIO_NORMAL, NULL);
    px_admit_release(a, 0, PX_PRIO_HIGH, NULL);
    T_EQ_INT(px_admit_take(a, 0, PX_PRIO_NORMAL, NULL, &l, &retry, err, sizeof err), 0);
    int pending[PX_PRIO_COUNT];
    px_admit_pending(a, pending);
    T_EQ_INT(pending[PX_PRIO_NORMAL], 11); /* 10 on engine 0, 1 on engine 1 */
    T_EQ_INT(pending[PX_PRIO_LOW], 1);
    px_admit_destroy(a);
}

TEST(t_safety_bounds_still_hold)
{
    px_admit *a = px_admit_create(1, 3, 2);
    px_admit_load l = {.sched_ahead = 0, .workers = 1, .item_ms = 1.0, .budget_ms = 60000};
    char err[256];
    int retry = -1;
    T_EQ_INT(px_admit_take(a, 0, PX_PRIO_NORMAL, "k1", &l, &retry, err, sizeof err), 0);
    T_EQ_INT(px_admit_take(a, 0, PX_PRIO_NORMAL, "k1", &l, &retry, err, sizeof err), 0);
    T_EQ_INT(px_admit_take(a, 0, PX_PRIO_NORMAL, "k1", &l, &retry, err, sizeof err), PX_EBUSY);
    T_CONTAINS(err, "client");
    T_EQ_INT(retry, 0); /* a bound, not a prediction: the caller picks the time */
    T_EQ_INT(px_admit_take(a, 0, PX_PRIO_NORMAL, "k2", &l, &retry, err, sizeof err), 0);
    T_EQ_INT(px_admit_take(a, 0, PX_PRIO_NORMAL, "k3", &l, &retry, err, sizeof err), PX_EBUSY);
    T_CONTAINS(err, "--queue");
    /* Without a load (no engine rate asked), only the bounds apply. */
    T_EQ_INT(px_admit_take(a, 0, PX_PRIO_HIGH, NULL, NULL, &retry, err, sizeof err), 0);
    px_admit_destroy(a);
}

TEST_MAIN(t_fits_predicts_finish_and_retry_after, t_take_counts_admitted_work_ahead,
          t_safety_bounds_still_hold)
