/*
 * pool.c — parallel-for thread pool.
 *
 * Each px_pool_parallel_for() call publishes a `loop` on the pool's list.
 * Threads (helpers and the caller) claim chunk indices with an atomic counter;
 * the caller waits until the done count reaches the chunk count, then unlinks
 * the loop. A loop stays linked while helpers may still touch it: `users`
 * counts helpers inside it, and the caller waits for that to reach zero too.
 */
#include "core/pool.h"

#include "core/alloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct loop {
    px_range_fn fn;
    void *ctx;
    int n, grain, nchunks;
    atomic_int next;  /* next chunk to claim */
    atomic_int done;  /* chunks finished */
    int users;        /* helper threads inside this loop (under pool lock) */
    struct loop *prev, *nextl;
};

struct px_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;  /* helpers: a loop was published or shutdown */
    pthread_cond_t idle;  /* callers: a chunk finished or a helper left */
    struct loop *head;
    int stop;
    int nhelpers;
    pthread_t *threads;
};

static void run_chunks(struct loop *l)
{
    for (;;) {
        int c = atomic_fetch_add(&l->next, 1);
        if (c >= l->nchunks) return;
        int b = c * l->grain;
        int e = b + l->grain < l->n ? b + l->grain : l->n;
        l->fn(l->ctx, b, e);
        atomic_fetch_add(&l->done, 1);
    }
}

static struct loop *find_open_loop(px_pool *p)
{
    for (struct loop *l = p->head; l; l = l->nextl)
        if (atomic_load(&l->next) < l->nchunks) return l;
    return NULL;
}

static void *helper_main(void *arg)
{
    px_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct loop *l = NULL; /* set whenever the wait ends without stop */
        while (!p->stop && !(l = find_open_loop(p))) pthread_cond_wait(&p->work, &p->mu);
        if (p->stop) break;
        l->users++;
        pthread_mutex_unlock(&p->mu);
        run_chunks(l);
        pthread_mutex_lock(&p->mu);
        l->users--;
        pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

px_pool *px_pool_create(int nthreads)
{
    if (nthreads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = n > 0 ? (int)n : 1;
    }
    px_pool *p = px_xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    p->threads = px_xcalloc((size_t)nthreads, sizeof *p->threads);
    for (int i = 0; i < nthreads - 1; i++) {
        if (pthread_create(&p->threads[i], NULL, helper_main, p) != 0) {
            p->nhelpers = i;
            px_pool_destroy(p);
            return NULL;
        }
        p->nhelpers = i + 1;
    }
    return p;
}

void px_pool_destroy(px_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nhelpers; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

int px_pool_threads(const px_pool *p)
{
    return p ? p->nhelpers + 1 : 1;
}

void px_pool_parallel_for(px_pool *p, int n, int grain, px_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    int threads = px_pool_threads(p);
    if (grain <= 0) {
        /* About four chunks per thread balances uneven chunks cheaply. */
        grain = n / (threads * 4);
        if (grain < 1) grain = 1;
    }
    if (!p || p->nhelpers == 0 || grain >= n) {
        fn(ctx, 0, n);
        return;
    }
    struct loop l = {.fn = fn, .ctx = ctx, .n = n, .grain = grain};
    l.nchunks = (n + grain - 1) / grain;
    atomic_init(&l.next, 0);
    atomic_init(&l.done, 0);

    pthread_mutex_lock(&p->mu);
    l.nextl = p->head;
    if (p->head) p->head->prev = &l;
    p->head = &l;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);

    run_chunks(&l);

    pthread_mutex_lock(&p->mu);
    while (atomic_load(&l.done) < l.nchunks || l.users > 0) pthread_cond_wait(&p->idle, &p->mu);
    if (l.prev) l.prev->nextl = l.nextl; else p->head = l.nextl;
    if (l.nextl) l.nextl->prev = l.prev;
    pthread_mutex_unlock(&p->mu);
}

static pthread_once_t g_default_once = PTHREAD_ONCE_INIT;
static int g_default_threads;
static px_pool *g_default;

static void make_default(void)
{
    g_default = px_pool_create(g_default_threads);
}

px_pool *px_pool_default(void)
{
    pthread_once(&g_default_once, make_default);
    return g_default;
}

void px_pool_set_default_threads(int nthreads)
{
    g_default_threads = nthreads;
}

/* ------------------------------------------------------------- copies */

#define COPY_CHUNK ((size_t)1 << 20)

typedef struct {
    const px_copy_seg *seg;
    const int *first; /* each segment's first chunk; first[nseg] = all chunks */
} copy_job;

static void copy_chunks(void *ctx, int begin, int end)
{
    const copy_job *j = ctx;
    int s = 0;
    for (int c = begin; c < end; c++) {
        while (c >= j->first[s + 1]) s++; /* empty segments have no chunk */
        size_t off = (size_t)(c - j->first[s]) * COPY_CHUNK, left = j->seg[s].n - off;
        memcpy((char *)j->seg[s].dst + off, (const char *)j->seg[s].src + off,
               left < COPY_CHUNK ? left : COPY_CHUNK);
    }
}

void px_pool_copy(px_pool *p, const px_copy_seg *seg, int nseg)
{
    if (nseg <= 0) return;
    int *first = px_xcalloc((size_t)nseg + 1, sizeof *first);
    for (int s = 0; s < nseg; s++)
        first[s + 1] = first[s] + (int)((seg[s].n + COPY_CHUNK - 1) / COPY_CHUNK);
    copy_job j = {seg, first};
    px_pool_parallel_for(p, first[nseg], 1, copy_chunks, &j);
    free(first);
}
