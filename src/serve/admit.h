/*
 * admit.h — admission: how many requests may be in flight per priority
 * (--queue) and per client (--max-per-client). A request holds one slot
 * from admission until it ends, whatever its kind.
 */
#ifndef PX_SERVE_ADMIT_H
#define PX_SERVE_ADMIT_H

#include "serve/sched.h"

#include <stddef.h>

typedef struct px_admit px_admit;

/* per_priority >= 1 slots per priority; per_client 0 = no client cap.
 * Never NULL (aborts on OOM). */
px_admit *px_admit_create(int per_priority, int per_client);
void px_admit_destroy(px_admit *a);

/* Takes a slot of priority prio for client (NULL or "" = none). Returns 0,
 * or PX_EBUSY with the reason in err. */
int px_admit_take(px_admit *a, enum px_priority prio, const char *client, char *err, size_t errlen);

/* Gives back a slot px_admit_take gave. */
void px_admit_release(px_admit *a, enum px_priority prio, const char *client);

/* Slots taken now, per priority, into pending[PX_PRIO_COUNT]. */
void px_admit_pending(px_admit *a, int *pending);

#endif
