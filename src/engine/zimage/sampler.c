/*
 * sampler.c — the flow-matching Euler schedule, guidance and initial noise
 * (see sampler.h).
 */
#include "engine/zimage/sampler.h"

#include "core/err.h"
#include "core/rng.h"

#include <math.h>
#include <sys/random.h>
#include <time.h>

int zi_sampler_sigmas(const zi_sampler_config *c, int steps, float *sigmas, char *err,
                      size_t errlen)
{
    if (steps < 1 || steps > ZI_MAX_STEPS)
        return px_errf(err, errlen, PX_EINVAL, "steps must be between 1 and %d, got %d",
                       ZI_MAX_STEPS, steps);
    if (!(c->shift > 0))
        return px_errf(err, errlen, PX_EINVAL, "sampler shift must be positive, got %g",
                       (double)c->shift);
    /* In double, then rounded once: what a float64 numpy schedule turned
     * into a float32 tensor gives. */
    double shift = c->shift;
    for (int i = 0; i < steps; i++) {
        double s = 1.0 - (double)i / steps;
        sigmas[i] = (float)(shift * s / (1.0 + (shift - 1.0) * s));
    }
    sigmas[steps] = 0.0f;
    return 0;
}

void zi_sampler_euler(float *x, const float *model_out, size_t n, float sigma, float sigma_next)
{
    float dt = sigma_next - sigma;
    for (size_t i = 0; i < n; i++) x[i] += dt * -model_out[i];
}

void zi_sampler_cfg(float *out, const float *pos, const float *neg, size_t n, float w)
{
    for (size_t i = 0; i < n; i++) out[i] = pos[i] + w * (pos[i] - neg[i]);
}

int64_t zi_sampler_resolve_seed(int64_t seed)
{
    if (seed >= 0) return seed;
    uint64_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = px_hash64((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
    }
    return (int64_t)(r & ((1ull << 53) - 1));
}

/* Values a chunk of zi_sampler_noise: even, so that a chunk starts on a
 * pair. One 1024² image's 262,144 values took ~4 ms on one thread (the
 * logs, sines and cosines in double), on the request's path before its
 * first step. */
#define NOISE_CHUNK  8192
#define NOISE_STREAM 0x5a494d47u /* "ZIMG": the stream of initial latents */

typedef struct noise_job {
    uint64_t seed;
    float *out;
    size_t n;
} noise_job;

static void noise_range(void *ctx, int begin, int end)
{
    const noise_job *j = ctx;
    px_rng r;
    px_rng_seed(&r, j->seed, NOISE_STREAM);
    size_t i = (size_t)begin * NOISE_CHUNK, stop = (size_t)end * NOISE_CHUNK;
    if (stop > j->n) stop = j->n;
    px_rng_advance(&r, i); /* two draws a pair: value i's pair starts at draw i */
    const double two_pi = 6.283185307179586;
    for (; i < stop; i += 2) {
        /* u1 in (0, 1] so the log is finite. */
        double u1 = ((double)px_rng_u32(&r) + 1.0) / 4294967296.0;
        double u2 = (double)px_rng_u32(&r) / 4294967296.0;
        double rad = sqrt(-2.0 * log(u1));
        j->out[i] = (float)(rad * cos(two_pi * u2));
        if (i + 1 < j->n) j->out[i + 1] = (float)(rad * sin(two_pi * u2));
    }
}

void zi_sampler_noise(px_pool *pool, uint64_t seed, float *out, size_t n)
{
    noise_job j = {seed, out, n};
    px_pool_parallel_for(pool, (int)((n + NOISE_CHUNK - 1) / NOISE_CHUNK), 1, noise_range, &j);
}
