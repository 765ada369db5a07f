/*
 * timers.h — an indexed min-heap of wake-up times, one slot per id (a
 * load-loop user or connection): set, move or cancel an id's timer in
 * O(log n), find the earliest in O(1). One thread owns it; no locking.
 */
#ifndef PB_TIMERS_H
#define PB_TIMERS_H

#include <stdint.h>

typedef struct pb_timers {
    int *heap;     /* ids with a timer, a min-heap by wake */
    int *pos;      /* id -> its index in heap, -1: no timer */
    int64_t *wake; /* id -> its time (valid while it has a timer) */
    int n;
} pb_timers;

/* Room for ids 0..cap-1, none set. Aborts when out of memory (as the rest
 * of the load loop's set-up does). */
void pb_timers_init(pb_timers *t, int cap);
void pb_timers_free(pb_timers *t);

/* Sets id's timer to wake, or moves it there if it had one. */
void pb_timers_set(pb_timers *t, int id, int64_t wake);

/* Cancels id's timer (nothing if it has none). */
void pb_timers_del(pb_timers *t, int id);

/* The id with the earliest timer, or -1 when none is set. */
int pb_timers_first(const pb_timers *t);

#endif
