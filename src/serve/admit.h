/*
 * admit.h — admission. A request is admitted while its predicted wait fits
 * its deadline: the work ahead of it on its engine (at its priority or
 * higher) divided by that engine's measured service rate (time per item,
 * spread over the engine's device workers) plus its own service time must
 * end before the deadline. Otherwise it is refused (429) with Retry-After =
 * the seconds until the predicted finish would fit. Until an engine has a
 * measured rate, only the safety bounds apply.
 *
 * The safety bounds: at most per_priority requests in flight per priority
 * (--queue, sized from the machine's memory by default, see config.c) and
 * per_client per client (--max-per-client). They cap what queued requests
 * hold in memory; they are not the admission policy. A request holds its
 * slot from admission until it ends, whatever its kind.
 */
#ifndef PX_SERVE_ADMIT_H
#define PX_SERVE_ADMIT_H

#include "serve/sched.h"

#include <stddef.h>
#include <stdint.h>

typedef struct px_admit px_admit;

/* What the scheduler knows of the request's engine when it asks. */
typedef struct px_admit_load {
    int sched_ahead;   /* engine items queued at the request's priority or higher,
                          plus those running */
    int workers;       /* the engine's device workers, >= 1 */
    double item_ms;    /* measured engine time per item; 0 = not measured yet */
    int64_t budget_ms; /* time left until the request's deadline */
} px_admit_load;

/* nengines >= 1 engines (indexes 0..nengines-1); per_priority >= 1 slots per
 * priority; per_client 0 = no client cap. Never NULL (aborts on OOM). */
px_admit *px_admit_create(int nengines, int per_priority, int per_client);
void px_admit_destroy(px_admit *a);

/*
 * The deadline test alone: ahead items before the request, each taking
 * item_ms over workers. Returns 1 if the predicted finish
 * (ahead + 1) * item_ms / workers fits budget_ms (always when ahead is 0 or
 * item_ms is 0: nothing to predict from), else 0 with *retry_after_s = the
 * seconds of excess, rounded up, at least 1. *finish_ms (may be NULL) gets
 * the prediction (0 without a rate).
 */
int px_admit_fits(int ahead, double item_ms, int workers, int64_t budget_ms, double *finish_ms,
                  int *retry_after_s);

/*
 * Admits a request of priority prio for engine (index) and client (NULL or
 * "" = none): the deadline test with the work ahead = the larger of
 * load->sched_ahead and the requests admitted to that engine at prio or
 * higher that have not ended (those still being decoded count too), then
 * the safety bounds. Decided and counted under one lock, so a burst cannot
 * all see an empty queue. Returns 0, or PX_EBUSY with the reason in err and
 * *retry_after_s set (0 when the refusal is a safety bound: the caller
 * picks the time).
 */
int px_admit_take(px_admit *a, int engine, enum px_priority prio, const char *client,
                  const px_admit_load *load, int *retry_after_s, char *err, size_t errlen);

/* Gives back a slot px_admit_take gave (same engine, prio, client). */
void px_admit_release(px_admit *a, int engine, enum px_priority prio, const char *client);

/* Slots taken now, per priority, into pending[PX_PRIO_COUNT]. */
void px_admit_pending(px_admit *a, int *pending);

#endif
