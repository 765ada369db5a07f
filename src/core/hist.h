/*
 * hist.h — a log-linear histogram of non-negative integers (latencies in
 * nanoseconds) with bounded relative error and constant memory.
 *
 * Values below 256 have a bucket each; above, every power of two is split
 * into 128 equal buckets (HdrHistogram's layout with 7 bits of precision),
 * so a bucket is never wider than 1/128 of its lower bound. Quantiles report
 * the bucket's midpoint clamped to the exact recorded min and max, so the
 * reported value is within 1/256 (0.39 %) of the true sample at that rank.
 * The range is 0 .. 2^44 ns (about 4.9 hours); larger values are clamped
 * into the top bucket (and counted in `clamped`). One histogram is 4864
 * 64-bit counters (38 KiB) whatever the number of samples, and histograms
 * merge by adding counters, so each thread records into its own and the
 * results are combined afterwards. Not thread-safe: one writer at a time.
 */
#ifndef PX_CORE_HIST_H
#define PX_CORE_HIST_H

#include <stddef.h>
#include <stdint.h>

#define PX_HIST_SUB_BITS 7
#define PX_HIST_MAX_BITS 44
#define PX_HIST_MAX_VALUE ((UINT64_C(1) << PX_HIST_MAX_BITS) - 1)
#define PX_HIST_BUCKETS \
    ((2 << PX_HIST_SUB_BITS) + (PX_HIST_MAX_BITS - PX_HIST_SUB_BITS - 1) * (1 << PX_HIST_SUB_BITS))

typedef struct px_hist {
    uint64_t count;   /* samples recorded */
    uint64_t clamped; /* samples above PX_HIST_MAX_VALUE (recorded as the max) */
    uint64_t min, max; /* exact extremes (min is UINT64_MAX when empty) */
    double sum;       /* exact sum of the (clamped) samples, for the mean */
    int lo, hi;       /* first and last non-empty bucket (lo > hi when empty) */
    uint64_t counts[PX_HIST_BUCKETS];
} px_hist;

/* A new empty histogram (caller frees with px_hist_free), or NULL when out
 * of memory. */
px_hist *px_hist_new(void);
void px_hist_free(px_hist *h);

/* Makes caller-owned storage an empty histogram (clears all of it). */
void px_hist_init(px_hist *h);

/* Empties an initialised histogram (clears only the buckets in use). */
void px_hist_reset(px_hist *h);

/* Records one sample / n samples of value v. */
void px_hist_record(px_hist *h, uint64_t v);
void px_hist_record_n(px_hist *h, uint64_t v, uint64_t n);

/* Adds every sample of src to dst. */
void px_hist_merge(px_hist *dst, const px_hist *src);

/* Mean of the samples (0 when empty). */
double px_hist_mean(const px_hist *h);

/* Nearest-rank quantile: the value of the sample at rank ceil(q*count)
 * (q in [0, 1]; q <= 0 gives the min, q >= 1 the max), within the bucket
 * bound above. 0 when empty. */
uint64_t px_hist_quantile(const px_hist *h, double q);

/* Fraction of samples <= v (by bucket; 0 when empty). */
double px_hist_cdf(const px_hist *h, uint64_t v);

/* Bucket index of v, and the range [lo, hi] of values a bucket holds. */
int px_hist_index(uint64_t v);
void px_hist_bucket_range(int idx, uint64_t *lo, uint64_t *hi);

/* Iterates over the non-empty buckets: start with *it = -1; returns 0 and
 * fills lo/hi/count for the next one, or -1 when there are no more. */
int px_hist_next(const px_hist *h, int *it, uint64_t *lo, uint64_t *hi, uint64_t *count);

#endif
