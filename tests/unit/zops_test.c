/*
 * zops_test.c — the Z-Image CPU ops (src/engine/zimage/zops.c) against
 * naive loops in double: linear with F32 and BF16 weights (strided rows,
 * bias, accumulate, several widened blocks), the norms and activations,
 * both RoPE pairings on a 3-axis table, and attention (GQA, causal with an
 * offset, key mask, a fully masked query, several query chunks).
 */
#include "core/err.h"
#include "core/pool.h"
#include "engine/zimage/zops.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static float frand(void) /* uniform in [-1, 1) */
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / (1 << 23)) - 1.0);
}

static float *randv(size_t n, float amp)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = amp * frand();
    return p;
}

/* Contexts on OpenMP (the default) or, every other one, on a px_pool: both
 * thread back ends run every op. */
static zi_ctx *ctx(void)
{
    static int k;
    char err[256];
    zi_ctx *c = NULL;
    int rc = zi_ctx_create(k++ % 2 ? px_pool_default() : NULL, &c, err, sizeof err);
    if (rc) px_tfail(__FILE__, __LINE__, "zi_ctx_create: %s", err);
    return c;
}

/* max |a - b| over n, with the largest |b| for a relative figure. */
static double maxdiff(const float *a, const double *b, size_t n, double *maxref)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
        if (fabs(b[i]) > r) r = fabs(b[i]);
    }
    if (maxref) *maxref = r;
    return m;
}

static void linear_case(int M, int K, int N, int ldx, int ldy, int bf16, int accum)
{
    zi_ctx *c = ctx();
    float *x = randv((size_t)M * ldx, 1), *b = randv((size_t)N, 1);
    float *w = randv((size_t)N * K, 1), *y = randv((size_t)M * ldy, 1);
    uint16_t *wb = malloc((size_t)N * K * sizeof *wb);
    for (size_t i = 0; i < (size_t)N * K; i++) {
        wb[i] = zi_f32_to_bf16(w[i]);
        if (bf16) w[i] = zi_bf16_to_f32(wb[i]);
    }
    double *ref = malloc((size_t)M * N * sizeof *ref);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = b[n] + (accum ? y[(size_t)m * ldy + n] : 0);
            for (int k = 0; k < K; k++) s += (double)x[(size_t)m * ldx + k] * w[(size_t)n * K + k];
            ref[(size_t)m * N + n] = s;
        }
    char err[256] = "";
    int rc = zi_op_matmul(c, x, M, K, ldx, bf16 ? (const void *)wb : w, bf16 ? ZI_BF16 : ZI_F32, N,
                          b, y, ldy, accum ? ZI_LIN_ACCUM : 0, err, sizeof err);
    if (rc) px_tfail(__FILE__, __LINE__, "matmul: %s", err);
    double worst = 0;
    for (int m = 0; m < M; m++) {
        double d = maxdiff(y + (size_t)m * ldy, ref + (size_t)m * N, (size_t)N, NULL);
        if (!(d <= worst)) worst = d;
    }
    printf("  linear M=%d K=%d N=%d %s%s: max abs err %.3g\n", M, K, N, bf16 ? "bf16" : "f32",
           accum ? " accum" : "", worst);
    T_CMP_DBL(worst, <=, 2e-6 * sqrt((double)K) * 4);
    free(x), free(b), free(w), free(y), free(wb), free(ref);
    zi_ctx_destroy(c);
}

TEST(t_linear_f32)
{
    linear_case(37, 70, 53, 75, 60, 0, 0);
    linear_case(1, 256, 300, 256, 300, 0, 1);
}

TEST(t_linear_bf16_blocks)
{
    /* 1100 rows of 1024 times 40: widened blocks of 1024 rows, the last of
     * 76; 2100 rows times 130: blocks of 2048 rows and one of 52. */
    linear_case(40, 1024, 1100, 1030, 1110, 1, 0);
    linear_case(130, 1024, 2100, 1024, 2100, 1, 1);
}

TEST(t_linear_bf16_few_rows)
{
    /* up to 16 rows: the direct kernel (4 rows at a time, a K tail) */
    linear_case(7, 1027, 300, 1030, 300, 1, 0);
    linear_case(16, 64, 33, 64, 40, 1, 1);
    linear_case(1, 8, 5, 8, 5, 1, 0);
}

TEST(t_linear_errors)
{
    zi_ctx *c = ctx();
    float x[4] = {0}, y[4] = {0}, w[4] = {0};
    char err[256] = "";
    T_EQ_INT(zi_op_matmul(c, x, 2, 2, 1, w, ZI_F32, 2, NULL, y, 2, 0, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "bad sizes");
    zi_tensor t = {.name = "w3d", .dtype = ZI_F32, .ndim = 3, .shape = {1, 2, 2}, .nelem = 4, .data = w};
    T_EQ_INT(zi_op_linear(c, x, 1, 2, &t, NULL, y, 2, 0, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "w3d");
    zi_ctx_destroy(c);
}

TEST(t_norms_and_activations)
{
    zi_ctx *c = ctx();
    int rows = 13, n = 300, ld = 310;
    float *x = randv((size_t)rows * ld, 3), *w = randv((size_t)n, 1);
    float *y = malloc((size_t)rows * ld * sizeof *y);
    double *ref = malloc((size_t)n * sizeof *ref);
    x[5] = 40; /* an outlier, as real activations have */
    zi_op_rmsnorm(c, x, rows, n, ld, w, 1e-5f, y, ld);
    double worst = 0;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ld;
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
        for (int i = 0; i < n; i++) ref[i] = xr[i] / sqrt(ss / n + 1e-5) * w[i];
        double d = maxdiff(y + (size_t)r * ld, ref, (size_t)n, NULL);
        worst = d > worst ? d : worst;
    }
    T_CMP_DBL(worst, <=, 2e-6);
    zi_op_layernorm(c, x, rows, n, ld, 1e-6f, y, ld);
    worst = 0;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ld;
        double s = 0, ss = 0;
        for (int i = 0; i < n; i++) s += xr[i];
        for (int i = 0; i < n; i++) ss += (xr[i] - s / n) * (xr[i] - s / n);
        for (int i = 0; i < n; i++) ref[i] = (xr[i] - s / n) / sqrt(ss / n + 1e-6);
        double d = maxdiff(y + (size_t)r * ld, ref, (size_t)n, NULL);
        worst = d > worst ? d : worst;
    }
    T_CMP_DBL(worst, <=, 2e-6);
    /* per-head RMSNorm on a strided view: heads 0..2 of 100, columns past 300 untouched */
    memcpy(y, x, (size_t)rows * ld * sizeof *y);
    zi_op_rmsnorm_heads(c, y, rows, 3, 100, ld, w, 1e-6f);
    worst = 0;
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < 3; h++) {
            const float *xr = x + (size_t)r * ld + h * 100;
            double ss = 0;
            for (int i = 0; i < 100; i++) ss += (double)xr[i] * xr[i];
            for (int i = 0; i < 100; i++) ref[i] = xr[i] / sqrt(ss / 100 + 1e-6) * w[i];
            double d = maxdiff(y + (size_t)r * ld + h * 100, ref, 100, NULL);
            worst = d > worst ? d : worst;
        }
    T_CMP_DBL(worst, <=, 2e-6);
    T_EQ_MEM(y + 300, x + 300, 10 * sizeof *y);
    /* SwiGLU in place over the gate, SiLU */
    float *g = randv((size_t)rows * 2 * n, 8);
    float *g0 = malloc((size_t)rows * 2 * n * sizeof *g0);
    memcpy(g0, g, (size_t)rows * 2 * n * sizeof *g0);
    zi_op_swiglu(c, g, 2 * n, g + n, 2 * n, g, 2 * n, rows, n);
    worst = 0;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < n; i++) {
            double a = g0[(size_t)r * 2 * n + i], u = g0[(size_t)r * 2 * n + n + i];
            double d = fabs(g[(size_t)r * 2 * n + i] - a / (1 + exp(-a)) * u);
            worst = d > worst ? d : worst;
        }
    T_CMP_DBL(worst, <=, 1e-5);
    memcpy(g, g0, (size_t)rows * 2 * n * sizeof *g);
    zi_op_silu(c, g, (size_t)rows * 2 * n);
    worst = 0;
    for (size_t i = 0; i < (size_t)rows * 2 * n; i++) {
        double d = fabs(g[i] - g0[i] / (1 + exp(-(double)g0[i])));
        worst = d > worst ? d : worst;
    }
    T_CMP_DBL(worst, <=, 1e-5);
    free(x), free(w), free(y), free(ref), free(g), free(g0);
    zi_ctx_destroy(c);
}

/* The table against its definition, value for value (the table memoises
 * positions; the GPU engine and the reference rely on this rounding): an
 * image grid and its prompt's positions as the DiT lays them out (few
 * distinct values per axis), and positions spread wider than there are
 * tokens, negatives included (computed directly). */
TEST(t_rope_table_is_its_definition)
{
    int axes[3] = {32, 48, 48}, hd = 128, lp = 64, gh = 9, gw = 13, nt = 40;
    int n_tok = gh * gw + nt;
    int *pos = malloc((size_t)n_tok * 3 * sizeof *pos);
    for (int t = 0; t < gh * gw; t++)
        pos[t * 3] = lp + 1, pos[t * 3 + 1] = t / gw, pos[t * 3 + 2] = t % gw;
    for (int t = 0; t < nt; t++)
        pos[(gh * gw + t) * 3] = 1 + t, pos[(gh * gw + t) * 3 + 1] = pos[(gh * gw + t) * 3 + 2] = 0;
    for (int round = 0; round < 2; round++) {
        if (round) /* spread: 1000 apart, both signs */
            for (int i = 0; i < n_tok * 3; i++) pos[i] = (i * 7919) % 1000003 - 500000;
        float *cs = malloc((size_t)n_tok * hd * sizeof *cs);
        zi_rope_table(pos, n_tok, 3, axes, 256.0f, cs);
        long bad = 0;
        for (int t = 0; t < n_tok; t++)
            for (int a = 0, j = 0; a < 3; a++)
                for (int i = 0; i < axes[a] / 2; i++, j++) {
                    double f = 1.0 / pow(256.0, 2.0 * i / axes[a]);
                    float ang = (float)((double)pos[t * 3 + a] * f);
                    bad += cs[(size_t)t * hd + 2 * j] != (float)cos((double)ang);
                    bad += cs[(size_t)t * hd + 2 * j + 1] != (float)sin((double)ang);
                }
        T_EQ_INT(bad, 0);
        free(cs);
    }
    free(pos);
}

TEST(t_rope)
{
    zi_ctx *c = ctx();
    int n_tok = 7, heads = 3, hd = 16, ld = 50;
    int axes[3] = {4, 6, 6};
    int pos[7 * 3];
    for (int i = 0; i < 7 * 3; i++) pos[i] = (i * 37) % 23 - 3;
    float *cs = malloc((size_t)n_tok * hd * sizeof *cs);
    zi_rope_table(pos, n_tok, 3, axes, 256.0f, cs);
    for (int mode = 0; mode < 2; mode++) {
        float *x = randv((size_t)n_tok * ld, 1), *x0 = malloc((size_t)n_tok * ld * sizeof *x0);
        memcpy(x0, x, (size_t)n_tok * ld * sizeof *x);
        zi_op_rope(c, x, n_tok, heads, hd, ld, cs, (zi_rope_mode)mode);
        double worst = 0;
        for (int t = 0; t < n_tok; t++)
            for (int h = 0; h < heads; h++) {
                /* pair j: axis by cumulated half-dims, frequency θ^(-2i/d) */
                int j = 0;
                for (int a = 0; a < 3; a++)
                    for (int i = 0; i < axes[a] / 2; i++, j++) {
                        double ang = pos[t * 3 + a] * pow(256.0, -2.0 * i / axes[a]);
                        int i0 = mode ? 2 * j : j, i1 = mode ? 2 * j + 1 : j + hd / 2;
                        const float *p = x0 + (size_t)t * ld + h * hd;
                        double r0 = p[i0] * cos(ang) - p[i1] * sin(ang);
                        double r1 = p[i1] * cos(ang) + p[i0] * sin(ang);
                        const float *q = x + (size_t)t * ld + h * hd;
                        double d = fmax(fabs(q[i0] - r0), fabs(q[i1] - r1));
                        worst = d > worst ? d : worst;
                    }
            }
        T_CMP_DBL(worst, <=, 1e-6);
        T_EQ_MEM(x + heads * hd, x0 + heads * hd, (size_t)(ld - heads * hd) * sizeof *x);
        free(x), free(x0);
    }
    free(cs);
    zi_ctx_destroy(c);
}

/* Naive attention in double; masked queries give zeros. */
static void attn_ref(const zi_attn_args *a, double *o)
{
    int g = a->n_heads / a->n_kv_heads, dh = a->head_dim;
    double *s = malloc((size_t)a->n_kv * sizeof *s);
    for (int i = 0; i < a->n_q; i++)
        for (int h = 0; h < a->n_heads; h++) {
            int kh = h / g;
            const float *q = a->q + (size_t)i * a->ldq + h * dh;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < a->n_kv; j++) {
                int ok = (!a->causal || j <= i + a->q_pos0) && (!a->key_mask || a->key_mask[j]);
                double d = 0;
                for (int e = 0; e < dh; e++) d += (double)q[e] * a->k[(size_t)j * a->ldk + kh * dh + e];
                s[j] = ok ? d * a->scale : -INFINITY;
                mx = s[j] > mx ? s[j] : mx;
            }
            double *out = o + ((size_t)i * a->n_heads + h) * dh;
            memset(out, 0, (size_t)dh * sizeof *out);
            if (mx == -INFINITY) continue;
            for (int j = 0; j < a->n_kv; j++) sum += (s[j] = exp(s[j] - mx));
            for (int j = 0; j < a->n_kv; j++)
                for (int e = 0; e < dh; e++)
                    out[e] += s[j] / sum * a->v[(size_t)j * a->ldv + kh * dh + e];
        }
    free(s);
}

static void attn_case(int n_q, int n_kv, int heads, int kv_heads, int dh, int causal, int q_pos0,
                      int masked, size_t score_bytes)
{
    zi_ctx *c = ctx();
    zi_ctx_set_score_bytes(c, score_bytes);
    int ldq = heads * dh + 5, ldk = kv_heads * dh * 3, ldo = heads * dh + 3;
    float *q = randv((size_t)n_q * ldq, 2), *kv = randv((size_t)n_kv * ldk, 2);
    float *o = malloc((size_t)n_q * ldo * sizeof *o);
    uint8_t *mask = malloc((size_t)n_kv);
    for (int j = 0; j < n_kv; j++) mask[j] = (j % 7) != 3;
    zi_attn_args a = {.q = q, .k = kv, .v = kv + kv_heads * dh, .ldq = ldq, .ldk = ldk,
                      .ldv = ldk, .o = o, .ldo = ldo, .n_q = n_q, .n_kv = n_kv,
                      .n_heads = heads, .n_kv_heads = kv_heads, .head_dim = dh,
                      .scale = 1.0f / sqrtf((float)dh), .causal = causal, .q_pos0 = q_pos0,
                      .key_mask = masked ? mask : NULL};
    char err[256] = "";
    int rc = zi_op_attention(c, &a, err, sizeof err);
    if (rc) px_tfail(__FILE__, __LINE__, "attention: %s", err);
    double *ref = malloc((size_t)n_q * heads * dh * sizeof *ref);
    attn_ref(&a, ref);
    double worst = 0;
    for (int i = 0; i < n_q; i++) {
        double d = maxdiff(o + (size_t)i * ldo, ref + (size_t)i * heads * dh, (size_t)heads * dh, NULL);
        worst = d > worst ? d : worst;
    }
    printf("  attention q=%d kv=%d heads=%d/%d dh=%d causal=%d mask=%d: max abs err %.3g\n", n_q,
           n_kv, heads, kv_heads, dh, causal, masked, worst);
    T_CMP_DBL(worst, <=, 2e-5);
    free(q), free(kv), free(o), free(mask), free(ref);
    zi_ctx_destroy(c);
}

TEST(t_attention_gqa_causal)
{
    attn_case(37, 37, 8, 2, 16, 1, 0, 0, 0);
    attn_case(5, 41, 4, 4, 8, 1, 36, 1, 0); /* queries at the end of a longer key run */
    attn_case(3, 9, 2, 1, 8, 1, -2, 0, 0);  /* query 0 and 1 see no key: zeros */
}

TEST(t_attention_full_masked)
{
    attn_case(33, 70, 6, 6, 32, 0, 0, 1, 0);
    attn_case(64, 31, 3, 1, 24, 0, 0, 0, 0);
}

TEST(t_attention_chunks)
{
    /* 2 heads x 4500 keys with 1 MB for scores: chunks of 16 queries, the
     * last one of 8; causal chunks see only the keys up to their last query. */
    attn_case(200, 4500, 2, 2, 8, 0, 0, 1, 1 << 20);
    attn_case(100, 100, 4, 2, 8, 1, 0, 0, 4096);
}

TEST_MAIN(t_linear_f32, t_linear_bf16_blocks, t_linear_bf16_few_rows, t_linear_errors, t_norms_and_activations, t_rope_table_is_its_definition, t_rope,
          t_attention_gqa_causal, t_attention_full_masked, t_attention_chunks)
