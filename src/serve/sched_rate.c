/*
 * sched_rate.c — the service-rate window (see sched_rate.h).
 *
 * The time per item is the ratio of the sums: averaging each burst's own
 * time per item was biased wherever bursts differ — under a closed loop a
 * continuous batch alternated bursts of 6 items in 60 ms and 2 in 9 ms, and
 * on the GPU the average swung to twice the real time per item, so
 * admission refused requests that would have made their deadlines.
 */
#include "serve/sched_rate.h"

void px_rate_note(px_rate_window *w, int64_t ns, int n)
{
    if (n <= 0) return;
    while (w->len == PX_RATE_RING ||
           (w->len > 0 && w->n_sum - w->n[w->first] >= PX_RATE_ITEMS)) {
        w->gap_sum -= w->gap[w->first], w->n_sum -= w->n[w->first];
        w->first = (w->first + 1) % PX_RATE_RING, w->len--;
    }
    int k = (w->first + w->len++) % PX_RATE_RING;
    w->gap[k] = ns, w->n[k] = n;
    w->gap_sum += ns, w->n_sum += n;
}

double px_rate_item_ms(const px_rate_window *w)
{
    return w->n_sum ? (double)w->gap_sum / 1e6 / w->n_sum : 0;
}
