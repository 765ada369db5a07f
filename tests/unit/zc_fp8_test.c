/*
 * zc_fp8_test.c — the Z-Image CUDA backend's FP8 (e4m3) quantization rule
 * (src/engine/zimage/cuda/zc_fp8.h, plain C, shared with the kernels) on
 * the CPU, in every build:
 *   - the 256 codes decode to e4m3's values (bias 7, 3 fraction bits,
 *     subnormals, 0x7f/0xff NaN, largest finite 448);
 *   - the converter equals the definition: the nearest finite e4m3 value,
 *     ties to the even code, |f| >= 448 and ±inf saturated to ±448, NaN
 *     kept, checked by brute force over every midpoint, its neighbours and
 *     random floats across the whole range;
 *   - the row rule: scale = absmax / 448 (1 for an all-zero row), the
 *     largest element becomes ±448, padding columns are zero, and the
 *     round trip q·scale is within 2^-4 of a value whose quotient is
 *     normal, within 2^-10·scale below that.
 * The GPU's conversion (cuda_fp8.h) is checked against this converter bit
 * for bit by zimage_cuda_test (t_fp8_gemm_against_host).
 */
#include "engine/zimage/cuda/zc_fp8.h"
#include "harness.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The definition: nearest finite e4m3 value by brute force over the
 * codes, ties to the even code, saturation at ±448. */
static uint8_t by_definition(float f)
{
    if (isnan(f)) return signbit(f) ? 0xff : 0x7f;
    uint8_t sign = signbit(f) ? 0x80 : 0;
    double a = fabs((double)f);
    if (a >= 448.0) return sign | 0x7e;
    int best = 0;
    double bd = INFINITY;
    for (int c = 0; c <= 0x7e; c++) {
        double d = fabs((double)zc_fp8_to_float((uint8_t)c) - a);
        if (d < bd || (d == bd && (c & 1) == 0)) best = c, bd = d;
    }
    return sign | (uint8_t)best;
}

static float next_up(float f)
{
    return nextafterf(f, INFINITY);
}

TEST(t_codes_decode_to_e4m3_values)
{
    T_NEAR(zc_fp8_to_float(0x38), 1.0, 0);
    T_NEAR(zc_fp8_to_float(0x7e), 448.0, 0);
    T_NEAR(zc_fp8_to_float(0xfe), -448.0, 0);
    T_NEAR(zc_fp8_to_float(0x08), ldexp(1, -6), 0); /* smallest normal */
    T_NEAR(zc_fp8_to_float(0x01), ldexp(1, -9), 0); /* smallest subnormal */
    T_NEAR(zc_fp8_to_float(0x07), 7 * ldexp(1, -9), 0);
    T_NEAR(zc_fp8_to_float(0x3b), 1.375, 0);
    T_TRUE(isnan(zc_fp8_to_float(0x7f)) && isnan(zc_fp8_to_float(0xff)));
    T_TRUE(zc_fp8_to_float(0x80) == 0.0f && signbit(zc_fp8_to_float(0x80)));
    /* Increasing over the positive codes; every non-NaN code round-trips. */
    for (int c = 0; c < 256; c++) {
        if ((c & 0x7f) == 0x7f) continue;
        T_EQ_INT(zc_fp8_from_float(zc_fp8_to_float((uint8_t)c)), c);
        if (c > 0 && c <= 0x7e) T_TRUE(zc_fp8_to_float((uint8_t)c) > zc_fp8_to_float((uint8_t)(c - 1)));
    }
}

TEST(t_converter_equals_definition)
{
    int n = 0;
    /* Every midpoint between neighbours (the ties), one float either side. */
    for (int c = 0; c < 0x7e; c++) {
        float lo = zc_fp8_to_float((uint8_t)c), hi = zc_fp8_to_float((uint8_t)(c + 1));
        float mid = (float)(((double)lo + hi) / 2); /* exact: both have few bits */
        float v[3] = {nextafterf(mid, 0), mid, next_up(mid)};
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < 3; i++, n++) {
                float f = s ? -v[i] : v[i];
                T_EQ_INT(zc_fp8_from_float(f), by_definition(f));
            }
    }
    /* Saturation, specials and the edges. */
    float sp[] = {0.0f, -0.0f, 448.0f, 449.0f, 464.0f, 480.0f, 1e30f, INFINITY, -INFINITY,
                  NAN, -NAN, 1e-40f, ldexpf(1, -10), next_up(ldexpf(1, -10)),
                  ldexpf(1, -126), 3.4e38f};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++, n++) {
        uint8_t got = zc_fp8_from_float(sp[i]), want = by_definition(sp[i]);
        if (isnan(sp[i]))
            T_TRUE((got & 0x7f) == 0x7f);
        else
            T_EQ_INT(got, want);
    }
    T_EQ_INT(zc_fp8_from_float(INFINITY), 0x7e);
    T_EQ_INT(zc_fp8_from_float(-1e30f), 0xfe);
    T_EQ_INT(zc_fp8_from_float(ldexpf(1, -10)), 0x00);  /* a tie: to the even code, 0 */
    T_EQ_INT(zc_fp8_from_float(-ldexpf(3, -10)), 0x82); /* 1.5 steps: to 2 */
    /* Random floats across every exponent that matters (2^-14 .. 2^10). */
    uint64_t st = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 200000; i++, n++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(st >> 32);
        float f = ldexpf(1.0f + (float)(r & 0xffffff) / 16777216.0f, (int)((r >> 24) % 25) - 14);
        if (r & 0x80000000u) f = -f;
        T_EQ_INT(zc_fp8_from_float(f), by_definition(f));
    }
    printf("  %d floats: the converter equals the nearest-even definition\n", n);
}

static float gauss(uint64_t *st)
{
    double s = 0;
    for (int i = 0; i < 4; i++) {
        *st = *st * 6364136223846793005ull + 1442695040888963407ull;
        s += (double)(*st >> 11) / 9007199254740992.0 - 0.5;
    }
    return (float)(s * 1.7320508);
}

TEST(t_row_rule_and_round_trip_bound)
{
    enum { K = 173, LD = 176 };
    uint8_t q[LD];
    float x[K];
    /* All-zero row: scale 1, zeros. */
    for (int k = 0; k < K; k++) x[k] = 0.0f;
    T_NEAR(zc_fp8_quant_row(x, K, LD, q), 1.0, 0);
    for (int k = 0; k < LD; k++) T_EQ_INT(q[k], 0);
    T_EQ_INT(zc_fp8_ld(K), LD);
    T_EQ_INT(zc_fp8_ld(3840), 3840);
    T_TRUE(zc_fp8_fits(3840) && zc_fp8_fits(64) && !zc_fp8_fits(340) && !zc_fp8_fits(0));
    uint64_t st = 7;
    double worst_rel = 0, worst_abs = 0;
    for (int row = 0; row < 400; row++) {
        /* Gaussian rows with an outlier per row (activations' shape): the
         * outlier sets the scale, the rest spread over the normal and
         * subnormal ranges. */
        float amp = ldexpf(1.0f, row % 20 - 10);
        for (int k = 0; k < K; k++) x[k] = amp * gauss(&st);
        x[row % K] = amp * (row & 1 ? -40.0f : 40.0f);
        memset(q, 0xaa, sizeof q);
        float sc = zc_fp8_quant_row(x, K, LD, q);
        float m = 0;
        for (int k = 0; k < K; k++) m = fabsf(x[k]) > m ? fabsf(x[k]) : m;
        T_NEAR(sc, m / 448.0f, 0);
        T_EQ_INT(q[row % K] & 0x7f, 0x7e);
        for (int k = K; k < LD; k++) T_EQ_INT(q[k], 0);
        for (int k = 0; k < K; k++) {
            double back = (double)zc_fp8_to_float(q[k]) * sc, err = fabs(back - x[k]);
            if (fabs((double)x[k] / sc) >= ldexp(1, -6)) {
                double rel = err / fabs((double)x[k]);
                worst_rel = rel > worst_rel ? rel : worst_rel;
                T_CMP_DBL(rel, <=, ldexp(1, -4) * (1 + 1e-6));
            } else {
                worst_abs = err / sc > worst_abs ? err / sc : worst_abs;
                T_CMP_DBL(err, <=, ldexp(1, -10) * sc * (1 + 1e-6));
            }
        }
    }
    printf("  round trip: worst relative error %.4f (bound 0.0625) of normal quotients, worst "
           "%.2e·scale (bound %.2e) below\n",
           worst_rel, worst_abs, ldexp(1, -10));
}

TEST_MAIN(t_codes_decode_to_e4m3_values, t_converter_equals_definition,
          t_row_rule_and_round_trip_bound)
