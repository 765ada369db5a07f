/*
 * timer.h — one-shot deadline timers on a single background thread.
 *
 * The serving pipeline gives every request a deadline that must fire
 * whichever stage the request is in (CPU queue, device queue, running), so
 * deadlines live here rather than in each queue. Callbacks run on the timer
 * thread, one at a time, and must be short (typically: mark something
 * expired and wake its owner).
 */
#ifndef PX_CORE_TIMER_H
#define PX_CORE_TIMER_H

#include <stdint.h>

typedef struct px_timers px_timers;
typedef void (*px_timer_fn)(void *arg);

/* Starts the timer thread. NULL if it cannot be created. */
px_timers *px_timers_create(void);

/* Stops the thread; timers still armed are dropped without firing. */
void px_timers_destroy(px_timers *t);

/* Arms fn(arg) for deadline_ns (px_now_ns() clock; a past deadline fires at
 * once). Returns an id > 0 for px_timer_disarm. Never fails (aborts on OOM). */
uint64_t px_timer_arm(px_timers *t, int64_t deadline_ns, px_timer_fn fn, void *arg);

/*
 * Disarms a timer. Returns 1 if it was disarmed before firing; 0 if it has
 * fired (or was never armed). If its callback is running right now, waits
 * until it has returned, so after this call the callback never touches arg
 * again. Must not be called from inside a timer callback for its own id.
 */
int px_timer_disarm(px_timers *t, uint64_t id);

/* Timers armed and not yet fired. */
int px_timers_pending(px_timers *t);

#endif
