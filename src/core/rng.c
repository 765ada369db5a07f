/*
 * rng.c — PCG32 (XSH RR variant) and a splitmix64 hash for seeding.
 */
#include "core/rng.h"

uint64_t px_hash64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void px_rng_seed(px_rng *r, uint64_t seed, uint64_t stream)
{
    r->state = 0;
    r->inc = (px_hash64(stream) << 1) | 1u;
    px_rng_u32(r);
    r->state += px_hash64(seed);
    px_rng_u32(r);
}

#define PCG_MULT 6364136223846793005ull

uint32_t px_rng_u32(px_rng *r)
{
    uint64_t old = r->state;
    r->state = old * PCG_MULT + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

/* The state after k steps is A·state + C, A = m^k and C = inc·(m^(k-1) +
 * ... + 1): composed by squaring, the step (m, inc) doubling each round,
 * modulo 2^64 as the generator itself (Brown, "Random number generation
 * with arbitrary strides", 1994). */
void px_rng_advance(px_rng *r, uint64_t delta)
{
    uint64_t acc_mult = 1, acc_plus = 0, cur_mult = PCG_MULT, cur_plus = r->inc;
    for (; delta; delta >>= 1) {
        if (delta & 1) {
            acc_mult *= cur_mult;
            acc_plus = acc_plus * cur_mult + cur_plus;
        }
        cur_plus = (cur_mult + 1) * cur_plus;
        cur_mult *= cur_mult;
    }
    r->state = acc_mult * r->state + acc_plus;
}

uint32_t px_rng_below(px_rng *r, uint32_t n)
{
    uint64_t m = (uint64_t)px_rng_u32(r) * n;
    uint32_t l = (uint32_t)m;
    if (l < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (l < t) {
            m = (uint64_t)px_rng_u32(r) * n;
            l = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float px_rng_float(px_rng *r)
{
    return (float)(px_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}
