/*
 * cuda_plan_async.h — a plan cache (cuda_plan.h) whose plans can also be
 * built off the request path. Issue 16: a plan for a shape no warm-up had
 * built took seconds of cuDNN's algorithm search on the device's worker,
 * and every batch of every other shape queued behind it. Here a caller
 * that is about to form a batch asks whether its plan is ready; when it is
 * not, one background thread per cache builds it (with whatever the
 * engine's build function uses: a stream and handles of its own, so the
 * device keeps running batches meanwhile) and the caller runs other work.
 *
 * The rules that keep plans in use alive: only the device's holder (the
 * thread that runs batches on it, px_cuda_aplans_get) puts plans into the
 * cache and so evicts; the background thread leaves finished plans in a
 * short hand-over list that the next get moves into the cache. Builds run
 * one at a time, background or not (the engine's algorithm cache and build
 * handles need no lock of their own). Plain C with pthreads, no CUDA: its
 * tests run in every build.
 */
#ifndef PX_ENGINE_CUDA_CUDA_PLAN_ASYNC_H
#define PX_ENGINE_CUDA_CUDA_PLAN_ASYNC_H

#include "engine/cuda/cuda_plan.h"

#include <stddef.h>

typedef struct px_cuda_aplans px_cuda_aplans;

/* A cache of at most max_plans plans under keys of key_size bytes (at most
 * PX_CUDA_APLANS_MAX_KEY); ops->build must be safe to call from the
 * background thread. who names the engine in log lines. The thread starts
 * at the first background request. Aborts if memory is missing. */
#define PX_CUDA_APLANS_MAX_KEY 64
px_cuda_aplans *px_cuda_aplans_create(size_t key_size, int max_plans, const px_cuda_plan_ops *ops,
                                      const char *who);

/*
 * The device holder only: the plan for key, as px_cuda_plans_get (built
 * here if neither the cache nor the hand-over list has it; on PX_ENOMEM
 * every cached plan is freed and the build tried once more). The plan
 * stays valid until the holder's next get.
 */
int px_cuda_aplans_get(px_cuda_aplans *c, const void *key, void **plan, char *err, size_t errlen);

/*
 * Any thread, quick: 1 when a get for key would find its plan (cached or
 * handed over), and also when its background build failed (get then
 * builds it again and reports the error, or recovers from a lack of
 * memory the background could not); 0 when a get would build. With want,
 * a 0 also queues key for the background thread (once; a full queue is
 * asked again later).
 */
int px_cuda_aplans_ready(px_cuda_aplans *c, const void *key, int want);

/* Plans built so far in the background (for tests and logs). */
int px_cuda_aplans_background_builds(px_cuda_aplans *c);

/* Stops the background thread (after the build in progress), frees every
 * plan; NULL is a no-op. */
void px_cuda_aplans_destroy(px_cuda_aplans *c);

#endif
