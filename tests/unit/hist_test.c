/*
 * hist_test.c — the log-linear histogram against exact sorted percentiles on
 * random and adversarial distributions, merging, and the bucket layout.
 */
#include "core/hist.h"
#include "core/rng.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static const double qs[] = {0.0001, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9,
                            0.95,   0.99,  0.999, 0.9999, 0.99999, 1.0};

/* Records v[n] and checks every quantile in qs against the exact nearest
 * rank of the sorted samples; returns the largest relative error seen. */
static double check_quantiles(uint64_t *v, size_t n, const char *what)
{
    px_hist *h = px_hist_new();
    T_TRUE(h != NULL);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        px_hist_record(h, v[i]);
        sum += (double)v[i];
    }
    qsort(v, n, sizeof v[0], cmp_u64);
    T_EQ_INT(h->count, n);
    T_EQ_INT(h->min, v[0]);
    T_EQ_INT(h->max, v[n - 1]);
    T_NEAR(px_hist_mean(h), sum / (double)n, 1e-9 * sum / (double)n + 1e-9);
    double worst = 0;
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        size_t rank = (size_t)ceil(qs[k] * (double)n - 1e-9);
        if (rank < 1) rank = 1;
        uint64_t exact = v[rank - 1], got = px_hist_quantile(h, qs[k]);
        double rel = exact ? fabs((double)got - (double)exact) / (double)exact
                           : (double)(got != 0);
        if (exact < 256) T_EQ_INT(got, exact); /* exact range */
        if (rel > worst) worst = rel;
        if (rel > 1.0 / 256 + 1e-12)
            px_tfail(__FILE__, __LINE__, "%s q=%g: got %llu exact %llu (rel %.5f)", what, qs[k],
                     (unsigned long long)got, (unsigned long long)exact, rel);
    }
    px_hist_free(h);
    return worst;
}

TEST(t_layout)
{
    /* Buckets tile the range with no gap or overlap, each at most 1/128 of
     * its lower bound wide. */
    uint64_t next = 0;
    for (int i = 0; i < PX_HIST_BUCKETS; i++) {
        uint64_t lo, hi;
        px_hist_bucket_range(i, &lo, &hi);
        T_EQ_INT(lo, next);
        T_CMP_INT(hi, >=, lo);
        if (lo >= 256) T_CMP_DBL((double)(hi - lo + 1) / (double)lo, <=, 1.0 / 128);
        T_EQ_INT(px_hist_index(lo), i);
        T_EQ_INT(px_hist_index(hi), i);
        next = hi + 1;
    }
    T_EQ_INT(next - 1, PX_HIST_MAX_VALUE);
    T_EQ_INT(px_hist_index(UINT64_MAX), PX_HIST_BUCKETS - 1);
    /* 1 us .. 1 h in nanoseconds fits, with room to spare. */
    T_CMP_INT(PX_HIST_MAX_VALUE, >, 3600ull * 1000000000ull);
    T_CMP_INT(sizeof(px_hist), <, 40 * 1024);
}

TEST(t_random_distributions)
{
    size_t n = 200000;
    uint64_t *v = malloc(n * sizeof *v);
    px_rng r;
    px_rng_seed(&r, 42, 1);
    double worst = 0, w;
    /* uniform 1 us .. 1 s */
    for (size_t i = 0; i < n; i++) v[i] = 1000 + (uint64_t)(px_rng_float(&r) * 1e9);
    w = check_quantiles(v, n, "uniform");
    worst = w > worst ? w : worst;
    /* log-uniform 1 us .. 1 h: every bucket size class */
    for (size_t i = 0; i < n; i++)
        v[i] = (uint64_t)exp(log(1e3) + px_rng_float(&r) * (log(3.6e12) - log(1e3)));
    w = check_quantiles(v, n, "log-uniform");
    worst = w > worst ? w : worst;
    /* exponential, mean 20 ms */
    for (size_t i = 0; i < n; i++) v[i] = (uint64_t)(-log(1.0 - px_rng_float(&r)) * 20e6);
    w = check_quantiles(v, n, "exponential");
    worst = w > worst ? w : worst;
    /* lognormal around 150 ms with a heavy tail (Box-Muller) */
    for (size_t i = 0; i < n; i++) {
        double u1 = 1.0 - px_rng_float(&r), u2 = px_rng_float(&r);
        double z = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
        v[i] = (uint64_t)(150e6 * exp(0.8 * z));
    }
    w = check_quantiles(v, n, "lognormal");
    worst = w > worst ? w : worst;
    printf("    max relative error over random distributions: %.4f%%\n", 100 * worst);
    free(v);
}

TEST(t_adversarial_distributions)
{
    size_t n = 100000;
    uint64_t *v = malloc(n * sizeof *v);
    px_rng r;
    px_rng_seed(&r, 7, 2);
    double worst = 0, w;
    /* one value */
    for (size_t i = 0; i < n; i++) v[i] = 123456789;
    w = check_quantiles(v, n, "constant");
    worst = w > worst ? w : worst;
    /* values on both sides of every power of two (bucket boundaries) */
    for (size_t i = 0; i < n; i++) {
        int e = 8 + (int)px_rng_below(&r, PX_HIST_MAX_BITS - 8);
        uint64_t p = UINT64_C(1) << e;
        v[i] = (i & 1) ? p : p - 1;
    }
    w = check_quantiles(v, n, "power-of-two edges");
    worst = w > worst ? w : worst;
    /* bimodal: 99 % fast, 1 % a thousand times slower (the p99 sits on the gap) */
    for (size_t i = 0; i < n; i++) v[i] = (i % 100 == 0) ? 5000000000ull + i : 5000000 + i % 7;
    w = check_quantiles(v, n, "bimodal");
    worst = w > worst ? w : worst;
    /* the tiny exact range and zero */
    for (size_t i = 0; i < n; i++) v[i] = px_rng_below(&r, 300);
    w = check_quantiles(v, n, "small");
    worst = w > worst ? w : worst;
    /* a single huge outlier among many small ones */
    for (size_t i = 0; i < n; i++) v[i] = 1000 + px_rng_below(&r, 10);
    v[n / 2] = 3600ull * 1000000000ull;
    w = check_quantiles(v, n, "outlier");
    worst = w > worst ? w : worst;
    /* sorted descending input (order must not matter) */
    for (size_t i = 0; i < n; i++) v[i] = (uint64_t)(n - i) * 997;
    w = check_quantiles(v, n, "descending");
    worst = w > worst ? w : worst;
    printf("    max relative error over adversarial distributions: %.4f%%\n", 100 * worst);
    free(v);
}

TEST(t_merge_equals_single)
{
    px_hist *a = px_hist_new(), *b = px_hist_new(), *all = px_hist_new();
    px_rng r;
    px_rng_seed(&r, 3, 3);
    for (int i = 0; i < 50000; i++) {
        uint64_t v = (uint64_t)px_rng_u32(&r) * 1000;
        px_hist_record(i % 3 ? a : b, v);
        px_hist_record(all, v);
    }
    px_hist_merge(a, b);
    T_EQ_INT(a->count, all->count);
    T_EQ_INT(a->min, all->min);
    T_EQ_INT(a->max, all->max);
    T_EQ_MEM(a->counts, all->counts, sizeof a->counts);
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++)
        T_EQ_INT(px_hist_quantile(a, qs[k]), px_hist_quantile(all, qs[k]));
    /* merging an empty histogram changes nothing */
    px_hist_reset(b);
    px_hist_merge(a, b);
    T_EQ_INT(a->count, all->count);
    px_hist_free(a);
    px_hist_free(b);
    px_hist_free(all);
}

TEST(t_clamp_reset_iterate)
{
    px_hist h;
    px_hist_init(&h);
    T_EQ_INT(px_hist_quantile(&h, 0.5), 0);
    T_EQ_INT(px_hist_mean(&h), 0);
    px_hist_record(&h, UINT64_MAX);
    T_EQ_INT(h.clamped, 1);
    T_EQ_INT(h.max, PX_HIST_MAX_VALUE);
    px_hist_record_n(&h, 1000, 9);
    T_NEAR(px_hist_cdf(&h, 1000), 0.9, 1e-12);
    int it = -1, n = 0;
    uint64_t lo, hi, c, total = 0;
    while (px_hist_next(&h, &it, &lo, &hi, &c) == 0) {
        n++;
        total += c;
    }
    T_EQ_INT(n, 2);
    T_EQ_INT(total, 10);
    px_hist_reset(&h);
    T_EQ_INT(h.count, 0);
    for (int i = 0; i < PX_HIST_BUCKETS; i++) T_EQ_INT(h.counts[i], 0);
}

TEST_MAIN(t_layout, t_random_distributions, t_adversarial_distributions, t_merge_equals_single,
          t_clamp_reset_iterate)
