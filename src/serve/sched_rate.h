/*
 * sched_rate.h — an engine's recent service rate for the scheduler
 * (sched.c): engine time and items of its last bursts (a batch, or the
 * items of a continuous batch that ended at one step boundary), over the
 * last PX_RATE_ITEMS items or more, and the time per item as the ratio of
 * the sums. Not thread-safe: the scheduler's lock guards it.
 */
#ifndef PX_SERVE_SCHED_RATE_H
#define PX_SERVE_SCHED_RATE_H

#include <stdint.h>

#define PX_RATE_RING 64
#define PX_RATE_ITEMS 32

typedef struct px_rate_window {
    int64_t gap[PX_RATE_RING];
    int n[PX_RATE_RING];
    int first, len;
    int64_t gap_sum;
    int n_sum;
} px_rate_window; /* zero-initialised: empty */

/* Notes a burst of n items that took ns of engine time (n <= 0: nothing). */
void px_rate_note(px_rate_window *w, int64_t ns, int n);

/* Milliseconds of engine time per item; 0 before any burst. */
double px_rate_item_ms(const px_rate_window *w);

#endif
