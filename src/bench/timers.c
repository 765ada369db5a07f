/*
 * timers.c — the indexed timer heap (see timers.h). Indexed (each id
 * knows its place) because the load loop moves and cancels timers by user:
 * a load change re-staggers the spawn timers and cancels those of users
 * that stop.
 */
#include "bench/timers.h"

#include "core/alloc.h"

#include <stdlib.h>

void pb_timers_init(pb_timers *t, int cap)
{
    t->heap = px_xcalloc((size_t)cap, sizeof *t->heap);
    t->pos = px_xcalloc((size_t)cap, sizeof *t->pos);
    t->wake = px_xcalloc((size_t)cap, sizeof *t->wake);
    for (int i = 0; i < cap; i++) t->pos[i] = -1;
    t->n = 0;
}

void pb_timers_free(pb_timers *t)
{
    free(t->heap);
    free(t->pos);
    free(t->wake);
    t->heap = t->pos = NULL;
    t->wake = NULL;
    t->n = 0;
}

static void swap(pb_timers *t, int i, int j)
{
    int a = t->heap[i], b = t->heap[j];
    t->heap[i] = b;
    t->heap[j] = a;
    t->pos[b] = i;
    t->pos[a] = j;
}

static void up(pb_timers *t, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (t->wake[t->heap[p]] <= t->wake[t->heap[i]]) break;
        swap(t, i, p);
        i = p;
    }
}

static void down(pb_timers *t, int i)
{
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < t->n && t->wake[t->heap[l]] < t->wake[t->heap[m]]) m = l;
        if (l + 1 < t->n && t->wake[t->heap[l + 1]] < t->wake[t->heap[m]]) m = l + 1;
        if (m == i) return;
        swap(t, i, m);
        i = m;
    }
}

void pb_timers_set(pb_timers *t, int id, int64_t wake)
{
    t->wake[id] = wake;
    if (t->pos[id] < 0) {
        t->pos[id] = t->n;
        t->heap[t->n++] = id;
        up(t, t->pos[id]);
    } else {
        up(t, t->pos[id]);
        down(t, t->pos[id]);
    }
}

void pb_timers_del(pb_timers *t, int id)
{
    int i = t->pos[id];
    if (i < 0) return;
    t->pos[id] = -1;
    int last = t->heap[--t->n];
    if (i == t->n) return;
    t->heap[i] = last;
    t->pos[last] = i;
    up(t, i);
    down(t, t->pos[last]);
}

int pb_timers_first(const pb_timers *t)
{
    return t->n ? t->heap[0] : -1;
}
