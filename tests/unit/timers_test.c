/*
 * timers_test.c — the load loop's indexed timer heap against a plain array
 * under random sets, moves and cancels, and its edge cases (empty, the
 * last slot, equal times).
 */
#include "bench/timers.h"
#include "core/rng.h"
#include "harness.h"

#include <stdint.h>

enum { N = 97 };

/* The id with the smallest wake in a plain array (-1: none set). */
static int slow_first(const int64_t *wake, const int *set)
{
    int best = -1;
    for (int i = 0; i < N; i++)
        if (set[i] && (best < 0 || wake[i] < wake[best])) best = i;
    return best;
}

TEST(t_random_against_array)
{
    pb_timers t;
    pb_timers_init(&t, N);
    int64_t wake[N] = {0};
    int set[N] = {0};
    px_rng r;
    px_rng_seed(&r, 7, 1);
    for (int step = 0; step < 20000; step++) {
        int id = (int)(px_rng_u32(&r) % N);
        uint32_t op = px_rng_u32(&r) % 4;
        if (op < 3) { /* set or move; few distinct times, so ties happen */
            int64_t w = (int64_t)(px_rng_u32(&r) % 50);
            pb_timers_set(&t, id, w);
            wake[id] = w;
            set[id] = 1;
        } else {
            pb_timers_del(&t, id);
            set[id] = 0;
        }
        int want = slow_first(wake, set), got = pb_timers_first(&t);
        if (want < 0) T_EQ_INT(got, -1);
        else {
            T_TRUE(got >= 0 && set[got]);
            T_EQ_INT(t.wake[got], wake[want]); /* a tie may name another id */
        }
    }
    /* draining in order gives non-decreasing times and every id once */
    int64_t last = INT64_MIN;
    int count = 0, id;
    while ((id = pb_timers_first(&t)) >= 0) {
        T_TRUE(set[id]);
        T_TRUE(t.wake[id] >= last);
        last = t.wake[id];
        set[id] = 0;
        pb_timers_del(&t, id);
        count++;
    }
    T_EQ_INT(slow_first(wake, set), -1);
    T_TRUE(count > 0);
    pb_timers_free(&t);
}

TEST(t_edges)
{
    pb_timers t;
    pb_timers_init(&t, 3);
    T_EQ_INT(pb_timers_first(&t), -1);
    pb_timers_del(&t, 1); /* none set: nothing happens */
    T_EQ_INT(t.n, 0);
    pb_timers_set(&t, 2, 30);
    pb_timers_set(&t, 0, 10);
    pb_timers_set(&t, 1, 20);
    T_EQ_INT(pb_timers_first(&t), 0);
    pb_timers_set(&t, 0, 40); /* moved later: 1 is first now */
    T_EQ_INT(pb_timers_first(&t), 1);
    pb_timers_set(&t, 2, 5); /* moved earlier */
    T_EQ_INT(pb_timers_first(&t), 2);
    pb_timers_del(&t, 0); /* the last slot of the heap */
    T_EQ_INT(t.n, 2);
    pb_timers_del(&t, 2);
    T_EQ_INT(pb_timers_first(&t), 1);
    pb_timers_del(&t, 1);
    T_EQ_INT(pb_timers_first(&t), -1);
    pb_timers_free(&t);
}

TEST_MAIN(t_random_against_array, t_edges)
