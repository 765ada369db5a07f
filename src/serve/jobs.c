/*
 * jobs.c — the async job table (see jobs.h). A flat array searched
 * linearly: it holds at most max_jobs entries (10000 by default), and one
 * scan of that is microseconds next to the request it serves.
 */
#include "serve/jobs.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/rng.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct px_jobs_entry {
    char id[PX_JOB_ID_MAX];
    px_task *task;
    int64_t ended_ns; /* 0 while running */
    int used;
};

struct px_jobs {
    pthread_mutex_t mu;
    px_jobs_entry *e;
    int cap, max;
    int64_t ttl_ns;
    uint64_t salt, counter;
};

px_jobs *px_jobs_create(int64_t ttl_ms, int max_jobs)
{
    px_jobs *j = px_xcalloc(1, sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    j->max = max_jobs > 0 ? max_jobs : 1;
    j->ttl_ns = ttl_ms * 1000000;
    j->salt = px_hash64((uint64_t)px_wall_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)j);
    return j;
}

void px_jobs_destroy(px_jobs *j)
{
    if (!j) return;
    for (int i = 0; i < j->cap; i++)
        if (j->e[i].used && j->e[i].task) px_task_unref(j->e[i].task);
    free(j->e);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* Under the lock: forgets jobs that ended more than the TTL ago. The tasks
 * are released after the lock is dropped, into out[]. */
static int expire_locked(px_jobs *j, px_task **out, int max_out)
{
    int64_t now = px_now_ns();
    int n = 0;
    for (int i = 0; i < j->cap && n < max_out; i++) {
        px_jobs_entry *e = &j->e[i];
        int64_t ended = __atomic_load_n(&e->ended_ns, __ATOMIC_ACQUIRE);
        if (e->used && ended && e->task && now - ended > j->ttl_ns) {
            out[n++] = e->task;
            memset(e, 0, sizeof *e);
        }
    }
    return n;
}

static void release(px_task **tasks, int n)
{
    for (int i = 0; i < n; i++) px_task_unref(tasks[i]);
}

px_jobs_entry *px_jobs_reserve(px_jobs *j, char *id)
{
    px_task *old[64];
    pthread_mutex_lock(&j->mu);
    int nold = expire_locked(j, old, 64);
    px_jobs_entry *slot = NULL;
    for (int i = 0; i < j->cap && !slot; i++)
        if (!j->e[i].used) slot = &j->e[i];
    if (!slot && j->cap < j->max) {
        /* Entries are referenced by pointer while their task runs, so the
         * array is allocated once at its full size on first use. */
        if (!j->e) j->e = px_xcalloc((size_t)j->max, sizeof *j->e);
        slot = &j->e[j->cap++];
    }
    if (slot) {
        memset(slot, 0, sizeof *slot);
        slot->used = 1;
        snprintf(slot->id, sizeof slot->id, "j-%016llx",
                 (unsigned long long)px_hash64(j->salt + ++j->counter));
        snprintf(id, PX_JOB_ID_MAX, "%s", slot->id);
    }
    pthread_mutex_unlock(&j->mu);
    release(old, nold);
    return slot;
}

void px_jobs_on_done(px_task *t, void *entry)
{
    (void)t;
    px_jobs_entry *e = entry;
    /* An atomic store rather than the table lock: the callback may run on
     * the thread that is about to call px_jobs_attach, or inside a cancel. */
    __atomic_store_n(&e->ended_ns, px_now_ns(), __ATOMIC_RELEASE);
}

void px_jobs_attach(px_jobs *j, px_jobs_entry *e, px_task *t)
{
    pthread_mutex_lock(&j->mu);
    e->task = t;
    pthread_mutex_unlock(&j->mu);
}

void px_jobs_abandon(px_jobs *j, px_jobs_entry *e)
{
    pthread_mutex_lock(&j->mu);
    memset(e, 0, sizeof *e);
    pthread_mutex_unlock(&j->mu);
}

px_task *px_jobs_get(px_jobs *j, const char *id)
{
    px_task *old[64], *t = NULL;
    pthread_mutex_lock(&j->mu);
    int nold = expire_locked(j, old, 64);
    for (int i = 0; i < j->cap; i++)
        if (j->e[i].used && j->e[i].task && strcmp(j->e[i].id, id) == 0) {
            t = j->e[i].task;
            px_task_ref(t);
            break;
        }
    pthread_mutex_unlock(&j->mu);
    release(old, nold);
    return t;
}

int px_jobs_count(px_jobs *j)
{
    pthread_mutex_lock(&j->mu);
    int n = 0;
    for (int i = 0; i < j->cap; i++) n += j->e[i].used;
    pthread_mutex_unlock(&j->mu);
    return n;
}
