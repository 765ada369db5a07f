/*
 * cuda_plan.h — the caches every CUDA engine keeps per device, keyed by
 * opaque shape keys: the plan cache (whatever an engine builds per input
 * shape: buffers, library plans, a CUDA graph) with least-recently-used
 * eviction, and the algorithm cache (a library's choice per operation
 * shape, e.g. a cuDNN convolution algorithm or a cuBLASLt heuristic, so
 * that plans of many shapes search each operation shape once).
 *
 * Keys are fixed-size byte strings, compared with memcmp and hashed with
 * FNV-1a: zero a key struct (memset or `= {0}`) before filling it when it
 * could have padding. Plain C with no CUDA in it (its tests run in every
 * build). Not thread-safe: a cache belongs to one device and is used by
 * whoever holds that device (cuda_device.h's pool).
 */
#ifndef PX_ENGINE_CUDA_CUDA_PLAN_H
#define PX_ENGINE_CUDA_CUDA_PLAN_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a (64 bits) of n bytes: the caches' hash, public for tests. */
uint64_t px_cuda_key_hash(const void *key, size_t n);

/* --------------------------------------------------------------- plans */

typedef struct px_cuda_plans px_cuda_plans;

typedef struct {
    /* Builds the plan for `key` into *plan. Returns 0 or a negative PX_E*
     * code with a message; on failure it has freed what it built. */
    int (*build)(void *arg, const void *key, void **plan, char *err, size_t errlen);
    /* Frees a plan the cache drops. */
    void (*destroy)(void *arg, void *plan);
    /* Device bytes the plan holds (px_cuda_plans_bytes sums them); NULL
     * counts nothing. */
    size_t (*bytes)(void *arg, const void *plan);
    void *arg;
} px_cuda_plan_ops;

/* A cache of at most max_plans (>= 1) plans under keys of key_size bytes.
 * Aborts if memory for the cache itself is missing (px_xcalloc). */
px_cuda_plans *px_cuda_plans_create(size_t key_size, int max_plans, const px_cuda_plan_ops *ops);

/*
 * The plan for key, built on first use. When the cache is full the least
 * recently used plan is freed before building (its memory is what the new
 * one may need); when building fails with PX_ENOMEM, every cached plan is
 * freed and the build tried once more. Returns 0 with *plan (owned by the
 * cache: valid until a later get evicts it, or clear/destroy), or the
 * build's error (*plan NULL).
 */
int px_cuda_plans_get(px_cuda_plans *c, const void *key, void **plan, char *err, size_t errlen);

/* When the cache is full, frees its least recently used plan (before a
 * build: its memory may be what the new plan needs). */
void px_cuda_plans_make_room(px_cuda_plans *c);

/* Caches a plan built elsewhere under key (absent from the cache), freeing
 * the least recently used plan first when full; the cache owns it now. */
void px_cuda_plans_put(px_cuda_plans *c, const void *key, void *plan);

/* The cached plan for key or NULL, without building; marks it used. */
void *px_cuda_plans_find(px_cuda_plans *c, const void *key);

int px_cuda_plans_count(const px_cuda_plans *c);

/* How many plans px_cuda_plans_get has built so far (evicted ones and
 * rebuilds included): whether warm-up spared requests a build shows here.
 * The one call safe from any thread. */
long px_cuda_plans_builds(px_cuda_plans *c);

/* Device bytes the cached plans hold (ops.bytes summed): what clearing
 * the cache would give back. The other call safe from any thread. */
size_t px_cuda_plans_bytes(px_cuda_plans *c);

/* Frees every cached plan. */
void px_cuda_plans_clear(px_cuda_plans *c);

/* Frees every cached plan and the cache; NULL is a no-op. */
void px_cuda_plans_destroy(px_cuda_plans *c);

/* ---------------------------------------------------------- algorithms */

typedef struct px_cuda_algos px_cuda_algos;

/* A cache of at most cap (>= 1) choices: keys of key_size bytes, values of
 * val_size bytes (copied in and out). Aborts if memory is missing. */
px_cuda_algos *px_cuda_algos_create(size_t key_size, size_t val_size, int cap);

/* 1 and the value copied into val when key is known (it becomes the most
 * recently used), else 0. */
int px_cuda_algos_get(px_cuda_algos *a, const void *key, void *val);

/* Stores (or replaces) key's value; when full, the least recently used
 * choice makes room. */
void px_cuda_algos_put(px_cuda_algos *a, const void *key, const void *val);

int px_cuda_algos_count(const px_cuda_algos *a);

/* NULL is a no-op. */
void px_cuda_algos_destroy(px_cuda_algos *a);

#endif
