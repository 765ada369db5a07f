/*
 * timer_test.c — deadline timers: order of firing, disarm before and during
 * a callback, many timers at once.
 */
#include "core/clock.h"
#include "core/timer.h"
#include "harness.h"

#include <stdatomic.h>
#include <unistd.h>

static atomic_int g_order[16];
static atomic_int g_n;

static void record(void *arg)
{
    int k = atomic_fetch_add(&g_n, 1);
    if (k < 16) atomic_store(&g_order[k], (int)(intptr_t)arg);
}

static void wait_n(int n)
{
    for (int i = 0; i < 5000 && atomic_load(&g_n) < n; i++) usleep(1000);
}

/* A callback that keeps the timer thread until the test opens the gate:
 * while it is held nothing else fires, so the test arms and disarms
 * without racing the clock, however late a loaded machine runs it. */
static atomic_int g_gate_in, g_gate_open;

static void gate_cb(void *arg)
{
    (void)arg;
    atomic_store(&g_gate_in, 1);
    while (!atomic_load(&g_gate_open)) usleep(500);
}

static void hold_timer_thread(px_timers *t)
{
    px_timer_arm(t, px_now_ns(), gate_cb, NULL);
    for (int i = 0; i < 20000 && !atomic_load(&g_gate_in); i++) usleep(1000);
    T_TRUE(atomic_load(&g_gate_in));
}

static atomic_int g_last;

static void mark_last(void *arg)
{
    (void)arg;
    atomic_store(&g_last, 1);
}

TEST(t_fire_in_deadline_order)
{
    px_timers *t = px_timers_create();
    /* armed out of order while the timer thread is held, so that none is
     * due and fired before the next is armed */
    hold_timer_thread(t);
    int64_t now = px_now_ns();
    px_timer_arm(t, now + 40 * 1000000LL, record, (void *)3);
    px_timer_arm(t, now + 10 * 1000000LL, record, (void *)1);
    px_timer_arm(t, now + 25 * 1000000LL, record, (void *)2);
    px_timer_arm(t, now - 1000, record, (void *)0); /* already due */
    atomic_store(&g_gate_open, 1);
    wait_n(4);
    T_EQ_INT(atomic_load(&g_n), 4);
    for (int i = 0; i < 4; i++) T_EQ_INT(atomic_load(&g_order[i]), i);
    T_EQ_INT(px_timers_pending(t), 0);
    px_timers_destroy(t);
}

TEST(t_disarm_before_firing)
{
    px_timers *t = px_timers_create();
    hold_timer_thread(t); /* a cannot fire before the disarm */
    uint64_t a = px_timer_arm(t, px_now_ns() + 20 * 1000000LL, record, (void *)1);
    uint64_t b = px_timer_arm(t, px_now_ns() + 30 * 1000000LL, record, (void *)2);
    T_EQ_INT(px_timer_disarm(t, a), 1);
    T_EQ_INT(px_timer_disarm(t, a), 0); /* twice: already gone */
    atomic_store(&g_gate_open, 1);
    /* a was due before b: had it survived, it would have fired first */
    wait_n(1);
    T_EQ_INT(atomic_load(&g_n), 1);
    T_EQ_INT(atomic_load(&g_order[0]), 2);
    T_EQ_INT(px_timer_disarm(t, b), 0); /* fired */
    px_timers_destroy(t);
}

static atomic_int g_in_cb, g_cb_done;

static void slow_cb(void *arg)
{
    (void)arg;
    atomic_store(&g_in_cb, 1);
    usleep(100000);
    atomic_store(&g_cb_done, 1);
}

TEST(t_disarm_waits_for_running_callback)
{
    px_timers *t = px_timers_create();
    uint64_t id = px_timer_arm(t, px_now_ns(), slow_cb, NULL);
    while (!atomic_load(&g_in_cb)) usleep(500);
    T_EQ_INT(px_timer_disarm(t, id), 0);
    T_EQ_INT(atomic_load(&g_cb_done), 1); /* returned only after the callback */
    px_timers_destroy(t);
}

TEST(t_many_timers_and_destroy_drops_pending)
{
    px_timers *t = px_timers_create();
    hold_timer_thread(t); /* none fires before the disarms */
    int64_t now = px_now_ns();
    uint64_t ids[500];
    for (int i = 0; i < 500; i++)
        ids[i] = px_timer_arm(t, now + 30 * 1000000LL + (int64_t)((i * 7919) % 500) * 100000,
                              record, (void *)5);
    for (int i = 0; i < 500; i += 2) T_EQ_INT(px_timer_disarm(t, ids[i]), 1);
    /* due after all of them: when it has fired, every survivor has */
    px_timer_arm(t, now + 90 * 1000000LL, mark_last, NULL);
    atomic_store(&g_gate_open, 1);
    for (int i = 0; i < 20000 && !atomic_load(&g_last); i++) usleep(1000);
    T_TRUE(atomic_load(&g_last));
    T_EQ_INT(atomic_load(&g_n), 250);
    px_timer_arm(t, px_now_ns() + 10LL * 1000000000, record, (void *)9);
    T_EQ_INT(px_timers_pending(t), 1);
    px_timers_destroy(t); /* does not wait 10 s, does not fire */
    T_EQ_INT(atomic_load(&g_n), 250);
}

TEST_MAIN(t_fire_in_deadline_order, t_disarm_before_firing, t_disarm_waits_for_running_callback,
          t_many_timers_and_destroy_drops_pending)
