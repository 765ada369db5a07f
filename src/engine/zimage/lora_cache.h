/*
 * lora_cache.h — the bookkeeping of a device's LoRA cache: which LoRAs
 * (keyed by their zi_lora pointer) are resident, the bytes they hold
 * against a cap, which ones running batches use (pinned: never dropped
 * under them), and which to drop first (the least recently used of the
 * unpinned). The device work, uploading a LoRA and freeing it, is the
 * owner's, through callbacks, so this part is plain C that builds and is
 * tested everywhere (tests/unit/lora_cache_test.c); the CUDA backend's
 * zc_lora.c is its user, one cache per device context.
 *
 * The cap is soft: when the pinned entries alone exceed it, a batch that
 * needs one more still gets it (a batch must run), and the surplus is
 * dropped as soon as nothing pins it.
 *
 * Thread-safe: the device's holder acquires and releases while any thread
 * may evict. The engine evicts a LoRA when it is closed, before freeing
 * it, so that a later LoRA allocated at the same address is never served
 * the old one's entry: a pinned entry that is evicted leaves the index at
 * once and is unloaded at its last release.
 */
#ifndef PX_ENGINE_ZIMAGE_LORA_CACHE_H
#define PX_ENGINE_ZIMAGE_LORA_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct zi_lora_cache_ops {
    /* Bytes key's entry will take once loaded (asked before loading, to
     * make room first). */
    size_t (*size)(void *arg, const void *key);
    /* Loads key's entry into *val. Returns 0 or a PX_E* code with a
     * message; after PX_ENOMEM the cache drops every unpinned entry and
     * tries once more. */
    int (*load)(void *arg, const void *key, void **val, char *err, size_t errlen);
    /* Frees a loaded entry. Called with the cache's lock held: it must not
     * call back into the cache. */
    void (*unload)(void *arg, void *val);
    void *arg;
} zi_lora_cache_ops;

typedef struct zi_lora_cache zi_lora_cache;
typedef struct zi_lora_cache_ref zi_lora_cache_ref; /* one acquired entry */

/* A cache of at most cap_bytes (soft, see above). Aborts when memory for
 * the cache itself is missing (px_xcalloc). Caller destroys. */
zi_lora_cache *zi_lora_cache_create(size_t cap_bytes, const zi_lora_cache_ops *ops);

/* Unloads every entry; none may be pinned any more. NULL is a no-op. */
void zi_lora_cache_destroy(zi_lora_cache *c);

/*
 * Pins key's entry, loading it on a miss after dropping least recently
 * used unpinned entries until it fits under the cap (or none is left).
 * The entry becomes the most recently used. Returns 0 and *ref (give it
 * back with zi_lora_cache_release), or the load's error (*ref NULL).
 */
int zi_lora_cache_acquire(zi_lora_cache *c, const void *key, zi_lora_cache_ref **ref, char *err,
                          size_t errlen);

/* The loaded value of an acquired entry (valid until its release). */
void *zi_lora_cache_value(const zi_lora_cache_ref *r);

/* Unpins; drops the entry when it was evicted meanwhile, and unpinned
 * entries while the cache is over its cap. NULL is a no-op. */
void zi_lora_cache_release(zi_lora_cache *c, zi_lora_cache_ref *r);

/* Forgets key: unloads its entry now, or at its last release when pinned.
 * No-op when key is not cached. */
void zi_lora_cache_evict(zi_lora_cache *c, const void *key);

/* Drops every unpinned entry (e.g. before a large allocation). */
void zi_lora_cache_trim(zi_lora_cache *c);

typedef struct zi_lora_cache_stats {
    size_t bytes, cap;            /* bytes of every loaded entry (evicted pinned ones too) */
    int entries;                  /* in the index */
    int pinned;                   /* loaded entries with at least one pin, evicted ones too */
    uint64_t hits, misses, drops; /* drops: entries unloaded to make room or over the cap */
} zi_lora_cache_stats;

void zi_lora_cache_get_stats(zi_lora_cache *c, zi_lora_cache_stats *s);

/* Whether key has an entry in the index (tests). */
int zi_lora_cache_has(zi_lora_cache *c, const void *key);

#endif
