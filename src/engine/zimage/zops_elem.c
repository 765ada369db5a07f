/*
 * zops_elem.c — the Z-Image CPU ops other than the matrix products
 * (zops.h): norms, activations, rotary embeddings and attention, as loops
 * over rows on the context's threads (zi_parallel_for).
 *
 * Attention per query chunk: S = Q·Kᵀ as one batched matmul over heads (GQA
 * through a broadcast batch dimension of K and V), then a masked, scaled
 * softmax over each row (vectorised exp on AVX2), then O = P·V written
 * straight into the output rows.
 */
#include "engine/zimage/zops.h"
#include "engine/zimage/zops_impl.h"

#include "core/alloc.h"
#include "core/err.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- norms and activations ------------------------------------------------------ */

typedef struct {
    const float *x;
    float *y;
    const float *w;
    int n, ldx, ldy;
    float eps;
} norm_job;

static void rmsnorm_rows(void *ctx, int b, int e)
{
    const norm_job *j = ctx;
    for (int r = b; r < e; r++) {
        const float *x = j->x + (size_t)r * j->ldx;
        float *y = j->y + (size_t)r * j->ldy;
        double ss = 0;
        for (int i = 0; i < j->n; i++) ss += (double)x[i] * x[i];
        float inv = (float)(1.0 / sqrt(ss / j->n + j->eps));
        if (j->w)
            for (int i = 0; i < j->n; i++) y[i] = x[i] * inv * j->w[i];
        else
            for (int i = 0; i < j->n; i++) y[i] = x[i] * inv;
    }
}

static int grain_for(int rows, size_t per_row)
{
    /* ~64k floats per chunk: big enough to amortise the hand-out. */
    size_t g = per_row ? ((size_t)1 << 16) / per_row : (size_t)rows;
    return g < 1 ? 1 : g > (size_t)rows ? (rows > 0 ? rows : 1) : (int)g;
}

void zi_op_rmsnorm(zi_ctx *c, const float *x, int rows, int n, int ldx, const float *w, float eps,
                   float *y, int ldy)
{
    norm_job j = {x, y, w, n, ldx, ldy, eps};
    zi_parallel_for(c, rows, grain_for(rows, (size_t)n), rmsnorm_rows, &j);
}

void zi_op_rmsnorm_heads(zi_ctx *c, float *x, int rows, int n_heads, int head_dim, int ld,
                         const float *w, float eps)
{
    /* A head is a row of head_dim floats, head_dim apart: rows·n_heads of them
     * when the heads of one token are contiguous. */
    if (ld == n_heads * head_dim) {
        norm_job j = {x, x, w, head_dim, head_dim, head_dim, eps};
        int nr = rows * n_heads;
        zi_parallel_for(c, nr, grain_for(nr, (size_t)head_dim), rmsnorm_rows, &j);
        return;
    }
    for (int h = 0; h < n_heads; h++) {
        norm_job j = {x + (size_t)h * head_dim, x + (size_t)h * head_dim, w, head_dim, ld, ld, eps};
        zi_parallel_for(c, rows, grain_for(rows, (size_t)head_dim), rmsnorm_rows, &j);
    }
}

static void layernorm_rows(void *ctx, int b, int e)
{
    const norm_job *j = ctx;
    for (int r = b; r < e; r++) {
        const float *x = j->x + (size_t)r * j->ldx;
        float *y = j->y + (size_t)r * j->ldy;
        double s = 0, ss = 0;
        for (int i = 0; i < j->n; i++) s += x[i];
        double mean = s / j->n;
        for (int i = 0; i < j->n; i++) ss += (x[i] - mean) * (x[i] - mean);
        float inv = (float)(1.0 / sqrt(ss / j->n + j->eps)), m = (float)mean;
        for (int i = 0; i < j->n; i++) y[i] = (x[i] - m) * inv;
    }
}

void zi_op_layernorm(zi_ctx *c, const float *x, int rows, int n, int ldx, float eps, float *y,
                     int ldy)
{
    norm_job j = {x, y, NULL, n, ldx, ldy, eps};
    zi_parallel_for(c, rows, grain_for(rows, (size_t)n), layernorm_rows, &j);
}

typedef struct {
    const float *g, *u;
    float *o;
    int ldg, ldu, ldo, n;
} act_job;

static inline float silu1(float v)
{
    return v / (1.0f + expf(-v));
}

static void silu_range(void *ctx, int b, int e)
{
    const act_job *j = ctx;
    /* Flat chunks of 4096 floats. */
    size_t n = (size_t)j->n, lo = (size_t)b * 4096, hi = (size_t)e * 4096;
    if (hi > n) hi = n;
    for (size_t i = lo; i < hi; i++) j->o[i] = silu1(j->o[i]);
}

void zi_op_silu(zi_ctx *c, float *x, size_t n)
{
    for (size_t at = 0; at < n; at += (size_t)1 << 30) {
        size_t m = n - at < ((size_t)1 << 30) ? n - at : (size_t)1 << 30;
        act_job j = {.o = x + at, .n = (int)m};
        int chunks = (int)((m + 4095) / 4096);
        zi_parallel_for(c, chunks, 0, silu_range, &j);
    }
}

static void swiglu_rows(void *ctx, int b, int e)
{
    const act_job *j = ctx;
    for (int r = b; r < e; r++) {
        const float *g = j->g + (size_t)r * j->ldg, *u = j->u + (size_t)r * j->ldu;
        float *o = j->o + (size_t)r * j->ldo;
        for (int i = 0; i < j->n; i++) o[i] = silu1(g[i]) * u[i];
    }
}

void zi_op_swiglu(zi_ctx *c, const float *gate, int ldg, const float *up, int ldu, float *out,
                  int ldo, int rows, int n)
{
    act_job j = {gate, up, out, ldg, ldu, ldo, n};
    zi_parallel_for(c, rows, grain_for(rows, (size_t)n), swiglu_rows, &j);
}

/* --- rotary embeddings -------------------------------------------------------------- */

/* (cos, sin) of position p at each of an axis's h frequencies f. */
static void rope_pairs(int p, const double *f, int h, float *row)
{
    for (int i = 0; i < h; i++) {
        float ang = (float)((double)p * f[i]);
        row[2 * i] = (float)cos((double)ang);
        row[2 * i + 1] = (float)sin((double)ang);
    }
}

/* One axis's columns of the table (rows ld floats apart). A position's
 * pairs are computed the first time it occurs and copied after: an image's
 * tokens share their row and column positions (a 1024² image has 4096
 * tokens but 64 values per axis), so the table costs its distinct
 * positions, not its tokens: for a 1024² plan's 4,224 rows the direct form
 * took ~11 ms of the dev machine's CPU, this ~0.3 ms — host time the GPU
 * waited for before each generation's first step. Positions spread wider
 * than there are tokens are computed directly. */
static void rope_axis(const int *pos, int stride, int n_tok, int d, float theta, float *out,
                      size_t ld)
{
    int h = d / 2, lo = 0, hi = 0;
    if (h < 1 || n_tok < 1) return;
    double *f = px_xmalloc((size_t)h * sizeof *f);
    for (int i = 0; i < h; i++) f[i] = 1.0 / pow((double)theta, 2.0 * i / d);
    lo = hi = pos[0];
    for (int t = 1; t < n_tok; t++) {
        int p = pos[(size_t)t * stride];
        lo = p < lo ? p : lo, hi = p > hi ? p : hi;
    }
    size_t span = (size_t)((long long)hi - lo + 1);
    float *memo = NULL;
    unsigned char *done = NULL;
    if (span <= (size_t)n_tok) {
        memo = px_xmalloc(span * 2 * (size_t)h * sizeof *memo);
        done = px_xcalloc(span, 1);
    }
    for (int t = 0; t < n_tok; t++) {
        int p = pos[(size_t)t * stride];
        float *row = out + (size_t)t * ld;
        if (!memo) {
            rope_pairs(p, f, h, row);
            continue;
        }
        float *m = memo + (size_t)(p - lo) * 2 * h;
        if (!done[p - lo]) rope_pairs(p, f, h, m), done[p - lo] = 1;
        memcpy(row, m, 2 * (size_t)h * sizeof *m);
    }
    free(memo);
    free(done);
    free(f);
}

void zi_rope_table(const int *pos, int n_tok, int n_axes, const int *axes_dims, float theta,
                   float *cs)
{
    int half = 0, j = 0;
    for (int a = 0; a < n_axes; a++) half += axes_dims[a] / 2;
    for (int a = 0; a < n_axes; a++) {
        rope_axis(pos + a, n_axes, n_tok, axes_dims[a], theta, cs + 2 * j, 2 * (size_t)half);
        j += axes_dims[a] / 2;
    }
}

void zi_rope_table_f32(const int *pos, int n_tok, int head_dim, float theta, float *cs)
{
    int half = head_dim / 2;
    for (int t = 0; t < n_tok; t++)
        for (int i = 0; i < half; i++) {
            float e = (float)(2 * i) / (float)head_dim;
            float inv = 1.0f / powf(theta, e);
            float ang = (float)pos[t] * inv;
            cs[(size_t)t * head_dim + 2 * i] = (float)cos((double)ang);
            cs[(size_t)t * head_dim + 2 * i + 1] = (float)sin((double)ang);
        }
}

typedef struct {
    float *x;
    const float *cs;
    int n_heads, head_dim, ld;
    zi_rope_mode mode;
} rope_job;

static void rope_rows(void *ctx, int b, int e)
{
    const rope_job *j = ctx;
    int half = j->head_dim / 2;
    for (int t = b; t < e; t++) {
        const float *cs = j->cs + (size_t)t * j->head_dim;
        for (int h = 0; h < j->n_heads; h++) {
            float *x = j->x + (size_t)t * j->ld + (size_t)h * j->head_dim;
            for (int i = 0; i < half; i++) {
                int i0 = j->mode == ZI_ROPE_HALF ? i : 2 * i;
                int i1 = j->mode == ZI_ROPE_HALF ? i + half : 2 * i + 1;
                float c = cs[2 * i], s = cs[2 * i + 1], a = x[i0], bb = x[i1];
                x[i0] = a * c - bb * s;
                x[i1] = bb * c + a * s;
            }
        }
    }
}

void zi_op_rope(zi_ctx *c, float *x, int n_tok, int n_heads, int head_dim, int ld,
                const float *cs, zi_rope_mode mode)
{
    rope_job j = {x, cs, n_heads, head_dim, ld, mode};
    zi_parallel_for(c, n_tok, grain_for(n_tok, (size_t)n_heads * head_dim), rope_rows,
                         &j);
}

/* --- attention -------------------------------------------------------------------- */
/* e^x for x <= 0 (x < -87 gives 0): Cephes' polynomial after reduction by
 * ln 2, about 2 ulp, 8 lanes at a time. */
__attribute__((target("avx2,fma"))) static inline __m256 exp8(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.0f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(under, y);
}

/* s[0..n) <- exp(s·scale − max) / sum, AVX2. Masked entries are −inf. */
__attribute__((target("avx2,fma"))) static void softmax_avx2(float *s, int n, float scale)
{
    __m256 vs = _mm256_set1_ps(scale), vm = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(s + i), vs);
        _mm256_storeu_ps(s + i, v);
        vm = _mm256_max_ps(vm, v);
    }
    float m[8];
    _mm256_storeu_ps(m, vm);
    float mx = m[0];
    for (int k = 1; k < 8; k++) mx = m[k] > mx ? m[k] : mx;
    for (; i < n; i++) {
        s[i] *= scale;
        mx = s[i] > mx ? s[i] : mx;
    }
    if (mx == -INFINITY) {
        memset(s, 0, (size_t)n * sizeof *s);
        return;
    }
    __m256 vmx = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + i), vmx));
        _mm256_storeu_ps(s + i, v);
        acc = _mm256_add_ps(acc, v);
    }
    _mm256_storeu_ps(m, acc);
    double sum = 0;
    for (int k = 0; k < 8; k++) sum += m[k];
    for (; i < n; i++) {
        s[i] = expf(s[i] - mx);
        sum += s[i];
    }
    __m256 vinv = _mm256_set1_ps((float)(1.0 / sum));
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(s + i, _mm256_mul_ps(_mm256_loadu_ps(s + i), vinv));
    for (; i < n; i++) s[i] *= (float)(1.0 / sum);
}

static void softmax_plain(float *s, int n, float scale)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        s[i] *= scale;
        mx = s[i] > mx ? s[i] : mx;
    }
    if (mx == -INFINITY) {
        memset(s, 0, (size_t)n * sizeof *s);
        return;
    }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (s[i] = expf(s[i] - mx));
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) s[i] *= inv;
}


typedef struct {
    float *s;
    int nk, qc, q0;
    const zi_attn_args *a;
    int avx2;
} sm_job;

static void softmax_rows(void *ctx, int b, int e)
{
    const sm_job *j = ctx;
    const zi_attn_args *a = j->a;
    for (int r = b; r < e; r++) {
        float *s = j->s + (size_t)r * j->nk;
        int n = j->nk;
        if (a->causal) {
            int lim = a->q_pos0 + j->q0 + r % j->qc + 1;
            n = lim < 0 ? 0 : lim < n ? lim : n;
            memset(s + n, 0, (size_t)(j->nk - n) * sizeof *s);
        }
        if (a->key_mask)
            for (int k = 0; k < n; k++)
                if (!a->key_mask[k]) s[k] = -INFINITY;
        if (j->avx2)
            softmax_avx2(s, n, a->scale);
        else
            softmax_plain(s, n, a->scale);
    }
}

/* The two batched products of one chunk of qc queries over nk keys:
 * S[hk, g, qc, nk] = Q·Kᵀ and O = P·V (heads of a kv group on dim 1, where
 * K and V broadcast). */
static int attn_chunk(zi_ctx *c, const zi_attn_args *a, int q0, int qc, int nk, char *err,
                      size_t errlen)
{
    int64_t hk = a->n_kv_heads, g = a->n_heads / a->n_kv_heads, dh = a->head_dim;
    dnnl_memory_desc_t qm, km, sm, vm, om;
    int64_t qd[4] = {hk, g, qc, dh}, qs[4] = {g * dh, dh, a->ldq, 1};
    int64_t kd[4] = {hk, 1, dh, nk}, ks[4] = {dh, dh, 1, a->ldk};
    int64_t sd[4] = {hk, g, qc, nk}, ss[4] = {g * qc * nk, qc * nk, nk, 1};
    int64_t vd[4] = {hk, 1, nk, dh}, vs[4] = {dh, dh, a->ldv, 1};
    int64_t od[4] = {hk, g, qc, dh}, os[4] = {g * dh, dh, a->ldo, 1};
    if (zo_md_strided(&qm, 4, qd, qs) || zo_md_strided(&km, 4, kd, ks) || zo_md_strided(&sm, 4, sd, ss) ||
        zo_md_strided(&vm, 4, vd, vs) || zo_md_strided(&om, 4, od, os))
        return px_errf(err, errlen, PX_EINVAL, "attention: bad shapes");
    int rc;
    zo_prim *e = zo_matmul_get(c, &qm, &km, NULL, &sm, 0, &rc, err, errlen);
    if (!e) return rc;
    if ((rc = zo_matmul_run(c, e, a->q + (size_t)q0 * a->ldq, a->k, NULL, c->scores.p, err, errlen)))
        return rc;
    sm_job j = {c->scores.p, nk, qc, q0, a, zo_have_avx2()};
    int rows = a->n_heads * qc;
    zi_parallel_for(c, rows, grain_for(rows, (size_t)nk), softmax_rows, &j);
    if (!(e = zo_matmul_get(c, &sm, &vm, NULL, &om, 0, &rc, err, errlen))) return rc;
    return zo_matmul_run(c, e, c->scores.p, a->v, NULL, a->o + (size_t)q0 * a->ldo, err, errlen);
}

int zi_op_attention(zi_ctx *c, const zi_attn_args *a, char *err, size_t errlen)
{
    int hd = a->n_heads * a->head_dim, kvd = a->n_kv_heads * a->head_dim;
    if (a->n_q < 0 || a->n_kv < 1 || a->head_dim < 1 || a->n_kv_heads < 1 ||
        a->n_heads % a->n_kv_heads || a->ldq < hd || a->ldo < hd || a->ldk < kvd || a->ldv < kvd)
        return px_errf(err, errlen, PX_EINVAL, "attention: bad sizes (%d heads, %d kv heads)",
                       a->n_heads, a->n_kv_heads);
    if (a->n_q == 0) return 0;
    size_t per_q = (size_t)a->n_heads * a->n_kv;
    size_t qc = c->score_floats / per_q;
    qc = qc < 16 ? 16 : qc / 16 * 16;
    if (qc > (size_t)a->n_q) qc = (size_t)a->n_q;
    size_t need;
    if (!px_mul_size(qc, per_q, &need) || zi_buf_reserve(&c->scores, need))
        return px_errf(err, errlen, PX_ENOMEM, "out of memory (attention scores)");
    for (int q0 = 0; q0 < a->n_q; q0 += (int)qc) {
        int n = a->n_q - q0 < (int)qc ? a->n_q - q0 : (int)qc;
        int nk = a->n_kv;
        if (a->causal) { /* keys after the chunk's last query are all masked */
            int lim = a->q_pos0 + q0 + n;
            nk = lim < 1 ? 1 : lim < nk ? lim : nk;
        }
        int rc = attn_chunk(c, a, q0, n, nk, err, errlen);
        if (rc) return rc;
    }
    return 0;
}
