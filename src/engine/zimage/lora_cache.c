/*
 * lora_cache.c — a device's LoRA cache bookkeeping (lora_cache.h): a list
 * in recency order (a device holds a few LoRAs, tens at most, so a linear
 * search by key is the whole index), byte accounting, pins.
 */
#include "engine/zimage/lora_cache.h"

#include "core/alloc.h"
#include "core/err.h"

#include <pthread.h>
#include <stdlib.h>

struct zi_lora_cache_ref {
    const void *key;
    void *val;
    size_t bytes;
    int pins;
    int evicted; /* out of the list: unloaded at its last release */
    struct zi_lora_cache_ref *prev, *next;
};

typedef struct zi_lora_cache_ref node;

struct zi_lora_cache {
    pthread_mutex_t mu;
    zi_lora_cache_ops ops;
    size_t cap, bytes;
    node *head, *tail; /* most recently used first */
    int entries;
    int evicted_pinned; /* evicted while pinned, not unloaded yet */
    uint64_t hits, misses, drops;
};

zi_lora_cache *zi_lora_cache_create(size_t cap_bytes, const zi_lora_cache_ops *ops)
{
    zi_lora_cache *c = px_xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->ops = *ops;
    c->cap = cap_bytes;
    return c;
}

static void unlink_node(zi_lora_cache *c, node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        c->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        c->tail = n->prev;
    n->prev = n->next = NULL;
    c->entries--;
}

static void push_front(zi_lora_cache *c, node *n)
{
    n->prev = NULL;
    n->next = c->head;
    if (c->head)
        c->head->prev = n;
    else
        c->tail = n;
    c->head = n;
    c->entries++;
}

static void unload(zi_lora_cache *c, node *n)
{
    c->ops.unload(c->ops.arg, n->val);
    c->bytes -= n->bytes;
    free(n);
}

/* Drops unpinned entries from the least recently used end while
 * bytes + need > cap (all of them when everything = 1). */
static void drop_lru(zi_lora_cache *c, size_t need, int everything)
{
    node *n = c->tail;
    while (n && (everything || c->bytes + need > c->cap)) {
        node *prev = n->prev;
        if (!n->pins) {
            unlink_node(c, n);
            unload(c, n);
            c->drops++;
        }
        n = prev;
    }
}

static node *find(const zi_lora_cache *c, const void *key)
{
    for (node *n = c->head; n; n = n->next)
        if (n->key == key) return n;
    return NULL;
}

void zi_lora_cache_destroy(zi_lora_cache *c)
{
    if (!c) return;
    for (node *n = c->head, *next; n; n = next) {
        next = n->next;
        unload(c, n);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static int load(zi_lora_cache *c, const void *key, node **out, char *err, size_t errlen)
{
    size_t need = c->ops.size(c->ops.arg, key);
    drop_lru(c, need, 0);
    void *val = NULL;
    int rc = c->ops.load(c->ops.arg, key, &val, err, errlen);
    if (rc == PX_ENOMEM) {
        drop_lru(c, 0, 1);
        rc = c->ops.load(c->ops.arg, key, &val, err, errlen);
    }
    if (rc) return rc;
    node *n = px_xcalloc(1, sizeof *n);
    n->key = key;
    n->val = val;
    n->bytes = need;
    c->bytes += need;
    push_front(c, n);
    *out = n;
    return 0;
}

int zi_lora_cache_acquire(zi_lora_cache *c, const void *key, zi_lora_cache_ref **ref, char *err,
                          size_t errlen)
{
    int rc = 0;
    *ref = NULL;
    pthread_mutex_lock(&c->mu);
    node *n = find(c, key);
    if (n) {
        c->hits++;
        unlink_node(c, n);
        push_front(c, n);
    } else {
        c->misses++;
        rc = load(c, key, &n, err, errlen);
    }
    if (!rc) {
        n->pins++;
        *ref = n;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void *zi_lora_cache_value(const zi_lora_cache_ref *r)
{
    return r->val;
}

void zi_lora_cache_release(zi_lora_cache *c, zi_lora_cache_ref *r)
{
    if (!r) return;
    pthread_mutex_lock(&c->mu);
    if (--r->pins == 0 && r->evicted) {
        c->evicted_pinned--;
        unload(c, r);
    }
    if (c->bytes > c->cap) drop_lru(c, 0, 0);
    pthread_mutex_unlock(&c->mu);
}

void zi_lora_cache_evict(zi_lora_cache *c, const void *key)
{
    pthread_mutex_lock(&c->mu);
    node *n = find(c, key);
    if (n) {
        unlink_node(c, n);
        if (n->pins)
            n->evicted = 1, c->evicted_pinned++;
        else
            unload(c, n);
    }
    pthread_mutex_unlock(&c->mu);
}

void zi_lora_cache_trim(zi_lora_cache *c)
{
    pthread_mutex_lock(&c->mu);
    drop_lru(c, 0, 1);
    pthread_mutex_unlock(&c->mu);
}

void zi_lora_cache_get_stats(zi_lora_cache *c, zi_lora_cache_stats *s)
{
    pthread_mutex_lock(&c->mu);
    int pinned = c->evicted_pinned;
    for (node *n = c->head; n; n = n->next) pinned += n->pins > 0;
    *s = (zi_lora_cache_stats){.bytes = c->bytes,
                               .cap = c->cap,
                               .entries = c->entries,
                               .pinned = pinned,
                               .hits = c->hits,
                               .misses = c->misses,
                               .drops = c->drops};
    pthread_mutex_unlock(&c->mu);
}

int zi_lora_cache_has(zi_lora_cache *c, const void *key)
{
    pthread_mutex_lock(&c->mu);
    int has = find(c, key) != NULL;
    pthread_mutex_unlock(&c->mu);
    return has;
}
