/*
 * rng.h — small deterministic random generator (PCG32, O'Neill 2014).
 *
 * Algorithms that must be reproducible for a given seed (PatchMatch, payload
 * generators) seed one px_rng per independent unit of work (seed, stream), so
 * results do not depend on how work is spread across threads.
 */
#ifndef PX_CORE_RNG_H
#define PX_CORE_RNG_H

#include <stdint.h>

typedef struct px_rng {
    uint64_t state;
    uint64_t inc;
} px_rng;

/* Seeds the generator; different `stream` values give independent sequences. */
void px_rng_seed(px_rng *r, uint64_t seed, uint64_t stream);

/* Next 32 uniformly distributed bits. */
uint32_t px_rng_u32(px_rng *r);

/* Moves r `delta` draws ahead, as `delta` calls of px_rng_u32 would, in
 * O(log delta) steps: a thread can start its share of one stream where
 * the share begins. */
void px_rng_advance(px_rng *r, uint64_t delta);

/* Uniform integer in [0, n); n must be > 0. Unbiased (Lemire's method). */
uint32_t px_rng_below(px_rng *r, uint32_t n);

/* Uniform float in [0, 1). */
float px_rng_float(px_rng *r);

/* Mixes several values into one 64-bit seed (splitmix64 finaliser). */
uint64_t px_hash64(uint64_t x);

#endif
