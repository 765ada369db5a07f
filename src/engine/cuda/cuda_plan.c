/*
 * cuda_plan.c — the plan and algorithm caches (see cuda_plan.h). Both are
 * one structure: a fixed number of entries (key and value bytes) on a
 * doubly linked recency list, found through an open-addressing table
 * (linear probing, deletion by backward shift, so no tombstones pile up
 * over a server's life of evictions).
 */
#include "engine/cuda/cuda_plan.h"

#include "core/alloc.h"
#include "core/err.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

uint64_t px_cuda_key_hash(const void *key, size_t n)
{
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ------------------------------------------------------------ the table */

typedef struct {
    size_t ksz, vsz;
    int cap, n;
    unsigned char *keys, *vals; /* cap entries each */
    int *prev, *next;           /* recency list: head most recent */
    int head, tail;
    int *freel, nfree; /* unused entries */
    int *slot;         /* table: entry or -1 */
    int mask;          /* table size - 1 */
} lru;

static void lru_init(lru *t, size_t ksz, size_t vsz, int cap)
{
    int size = 1;
    while (size < 2 * cap) size <<= 1;
    *t = (lru){.ksz = ksz, .vsz = vsz, .cap = cap, .head = -1, .tail = -1, .mask = size - 1};
    t->keys = px_xcalloc((size_t)cap, ksz);
    t->vals = px_xcalloc((size_t)cap, vsz);
    t->prev = px_xcalloc((size_t)cap, sizeof *t->prev);
    t->next = px_xcalloc((size_t)cap, sizeof *t->next);
    t->freel = px_xcalloc((size_t)cap, sizeof *t->freel);
    t->slot = px_xcalloc((size_t)size, sizeof *t->slot);
    for (int i = 0; i < size; i++) t->slot[i] = -1;
    for (int i = 0; i < cap; i++) t->freel[i] = cap - 1 - i;
    t->nfree = cap;
}

static void lru_fini(lru *t)
{
    free(t->keys);
    free(t->vals);
    free(t->prev);
    free(t->next);
    free(t->freel);
    free(t->slot);
}

static unsigned char *key_of(const lru *t, int e)
{
    return t->keys + (size_t)e * t->ksz;
}

static unsigned char *val_of(const lru *t, int e)
{
    return t->vals + (size_t)e * t->vsz;
}

static int home(const lru *t, const void *key)
{
    return (int)(px_cuda_key_hash(key, t->ksz) & (uint64_t)t->mask);
}

/* The table slot holding key, or -1. */
static int lru_slot(const lru *t, const void *key)
{
    for (int s = home(t, key);; s = (s + 1) & t->mask) {
        int e = t->slot[s];
        if (e < 0) return -1;
        if (!memcmp(key_of(t, e), key, t->ksz)) return s;
    }
}

static void unlink_entry(lru *t, int e)
{
    if (t->prev[e] >= 0)
        t->next[t->prev[e]] = t->next[e];
    else
        t->head = t->next[e];
    if (t->next[e] >= 0)
        t->prev[t->next[e]] = t->prev[e];
    else
        t->tail = t->prev[e];
}

static void push_front(lru *t, int e)
{
    t->prev[e] = -1;
    t->next[e] = t->head;
    if (t->head >= 0) t->prev[t->head] = e;
    t->head = e;
    if (t->tail < 0) t->tail = e;
}

/* The entry for key, made most recent; -1 if absent. */
static int lru_find(lru *t, const void *key)
{
    int s = lru_slot(t, key);
    if (s < 0) return -1;
    int e = t->slot[s];
    unlink_entry(t, e);
    push_front(t, e);
    return e;
}

/* Removes the entry in table slot s, shifting later members of its probe
 * run back so that every key stays reachable from its home slot. */
static void lru_remove_slot(lru *t, int s)
{
    int e = t->slot[s];
    unlink_entry(t, e);
    t->freel[t->nfree++] = e;
    t->n--;
    int hole = s;
    for (int j = (s + 1) & t->mask; t->slot[j] >= 0; j = (j + 1) & t->mask) {
        int h = home(t, key_of(t, t->slot[j]));
        /* j's key may move to the hole when its home is not in (hole, j]. */
        int dist_home = (j - h) & t->mask, dist_hole = (j - hole) & t->mask;
        if (dist_home >= dist_hole) {
            t->slot[hole] = t->slot[j];
            hole = j;
        }
    }
    t->slot[hole] = -1;
}

/* Inserts a key known to be absent into a table with a free entry. */
static int lru_insert(lru *t, const void *key)
{
    int e = t->freel[--t->nfree];
    memcpy(key_of(t, e), key, t->ksz);
    int s = home(t, key);
    while (t->slot[s] >= 0) s = (s + 1) & t->mask;
    t->slot[s] = e;
    t->n++;
    push_front(t, e);
    return e;
}

/* Removes the least recently used entry, its value copied into val (vsz
 * bytes) unless val is NULL. The table must not be empty. */
static void lru_pop_oldest(lru *t, void *val)
{
    int e = t->tail, s = lru_slot(t, key_of(t, e));
    if (val) memcpy(val, val_of(t, e), t->vsz);
    lru_remove_slot(t, s);
}

/* --------------------------------------------------------------- plans */

struct px_cuda_plans {
    lru t;
    px_cuda_plan_ops ops;
    atomic_long builds; /* plans built by px_cuda_plans_get (successful); atomic:
                           an engine's description reads it from another thread */
    atomic_size_t held; /* ops.bytes of the cached plans; atomic: the scheduler
                           reads it (px_engine_cached_bytes) from its thread */
};

static size_t plan_bytes(const px_cuda_plans *c, const void *plan)
{
    return c->ops.bytes ? c->ops.bytes(c->ops.arg, plan) : 0;
}

/* Frees the least recently used plan. */
static void drop_oldest(px_cuda_plans *c)
{
    void *old;
    lru_pop_oldest(&c->t, &old);
    atomic_fetch_sub_explicit(&c->held, plan_bytes(c, old), memory_order_relaxed);
    c->ops.destroy(c->ops.arg, old);
}

px_cuda_plans *px_cuda_plans_create(size_t key_size, int max_plans, const px_cuda_plan_ops *ops)
{
    px_cuda_plans *c = px_xcalloc(1, sizeof *c);
    lru_init(&c->t, key_size, sizeof(void *), max_plans < 1 ? 1 : max_plans);
    c->ops = *ops;
    return c;
}

void *px_cuda_plans_find(px_cuda_plans *c, const void *key)
{
    int e = lru_find(&c->t, key);
    void *p = NULL;
    if (e >= 0) memcpy(&p, val_of(&c->t, e), sizeof p);
    return p;
}

void px_cuda_plans_make_room(px_cuda_plans *c)
{
    if (c->t.n == c->t.cap) drop_oldest(c);
}

void px_cuda_plans_put(px_cuda_plans *c, const void *key, void *plan)
{
    px_cuda_plans_make_room(c);
    int e = lru_insert(&c->t, key);
    memcpy(val_of(&c->t, e), &plan, sizeof plan);
    atomic_fetch_add_explicit(&c->held, plan_bytes(c, plan), memory_order_relaxed);
}

int px_cuda_plans_get(px_cuda_plans *c, const void *key, void **plan, char *err, size_t errlen)
{
    *plan = px_cuda_plans_find(c, key);
    if (*plan) return 0;
    px_cuda_plans_make_room(c);
    int rc = c->ops.build(c->ops.arg, key, plan, err, errlen);
    if (rc == PX_ENOMEM) {
        /* Memory held by cached plans may be what is missing. */
        px_cuda_plans_clear(c);
        rc = c->ops.build(c->ops.arg, key, plan, err, errlen);
    }
    if (rc) {
        *plan = NULL;
        return rc;
    }
    atomic_fetch_add_explicit(&c->builds, 1, memory_order_relaxed);
    px_cuda_plans_put(c, key, *plan);
    return 0;
}

int px_cuda_plans_count(const px_cuda_plans *c)
{
    return c->t.n;
}

long px_cuda_plans_builds(px_cuda_plans *c)
{
    return atomic_load_explicit(&c->builds, memory_order_relaxed);
}

size_t px_cuda_plans_bytes(px_cuda_plans *c)
{
    return atomic_load_explicit(&c->held, memory_order_relaxed);
}

void px_cuda_plans_clear(px_cuda_plans *c)
{
    while (c->t.n) drop_oldest(c);
}

void px_cuda_plans_destroy(px_cuda_plans *c)
{
    if (!c) return;
    px_cuda_plans_clear(c);
    lru_fini(&c->t);
    free(c);
}

/* ---------------------------------------------------------- algorithms */

struct px_cuda_algos {
    lru t;
};

px_cuda_algos *px_cuda_algos_create(size_t key_size, size_t val_size, int cap)
{
    px_cuda_algos *a = px_xcalloc(1, sizeof *a);
    lru_init(&a->t, key_size, val_size, cap < 1 ? 1 : cap);
    return a;
}

int px_cuda_algos_get(px_cuda_algos *a, const void *key, void *val)
{
    int e = lru_find(&a->t, key);
    if (e < 0) return 0;
    memcpy(val, val_of(&a->t, e), a->t.vsz);
    return 1;
}

void px_cuda_algos_put(px_cuda_algos *a, const void *key, const void *val)
{
    int e = lru_find(&a->t, key);
    if (e < 0) {
        if (a->t.n == a->t.cap) lru_pop_oldest(&a->t, NULL);
        e = lru_insert(&a->t, key);
    }
    memcpy(val_of(&a->t, e), val, a->t.vsz);
}

int px_cuda_algos_count(const px_cuda_algos *a)
{
    return a->t.n;
}

void px_cuda_algos_destroy(px_cuda_algos *a)
{
    if (!a) return;
    lru_fini(&a->t);
    free(a);
}
