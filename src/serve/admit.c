/*
 * admit.c — admission (see admit.h): the deadline test against the
 * engine's service rate, then the safety bounds; counters per engine and
 * priority and a small table of clients with requests in flight, under one
 * mutex.
 */
#include "serve/admit.h"

#include "core/alloc.h"
#include "core/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLIENTS 1024

struct client_count {
    char key[64];
    int n;
};

struct px_admit {
    pthread_mutex_t mu;
    int per_priority, per_client, nengines;
    int pending[PX_PRIO_COUNT];
    int *engine_pending; /* [engine * PX_PRIO_COUNT + prio] */
    struct client_count clients[MAX_CLIENTS];
};

px_admit *px_admit_create(int nengines, int per_priority, int per_client)
{
    px_admit *a = px_xcalloc(1, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
    a->nengines = nengines > 0 ? nengines : 1;
    a->engine_pending = px_xcalloc((size_t)a->nengines * PX_PRIO_COUNT, sizeof(int));
    a->per_priority = per_priority > 0 ? per_priority : 1;
    a->per_client = per_client;
    return a;
}

void px_admit_destroy(px_admit *a)
{
    if (!a) return;
    pthread_mutex_destroy(&a->mu);
    free(a->engine_pending);
    free(a);
}

static struct client_count *client_slot(px_admit *a, const char *key, int create)
{
    struct client_count *free_slot = NULL;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (a->clients[i].n > 0 && strcmp(a->clients[i].key, key) == 0) return &a->clients[i];
        if (!free_slot && a->clients[i].n == 0) free_slot = &a->clients[i];
    }
    if (!create || !free_slot) return NULL;
    snprintf(free_slot->key, sizeof free_slot->key, "%s", key);
    return free_slot;
}

int px_admit_fits(int ahead, double item_ms, int workers, int64_t budget_ms, double *finish_ms,
                  int *retry_after_s)
{
    double finish = item_ms > 0 ? (ahead + 1) * item_ms / (workers > 0 ? workers : 1) : 0;
    if (finish_ms) *finish_ms = finish;
    /* A request with nothing ahead is the engine's next: it is tried, and
     * its deadline (504) speaks if the engine is slower than that. */
    if (ahead <= 0 || item_ms <= 0 || finish <= (double)budget_ms) return 1;
    int s = (int)((finish - (double)budget_ms) / 1000.0 + 0.999);
    *retry_after_s = s < 1 ? 1 : s;
    return 0;
}

/* Requests admitted to engine at priority prio or higher, not yet ended. */
static int admitted_ahead(const px_admit *a, int engine, enum px_priority prio)
{
    int n = 0;
    for (int p = 0; p <= (int)prio; p++) n += a->engine_pending[engine * PX_PRIO_COUNT + p];
    return n;
}

int px_admit_take(px_admit *a, int engine, enum px_priority prio, const char *client,
                  const px_admit_load *load, int *retry_after_s, char *err, size_t errlen)
{
    *retry_after_s = 0;
    if (engine < 0 || engine >= a->nengines) engine = 0;
    pthread_mutex_lock(&a->mu);
    int ahead = admitted_ahead(a, engine, prio);
    if (load && load->sched_ahead > ahead) ahead = load->sched_ahead;
    double finish = 0;
    if (load && !px_admit_fits(ahead, load->item_ms, load->workers, load->budget_ms, &finish,
                               retry_after_s)) {
        pthread_mutex_unlock(&a->mu);
        return px_errf(err, errlen, PX_EBUSY,
                       "%d requests are ahead on this engine at %.0f ms each: the predicted "
                       "finish in %.0f ms misses the deadline (%lld ms left); retry after the "
                       "time in Retry-After",
                       ahead, load->item_ms, finish, (long long)load->budget_ms);
    }
    if (a->pending[prio] >= a->per_priority) {
        pthread_mutex_unlock(&a->mu);
        return px_errf(err, errlen, PX_EBUSY,
                       "the %s-priority queue is at its bound (%d requests, --queue); retry "
                       "after the time in Retry-After",
                       px_priority_name(prio), a->per_priority);
    }
    if (a->per_client > 0 && client && client[0]) {
        struct client_count *c = client_slot(a, client, 1);
        if (!c || c->n >= a->per_client) {
            pthread_mutex_unlock(&a->mu);
            return px_errf(err, errlen, PX_EBUSY,
                           "this client already has %d requests in flight (the limit)",
                           a->per_client);
        }
        c->n++;
    }
    a->pending[prio]++;
    a->engine_pending[engine * PX_PRIO_COUNT + prio]++;
    pthread_mutex_unlock(&a->mu);
    return 0;
}

void px_admit_release(px_admit *a, int engine, enum px_priority prio, const char *client)
{
    if (engine < 0 || engine >= a->nengines) engine = 0;
    pthread_mutex_lock(&a->mu);
    a->pending[prio]--;
    a->engine_pending[engine * PX_PRIO_COUNT + prio]--;
    if (a->per_client > 0 && client && client[0]) {
        struct client_count *c = client_slot(a, client, 0);
        if (c) c->n--;
    }
    pthread_mutex_unlock(&a->mu);
}

void px_admit_pending(px_admit *a, int *pending)
{
    pthread_mutex_lock(&a->mu);
    memcpy(pending, a->pending, sizeof a->pending);
    pthread_mutex_unlock(&a->mu);
}
