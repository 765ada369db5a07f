/*
 * zattn_q8_host_check.c — the fp8 attention's self-check (zattn_q8_check.c)
 * on the host, with tests/host/cuda_fakes.c's CUDA (device memory is host
 * memory): e4m3 q, k, v laid out as the DiT lays them (views of one fused
 * buffer, padded items with fewer keys), an output this file computes on
 * its own (float, keys in reverse order) and rounds to e4m3 — the check
 * must pass it within a rounding, name a wrong output in the first or the
 * last item, and take a fused buffer of three items without reading past
 * it (the fakes' memory is the sanitizers' to watch in CI).
 */
#include "engine/zimage/cuda/zattn_q8_check.h"

#include "engine/zimage/cuda/zc_fp8.h"
#include "host_check.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { HD = 64, NH = 2, D = NH * HD, LD = 3 * D, S = 40, ITEMS = 3 };

static uint32_t g_seed = 12345u;
static float urand(void) /* [-1, 1) */
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)(g_seed >> 8) / (float)(1u << 23) - 1.0f;
}

/* O for item b, query row r, head h into o (HD floats): softmax over the
 * item's first nk keys, summed from the last key down. */
static void attend(const uint8_t *x, int b, int r, int h, int nk, float sc, float *o)
{
    const uint8_t *q = x + ((size_t)b * S + r) * LD + (size_t)h * HD;
    float p[S], m = -INFINITY, sum = 0;
    for (int j = nk - 1; j >= 0; j--) {
        const uint8_t *k = x + ((size_t)b * S + j) * LD + D + (size_t)h * HD;
        float d = 0;
        for (int i = 0; i < HD; i++) d += zc_fp8_to_float(q[i]) * zc_fp8_to_float(k[i]);
        p[j] = d * sc, m = p[j] > m ? p[j] : m;
    }
    for (int i = 0; i < HD; i++) o[i] = 0;
    for (int j = nk - 1; j >= 0; j--) {
        float e = expf(p[j] - m);
        sum += e;
        const uint8_t *v = x + ((size_t)b * S + j) * LD + 2 * D + (size_t)h * HD;
        for (int i = 0; i < HD; i++) o[i] += e * zc_fp8_to_float(v[i]);
    }
    for (int i = 0; i < HD; i++) o[i] = nk ? o[i] / sum : 0;
}

int main(void)
{
    uint8_t *x = malloc((size_t)ITEMS * S * LD), *o = calloc((size_t)ITEMS * S, D);
    int len[ITEMS] = {S, 23, 31};
    float dqk[2] = {0.125f, 0.25f}, sc = 1.0f / sqrtf((float)HD), out[HD];
    for (size_t i = 0; i < (size_t)ITEMS * S * LD; i++) x[i] = zc_fp8_from_float(24.0f * urand());
    for (int b = 0; b < ITEMS; b++)
        for (int r = 0; r < S; r++)
            for (int h = 0; h < NH; h++) {
                attend(x, b, r, h, len[b], sc * dqk[0] * dqk[1], out);
                for (int i = 0; i < HD; i++)
                    o[((size_t)b * S + r) * D + (size_t)h * HD + i] = zc_fp8_from_float(out[i]);
            }
    zc_attn a = {.q = x, .k = x + D, .v = x + 2 * D, .o = o, .ldq = LD, .ldk = LD, .ldv = LD,
                 .ldo = D, .n_items = ITEMS, .S_q = S, .S_kv = S, .n_q = S, .kv_len = len,
                 .n_heads = NH, .n_kv_heads = NH, .head_dim = HD, .scale = sc, .fp8 = 1,
                 .descale_qk = dqk};
    char buf[300];
    double err = 0;
    const char *why = zattn_q8_check_err(NULL, &a, buf, sizeof buf, &err);
    CHECK(!why, "a right output refused: %s", why);
    CHECK(err <= 0.07, "a right output off by %.3g of max|ref| (its e4m3 rounding is 2^-4)", err);
    printf("right output: %.3g of max|ref|\n", err);
    /* A wrong value in the last item's last row with keys, then in the first item. */
    size_t at[2] = {((size_t)2 * S + 30) * D + D - 1, 5};
    for (int t = 0; t < 2; t++) {
        uint8_t keep = o[at[t]];
        o[at[t]] = zc_fp8_from_float(zc_fp8_to_float(keep) + 200.0f);
        why = zattn_q8_check_err(NULL, &a, buf, sizeof buf, &err);
        CHECK(why && strstr(why, "off the host reference"), "a wrong output (item %d) passed: %.3g",
              t ? 0 : 2, err);
        o[at[t]] = keep;
    }
    /* A wrong descale is a wrong softmax temperature. */
    dqk[1] = 4.0f;
    why = zattn_q8_check_err(NULL, &a, buf, sizeof buf, &err);
    CHECK(why != NULL, "an output made with another descale passed: %.3g", err);
    printf("zattn_q8 host check: %s\n", g_fail ? "FAIL" : "PASS");
    free(x), free(o);
    return g_fail;
}
