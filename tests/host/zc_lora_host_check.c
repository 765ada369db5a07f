/*
 * zc_lora_host_check.c — the CUDA backend's LoRA logic (zc_lora.c: the
 * device layout, a batch's binding into runs of items, the stacked-A GEMM,
 * each delta's column slice, alpha and strides) checked on a machine
 * without a GPU: zc_lora.o (from `make CUDA=1`) is linked against a host
 * GEMM that takes zc_gemm_run's arguments as cuBLASLt would (bf16 operands
 * rounded the same, fp32 sums) and host stand-ins for the few CUDA runtime
 * calls it makes; for every block and linear group of the tiny model, a
 * batch of 5 items (LoRA a at 0.8 twice in a row, LoRA b at -0.5 as a
 * fused-qkv file in BF16, none, a at -0.3 with b at 1.0) must equal each item's
 * own merged delta (zi_lora_merge) within bf16 rounding, write nothing past
 * the outputs' columns, and enqueue zc_lora_gemms GEMMs. Needs the CUDA
 * headers (not a GPU), so it is not a unit test of the default build:
 * tests/host/zc_lora_host_check.sh builds and runs it.
 */
#include "core/err.h"
#include "engine/zimage/cuda/zc_lora.h"
#include "engine/zimage/lora.h"
#include "engine/zimage/zops.h"
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The CUDA runtime calls: tests/host/cuda_fakes.c. */
static int ngemm;
static float bf(uint16_t h)
{
    return zi_bf16_to_f32(h);
}
int zc_gemm_run(zc_gemm *g, const zc_gemm_args *a, char *err, size_t errlen)
{
    (void)g;
    ngemm++;
    if (a->f32_in || a->w_kn || a->bias || a->ldx < a->K || a->ldy < a->N)
        return px_errf(err, errlen, PX_EINVAL, "bad args");
    float al = a->alpha != 0 ? a->alpha : 1;
    const uint16_t *x = a->x, *w = a->w;
    for (int m = 0; m < a->M; m++)
        for (int n = 0; n < a->N; n++) {
            double s = 0;
            for (int k = 0; k < a->K; k++)
                s += (double)bf(x[(size_t)m * a->ldx + k]) * bf(w[(size_t)n * a->K + k]);
            s *= al;
            if (a->yt == ZC_F32) {
                float *y = (float *)a->y + (size_t)m * a->ldy + n;
                *y = (float)(s + (a->accumulate ? *y : 0));
            } else {
                uint16_t *y = (uint16_t *)a->y + (size_t)m * a->ldy + n;
                *y = zi_f32_to_bf16((float)(s + (a->accumulate ? bf(*y) : 0)));
            }
        }
    return 0;
}

static void tiny(zi_dit_config *c)
{
    zi_dit_config_default(c);
    c->dim = 64, c->n_heads = 2, c->n_layers = 2, c->n_refiner_layers = 1, c->ffn_hidden = 170;
    c->cap_feat_dim = 32, c->t_dim = 64, c->axes_dims[0] = 8, c->axes_dims[1] = 12;
    c->axes_dims[2] = 12;
}

static unsigned g_seed = 7;
static float rnd(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return ((float)(g_seed >> 8) / (float)(1u << 24) - 0.5f) * 2;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: zc_lora_host_check LORA_A LORA_B (tiny model)\n");
        return 2;
    }
    zi_dit_config c;
    tiny(&c);
    char err[1024];
    zi_lora *la, *lb;
    if (zi_lora_open(argv[1], &c, &la, err, sizeof err) ||
        zi_lora_open(argv[2], &c, &lb, err, sizeof err)) {
        printf("open: %s\n", err);
        return 1;
    }
    /* the two upload paths: F32 rounded to bf16, BF16 copied */
    printf("LoRA a: %s deltas, LoRA b: %s deltas\n",
           zi_lora_at(la, 0)->dtype == ZI_BF16 ? "bf16" : "f32",
           zi_lora_at(lb, 0)->dtype == ZI_BF16 ? "bf16" : "f32");
    px_cuda_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    zc_lora_dev *ld = zc_lora_dev_create(&ctx, &c, 1 << 20);
    enum { NB = 5 };
    zi_lora_use u0[1] = {{la, 0.8f}}, u2[1] = {{lb, -0.5f}}, u4[2] = {{la, -0.3f}, {lb, 1.0f}};
    const zi_lora_use *uses[NB] = {u0, u0, u2, NULL, u4};
    int nuses[NB] = {1, 1, 1, 0, 2};
    int S = 3, D = c.dim, F = c.ffn_hidden, nblocks = 2 * c.n_refiner_layers + c.n_layers;
    zc_lora_bind *b = NULL;
    if (zc_lora_bind_create(ld, uses, nuses, NB, (size_t)NB * S, &b, err, sizeof err)) {
        printf("bind: %s\n", err);
        return 1;
    }
    struct {
        zc_lora_group g;
        int in, N, s1, s2, f32, S;
    } G[5] = {{ZC_LORA_QKV, D, 3 * D, ZI_LORA_QKV, -1, 0, S},
              {ZC_LORA_OUT, D, D, ZI_LORA_OUT, -1, 1, S},
              {ZC_LORA_W13, D, 2 * F, ZI_LORA_W1, ZI_LORA_W3, 0, S},
              {ZC_LORA_W2, F, D, ZI_LORA_W2, -1, 1, S},
              {ZC_LORA_ADA, c.t_dim, 4 * D, ZI_LORA_ADA, -1, 1, 1}};
    double worst = 0, biggest = 0;
    int touched = 0;
    for (int bl = 0; bl < nblocks; bl++)
        for (int gi = 0; gi < 5; gi++) {
            int in = G[gi].in, N = G[gi].N, s = G[gi].S, rows = NB * s;
            int ldx = in + 3, ldy = N + 5; /* strides wider than the data, as the DiT's FF */
            uint16_t *x = calloc((size_t)rows * ldx, 2);
            for (size_t i = 0; i < (size_t)rows * ldx; i++) x[i] = zi_f32_to_bf16(rnd());
            size_t ey = G[gi].f32 ? 4 : 2;
            void *y = calloc((size_t)rows * ldy, ey);
            ngemm = 0;
            if (zc_lora_apply(ld, NULL, b, bl, G[gi].g, x, ldx, s, y, ldy,
                              G[gi].f32 ? ZC_F32 : ZC_BF16, F, err, sizeof err)) {
                printf("apply: %s\n", err);
                return 1;
            }
            if (ngemm != zc_lora_gemms(b, bl, G[gi].g)) {
                printf("gemm count %d vs %d\n", ngemm, zc_lora_gemms(b, bl, G[gi].g));
                return 1;
            }
            /* reference: per item, per use, the merged delta of each site */
            double *ref = calloc((size_t)rows * N, sizeof *ref);
            for (int it = 0; it < NB; it++)
                for (int k = 0; k < nuses[it]; k++)
                    for (int si = 0; si < 2; si++) {
                        int site = si ? G[gi].s2 : G[gi].s1;
                        if (site < 0) continue;
                        int out = site == ZI_LORA_W1 || site == ZI_LORA_W3 ? F
                                  : site == ZI_LORA_QKV                    ? 3 * D
                                  : site == ZI_LORA_ADA                    ? 4 * D
                                                                           : D;
                        int col = site == ZI_LORA_W3 ? F : 0;
                        float *w = calloc((size_t)out * in, 4);
                        if (zi_lora_merge(&uses[it][k], 1, bl, site, w, out, in)) {
                            printf("merge fails\n");
                            return 1;
                        }
                        for (int r = 0; r < s; r++)
                            for (int o = 0; o < out; o++) {
                                double acc = 0;
                                for (int q = 0; q < in; q++)
                                    acc += (double)bf(x[(size_t)(it * s + r) * ldx + q]) *
                                           w[(size_t)o * in + q];
                                ref[(size_t)(it * s + r) * N + col + o] += acc;
                            }
                        free(w);
                    }
            for (int r = 0; r < rows; r++) {
                for (int n = 0; n < N; n++) {
                    double got = G[gi].f32 ? ((float *)y)[(size_t)r * ldy + n]
                                           : bf(((uint16_t *)y)[(size_t)r * ldy + n]);
                    double d = fabs(got - ref[(size_t)r * N + n]);
                    worst = d > worst ? d : worst;
                    biggest = fabs(ref[(size_t)r * N + n]) > biggest ? fabs(ref[(size_t)r * N + n])
                                                                     : biggest;
                    touched += ref[(size_t)r * N + n] != 0;
                }
                for (int n = N; n < ldy; n++) { /* the padding columns stay untouched */
                    double got = G[gi].f32 ? ((float *)y)[(size_t)r * ldy + n]
                                           : bf(((uint16_t *)y)[(size_t)r * ldy + n]);
                    if (got != 0) {
                        printf("wrote past N: block %d group %d\n", bl, gi);
                        return 1;
                    }
                }
            }
            free(x), free(y), free(ref);
        }
    zi_lora_cache_stats st;
    zc_lora_dev_stats(ld, &st);
    printf("max |diff| %.3g of max |ref| %.3g (rel %.3g), %d outputs touched; cache %zu bytes, %d "
           "entries, %d pinned\n",
           worst, biggest, worst / biggest, touched, st.bytes, st.entries, st.pinned);
    int ok = touched > 0 && worst / biggest < 2e-2 && st.entries == 2 && st.pinned == 2;
    zc_lora_bind_free(ld, b);
    zc_lora_dev_stats(ld, &st);
    printf("after the bind: %d pinned\n", st.pinned);
    ok &= st.pinned == 0;
    zc_lora_dev_evict(ld, la);
    zc_lora_dev_stats(ld, &st);
    printf("after evicting a: %d entries, %zu bytes\n", st.entries, st.bytes);
    ok &= st.entries == 1 && st.bytes == zc_lora_bytes(ld, lb);
    zc_lora_dev_free(ld);
    zi_lora_free(la), zi_lora_free(lb);
    printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
