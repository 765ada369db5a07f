/*
 * admit.c — the admission counters (see admit.h): one array per priority
 * and a small table of clients with requests in flight, under one mutex.
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
    int per_priority, per_client;
    int pending[PX_PRIO_COUNT];
    struct client_count clients[MAX_CLIENTS];
};

px_admit *px_admit_create(int per_priority, int per_client)
{
    px_admit *a = px_xcalloc(1, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
    a->per_priority = per_priority > 0 ? per_priority : 1;
    a->per_client = per_client;
    return a;
}

void px_admit_destroy(px_admit *a)
{
    if (!a) return;
    pthread_mutex_destroy(&a->mu);
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

int px_admit_take(px_admit *a, enum px_priority prio, const char *client, char *err, size_t errlen)
{
    pthread_mutex_lock(&a->mu);
    if (a->pending[prio] >= a->per_priority) {
        pthread_mutex_unlock(&a->mu);
        return px_errf(err, errlen, PX_EBUSY,
                       "the %s-priority queue is full (%d requests); retry after the time in "
                       "Retry-After",
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
    pthread_mutex_unlock(&a->mu);
    return 0;
}

void px_admit_release(px_admit *a, enum px_priority prio, const char *client)
{
    pthread_mutex_lock(&a->mu);
    a->pending[prio]--;
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
