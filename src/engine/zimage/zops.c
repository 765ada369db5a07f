/*
 * zops.c — the Z-Image CPU operations (zops.h): the context, the thread
 * loop, conversions and the matrix products. Norms, activations, RoPE and
 * attention are in zops_elem.c.
 *
 * Matrix products go to oneDNN's matmul (its jit sgemm on AVX2 machines,
 * threaded with OpenMP); everything element-wise runs on the same OpenMP
 * team (zi_parallel_for), or on a px_pool if the context was given one. Linear
 * weights are handed to oneDNN as they lie in the store ([N, K] row-major is
 * a [K, N] matrix with strides (1, K)), so nothing is reordered or copied;
 * BF16 weights are widened a block of rows at a time (bf16 -> f32 is exact),
 * because this oneDNN (2.6) has no bf16 kernels for CPUs without AVX-512 and
 * its reference fallback is orders of magnitude slower; up to 16 rows a
 * direct AVX2 kernel reads the bf16 weights once instead (such products are
 * bound by reading the weights, half the bytes of F32). Primitives are cached
 * per shape in the context (a small LRU), with one user scratchpad shared.
 */
#include "engine/zimage/zops.h"
#include "engine/zimage/zops_impl.h"

#include "core/alloc.h"
#include "core/err.h"
#include "engine/dnnl.h"

#include <dnnl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

/* libgomp's entry points, declared here (not through <omp.h>, which clang
 * has only with libomp's headers): GOMP_parallel is what GCC emits for
 * `#pragma omp parallel`, so element-wise loops can run on the very team
 * oneDNN uses without compiling this file with -fopenmp. */
void omp_set_num_threads(int n);
int omp_get_max_threads(void);
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);

int zo_have_avx2(void)
{
    static atomic_int v = -1;
    int r = atomic_load_explicit(&v, memory_order_relaxed);
    if (r < 0) {
        __builtin_cpu_init();
        r = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        atomic_store_explicit(&v, r, memory_order_relaxed);
    }
    return r;
}

/* Attention scores of one query chunk: 128 MB. Fewer, larger chunks mean
 * fewer parallel regions (whose barriers cost most on a loaded machine) and
 * taller products: measured at 4224 tokens x 30 heads, 18 / 40 / 51 GFLOP
 * per CPU-second with 8 / 32 / 128 MB. */
#define SCORES_FLOATS ((size_t)32 << 20)
/* Widened bf16 blocks: wide ones keep the GEMM efficient and the number
 * of parallel regions low (each costs a barrier, dear on a loaded machine);
 * with fewer rows the block should still be in cache when the GEMM reads
 * it. Measured for 32 x 3840 x 11520: 1.5-3.5 s with 1 MB blocks, 0.24-0.53
 * s with 4 MB, 0.42-0.82 s with 8 MB. A full-width DiT forward at 256²
 * (M = 256..288) took 6.9-7.3 s with 32 MB blocks and 8.3-12.4 s with 8 MB
 * ones, runs interleaved. */
#define WBLOCK_FLOATS ((size_t)8 << 20)
#define WBLOCK_FLOATS_FEW ((size_t)1 << 20)
#define FEW_ROWS 16 /* up to this many rows, BF16 products skip oneDNN */

static dnnl_engine_t engine(void)
{
    return px_dnnl_engine();
}

typedef struct omp_loop {
    px_range_fn fn;
    void *ctx;
    int n, grain, nchunks;
    atomic_int next;
} omp_loop;

static void omp_body(void *p)
{
    omp_loop *l = p;
    for (;;) {
        int k = atomic_fetch_add_explicit(&l->next, 1, memory_order_relaxed);
        if (k >= l->nchunks) return;
        int b = k * l->grain, e = l->n - b < l->grain ? l->n : b + l->grain;
        l->fn(l->ctx, b, e);
    }
}

void zi_parallel_for(zi_ctx *c, int n, int grain, px_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (c->pool) {
        px_pool_parallel_for(c->pool, n, grain, fn, ctx);
        return;
    }
    int nt = omp_get_max_threads();
    if (grain <= 0) grain = n / (4 * (nt > 0 ? nt : 1));
    if (grain < 1) grain = 1;
    omp_loop l = {fn, ctx, n, grain, (int)(((int64_t)n + grain - 1) / grain), 0};
    if (nt <= 1 || l.nchunks == 1) {
        fn(ctx, 0, n);
        return;
    }
    GOMP_parallel(omp_body, &l, (unsigned)(l.nchunks < nt ? l.nchunks : nt), 0);
}

static int dnnl_fail(char *err, size_t errlen, dnnl_status_t st, const char *what)
{
    return px_errf(err, errlen, st == dnnl_out_of_memory ? PX_ENOMEM : PX_EUNSUP,
                   "oneDNN: %s failed (status %d)", what, (int)st);
}

void zi_set_threads(int n)
{
    if (n > 0) omp_set_num_threads(n);
}

int zi_buf_reserve(zi_buf *b, size_t n)
{
    if (n <= b->cap) return 0;
    size_t bytes;
    if (!px_mul_size(n, sizeof(float), &bytes) || bytes > SIZE_MAX - 64)
        return PX_ENOMEM;
    float *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) return PX_ENOMEM;
    free(b->p);
    b->p = p;
    b->cap = n;
    return 0;
}

void zi_buf_free(zi_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

int zi_ctx_create(px_pool *pool, zi_ctx **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!engine()) return px_errf(err, errlen, PX_EUNSUP, "oneDNN: no CPU engine");
    zi_ctx *c = calloc(1, sizeof *c);
    if (!c) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    c->pool = pool;
    c->score_floats = SCORES_FLOATS;
    dnnl_status_t st = dnnl_stream_create(&c->stream, engine(), dnnl_stream_default_flags);
    if (st != dnnl_success) {
        free(c);
        return dnnl_fail(err, errlen, st, "stream");
    }
    *out = c;
    return 0;
}

static void prim_clear(zo_prim *e)
{
    dnnl_memory_t ms[5] = {e->m_src, e->m_wei, e->m_dst, e->m_bias, e->m_scratch};
    for (int i = 0; i < 5; i++)
        if (ms[i]) dnnl_memory_destroy(ms[i]);
    if (e->p) dnnl_primitive_destroy(e->p);
    if (e->pd) dnnl_primitive_desc_destroy(e->pd);
    memset(e, 0, sizeof *e);
}

void zi_ctx_destroy(zi_ctx *c)
{
    if (!c) return;
    for (int i = 0; i < c->ncache; i++) prim_clear(&c->cache[i]);
    if (c->stream) dnnl_stream_destroy(c->stream);
    zi_buf_free(&c->scratch);
    zi_buf_free(&c->wblock);
    zi_buf_free(&c->scores);
    for (int i = 0; i < ZI_CTX_SLOTS; i++) zi_buf_free(&c->slot[i]);
    free(c);
}

float *zi_ctx_buf(zi_ctx *c, int slot, size_t n)
{
    if (slot < 0 || slot >= ZI_CTX_SLOTS) return NULL;
    return zi_buf_reserve(&c->slot[slot], n ? n : 1) ? NULL : c->slot[slot].p;
}

void zi_ctx_set_score_bytes(zi_ctx *c, size_t bytes)
{
    c->score_floats = bytes ? bytes / sizeof(float) : SCORES_FLOATS;
}

px_pool *zi_ctx_pool(const zi_ctx *c)
{
    return c->pool;
}

size_t zi_ctx_bytes(const zi_ctx *c)
{
    size_t n = c->scratch.cap + c->wblock.cap + c->scores.cap;
    for (int i = 0; i < ZI_CTX_SLOTS; i++) n += c->slot[i].cap;
    return n * sizeof(float);
}

/* --- conversions ---------------------------------------------------------------- */

uint16_t zi_f32_to_bf16(float f)
{
    union { float f; uint32_t u; } v = {.f = f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40); /* NaN */
    uint32_t lsb = (v.u >> 16) & 1u;
    return (uint16_t)((v.u + 0x7fffu + lsb) >> 16);
}

void zi_tensor_to_f32(const zi_tensor *t, float *dst)
{
    if (t->dtype == ZI_F32) {
        memcpy(dst, t->data, t->nelem * sizeof(float));
        return;
    }
    const uint16_t *s = t->data;
    for (size_t i = 0; i < t->nelem; i++) dst[i] = zi_bf16_to_f32(s[i]);
}

float *zi_tensor_dup_f32(const zi_tensor *t)
{
    float *p = px_alloc_array(t->nelem ? t->nelem : 1, sizeof(float));
    if (p) zi_tensor_to_f32(t, p);
    return p;
}

/* --- oneDNN matmul, cached per shape -------------------------------------------- */

int zo_md_strided(dnnl_memory_desc_t *md, int nd, const int64_t *dims, const int64_t *strides)
{
    dnnl_dims_t d, s;
    for (int i = 0; i < nd; i++) {
        d[i] = dims[i];
        s[i] = strides[i];
    }
    return dnnl_memory_desc_init_by_strides(md, nd, d, dnnl_f32, s) == dnnl_success ? 0 : -1;
}

static zo_prim *cache_find(zi_ctx *c, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
                        const dnnl_memory_desc_t *bias, const dnnl_memory_desc_t *dst, int accum)
{
    for (int i = 0; i < c->ncache; i++) {
        zo_prim *e = &c->cache[i];
        if (e->accum != accum || e->has_bias != (bias != NULL)) continue;
        if (!dnnl_memory_desc_equal(&e->src, src) || !dnnl_memory_desc_equal(&e->wei, wei) ||
            !dnnl_memory_desc_equal(&e->dst, dst))
            continue;
        if (bias && !dnnl_memory_desc_equal(&e->bias, bias)) continue;
        return e;
    }
    return NULL;
}

static zo_prim *cache_slot(zi_ctx *c)
{
    if (c->ncache < CACHE_N) return &c->cache[c->ncache++];
    zo_prim *old = &c->cache[0];
    for (int i = 1; i < CACHE_N; i++)
        if (c->cache[i].used < old->used) old = &c->cache[i];
    prim_clear(old);
    return old;
}

static dnnl_status_t prim_build(zo_prim *e)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_matmul_desc_t d;
    dnnl_status_t st;
    if ((st = dnnl_primitive_attr_create(&attr)) ||
        (st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user)))
        goto out;
    if (e->accum) {
        if ((st = dnnl_post_ops_create(&po)) || (st = dnnl_post_ops_append_sum(po, 1.0f)) ||
            (st = dnnl_primitive_attr_set_post_ops(attr, po)))
            goto out;
    }
    if ((st = dnnl_matmul_desc_init(&d, &e->src, &e->wei, e->has_bias ? &e->bias : NULL, &e->dst)) ||
        (st = dnnl_primitive_desc_create(&e->pd, &d, attr, engine(), NULL)) ||
        (st = dnnl_primitive_create(&e->p, e->pd)))
        goto out;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(e->pd, dnnl_query_scratchpad_md, 0);
    e->scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if ((st = dnnl_memory_create(&e->m_src, &e->src, engine(), DNNL_MEMORY_NONE)) ||
        (st = dnnl_memory_create(&e->m_wei, &e->wei, engine(), DNNL_MEMORY_NONE)) ||
        (st = dnnl_memory_create(&e->m_dst, &e->dst, engine(), DNNL_MEMORY_NONE)) ||
        (e->has_bias && (st = dnnl_memory_create(&e->m_bias, &e->bias, engine(), DNNL_MEMORY_NONE))) ||
        (e->scratch_bytes && (st = dnnl_memory_create(&e->m_scratch, smd, engine(), DNNL_MEMORY_NONE))))
        goto out;
out:
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (po) dnnl_post_ops_destroy(po);
    return st;
}

/* The primitive for these descriptors: cached, or built now. */
zo_prim *zo_matmul_get(zi_ctx *c, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
                        const dnnl_memory_desc_t *bias, const dnnl_memory_desc_t *dst, int accum,
                        int *rc, char *err, size_t errlen)
{
    zo_prim *e = cache_find(c, src, wei, bias, dst, accum);
    if (!e) {
        e = cache_slot(c);
        e->src = *src;
        e->wei = *wei;
        e->dst = *dst;
        if (bias) e->bias = *bias;
        e->has_bias = bias != NULL;
        e->accum = accum;
        dnnl_status_t st = prim_build(e);
        if (st != dnnl_success) {
            prim_clear(e);
            c->ncache--; /* the slot is garbage now; keep the array dense */
            if (e != &c->cache[c->ncache]) {
                *e = c->cache[c->ncache];
                memset(&c->cache[c->ncache], 0, sizeof *e);
            }
            *rc = dnnl_fail(err, errlen, st, "matmul primitive");
            return NULL;
        }
    }
    e->used = ++c->tick;
    *rc = 0;
    return e;
}

int zo_matmul_run(zi_ctx *c, zo_prim *e, const void *src, const void *wei, const void *bias,
                      void *dst, char *err, size_t errlen)
{
    if (e->scratch_bytes &&
        zi_buf_reserve(&c->scratch, (e->scratch_bytes + sizeof(float) - 1) / sizeof(float)))
        return px_errf(err, errlen, PX_ENOMEM, "out of memory (matmul scratchpad)");
    dnnl_exec_arg_t a[5];
    int n = 0;
    dnnl_memory_set_data_handle(e->m_src, (void *)src);
    dnnl_memory_set_data_handle(e->m_wei, (void *)wei);
    dnnl_memory_set_data_handle(e->m_dst, dst);
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, e->m_src};
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, e->m_wei};
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, e->m_dst};
    if (e->has_bias) {
        dnnl_memory_set_data_handle(e->m_bias, (void *)bias);
        a[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->m_bias};
    }
    if (e->scratch_bytes) {
        dnnl_memory_set_data_handle(e->m_scratch, c->scratch.p);
        a[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->m_scratch};
    }
    dnnl_status_t st = dnnl_primitive_execute(e->p, c->stream, n, a);
    if (st == dnnl_success) st = dnnl_stream_wait(c->stream);
    return st == dnnl_success ? 0 : dnnl_fail(err, errlen, st, "matmul");
}

/* One plain 2-D product: y[M, N] (+)= x[M, K] · W[N, K]ᵀ + b, W F32 with row
 * stride ldw. */
static int matmul_f32(zi_ctx *c, const float *x, int M, int K, int ldx, const float *w, int ldw,
                      int N, const float *bias, float *y, int ldy, int accum, char *err,
                      size_t errlen)
{
    dnnl_memory_desc_t sm, wm, bm, dm;
    int64_t sd[2] = {M, K}, ss[2] = {ldx, 1}, wd[2] = {K, N}, ws[2] = {1, ldw};
    int64_t bd[2] = {1, N}, bs[2] = {N, 1}, dd[2] = {M, N}, ds[2] = {ldy, 1};
    if (zo_md_strided(&sm, 2, sd, ss) || zo_md_strided(&wm, 2, wd, ws) || zo_md_strided(&bm, 2, bd, bs) ||
        zo_md_strided(&dm, 2, dd, ds))
        return px_errf(err, errlen, PX_EINVAL, "matmul: bad shape %dx%d·%dx%d", M, K, N, K);
    int rc;
    zo_prim *e = zo_matmul_get(c, &sm, &wm, bias ? &bm : NULL, &dm, accum, &rc, err, errlen);
    if (!e) return rc;
    return zo_matmul_run(c, e, x, w, bias, y, err, errlen);
}

typedef struct {
    const uint16_t *src;
    float *dst;
    size_t n; /* per row */
} widen_job;

__attribute__((target("avx2"))) static void widen_avx2(const uint16_t *s, float *d, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(s + i));
        __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
        _mm256_storeu_ps(d + i, _mm256_castsi256_ps(w));
    }
    for (; i < n; i++) d[i] = zi_bf16_to_f32(s[i]);
}

static void widen_rows(void *ctx, int b, int e)
{
    const widen_job *j = ctx;
    size_t lo = (size_t)b * j->n, hi = (size_t)e * j->n;
    if (zo_have_avx2()) {
        widen_avx2(j->src + lo, j->dst + lo, hi - lo);
        return;
    }
    for (size_t i = lo; i < hi; i++) j->dst[i] = zi_bf16_to_f32(j->src[i]);
}

/* Few rows times BF16 weights: bound by reading the weights, so read them
 * once, as bf16, in one parallel loop over output columns, widening 8 at a
 * time in registers; 4 rows share each widened vector. */
typedef struct {
    const float *x, *bias;
    const uint16_t *w;
    float *y;
    int M, K, ldx, ldy, accum;
} few_job;

__attribute__((target("avx2,fma"))) static float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* mm (1..4) rows of x against one bf16 weight row: sums into s[0..mm). The
 * row count is a template parameter in effect: each case keeps its
 * accumulators in registers. */
__attribute__((target("avx2,fma"))) static inline void few_dot(const float *x, int ldx,
                                                               const uint16_t *wr, int K8, int mm,
                                                               float *s)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const float *x1 = x + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
#define WIDEN8(k) _mm256_castsi256_ps(_mm256_slli_epi32(                                       \
        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(wr + (k)))), 16))
    switch (mm) {
    case 4:
        for (int k = 0; k < K8; k += 8) {
            __m256 w = WIDEN8(k);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), w, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + k), w, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + k), w, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x3 + k), w, a3);
        }
        break;
    case 3:
        for (int k = 0; k < K8; k += 8) {
            __m256 w = WIDEN8(k);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), w, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + k), w, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + k), w, a2);
        }
        break;
    case 2:
        for (int k = 0; k < K8; k += 8) {
            __m256 w = WIDEN8(k);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), w, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + k), w, a1);
        }
        break;
    default:
        for (int k = 0; k < K8; k += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), WIDEN8(k), a0);
    }
#undef WIDEN8
    s[0] = hsum8(a0), s[1] = hsum8(a1), s[2] = hsum8(a2), s[3] = hsum8(a3);
}

__attribute__((target("avx2,fma"))) static void few_cols(void *ctx, int b, int e)
{
    const few_job *j = ctx;
    int K = j->K, K8 = K / 8 * 8;
    for (int n = b; n < e; n++) {
        const uint16_t *wr = j->w + (size_t)n * K;
        for (int m0 = 0; m0 < j->M; m0 += 4) {
            int mm = j->M - m0 < 4 ? j->M - m0 : 4;
            const float *x0 = j->x + (size_t)m0 * j->ldx;
            float s[4];
            few_dot(x0, j->ldx, wr, K8, mm, s);
            for (int i = 0; i < mm; i++) {
                for (int k = K8; k < K; k++) s[i] += x0[(size_t)i * j->ldx + k] * zi_bf16_to_f32(wr[k]);
                if (j->bias) s[i] += j->bias[n];
                float *y = j->y + (size_t)(m0 + i) * j->ldy + n;
                *y = j->accum ? *y + s[i] : s[i];
            }
        }
    }
}

int zi_op_matmul(zi_ctx *c, const float *x, int M, int K, int ldx, const void *w, zi_dtype wt,
                 int N, const float *bias, float *y, int ldy, int flags, char *err,
                 size_t errlen)
{
    if (M < 0 || K < 1 || N < 1 || ldx < K || ldy < N)
        return px_errf(err, errlen, PX_EINVAL, "matmul: bad sizes M=%d K=%d N=%d", M, K, N);
    if (M == 0) return 0;
    int accum = (flags & ZI_LIN_ACCUM) != 0;
    if (wt == ZI_F32)
        return matmul_f32(c, x, M, K, ldx, w, K, N, bias, y, ldy, accum, err, errlen);
    if (M <= FEW_ROWS && zo_have_avx2()) {
        few_job j = {x, bias, w, y, M, K, ldx, ldy, accum};
        zi_parallel_for(c, N, 16, few_cols, &j);
        return 0;
    }
    /* BF16: blocks of rows widened into scratch. Equal blocks (bar the last)
     * keep the number of distinct primitives at two per shape. */
    size_t per = (M >= 128 ? WBLOCK_FLOATS : WBLOCK_FLOATS_FEW) / (size_t)K;
    int nb = per >= (size_t)N ? N : (int)(per < 64 ? 64 : per / 16 * 16);
    if (zi_buf_reserve(&c->wblock, (size_t)nb * K))
        return px_errf(err, errlen, PX_ENOMEM, "out of memory (weight block %dx%d)", nb, K);
    const uint16_t *wb = w;
    for (int n0 = 0; n0 < N; n0 += nb) {
        int n = N - n0 < nb ? N - n0 : nb;
        widen_job j = {wb + (size_t)n0 * K, c->wblock.p, (size_t)K};
        zi_parallel_for(c, n, 0, widen_rows, &j);
        int rc = matmul_f32(c, x, M, K, ldx, c->wblock.p, K, n, bias ? bias + n0 : NULL, y + n0,
                            ldy, accum, err, errlen);
        if (rc) return rc;
    }
    return 0;
}

int zi_op_linear(zi_ctx *c, const float *x, int M, int ldx, const zi_tensor *w, const float *bias,
                 float *y, int ldy, int flags, char *err, size_t errlen)
{
    if (w->ndim != 2 || w->shape[0] > INT32_MAX || w->shape[1] > INT32_MAX)
        return px_errf(err, errlen, PX_EINVAL, "linear: %s is not a 2-D weight",
                       w->name ? w->name : "weight");
    return zi_op_matmul(c, x, M, (int)w->shape[1], ldx, w->data, w->dtype, (int)w->shape[0], bias,
                        y, ldy, flags, err, errlen);
}

