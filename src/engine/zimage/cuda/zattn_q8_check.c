/*
 * zattn_q8_check.c — zattn_q8_check.h: the sampled host reference of the
 * fp8 attention. Per checked item it copies back the one region that
 * holds its q, k and v rows (~50 MB at 1024²) and its output, and computes
 * 8 rows × heads of full attention in double: ~0.25 GFLOP an item at
 * 1024², a fraction of a second, once per plan. tests/host's
 * zattn_q8_host_check runs it on the host against outputs it made.
 */
#include "engine/zimage/cuda/zattn_q8_check.h"

#include "engine/zimage/cuda/zc_fp8.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define N_ROWS 8

/* e4m3 code -> value (zc_fp8_to_float's, tabulated: the check decodes
 * ~10^8 codes at 1024², and the first generation of a size waits for it). */
static float g_lut[256];

static void lut_init(void)
{
    for (int i = 0; i < 256; i++) g_lut[i] = zc_fp8_to_float((uint8_t)i);
}

/* One item's rows on the host: q, k, v point into one copy of the region
 * that spans all three (in the DiT they are views of one fused buffer, so
 * it is copied once), o into its own. */
typedef struct item_rows {
    uint8_t *in, *out;
    const uint8_t *q, *k, *v, *o;
} item_rows;

static uintptr_t min3(uintptr_t a, uintptr_t b, uintptr_t c)
{
    uintptr_t m = a < b ? a : b;
    return m < c ? m : c;
}

static uintptr_t max3(uintptr_t a, uintptr_t b, uintptr_t c)
{
    uintptr_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* Item b's rows of a's operands and output, copied from the device (the
 * caller frees r->in and r->out). 0, or -1 on a failed allocation or copy. */
static int fetch_item(const zc_attn *a, int b, item_rows *r)
{
    size_t w = (size_t)a->n_heads * (size_t)a->head_dim;
    size_t sq = (size_t)b * a->S_q, sk = (size_t)b * a->S_kv;
    uintptr_t q = (uintptr_t)a->q + sq * a->ldq, k = (uintptr_t)a->k + sk * a->ldk;
    uintptr_t v = (uintptr_t)a->v + sk * a->ldv, o = (uintptr_t)a->o + sq * a->ldo;
    size_t nq = (size_t)(a->S_q - 1) * a->ldq + w, nk = (size_t)(a->S_kv - 1) * a->ldk + w;
    size_t nv = (size_t)(a->S_kv - 1) * a->ldv + w, no = (size_t)(a->S_q - 1) * a->ldo + w;
    uintptr_t lo = min3(q, k, v), hi = max3(q + nq, k + nk, v + nv);
    r->in = malloc(hi - lo), r->out = malloc(no);
    if (!r->in || !r->out || cudaMemcpy(r->in, (const void *)lo, hi - lo, cudaMemcpyDeviceToHost) ||
        cudaMemcpy(r->out, (const void *)o, no, cudaMemcpyDeviceToHost))
        return -1;
    r->q = r->in + (q - lo), r->k = r->in + (k - lo), r->v = r->in + (v - lo), r->o = r->out;
    return 0;
}

/* Query row r of head h: the reference output into ref (head_dim doubles)
 * over the first nk keys; scores: S_kv doubles of scratch. */
static void ref_row(const zc_attn *a, const item_rows *it, int r, int h, int nk, double sc,
                    double *scores, double *ref)
{
    int hd = a->head_dim;
    const uint8_t *qr = it->q + (size_t)r * a->ldq + (size_t)h * hd;
    double m = -INFINITY, sum = 0;
    for (int j = 0; j < nk; j++) {
        const uint8_t *kr = it->k + (size_t)j * a->ldk + (size_t)h * hd;
        double d = 0;
        for (int i = 0; i < hd; i++) d += (double)g_lut[qr[i]] * g_lut[kr[i]];
        scores[j] = d * sc;
        m = scores[j] > m ? scores[j] : m;
    }
    for (int i = 0; i < hd; i++) ref[i] = 0;
    for (int j = 0; j < nk; j++) {
        double p = exp(scores[j] - m);
        sum += p;
        const uint8_t *vr = it->v + (size_t)j * a->ldv + (size_t)h * hd;
        for (int i = 0; i < hd; i++) ref[i] += p * g_lut[vr[i]];
    }
    for (int i = 0; i < hd; i++) ref[i] = nk ? ref[i] / sum : 0;
}

/* max|o − ref| and max|ref| (folded into *md, *mr) over N_ROWS query rows
 * of one item (the first, the last with keys, spread between) and every
 * head; nk: the item's keys. */
static void compare_item(const zc_attn *a, const item_rows *it, int nk, double sc, double *md,
                         double *mr)
{
    int hd = a->head_dim, last = nk < a->S_q ? nk - 1 : a->S_q - 1;
    double *scores = malloc((size_t)a->S_kv * sizeof *scores), ref[128];
    if (!scores) {
        *md = INFINITY;
        return;
    }
    for (int t = 0; t < N_ROWS && last >= 0; t++) {
        int r = (int)((long)last * t / (N_ROWS - 1));
        for (int h = 0; h < a->n_heads; h++) {
            ref_row(a, it, r, h, nk, sc, scores, ref);
            const uint8_t *orow = it->o + (size_t)r * a->ldo + (size_t)h * hd;
            for (int i = 0; i < hd; i++) {
                double x = g_lut[orow[i]], dd = isfinite(x) ? fabs(x - ref[i]) : INFINITY;
                *md = dd > *md || isnan(dd) ? dd : *md;
                *mr = fabs(ref[i]) > *mr ? fabs(ref[i]) : *mr;
            }
        }
    }
    free(scores);
}

const char *zattn_q8_check_err(zc_stream s, const zc_attn *a, char *buf, size_t buflen,
                               double *err_out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, lut_init);
    int *len = malloc((size_t)a->n_items * sizeof *len);
    float dqk[2];
    const char *why = NULL;
    double md = 0, mr = 0;
    if (err_out) *err_out = INFINITY;
    if (!len || a->head_dim > 128)
        why = "out of host memory";
    else if (cudaStreamSynchronize((cudaStream_t)s) ||
             cudaMemcpy(dqk, a->descale_qk, sizeof dqk, cudaMemcpyDeviceToHost) ||
             cudaMemcpy(len, a->kv_len, (size_t)a->n_items * sizeof *len, cudaMemcpyDeviceToHost))
        why = "a CUDA call of the fp8 check failed";
    /* The first and the last item: a graph that is wrong is wrong for
     * every item, and a batch of 8 at 1024² would copy 0.4 GB. */
    for (int t = 0; t < 2 && !why; t++) {
        int b = t ? a->n_items - 1 : 0;
        if (t && b == 0) break;
        item_rows it = {0};
        if (fetch_item(a, b, &it))
            why = "host memory or a CUDA copy of the fp8 check failed";
        else
            compare_item(a, &it, len[b] < a->S_kv ? len[b] : a->S_kv,
                         (double)a->scale * dqk[0] * dqk[1], &md, &mr);
        free(it.in), free(it.out);
    }
    if (!why) {
        double rel = mr > 0 ? md / mr : md;
        if (err_out) *err_out = rel;
        if (!(rel <= ZATTN_Q8_TOL)) {
            snprintf(buf, buflen, "fp8 output off the host reference: max|diff| %.3g of max|ref| %.3g",
                     md, mr);
            why = buf;
        }
    }
    (void)cudaGetLastError();
    free(len);
    return why;
}

const char *zattn_q8_check(zc_stream s, const zc_attn *a, char *buf, size_t buflen)
{
    return zattn_q8_check_err(s, a, buf, buflen, NULL);
}
