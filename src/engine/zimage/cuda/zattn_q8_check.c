/*
 * zattn_q8_check.c — zattn_q8_check.h: the sampled host reference of the
 * fp8 attention. It copies the operands back whole (a 1024² image's are
 * ~50 MB, once per plan) and computes 8 rows × heads of full attention in
 * double: ~0.5 GFLOP at 1024², well under a second.
 */
#include "engine/zimage/cuda/zattn_q8_check.h"

#include "engine/zimage/cuda/zc_fp8.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define N_ROWS 8

/* Bytes from the first to one past the last element of n_items × S rows
 * of ld bytes, of which w are used. */
static size_t span(const zc_attn *a, int S, int ld, int w)
{
    return ((size_t)a->n_items * (size_t)S - 1) * (size_t)ld + (size_t)w;
}

/* e4m3 code -> value (zc_fp8_to_float's, tabulated: the check decodes
 * ~10^8 codes at 1024², and the first generation of a size waits for it). */
static float g_lut[256];

static void lut_init(void)
{
    for (int i = 0; i < 256; i++) g_lut[i] = zc_fp8_to_float((uint8_t)i);
}

/* One query row (item b, row r, head h): the reference output into ref
 * (head_dim doubles); scores: S_kv doubles of scratch. */
static void ref_row(const zc_attn *a, const uint8_t *q, const uint8_t *k, const uint8_t *v,
                    int b, int r, int h, int nk, double sc, double *scores, double *ref)
{
    int hd = a->head_dim;
    const uint8_t *qr = q + ((size_t)b * a->S_q + r) * a->ldq + (size_t)h * hd;
    double m = -INFINITY, sum = 0;
    for (int j = 0; j < nk; j++) {
        const uint8_t *kr = k + ((size_t)b * a->S_kv + j) * a->ldk + (size_t)h * hd;
        double d = 0;
        for (int i = 0; i < hd; i++) d += (double)g_lut[qr[i]] * g_lut[kr[i]];
        scores[j] = d * sc;
        m = scores[j] > m ? scores[j] : m;
    }
    for (int i = 0; i < hd; i++) ref[i] = 0;
    for (int j = 0; j < nk; j++) {
        double p = exp(scores[j] - m);
        sum += p;
        const uint8_t *vr = v + ((size_t)b * a->S_kv + j) * a->ldv + (size_t)h * hd;
        for (int i = 0; i < hd; i++) ref[i] += p * g_lut[vr[i]];
    }
    for (int i = 0; i < hd; i++) ref[i] = nk ? ref[i] / sum : 0;
}

/* max|o − ref| and max|ref| over the sampled rows of every item and head. */
static void compare(const zc_attn *a, const uint8_t *q, const uint8_t *k, const uint8_t *v,
                    const uint8_t *o, const int *len, double sc, double *md, double *mr)
{
    int hd = a->head_dim;
    double *scores = malloc((size_t)a->S_kv * sizeof *scores), ref[128];
    *md = 0, *mr = 0;
    if (!scores) {
        *md = INFINITY;
        return;
    }
    for (int b = 0; b < a->n_items; b++) {
        int nk = len[b] < a->S_kv ? len[b] : a->S_kv, last = nk < a->S_q ? nk - 1 : a->S_q - 1;
        for (int t = 0; t < N_ROWS && last >= 0; t++) {
            int r = (int)((long)last * t / (N_ROWS - 1));
            for (int h = 0; h < a->n_heads; h++) {
                ref_row(a, q, k, v, b, r, h, nk, sc, scores, ref);
                const uint8_t *orow = o + ((size_t)b * a->S_q + r) * a->ldo + (size_t)h * hd;
                for (int i = 0; i < hd; i++) {
                    double x = g_lut[orow[i]], dd = isfinite(x) ? fabs(x - ref[i]) : INFINITY;
                    *md = dd > *md || isnan(dd) ? dd : *md;
                    *mr = fabs(ref[i]) > *mr ? fabs(ref[i]) : *mr;
                }
            }
        }
    }
    free(scores);
}

const char *zattn_q8_check_err(zc_stream s, const zc_attn *a, char *buf, size_t buflen,
                               double *err_out)
{
    int w = a->n_heads * a->head_dim;
    size_t nq = span(a, a->S_q, a->ldq, w), nk = span(a, a->S_kv, a->ldk, w);
    size_t nv = span(a, a->S_kv, a->ldv, w), no = span(a, a->S_q, a->ldo, w);
    uint8_t *q = malloc(nq), *k = malloc(nk), *v = malloc(nv), *o = malloc(no);
    int *len = malloc((size_t)a->n_items * sizeof *len);
    float dqk[2];
    const char *why = NULL;
    if (err_out) *err_out = INFINITY;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, lut_init);
    if (!q || !k || !v || !o || !len || a->head_dim > 128)
        why = "out of host memory";
    else if (cudaStreamSynchronize((cudaStream_t)s) ||
             cudaMemcpy(q, a->q, nq, cudaMemcpyDeviceToHost) ||
             cudaMemcpy(k, a->k, nk, cudaMemcpyDeviceToHost) ||
             cudaMemcpy(v, a->v, nv, cudaMemcpyDeviceToHost) ||
             cudaMemcpy(o, a->o, no, cudaMemcpyDeviceToHost) ||
             cudaMemcpy(dqk, a->descale_qk, sizeof dqk, cudaMemcpyDeviceToHost) ||
             cudaMemcpy(len, a->kv_len, (size_t)a->n_items * sizeof *len, cudaMemcpyDeviceToHost))
        why = "a CUDA call of the fp8 check failed";
    if (!why) {
        double md, mr, sc = (double)a->scale * dqk[0] * dqk[1];
        compare(a, q, k, v, o, len, sc, &md, &mr);
        double rel = mr > 0 ? md / mr : md;
        if (err_out) *err_out = rel;
        if (!(rel <= ZATTN_Q8_TOL)) {
            snprintf(buf, buflen, "fp8 output off the host reference: max|diff| %.3g of max|ref| %.3g",
                     md, mr);
            why = buf;
        }
    }
    (void)cudaGetLastError();
    free(q), free(k), free(v), free(o), free(len);
    return why;
}

const char *zattn_q8_check(zc_stream s, const zc_attn *a, char *buf, size_t buflen)
{
    return zattn_q8_check_err(s, a, buf, buflen, NULL);
}
