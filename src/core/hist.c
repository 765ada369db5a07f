/*
 * hist.c — log-linear histogram (see hist.h for the layout and its error
 * bound).
 */
#include "core/hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SUB (1 << PX_HIST_SUB_BITS)  /* buckets per power of two */
#define LINEAR (2 * SUB)             /* values below this have a bucket each */

px_hist *px_hist_new(void)
{
    px_hist *h = malloc(sizeof *h);
    if (h) px_hist_init(h);
    return h;
}

void px_hist_free(px_hist *h)
{
    free(h);
}

void px_hist_init(px_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
    h->lo = PX_HIST_BUCKETS;
    h->hi = -1;
}

void px_hist_reset(px_hist *h)
{
    /* Only the used range needs clearing: a reset per second per thread must
     * not cost 38 KiB of stores when a few buckets were touched. */
    if (h->lo <= h->hi)
        memset(h->counts + h->lo, 0, (size_t)(h->hi - h->lo + 1) * sizeof h->counts[0]);
    h->count = h->clamped = 0;
    h->min = UINT64_MAX;
    h->max = 0;
    h->sum = 0;
    h->lo = PX_HIST_BUCKETS;
    h->hi = -1;
}

int px_hist_index(uint64_t v)
{
    if (v > PX_HIST_MAX_VALUE) v = PX_HIST_MAX_VALUE;
    if (v < LINEAR) return (int)v;
    int e = 63 - __builtin_clzll(v); /* >= SUB_BITS + 1 */
    int shift = e - PX_HIST_SUB_BITS;
    int sub = (int)(v >> shift); /* in [SUB, 2*SUB) */
    return LINEAR + (e - PX_HIST_SUB_BITS - 1) * SUB + (sub - SUB);
}

void px_hist_bucket_range(int idx, uint64_t *lo, uint64_t *hi)
{
    if (idx < LINEAR) {
        *lo = *hi = (uint64_t)idx;
        return;
    }
    int k = idx - LINEAR;
    int e = k / SUB + PX_HIST_SUB_BITS + 1;
    int shift = e - PX_HIST_SUB_BITS;
    uint64_t sub = (uint64_t)(k % SUB + SUB);
    *lo = sub << shift;
    *hi = *lo + ((UINT64_C(1) << shift) - 1);
}

void px_hist_record_n(px_hist *h, uint64_t v, uint64_t n)
{
    if (n == 0) return;
    if (v > PX_HIST_MAX_VALUE) {
        h->clamped += n;
        v = PX_HIST_MAX_VALUE;
    }
    int i = px_hist_index(v);
    h->counts[i] += n;
    h->count += n;
    h->sum += (double)v * (double)n;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
    if (i < h->lo) h->lo = i;
    if (i > h->hi) h->hi = i;
}

void px_hist_record(px_hist *h, uint64_t v)
{
    px_hist_record_n(h, v, 1);
}

void px_hist_merge(px_hist *dst, const px_hist *src)
{
    if (src->count == 0) return;
    for (int i = src->lo; i <= src->hi; i++) dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
    if (src->lo < dst->lo) dst->lo = src->lo;
    if (src->hi > dst->hi) dst->hi = src->hi;
}

double px_hist_mean(const px_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}

uint64_t px_hist_quantile(const px_hist *h, double q)
{
    if (h->count == 0) return 0;
    if (!(q > 0)) return h->min;
    if (q >= 1) return h->max;
    /* Nearest rank, computed so that q*count = 95.0000001 is not taken as 96
     * by floating-point noise in q. */
    double r = ceil(q * (double)h->count - 1e-9);
    uint64_t rank = r < 1 ? 1 : (uint64_t)r;
    if (rank > h->count) rank = h->count;
    uint64_t seen = 0;
    for (int i = h->lo; i <= h->hi; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t lo, hi;
            px_hist_bucket_range(i, &lo, &hi);
            uint64_t mid = lo + (hi - lo) / 2;
            if (mid < h->min) mid = h->min;
            if (mid > h->max) mid = h->max;
            return mid;
        }
    }
    return h->max;
}

double px_hist_cdf(const px_hist *h, uint64_t v)
{
    if (h->count == 0) return 0;
    int idx = px_hist_index(v);
    uint64_t seen = 0;
    for (int i = h->lo; i <= h->hi && i <= idx; i++) seen += h->counts[i];
    return (double)seen / (double)h->count;
}

int px_hist_next(const px_hist *h, int *it, uint64_t *lo, uint64_t *hi, uint64_t *count)
{
    int i = *it < h->lo ? h->lo : *it + 1;
    for (; i <= h->hi; i++) {
        if (h->counts[i]) {
            px_hist_bucket_range(i, lo, hi);
            *count = h->counts[i];
            *it = i;
            return 0;
        }
    }
    *it = PX_HIST_BUCKETS;
    return -1;
}
