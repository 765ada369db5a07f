/*
 * lora_cache_test.c — the LoRA cache's bookkeeping (lora_cache.h) with a
 * fake device: "loading" a key allocates its size in host memory and
 * records it, so every test can check what is resident: the byte cap with
 * least-recently-used drops, pins that keep entries under running batches,
 * the soft cap, eviction of a pinned entry (gone from the index at once,
 * unloaded at its last release), the retry after an out-of-memory load,
 * and evictions from another thread while the holder acquires.
 */
#include "core/err.h"
#include "engine/zimage/lora_cache.h"
#include "harness.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 8

typedef struct fake {
    size_t size[NKEYS]; /* bytes of key i */
    int loaded[NKEYS];  /* values of key i alive (an evicted pinned one and its successor: 2) */
    int loads, unloads;
    int oom_left;        /* loads that fail with PX_ENOMEM first */
    size_t device, room; /* bytes "allocated"; a load fails past room (0: no limit) */
    pthread_mutex_t mu;
} fake;

typedef struct val {
    int key;
    size_t bytes;
} val;

static char g_keys[NKEYS]; /* the keys are &g_keys[i] */

static int key_index(const void *key)
{
    return (int)((const char *)key - g_keys);
}

static size_t f_size(void *arg, const void *key)
{
    return ((fake *)arg)->size[key_index(key)];
}

static int f_load(void *arg, const void *key, void **out, char *err, size_t errlen)
{
    fake *f = arg;
    int i = key_index(key);
    pthread_mutex_lock(&f->mu);
    int oom = f->oom_left > 0 || (f->room && f->device + f->size[i] > f->room);
    if (f->oom_left > 0) f->oom_left--;
    if (!oom) {
        val *v = malloc(sizeof *v);
        v->key = i, v->bytes = f->size[i];
        f->loaded[i]++;
        f->loads++;
        f->device += f->size[i];
        *out = v;
    }
    pthread_mutex_unlock(&f->mu);
    return oom ? px_errf(err, errlen, PX_ENOMEM, "fake device full") : 0;
}

static void f_unload(void *arg, void *p)
{
    fake *f = arg;
    val *v = p;
    pthread_mutex_lock(&f->mu);
    if (f->loaded[v->key] <= 0) abort(); /* a double unload */
    f->loaded[v->key]--;
    f->unloads++;
    f->device -= v->bytes;
    pthread_mutex_unlock(&f->mu);
    free(v);
}

static zi_lora_cache *make(fake *f, size_t cap)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    for (int i = 0; i < NKEYS; i++) f->size[i] = 100;
    zi_lora_cache_ops ops = {f_size, f_load, f_unload, f};
    return zi_lora_cache_create(cap, &ops);
}

static zi_lora_cache_ref *get(zi_lora_cache *c, int i)
{
    char err[128];
    zi_lora_cache_ref *r = NULL;
    T_EQ_INT(zi_lora_cache_acquire(c, &g_keys[i], &r, err, sizeof err), 0);
    T_TRUE(r != NULL);
    T_EQ_INT(((val *)zi_lora_cache_value(r))->key, i);
    return r;
}

static size_t bytes(zi_lora_cache *c)
{
    zi_lora_cache_stats s;
    zi_lora_cache_get_stats(c, &s);
    return s.bytes;
}

TEST(t_lru_under_the_cap)
{
    fake f;
    zi_lora_cache *c = make(&f, 300); /* three entries of 100 */
    for (int i = 0; i < 3; i++) zi_lora_cache_release(c, get(c, i));
    T_EQ_INT(f.loads, 3);
    zi_lora_cache_release(c, get(c, 0)); /* 0 becomes the most recent: 1 is the oldest */
    T_EQ_INT(f.loads, 3);
    zi_lora_cache_release(c, get(c, 3));
    T_EQ_INT(f.loaded[1], 0);
    T_TRUE(f.loaded[0] && f.loaded[2] && f.loaded[3]);
    T_EQ_INT((int)bytes(c), 300);
    zi_lora_cache_stats s;
    zi_lora_cache_get_stats(c, &s);
    T_EQ_INT(s.entries, 3);
    T_EQ_INT((int)s.hits, 1);
    T_EQ_INT((int)s.misses, 4);
    T_EQ_INT((int)s.drops, 1);
    /* A larger entry drops as many of the oldest as it needs. */
    f.size[4] = 250;
    zi_lora_cache_release(c, get(c, 4));
    T_TRUE(!f.loaded[2] && !f.loaded[0] && !f.loaded[3] && f.loaded[4]);
    T_EQ_INT((int)bytes(c), 250);
    zi_lora_cache_destroy(c);
    T_EQ_INT(f.loads, f.unloads);
    T_EQ_INT((int)f.device, 0);
}

TEST(t_pinned_entries_stay_and_the_cap_is_soft)
{
    fake f;
    zi_lora_cache *c = make(&f, 200);
    zi_lora_cache_ref *a = get(c, 0), *b = get(c, 1), *d = get(c, 2); /* one batch, 3 LoRAs */
    T_TRUE(f.loaded[0] && f.loaded[1] && f.loaded[2]);
    T_EQ_INT((int)bytes(c), 300); /* over the cap while pinned */
    zi_lora_cache_stats s;
    zi_lora_cache_get_stats(c, &s);
    T_EQ_INT(s.pinned, 3);
    zi_lora_cache_release(c, a); /* 0 is unpinned and the oldest: dropped */
    T_EQ_INT(f.loaded[0], 0);
    T_EQ_INT((int)bytes(c), 200);
    zi_lora_cache_release(c, b);
    zi_lora_cache_release(c, d);
    T_TRUE(f.loaded[1] && f.loaded[2]);
    /* Two pins of one entry (two items with one LoRA). */
    zi_lora_cache_ref *x = get(c, 1), *y = get(c, 1);
    zi_lora_cache_release(c, get(c, 3)); /* needs room: 2 goes, 1 is pinned */
    T_TRUE(f.loaded[1] && !f.loaded[2] && f.loaded[3]);
    zi_lora_cache_release(c, x);
    zi_lora_cache_release(c, get(c, 4)); /* 1 is still pinned once: 3 goes */
    T_TRUE(f.loaded[1] && !f.loaded[3] && f.loaded[4]);
    zi_lora_cache_release(c, y);
    zi_lora_cache_trim(c);
    T_EQ_INT((int)bytes(c), 0);
    T_EQ_INT(f.loads, f.unloads);
    zi_lora_cache_destroy(c);
}

TEST(t_evict_pinned_leaves_the_index_at_once)
{
    fake f;
    zi_lora_cache *c = make(&f, 1000);
    zi_lora_cache_ref *a = get(c, 0);
    zi_lora_cache_evict(c, &g_keys[0]);
    T_TRUE(!zi_lora_cache_has(c, &g_keys[0]));
    T_EQ_INT(f.loaded[0], 1); /* the running batch still reads it */
    /* A new LoRA at the same address is loaded afresh, not served the old. */
    zi_lora_cache_ref *b = get(c, 0);
    T_TRUE(a != b);
    T_EQ_INT(f.loads, 2);
    T_EQ_INT((int)bytes(c), 200);
    zi_lora_cache_stats s;
    zi_lora_cache_get_stats(c, &s);
    T_EQ_INT(s.pinned, 2);
    T_EQ_INT(s.entries, 1);
    zi_lora_cache_release(c, a); /* the evicted one goes now */
    T_EQ_INT(f.unloads, 1);
    T_EQ_INT((int)bytes(c), 100);
    zi_lora_cache_release(c, b);
    zi_lora_cache_evict(c, &g_keys[0]); /* unpinned: at once */
    T_EQ_INT(f.unloads, 2);
    zi_lora_cache_evict(c, &g_keys[5]); /* unknown: nothing */
    T_EQ_INT((int)bytes(c), 0);
    zi_lora_cache_destroy(c);
}

TEST(t_out_of_memory_drops_everything_unpinned_and_retries)
{
    fake f;
    zi_lora_cache *c = make(&f, 1000);
    f.room = 250; /* the device holds less than the cap says */
    zi_lora_cache_ref *a = get(c, 0);
    zi_lora_cache_release(c, get(c, 1));
    zi_lora_cache_release(c, get(c, 2)); /* 300 > room: 1 is dropped, the retry fits */
    T_TRUE(f.loaded[0] && !f.loaded[1] && f.loaded[2]);
    f.oom_left = 2; /* fails even after the retry */
    char err[128] = "";
    zi_lora_cache_ref *r = (zi_lora_cache_ref *)1;
    T_EQ_INT(zi_lora_cache_acquire(c, &g_keys[3], &r, err, sizeof err), PX_ENOMEM);
    T_TRUE(r == NULL);
    T_CONTAINS(err, "fake device full");
    T_TRUE(f.loaded[0] && !f.loaded[2]); /* the pinned one stayed */
    T_TRUE(!zi_lora_cache_has(c, &g_keys[3]));
    zi_lora_cache_release(c, a);
    zi_lora_cache_destroy(c);
    T_EQ_INT(f.loads, f.unloads);
}

typedef struct racer {
    zi_lora_cache *c;
    int rounds;
} racer;

static void *evictor(void *arg)
{
    racer *r = arg;
    for (int k = 0; k < r->rounds; k++) zi_lora_cache_evict(r->c, &g_keys[k % NKEYS]);
    return NULL;
}

/* The holder acquires and reads values while another thread evicts: no
 * value is unloaded under a pin (f_unload aborts on a double unload; the
 * value's key is checked while pinned). */
TEST(t_evictions_from_another_thread)
{
    fake f;
    zi_lora_cache *c = make(&f, 400);
    racer r = {c, 20000};
    pthread_t t;
    T_EQ_INT(pthread_create(&t, NULL, evictor, &r), 0);
    for (int k = 0; k < 20000; k++) {
        zi_lora_cache_ref *a = get(c, k % NKEYS), *b = get(c, (k * 7 + 3) % NKEYS);
        T_TRUE(f.loaded[(k * 7 + 3) % NKEYS]);
        zi_lora_cache_release(c, a);
        zi_lora_cache_release(c, b);
    }
    pthread_join(t, NULL);
    zi_lora_cache_stats s;
    zi_lora_cache_get_stats(c, &s);
    T_EQ_INT(s.pinned, 0);
    T_CMP_INT((int)s.bytes, <=, 400);
    zi_lora_cache_destroy(c);
    T_EQ_INT(f.loads, f.unloads);
    T_EQ_INT((int)f.device, 0);
}

TEST_MAIN(t_lru_under_the_cap, t_pinned_entries_stay_and_the_cap_is_soft,
          t_evict_pinned_leaves_the_index_at_once,
          t_out_of_memory_drops_everything_unpinned_and_retries, t_evictions_from_another_thread)
