/*
 * zattn_cuda_bench.c — the Z-Image CUDA backend's attention kernels
 * (zattn.h: mma.sync, the default, WMMA, mma2 and cuDNN's), checked and timed:
 *
 *   zattn_cuda_bench check          every kernel against a host reference
 *                                   (double, from the same bf16 inputs)
 *   zattn_cuda_bench time [--iters N] [--json OUT.jsonl]
 *                                   both kernels at the DiT's shapes
 *   zattn_cuda_bench repeat [--iters RUNS]
 *                                   cuDNN's fp8 attention run RUNS times
 *                                   (default 20) on the same inputs at the
 *                                   DiT's shapes: do the outputs agree?
 *   zattn_cuda_bench deviceprop OUT.json
 *                                   this GPU's properties as cuDNN serializes
 *                                   them (for deviceless plan builds)
 *   zattn_cuda_bench spellings DEVPROP.json
 *                                   which spellings of the cuDNN graph that
 *                                   GPU's engines take (needs no GPU)
 *
 * check: head sizes 16/32/64/128, GQA, causal, items of different key
 * lengths (one with none: zeros), query counts that are not multiples of
 * the 64-row tile; rows past n_q must stay untouched. Pass: max|diff| ≤
 * 1e-2·max|ref| for each case (bf16 probabilities and a bf16 output round
 * at 2^-9 relative each; anything wrong in a fragment's indexing is off by
 * the output's own size). Exit 1 on any failure. cudnn runs only the
 * cases zattn_cudnn takes (the others print "skipped (not supported)"), and
 * fails every case once it turned itself off (its reason printed).
 * time: the DiT's attention at 1024² (4096 image + 128 text tokens) and
 * 512² (1024 + 128), 30 heads of 128, q/k/v interleaved in one fused qkv
 * buffer as the engine lays them out; median ms of --iters (default 20)
 * after 3 untimed, TFLOP/s counted as 4·S²·128·30 per item. A cudnn that
 * turned itself off prints "cudnn disabled (why)" instead of its row.
 *
 * Ran on an H200 on 2026-12-05 (docs/benchmarks/zimage-cuda.md).
 */
#include "engine/zimage/cuda/zattn.h"
#include "engine/zimage/cuda/zattn_cudnn.h"
#include "engine/zimage/cuda/zattn_cudnn_graph.h"
#include "engine/zimage/cuda/zattn_q8.h"
#include "engine/zimage/cuda/zattn_q8_check.h"
#include "engine/zimage/cuda/zkernels.h"

#include <cuda_runtime.h>
#include <cudnn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(x)                                                                                     \
    do {                                                                                          \
        int e_ = (int)(x);                                                                        \
        if (e_) {                                                                                 \
            fprintf(stderr, "zattn_cuda_bench: %s: %s (line %d)\n", #x,                           \
                    cudaGetErrorString((cudaError_t)e_), __LINE__);                               \
            exit(2);                                                                              \
        }                                                                                         \
    } while (0)

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float urand(void) /* [-1, 1) */
{
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) / (double)(1 << 23)) - 1.0f;
}

typedef struct acase {
    int hd, nh, nkv, items, S, n_q, causal;
    int kv_len[3];
} acase;

/* Host reference of one (item, head, query) row into out[hd]. */
static void ref_row(const acase *c, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                    int ld, int b, int h, int i, double *out)
{
    int hk = h / (c->nh / c->nkv), koff = c->nh * c->hd, voff = koff + c->nkv * c->hd;
    int nk = c->kv_len[b] < c->S ? c->kv_len[b] : c->S;
    if (c->causal && nk > i + 1) nk = i + 1;
    double mx = -INFINITY, sum = 0, *s = malloc(sizeof(double) * (nk ? nk : 1));
    const uint16_t *qr = q + ((size_t)b * c->S + i) * ld + (size_t)h * c->hd;
    for (int j = 0; j < nk; j++) {
        const uint16_t *kr = k + ((size_t)b * c->S + j) * ld + koff + (size_t)hk * c->hd;
        double d = 0;
        for (int x = 0; x < c->hd; x++) d += (double)from_bf16(qr[x]) * from_bf16(kr[x]);
        s[j] = d / sqrt((double)c->hd);
        if (s[j] > mx) mx = s[j];
    }
    for (int x = 0; x < c->hd; x++) out[x] = 0;
    for (int j = 0; j < nk; j++) {
        double p = exp(s[j] - mx);
        sum += p;
        const uint16_t *vr = v + ((size_t)b * c->S + j) * ld + voff + (size_t)hk * c->hd;
        for (int x = 0; x < c->hd; x++) out[x] += p * from_bf16(vr[x]);
    }
    for (int x = 0; x < c->hd; x++) out[x] = nk ? out[x] / sum : 0;
    free(s);
}

#define SENTINEL 0x7fc1 /* a NaN pattern no kernel writes */

/* Whether zattn_cudnn takes the case (else the dispatcher would run mma
 * under cudnn's name). */
static int cudnn_takes(const acase *c)
{
    int ld = (c->nh + 2 * c->nkv) * c->hd;
    zc_attn a = {.ldq = ld, .ldk = ld, .ldv = ld, .ldo = c->nh * c->hd, .n_items = c->items,
                 .S_q = c->S, .S_kv = c->S, .n_q = c->n_q, .n_heads = c->nh,
                 .n_kv_heads = c->nkv, .head_dim = c->hd, .causal = c->causal};
    return zattn_cudnn_supports(&a);
}

/* One case through one kernel: the fused buffer [items·S, (nh+2·nkv)·hd],
 * the output [items·S, nh·hd] pre-filled with SENTINEL. */
static int check_case(const acase *c, int impl)
{
    if (impl == ZC_ATTN_CUDNN && !cudnn_takes(c)) {
        printf("cudnn hd %3d heads %2d/%d items %d S %3d n_q %3d causal %d: skipped (not "
               "supported)\n",
               c->hd, c->nh, c->nkv, c->items, c->S, c->n_q, c->causal);
        return 1;
    }
    int ld = (c->nh + 2 * c->nkv) * c->hd, ldo = c->nh * c->hd;
    size_t nin = (size_t)c->items * c->S * ld, nout = (size_t)c->items * c->S * ldo;
    uint16_t *x = malloc(nin * 2), *o = malloc(nout * 2);
    for (size_t i = 0; i < nin; i++) x[i] = to_bf16(2.0f * urand());
    for (size_t i = 0; i < nout; i++) o[i] = SENTINEL;
    void *dx, *dout;
    int *dlen;
    CK(cudaMalloc(&dx, nin * 2));
    CK(cudaMalloc(&dout, nout * 2));
    CK(cudaMalloc((void **)&dlen, sizeof c->kv_len));
    CK(cudaMemcpy(dx, x, nin * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dout, o, nout * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dlen, c->kv_len, sizeof c->kv_len, cudaMemcpyHostToDevice));
    zc_attn a = {.q = dx, .k = (uint16_t *)dx + c->nh * c->hd,
                 .v = (uint16_t *)dx + (c->nh + c->nkv) * c->hd, .o = dout, .ldq = ld, .ldk = ld,
                 .ldv = ld, .ldo = ldo, .n_items = c->items, .S_q = c->S, .S_kv = c->S,
                 .n_q = c->n_q, .kv_len = dlen, .n_heads = c->nh, .n_kv_heads = c->nkv,
                 .head_dim = c->hd, .scale = 1.0f / sqrtf((float)c->hd), .causal = c->causal};
    CK(zc_attention_with(0, &a, impl));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(o, dout, nout * 2, cudaMemcpyDeviceToHost));
    double maxref = 0, maxdiff = 0, *ref = malloc(sizeof(double) * c->hd);
    int touched = 0;
    for (int b = 0; b < c->items; b++)
        for (int i = 0; i < c->S; i++)
            for (int h = 0; h < c->nh; h++) {
                const uint16_t *orow = o + ((size_t)b * c->S + i) * ldo + (size_t)h * c->hd;
                if (i >= c->n_q) {
                    for (int d = 0; d < c->hd; d++) touched += orow[d] != SENTINEL;
                    continue;
                }
                ref_row(c, x, x, x, ld, b, h, i, ref);
                for (int d = 0; d < c->hd; d++) {
                    double diff = fabs(from_bf16(orow[d]) - ref[d]);
                    if (!(diff <= maxdiff)) maxdiff = isnan(diff) ? INFINITY : diff;
                    if (fabs(ref[d]) > maxref) maxref = fabs(ref[d]);
                }
            }
    int ok = maxdiff <= 1e-2 * maxref && !touched;
    const char *off = impl == ZC_ATTN_CUDNN ? zattn_cudnn_disabled() : NULL;
    if (off) ok = 0, printf("cudnn turned itself off (%s); mma ran:\n", off);
    printf("%-4s hd %3d heads %2d/%d items %d S %3d n_q %3d causal %d kv_len %d,%d,%d: "
           "max|diff| %.3g of max|ref| %.3g, rows past n_q written %d: %s\n",
           zc_attn_impl_name(impl), c->hd, c->nh, c->nkv, c->items, c->S, c->n_q,
           c->causal, c->kv_len[0], c->kv_len[1], c->kv_len[2], maxdiff, maxref, touched,
           ok ? "ok" : "FAIL");
    cudaFree(dx), cudaFree(dout), cudaFree(dlen), free(x), free(o), free(ref);
    return ok;
}

/* ------------------------------------------------------------- fp8 */

/* The fp8 check's bar against the reference from the bf16 inputs: Q, K
 * and V rounded to e4m3 too (tools/zattn_fp8_emulate.py: ~10 % of max|ref|
 * on these random inputs, of which ~6 % from Q and K alone). */
#define FP8_TOL 0.2

/* One fp8 case: the bf16 fused rows x [items·S, 3·nh·hd] (q | k | v), the
 * norm weights w (q's, then k's), the RoPE table cs (a row per row), and
 * what the pipeline made of them (host copies). */
typedef struct fp8_case {
    int hd, nh, items, S;
    const int *kv_len;
    uint16_t *x;
    float *w, *cs, sqk[2];
    uint8_t *q8, *o8; /* the e4m3 q | k | v rows, the output rows */
    float *rs;        /* the output rows' scales (1 / V's item scale) */
    int runs;         /* > 1 (repeat): the attention runs again runs - 1 times */
    int runs_off;     /* of those, how many wrote other bytes than the first */
    double run_diff;  /* their largest |difference| of a decoded output value */
} fp8_case;

/* The attention a (fp8, already run once into c->o8) run c->runs - 1
 * times more on the same inputs, each output against the first: a forward
 * pass has no reason to write other bytes on the same inputs, so any run
 * that does shows a race or an engine whose output varies from run to run
 * (zimage-cuda.md, eighteenth session). */
static void rerun(fp8_case *c, const zc_attn *a)
{
    size_t n = (size_t)c->items * c->S * c->nh * c->hd;
    uint8_t *o = malloc(n);
    c->runs_off = 0, c->run_diff = 0;
    for (int r = 1; r < c->runs; r++) {
        CK(cudaMemset(a->o, 0, n)); /* a run that writes nothing differs too */
        CK(zc_attention_with(0, a, ZC_ATTN_CUDNN));
        CK(cudaMemcpy(o, a->o, n, cudaMemcpyDeviceToHost));
        int off = 0;
        for (size_t i = 0; i < n; i++) {
            if (o[i] == c->o8[i]) continue;
            double d = fabs((double)zc_fp8_to_float(o[i]) - zc_fp8_to_float(c->o8[i]));
            off = 1, c->run_diff = d > c->run_diff || isnan(d) ? d : c->run_diff;
        }
        c->runs_off += off;
    }
    free(o);
}

/* The DiT's fp8 attention path (zc_dit.c attn8) on c's rows: q/k norm +
 * RoPE into e4m3 (zc_qknorm_rope_q8), V by its per-item scale
 * (zattn_q8_v_amax, _v_quant), cuDNN's fp8 SDPA; the results into c. 0 or
 * what zc_attention_with answered. */
static int fp8_pipeline(fp8_case *c)
{
    int hd = c->hd, nh = c->nh, D = nh * hd, ld = 3 * D, rows = c->items * c->S;
    size_t nin = (size_t)rows * ld;
    float dqk[2] = {1.0f / c->sqk[0], 1.0f / c->sqk[1]};
    void *dx, *dq8, *do8;
    float *dw, *dcs, *ddqk, *damax, *drs;
    int *dlen;
    CK(cudaMalloc(&dx, nin * 2));
    CK(cudaMalloc(&dq8, nin));
    CK(cudaMalloc(&do8, (size_t)rows * D));
    CK(cudaMalloc((void **)&dw, 2 * (size_t)hd * 4));
    CK(cudaMalloc((void **)&dcs, (size_t)rows * hd * 4));
    CK(cudaMalloc((void **)&ddqk, sizeof dqk));
    CK(cudaMalloc((void **)&damax, (size_t)c->items * 4));
    CK(cudaMalloc((void **)&drs, (size_t)rows * 4));
    CK(cudaMalloc((void **)&dlen, (size_t)c->items * sizeof *dlen));
    CK(cudaMemcpy(dx, c->x, nin * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dw, c->w, 2 * (size_t)hd * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dcs, c->cs, (size_t)rows * hd * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(ddqk, dqk, sizeof dqk, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dlen, c->kv_len, (size_t)c->items * sizeof *dlen, cudaMemcpyHostToDevice));
    CK(cudaMemset(damax, 0, (size_t)c->items * 4));
    uint8_t *q8 = dq8;
    CK(zc_qknorm_rope_q8(0, dx, ld, 0, rows, nh, hd, dw, 1e-6f, dcs, 0, q8, ld, c->sqk[0]));
    CK(zc_qknorm_rope_q8(0, dx, ld, D, rows, nh, hd, dw + hd, 1e-6f, dcs, 0, q8, ld, c->sqk[1]));
    CK(zattn_q8_v_amax(0, dx, ld, 2 * D, rows, D, c->S, damax));
    CK(zattn_q8_v_quant(0, dx, ld, 2 * D, rows, D, c->S, damax, q8, ld, drs));
    zc_attn a = {.q = q8, .k = q8 + D, .v = q8 + 2 * D, .o = do8, .ldq = ld, .ldk = ld,
                 .ldv = ld, .ldo = D, .n_items = c->items, .S_q = c->S, .S_kv = c->S,
                 .n_q = c->S, .kv_len = dlen, .n_heads = nh, .n_kv_heads = nh, .head_dim = hd,
                 .scale = 1.0f / sqrtf((float)hd), .fp8 = 1, .descale_qk = ddqk};
    int rc = zc_attention_with(0, &a, ZC_ATTN_CUDNN);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(c->q8, dq8, nin, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(c->o8, do8, (size_t)rows * D, cudaMemcpyDeviceToHost));
    if (!rc && c->runs > 1) rerun(c, &a);
    CK(cudaMemcpy(c->rs, drs, (size_t)rows * 4, cudaMemcpyDeviceToHost));
    cudaFree(dx), cudaFree(dq8), cudaFree(do8), cudaFree(dw), cudaFree(dcs), cudaFree(ddqk);
    cudaFree(damax), cudaFree(drs), cudaFree(dlen);
    return rc;
}

/* V's codes and row scales that differ from the host rule (zattn_q8.h). */
static long v_off_rule(const fp8_case *c)
{
    int D = c->nh * c->hd, ld = 3 * D, S = c->S;
    long bad = 0;
    for (int b = 0; b < c->items; b++) {
        float m = 0;
        for (int r = b * S; r < (b + 1) * S; r++)
            for (int k = 0; k < D; k++) m = fmaxf(m, fabsf(from_bf16(c->x[(size_t)r * ld + 2 * D + k])));
        float sb = zattn_q8_pow2_scale(m);
        for (int r = b * S; r < (b + 1) * S; r++) {
            bad += c->rs[r] != 1.0f / sb;
            for (int k = 0; k < D; k++)
                bad += c->q8[(size_t)r * ld + 2 * D + k] !=
                       zc_fp8_from_float(from_bf16(c->x[(size_t)r * ld + 2 * D + k]) * sb);
        }
    }
    return bad;
}

/* Per-head RMSNorm · w then RoPE (interleaved pairs, cs: (cos, sin) per
 * pair) of one bf16 head, in double: the reference of Q and K. */
static void qk_ref(const uint16_t *x, int hd, const float *w, const float *cs, double *y)
{
    double ss = 0;
    for (int i = 0; i < hd; i++) ss += (double)from_bf16(x[i]) * from_bf16(x[i]);
    double inv = 1.0 / sqrt(ss / hd + 1e-6);
    for (int i = 0; i < hd; i += 2) {
        double a = from_bf16(x[i]) * inv * w[i], b = from_bf16(x[i + 1]) * inv * w[i + 1];
        y[i] = a * cs[i] - b * cs[i + 1];
        y[i + 1] = b * cs[i] + a * cs[i + 1];
    }
}

/* max|o − ref| and max|ref| of item b, head h (valid query rows only):
 * o decoded times its row scale, ref in double from the bf16 inputs. */
static void fp8_err_head(const fp8_case *c, int b, int h, double *md, double *mr)
{
    int hd = c->hd, D = c->nh * hd, ld = 3 * D, S = c->S, nk = c->kv_len[b] < S ? c->kv_len[b] : S;
    double *kr = malloc(sizeof(double) * S * hd), *sc = malloc(sizeof(double) * S);
    double *qr = malloc(sizeof(double) * hd), *ref = malloc(sizeof(double) * hd);
    for (int j = 0; j < nk; j++) {
        size_t r = (size_t)b * S + j;
        qk_ref(c->x + r * ld + D + (size_t)h * hd, hd, c->w + hd, c->cs + r * hd, kr + (size_t)j * hd);
    }
    for (int i = 0; i < nk; i++) { /* padded query rows: finite, not compared */
        size_t r = (size_t)b * S + i;
        qk_ref(c->x + r * ld + (size_t)h * hd, hd, c->w, c->cs + r * hd, qr);
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < nk; j++) {
            double d = 0;
            for (int e = 0; e < hd; e++) d += qr[e] * kr[(size_t)j * hd + e];
            sc[j] = d / sqrt((double)hd), mx = sc[j] > mx ? sc[j] : mx;
        }
        for (int e = 0; e < hd; e++) ref[e] = 0;
        for (int j = 0; j < nk; j++) {
            double p = exp(sc[j] - mx);
            sum += p;
            const uint16_t *vr = c->x + ((size_t)b * S + j) * ld + 2 * D + (size_t)h * hd;
            for (int e = 0; e < hd; e++) ref[e] += p * from_bf16(vr[e]);
        }
        for (int e = 0; e < hd; e++) {
            double got = zc_fp8_to_float(c->o8[r * D + (size_t)h * hd + e]) * c->rs[r];
            double want = ref[e] / sum, dd = isfinite(got) ? fabs(got - want) : INFINITY;
            *md = dd > *md || isnan(dd) ? dd : *md;
            *mr = fabs(want) > *mr ? fabs(want) : *mr;
        }
    }
    free(kr), free(sc), free(qr), free(ref);
}

/* Item 0's output bytes and row scales that change when its batchmates'
 * inputs do (the items after it drawn again): must be none. */
static long batchmate_effect(fp8_case *c)
{
    int D = c->nh * c->hd, ld = 3 * D;
    size_t n0 = (size_t)c->S * D, in0 = (size_t)c->S * ld, nin = in0 * c->items;
    uint8_t *o0 = malloc(n0);
    float *rs0 = malloc((size_t)c->S * 4);
    memcpy(o0, c->o8, n0), memcpy(rs0, c->rs, (size_t)c->S * 4);
    for (size_t i = in0; i < nin; i++) c->x[i] = to_bf16(3.0f * urand());
    long diff = fp8_pipeline(c) ? -1 : 0;
    for (size_t i = 0; i < n0 && diff >= 0; i++) diff += o0[i] != c->o8[i];
    for (int r = 0; r < c->S && diff >= 0; r++) diff += rs0[r] != c->rs[r];
    free(o0), free(rs0);
    return diff;
}

/* A case of random rows, norm weights and rotations. */
static fp8_case fp8_case_new(int hd, int nh, int items, int S, const int *kv_len)
{
    int rows = items * S, D = nh * hd;
    size_t nin = (size_t)rows * 3 * D;
    fp8_case c = {.hd = hd, .nh = nh, .items = items, .S = S, .kv_len = kv_len,
                  .x = malloc(nin * 2), .w = malloc(2 * (size_t)hd * 4),
                  .cs = malloc((size_t)rows * hd * 4), .q8 = malloc(nin),
                  .o8 = malloc((size_t)rows * D), .rs = malloc((size_t)rows * 4)};
    if (!c.x || !c.w || !c.cs || !c.q8 || !c.o8 || !c.rs)
        fprintf(stderr, "out of memory\n"), exit(2);
    for (size_t i = 0; i < nin; i++) c.x[i] = to_bf16(2.0f * urand());
    for (int i = 0; i < 2 * hd; i++) c.w[i] = 1.0f + 0.5f * urand();
    for (int i = 0; i < rows * hd; i += 2) {
        double t = 3.14159265 * urand();
        c.cs[i] = (float)cos(t), c.cs[i + 1] = (float)sin(t);
    }
    c.sqk[0] = zattn_q8_qk_scale(c.w, hd), c.sqk[1] = zattn_q8_qk_scale(c.w + hd, hd);
    return c;
}

static void fp8_case_free(fp8_case *c)
{
    free(c->x), free(c->w), free(c->cs), free(c->q8), free(c->o8), free(c->rs);
}

/* The fp8 attention end to end against the double reference from the bf16
 * inputs (every valid row of every item and head, bar FP8_TOL), V's codes
 * against the host rule bit for bit, and item 0 unmoved by its batchmates. */
static int check_fp8(int hd, int nh, int items, int S, const int *kv_len)
{
    fp8_case c = fp8_case_new(hd, nh, items, S, kv_len);
    int rc = fp8_pipeline(&c);
    long vbad = v_off_rule(&c), mates = 0;
    double md = 0, mr = 0;
    for (int b = 0; b < items && !rc; b++)
        for (int h = 0; h < nh; h++) fp8_err_head(&c, b, h, &md, &mr);
    if (!rc && items > 1) mates = batchmate_effect(&c);
    int ok = !rc && !vbad && !mates && md <= FP8_TOL * mr;
    printf("fp8  hd %3d heads %2d items %d S %4d kv_len %d,%d: %s max|diff| %.3g of max|ref| %.3g "
           "(%.1f %%), V codes or row scales off the host rule %ld, item 0's bytes moved by its "
           "batchmates %ld: %s\n",
           hd, nh, items, S, kv_len[0], items > 1 ? kv_len[1] : 0,
           rc ? "cuDNN did not run it;" : "", md, mr, mr > 0 ? 100 * md / mr : 0, vbad, mates,
           ok ? "ok" : "FAIL");
    const char *off = zattn_cudnn_fp8_disabled();
    if (off) printf("cudnn fp8 attention turned itself off: %s\n", off);
    fp8_case_free(&c);
    return ok;
}

/* repeat: cuDNN's fp8 attention at the DiT's shapes (30 heads of 128;
 * 512² batch 4's noise refiner and joint layers with padded keys, batch
 * 8's, 1024²'s), each plan run `runs` times on the same random inputs
 * (its first call checked as in the engine): how many runs wrote other
 * bytes than the first. Exit 1 if any did. */
static int run_repeat(int runs)
{
    static const struct {
        const char *what;
        int items, S, kv[8];
    } shapes[] = {
        {"512x512 b4 refiner", 4, 1024, {1024, 1024, 1024, 1024}},
        {"512x512 b4 joint, padded", 4, 1152, {1152, 1088, 1152, 1088}},
        {"512x512 b8 joint", 8, 1152, {1152, 1152, 1152, 1152, 1152, 1152, 1152, 1152}},
        {"1024x1024 b1 refiner", 1, 4096, {4096}},
        {"1024x1024 b1 joint", 1, 4224, {4224}},
    };
    int bad = 0;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        fp8_case c = fp8_case_new(128, 30, shapes[k].items, shapes[k].S, shapes[k].kv);
        c.runs = runs;
        int rc = fp8_pipeline(&c);
        if (rc)
            printf("repeat fp8 %-26s: not run by cuDNN (refused or off)\n", shapes[k].what);
        else
            printf("repeat fp8 %-26s: %d of %d reruns wrote other bytes than the first (largest "
                   "difference %.3g)\n",
                   shapes[k].what, c.runs_off, runs - 1, c.run_diff);
        bad += !rc && c.runs_off;
        fp8_case_free(&c);
    }
    const char *off = zattn_cudnn_fp8_disabled();
    if (off) printf("cudnn fp8 attention turned itself off: %s\n", off);
    printf("repeat: %s\n", bad ? "OUTPUT VARIES" : "every rerun wrote the same bytes");
    return bad ? 1 : 0;
}

static int run_check(void)
{
    static const acase cases[] = {
        {128, 4, 4, 2, 200, 200, 0, {200, 137, 0}},   /* DiT-like: padded items */
        {128, 8, 2, 1, 130, 130, 1, {130, 0, 0}},     /* Qwen3-like: GQA, causal */
        {64, 2, 1, 3, 96, 70, 0, {96, 65, 0}},        /* n_q < S; an item without keys */
        {32, 3, 3, 2, 64, 64, 1, {64, 33, 0}},        /* tiny models' head sizes */
        {16, 2, 2, 2, 150, 150, 0, {1, 150, 0}},      /* a single key */
        {64, 3, 3, 3, 96, 96, 0, {96, 50, 1}},        /* cudnn's head size 64 */
    };
    int fails = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int impl = 0; impl < ZC_ATTN_COUNT; impl++) fails += !check_case(&cases[i], impl);
    const char *sp = zattn_cudnn_spelling();
    printf("cudnn graph spelling taken: %s\n", sp ? sp : "none (no plan was built)");
    /* fp8 (Hopper and later: cuDNN's fp8 SDPA): padded items, head 64 */
    int major = 0;
    CK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
    static const int l1[2] = {200, 137}, l2[3] = {96, 50, 1};
    if (major < 9)
        printf("fp8 attention: skipped (compute capability %d: cuDNN's fp8 SDPA needs 9.0+)\n",
               major);
    else
        fails += !check_fp8(128, 4, 2, 200, l1) + !check_fp8(64, 3, 3, 96, l2);
    printf("attention check: %s (%d failed)\n", fails ? "FAIL" : "PASS", fails);
    return fails ? 1 : 0;
}

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Median ms of iters calls of a (after 3 untimed) with the given kernel. */
static double time_calls(const zc_attn *a, int impl, int iters, cudaEvent_t e0, cudaEvent_t e1)
{
    float ms[200];
    for (int it = -3; it < iters; it++) {
        CK(cudaEventRecord(e0, 0));
        CK(zc_attention_with(0, a, impl));
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        if (it >= 0) CK(cudaEventElapsedTime(&ms[it], e0, e1));
    }
    qsort(ms, (size_t)iters, sizeof ms[0], cmp_f);
    return ms[iters / 2];
}

static void print_row(const char *name, const char *size, const zc_attn *a, double med, FILE *js)
{
    int S = a->S_q, B = a->n_items, hd = a->head_dim, nh = a->n_heads;
    double tf = 4.0 * S * S * hd * nh * B / (med * 1e-3) / 1e12;
    printf("%s %s batch %d (S %d): %.3f ms, %.0f TFLOP/s\n", name, size, B, S, med, tf);
    if (js)
        fprintf(js,
                "{\"impl\":\"%s\",\"size\":\"%s\",\"batch\":%d,\"tokens\":%d,\"heads\":%d,"
                "\"head_dim\":%d,\"ms\":%.4f,\"tflops\":%.1f}\n",
                name, size, B, S, nh, hd, med, tf);
}

/* cuDNN's fp8 attention at a's shape (e4m3 operands of 0.5, fp8 output):
 * the row "cudnn-fp8", or why it did not run. */
static void time_fp8(const zc_attn *bf, const char *size, int iters, cudaEvent_t e0,
                     cudaEvent_t e1, FILE *js)
{
    int major = 0;
    CK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
    if (major < 9) return;
    size_t rows = (size_t)bf->n_items * bf->S_q, nin = rows * (size_t)bf->ldq;
    const float one[2] = {1.0f, 1.0f};
    void *dx, *dout;
    float *dd;
    CK(cudaMalloc(&dx, nin));
    CK(cudaMalloc(&dout, rows * (size_t)bf->ldo));
    CK(cudaMalloc((void **)&dd, sizeof one));
    CK(cudaMemset(dx, 0x30, nin)); /* e4m3 0x30 = 0.5 */
    CK(cudaMemcpy(dd, one, sizeof one, cudaMemcpyHostToDevice));
    int D = bf->n_heads * bf->head_dim;
    zc_attn a = *bf;
    a.q = dx, a.k = (uint8_t *)dx + D, a.v = (uint8_t *)dx + 2 * D, a.o = dout;
    a.fp8 = 1, a.descale_qk = dd;
    if (zc_attention_with(0, &a, ZC_ATTN_CUDNN)) {
        const char *off = zattn_cudnn_fp8_disabled();
        printf("cudnn-fp8 %s batch %d: did not run (%s)\n", size, a.n_items, off ? off : "?");
    } else {
        print_row("cudnn-fp8", size, &a, time_calls(&a, ZC_ATTN_CUDNN, iters, e0, e1), js);
    }
    cudaFree(dx), cudaFree(dout), cudaFree(dd);
}

/* The DiT's attention: S tokens per item (all valid), B items. */
static void time_shape(const char *size, int S, int B, int iters, FILE *js)
{
    const int hd = 128, nh = 30, ld = 3 * nh * hd;
    size_t nin = (size_t)B * S * ld;
    void *dx, *dout;
    int *dlen, lens[8];
    for (int i = 0; i < B; i++) lens[i] = S;
    CK(cudaMalloc(&dx, nin * 2));
    CK(cudaMalloc(&dout, (size_t)B * S * nh * hd * 2));
    CK(cudaMalloc((void **)&dlen, sizeof lens));
    CK(cudaMemset(dx, 0x3c, nin * 2)); /* bf16 0x3c3c ≈ 0.0115: finite scores */
    CK(cudaMemcpy(dlen, lens, sizeof lens, cudaMemcpyHostToDevice));
    zc_attn a = {.q = dx, .k = (uint16_t *)dx + nh * hd, .v = (uint16_t *)dx + 2 * nh * hd,
                 .o = dout, .ldq = ld, .ldk = ld, .ldv = ld, .ldo = nh * hd, .n_items = B,
                 .S_q = S, .S_kv = S, .n_q = S, .kv_len = dlen, .n_heads = nh,
                 .n_kv_heads = nh, .head_dim = hd, .scale = 1.0f / sqrtf(128.0f)};
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int impl = 0; impl < ZC_ATTN_COUNT; impl++) {
        double med = time_calls(&a, impl, iters, e0, e1);
        const char *off = impl == ZC_ATTN_CUDNN ? zattn_cudnn_disabled() : NULL;
        if (off) { /* mma ran under its name: no row */
            printf("cudnn disabled (%s)\n", off);
            continue;
        }
        print_row(zc_attn_impl_name(impl), size, &a, med, js);
    }
    time_fp8(&a, size, iters, e0, e1, js);
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    cudaFree(dx), cudaFree(dout), cudaFree(dlen);
}

/* This GPU's properties as cuDNN (9.8+) serializes them: with that file,
 * cuDNN's heuristics and plan builds run on a machine without the GPU
 * (deviceless compilation), so the graph spellings zattn_cudnn.c tries can
 * be checked against this GPU's engines from the development machine. */
static int save_deviceprop(const char *path)
{
    cudnnHandle_t h = NULL;
    cudnnBackendDescriptor_t d = NULL;
    int64_t n = 0;
    char *buf = NULL;
    cudnnStatus_t st;
    if (!(st = cudnnCreate(&h)) &&
        !(st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR, &d)) &&
        !(st = cudnnBackendSetAttribute(d, CUDNN_ATTR_DEVICEPROP_HANDLE, CUDNN_TYPE_HANDLE, 1,
                                        &h)) &&
        !(st = cudnnBackendFinalize(d)) &&
        !(st = cudnnBackendGetAttribute(d, CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION,
                                        CUDNN_TYPE_CHAR, 0, &n, NULL)) &&
        n > 0 && (buf = malloc((size_t)n)))
        st = cudnnBackendGetAttribute(d, CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION,
                                      CUDNN_TYPE_CHAR, n, &n, buf);
    int rc = 1;
    FILE *f = NULL;
    if (st)
        fprintf(stderr, "zattn_cuda_bench: cuDNN %zu: device properties: %s\n",
                cudnnGetVersion(), cudnnGetErrorString(st));
    else if (!buf)
        fprintf(stderr, "zattn_cuda_bench: cuDNN gave no device properties\n");
    else if (!(f = fopen(path, "wb")) || fwrite(buf, 1, (size_t)n, f) != (size_t)n)
        perror(path);
    else
        rc = 0, printf("device properties (cuDNN %zu, %lld bytes) written to %s\n",
                       cudnnGetVersion(), (long long)n, path);
    if (f) fclose(f);
    free(buf);
    if (d) cudnnBackendDestroyDescriptor(d);
    if (h) cudnnDestroy(h);
    return rc;
}

/* Which spellings of the cuDNN graph (zattn_cudnn_graph.h) the GPU of a
 * saved deviceprop file takes, at the DiT's 1024² and 512² shapes, asked
 * of cuDNN's heuristics without that GPU. Exit 0 if some spelling is taken
 * at every shape. */
static int probe_spellings(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return perror(path), 2;
    static char json[1 << 16];
    size_t len = fread(json, 1, sizeof json, f);
    fclose(f);
    cudnnBackendDescriptor_t dp = NULL;
    cudnnStatus_t st = zcg_deviceprop(json, len, &dp);
    if (st) {
        fprintf(stderr, "zattn_cuda_bench: cuDNN %zu: %s: not device properties (%s)\n",
                cudnnGetVersion(), path, cudnnGetErrorString(st));
        return 2;
    }
    static const struct { const char *size; int S, B; } shapes[] = {
        {"1024x1024", 4096 + 128, 1}, {"1024x1024", 4096 + 128, 2}, {"512x512", 1024 + 128, 4}};
    int ok_all = 1;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int hd = 128, nh = 30, ld = 3 * nh * hd;
        zc_attn a = {.ldq = ld, .ldk = ld, .ldv = ld, .ldo = nh * hd, .n_items = shapes[k].B,
                     .S_q = shapes[k].S, .S_kv = shapes[k].S, .n_q = shapes[k].S,
                     .n_heads = nh, .n_kv_heads = nh, .head_dim = hd, .scale = 0.0883883f};
        int ok = 0;
        for (int i = 0; i < zcg_n_spells; i++) {
            const char *what = NULL;
            zcg *z = zcg_build(NULL, dp, &a, &zcg_spells[i], &st, &what);
            if (z)
                printf("%s batch %d: %-30s taken (workspace %lld bytes)\n", shapes[k].size,
                       shapes[k].B, zcg_spells[i].name, (long long)zcg_workspace(z)), ok = 1;
            else
                printf("%s batch %d: %-30s %s (%s)\n", shapes[k].size, shapes[k].B,
                       zcg_spells[i].name, what, cudnnGetErrorString(st));
            zcg_free(z);
        }
        ok_all &= ok;
    }
    cudnnBackendDestroyDescriptor(dp);
    printf("spellings (cuDNN %zu, deviceless): %s\n", cudnnGetVersion(),
           ok_all ? "some taken at every shape" : "NONE taken at some shape");
    return ok_all ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "deviceprop")) return save_deviceprop(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "spellings")) return probe_spellings(argv[2]);
    if (argc < 2 ||
        (strcmp(argv[1], "check") && strcmp(argv[1], "time") && strcmp(argv[1], "repeat"))) {
        fprintf(stderr, "usage: zattn_cuda_bench check | time [--iters N] [--json OUT.jsonl] | "
                        "repeat [--iters RUNS] | deviceprop OUT.json | spellings DEVPROP.json\n");
        return 2;
    }
    int iters = 20;
    const char *json = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--json")) json = argv[i + 1];
        else return fprintf(stderr, "zattn_cuda_bench: unknown option %s\n", argv[i]), 2;
    }
    if (iters < 1 || iters > 200) iters = 20;
    int n = 0;
    if (cudaGetDeviceCount(&n) || n < 1) {
        fprintf(stderr, "zattn_cuda_bench: no CUDA device\n");
        return 3;
    }
    CK(zc_attn_init());
    if (!strcmp(argv[1], "check")) return run_check();
    if (!strcmp(argv[1], "repeat")) return run_repeat(iters);
    FILE *js = json ? fopen(json, "a") : NULL;
    if (json && !js) return perror(json), 2;
    time_shape("1024x1024", 4096 + 128, 1, iters, js);
    time_shape("1024x1024", 4096 + 128, 2, iters, js);
    time_shape("512x512", 1024 + 128, 1, iters, js);
    time_shape("512x512", 1024 + 128, 4, iters, js);
    if (js) fclose(js);
    return 0;
}
