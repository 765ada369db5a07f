/*
 * sampler.h — Z-Image's sampler: the flow-matching Euler schedule with a
 * static shift, the Euler update, classifier-free guidance and the initial
 * noise.
 *
 * Schedule for N steps: s_i = 1 - i/N (i = 0..N-1), sigma_i = shift*s_i /
 * (1 + (shift-1)*s_i), sigma_N = 0 (N = 8, shift 3: 1, .9545, .9, .8333,
 * .75, .6429, .5, .3, 0). One step: x += (sigma_{i+1} - sigma_i) * v with the
 * velocity v = -(the DiT's output). Guidance: pred = pos + w*(pos - neg),
 * w = 0 is off (Turbo is distilled for it).
 *
 * The noise is standard normal from PCG32 (core/rng.h) through Box-Muller,
 * so the latents for a seed are NOT those PyTorch's generator gives for the
 * same seed: an image cannot be reproduced across implementations from the
 * seed alone. To compare with another implementation pass its initial
 * latents (`pixserve generate --latents`, zi_gen_params.latents).
 */
#ifndef PX_ENGINE_ZIMAGE_SAMPLER_H
#define PX_ENGINE_ZIMAGE_SAMPLER_H

#include "core/pool.h"
#include "engine/zimage/zconfig.h"

#include <stddef.h>
#include <stdint.h>

/* Most steps a request may ask for. */
#define ZI_MAX_STEPS 1000

/* sigmas[0..steps] of the shifted schedule (steps+1 values, the last 0).
 * Returns 0 or PX_EINVAL (steps outside 1..ZI_MAX_STEPS, shift <= 0). */
int zi_sampler_sigmas(const zi_sampler_config *c, int steps, float *sigmas, char *err,
                      size_t errlen);

/* x[0..n) += (sigma_next - sigma) * -(model_out[i]): one Euler step on the
 * model's negative velocity. */
void zi_sampler_euler(float *x, const float *model_out, size_t n, float sigma, float sigma_next);

/* out[i] = pos[i] + w*(pos[i] - neg[i]); out may alias pos. */
void zi_sampler_cfg(float *out, const float *pos, const float *neg, size_t n, float w);

/* The seed a request runs with: seed itself when >= 0, else a fresh random
 * one (from getrandom, or the clock when that fails) in [0, 2^53) so that it
 * survives a round trip through JSON numbers. */
int64_t zi_sampler_resolve_seed(int64_t seed);

/* n standard normal fp32 values for seed (Box-Muller over PCG32, pairs in
 * order; documented above: not PyTorch's numbers), split over pool's
 * threads (NULL: the calling thread) with the same values either way:
 * each chunk moves its own generator to where its pairs start. */
void zi_sampler_noise(px_pool *pool, uint64_t seed, float *out, size_t n);

#endif
