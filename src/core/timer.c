/*
 * timer.c — a binary min-heap of deadlines served by one thread (timer.h).
 *
 * Disarming searches the heap linearly: the heap holds one entry per request
 * in flight (thousands at most), and a linear scan of a few thousand entries
 * is cheaper than keeping an index map up to date on every swap.
 */
#include "core/timer.h"

#include "core/alloc.h"
#include "core/clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct entry {
    int64_t deadline;
    uint64_t id;
    px_timer_fn fn;
    void *arg;
};

struct px_timers {
    pthread_mutex_t mu;
    pthread_cond_t wake;  /* the thread: earliest deadline changed, or stop */
    pthread_cond_t fired; /* disarm: a callback finished */
    struct entry *heap;
    int n, cap;
    uint64_t next_id, firing_id;
    int stop;
    pthread_t thread;
};

static void swap(struct entry *a, struct entry *b)
{
    struct entry t = *a;
    *a = *b;
    *b = t;
}

static void sift_up(struct entry *h, int i)
{
    while (i > 0 && h[(i - 1) / 2].deadline > h[i].deadline) {
        swap(&h[(i - 1) / 2], &h[i]);
        i = (i - 1) / 2;
    }
}

static void sift_down(struct entry *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l].deadline < h[m].deadline) m = l;
        if (r < n && h[r].deadline < h[m].deadline) m = r;
        if (m == i) return;
        swap(&h[m], &h[i]);
        i = m;
    }
}

static void remove_at(px_timers *t, int i)
{
    t->heap[i] = t->heap[--t->n];
    if (i < t->n) {
        sift_down(t->heap, t->n, i);
        sift_up(t->heap, i);
    }
}

static void *timer_main(void *arg)
{
    px_timers *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        if (t->n == 0) {
            pthread_cond_wait(&t->wake, &t->mu);
            continue;
        }
        int64_t now = px_now_ns();
        if (t->heap[0].deadline > now) {
            int64_t wait = t->heap[0].deadline - now;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += wait / 1000000000;
            ts.tv_nsec += wait % 1000000000;
            if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&t->wake, &t->mu, &ts);
            continue;
        }
        struct entry e = t->heap[0];
        remove_at(t, 0);
        t->firing_id = e.id;
        pthread_mutex_unlock(&t->mu);
        e.fn(e.arg);
        pthread_mutex_lock(&t->mu);
        t->firing_id = 0;
        pthread_cond_broadcast(&t->fired);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

px_timers *px_timers_create(void)
{
    px_timers *t = px_xcalloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&t->fired, NULL);
    t->next_id = 1;
    if (pthread_create(&t->thread, NULL, timer_main, t) != 0) {
        pthread_cond_destroy(&t->wake);
        pthread_cond_destroy(&t->fired);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return NULL;
    }
    return t;
}

void px_timers_destroy(px_timers *t)
{
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->wake);
    pthread_cond_destroy(&t->fired);
    pthread_mutex_destroy(&t->mu);
    free(t->heap);
    free(t);
}

uint64_t px_timer_arm(px_timers *t, int64_t deadline_ns, px_timer_fn fn, void *arg)
{
    pthread_mutex_lock(&t->mu);
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 64;
        struct entry *h = realloc(t->heap, (size_t)cap * sizeof *h);
        if (!h) abort();
        t->heap = h;
        t->cap = cap;
    }
    uint64_t id = t->next_id++;
    t->heap[t->n] = (struct entry){deadline_ns, id, fn, arg};
    sift_up(t->heap, t->n++);
    if (t->heap[0].id == id) pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->mu);
    return id;
}

int px_timer_disarm(px_timers *t, uint64_t id)
{
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->n; i++)
        if (t->heap[i].id == id) {
            remove_at(t, i);
            pthread_mutex_unlock(&t->mu);
            return 1;
        }
    while (t->firing_id == id && id != 0) pthread_cond_wait(&t->fired, &t->mu);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

int px_timers_pending(px_timers *t)
{
    pthread_mutex_lock(&t->mu);
    int n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}
