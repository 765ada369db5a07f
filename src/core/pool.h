/*
 * pool.h — a fixed set of compute threads for data-parallel loops.
 *
 * Engines split work with px_pool_parallel_for(); several callers (one per
 * serving worker) may run loops on the same pool at once, and the calling
 * thread always works on its own loop too, so a loop never waits for a free
 * pool thread. Chunks are handed out dynamically: results must not depend on
 * which thread runs which chunk (give each chunk its own seed, write disjoint
 * outputs).
 */
#ifndef PX_CORE_POOL_H
#define PX_CORE_POOL_H

#include <stddef.h>

typedef struct px_pool px_pool;

/* Body of a loop: runs items [begin, end). */
typedef void (*px_range_fn)(void *ctx, int begin, int end);

/* Starts nthreads-1 helper threads (the caller is the n-th); nthreads <= 0
 * means one per online CPU. Returns NULL if threads cannot be created. */
px_pool *px_pool_create(int nthreads);

/* Joins the threads. No loop may be running. */
void px_pool_destroy(px_pool *p);

/* Number of threads that work on a loop (helpers + the caller). */
int px_pool_threads(const px_pool *p);

/* Runs fn over [0, n) in chunks of `grain` items (grain <= 0: chosen so each
 * thread gets a few chunks) and returns when every chunk is done. p may be
 * NULL: then the loop runs on the calling thread. */
void px_pool_parallel_for(px_pool *p, int n, int grain, px_range_fn fn, void *ctx);

/* One contiguous copy of px_pool_copy. */
typedef struct px_copy_seg {
    void *dst;
    const void *src;
    size_t n;
} px_copy_seg;

/* Copies every segment (none may overlap another's destination), split
 * into 1 MiB chunks over the pool's threads: staging tens of megabytes of
 * images for a GPU batch on one thread leaves the GPU idle meanwhile.
 * p may be NULL (the calling thread copies). */
void px_pool_copy(px_pool *p, const px_copy_seg *seg, int nseg);

/* The process-wide pool, created on first use with one thread per CPU (or
 * px_pool_set_default_threads()). Never NULL unless thread creation failed. */
px_pool *px_pool_default(void);

/* Sets the size of the default pool; only before its first use. */
void px_pool_set_default_threads(int nthreads);

#endif
