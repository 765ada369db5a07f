/*
 * zc_vae_host_check.c — the CUDA backend's VAE decoder (zc_vae.c: the walk
 * over conv_in, the mid block with its attention, the up blocks, the final
 * norm and convolution; its three buffers in rotation; the plan's build
 * pass and run pass; the bf16 up path of PX_ZIMAGE_CUDA_VAE=bf16) checked
 * on a machine without a GPU: zc_vae.o (from `make CUDA=1`) is linked
 * against host stand-ins for its cuDNN convolutions, its kernels
 * (zvae_kernels.h, zkernels.h) and its GEMMs, which compute what the GPU
 * would in plain loops on fp32 or bf16 values (tests/host/cuda_fakes.c for
 * the runtime). Every activation written is tagged with its type, and a
 * read of a buffer as the other type fails.
 *
 * On the tiny test model's VAE and one latent:
 *   - the fp32-activation decoder's (PX_ZIMAGE_CUDA_VAE=tf32) image against
 *     the CPU engine's (the reference the GPU VAE is held to): within 1
 *     level, so the walk is the network;
 *   - PX_ZIMAGE_CUDA_VAE=fp32 gives the same image (stand-ins ignore TF32);
 *   - the bf16 up path (=bf16): every read of the right type, an image that
 *     differs from the tf32 one (the path is taken) by a PSNR >= 30 dB;
 *     its mid attention on bf16 operands (attn_bf16), the others' in fp32;
 *   - the default is the bf16 up path (the same bytes); an unknown value is
 *     refused;
 *   - each decode runs the convolutions its plan built, in that order, none
 *     of them (nor an upsample or a conversion) in place;
 *   - all of it with the ResNet blocks' biases folded into other passes
 *     (the default) and not (PX_ZIMAGE_CUDA_FUSE=0, zc_wide_kernels):
 *     (an upsampler's bias too, through the next block's shortcut or
 *     residual) folded, under half the bias passes, and the folded images against
 *     the unfolded ones within 1 level with fp32 activations, PSNR >= 45
 *     dB with bf16 ones.
 * tests/host/zc_vae_host_check.sh builds and runs it.
 */
#include "core/err.h"
#include "engine/cuda/cuda_conv.h"
#include "engine/cuda/cuda_prof.h"
#include "engine/zimage/cuda/zc_net.h"
#include "engine/zimage/cuda/zvae_kernels.h"
#include "engine/zimage/sampler.h"
#include "engine/zimage/zimage.h"
#include "engine/zimage/zops.h"
#include "engine/zimage/zweights.h"
#include "image/image.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The CUDA runtime calls: tests/host/cuda_fakes.c. */

#include "host_check.h"

/* ------------------------------------------------------- values and tags */

static float ldv(const void *p, int bf, size_t i)
{
    return bf ? zi_bf16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

static void stv(void *p, int bf, size_t i, float v)
{
    if (bf)
        ((uint16_t *)p)[i] = zi_f32_to_bf16(v);
    else
        ((float *)p)[i] = v;
}

/* The type last written at each address a stand-in wrote (the decoder's
 * buffers are written whole, from their start). */
#define TAGS 64
static struct {
    const void *p;
    int bf;
} g_tag[TAGS];
static int g_ntag, g_bad;

static void wrote(const void *p, int bf)
{
    for (int i = 0; i < g_ntag; i++)
        if (g_tag[i].p == p) {
            g_tag[i].bf = bf;
            return;
        }
    if (g_ntag < TAGS) g_tag[g_ntag].p = p, g_tag[g_ntag++].bf = bf;
}

/* A device-to-device copy gives d the type s holds (cuda_fakes.c). */
void fake_copied(void *d, const void *s, size_t n)
{
    (void)n;
    for (int i = 0; i < g_ntag; i++)
        if (g_tag[i].p == s) {
            wrote(d, g_tag[i].bf);
            return;
        }
}

static void need(const void *p, int bf, const char *what)
{
    for (int i = 0; i < g_ntag; i++)
        if (g_tag[i].p == p && g_tag[i].bf != bf) {
            if (!g_bad++)
                printf("FAIL: %s reads %s as %s\n", what, g_tag[i].bf ? "bf16" : "fp32",
                       bf ? "bf16" : "fp32");
            g_fail = 1;
        }
}

/* -------------------------------------------------- cuDNN and convolution */

typedef struct {
    cudnnDataType_t t;
    int k, c, h, w;
} fake_filter;

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d)
{
    *d = calloc(1, sizeof(fake_filter));
    return *d ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_ALLOC_FAILED;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t,
                                         cudnnTensorFormat_t f, int k, int c, int h, int w)
{
    (void)f;
    fake_filter *x = (fake_filter *)d;
    x->t = t, x->k = k, x->c = c, x->h = h, x->w = w;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d)
{
    free(d);
    return CUDNN_STATUS_SUCCESS;
}

const char *cudnnGetErrorString(cudnnStatus_t s)
{
    (void)s;
    return "fake cuDNN";
}

/* A built convolution: its shape and filter, kept in op->xd. */
typedef struct {
    px_cuda_conv_shape s;
    cudnnFilterDescriptor_t fd;
} fake_op;

static long g_built, g_ran;

int px_cuda_conv_build(px_cuda_conv *op, const px_cuda_conv_shape *s, cudnnHandle_t h,
                       const px_cuda_conv_args *a, size_t ws_limit, px_cuda_algos *cache,
                       unsigned flags, char *err, size_t errlen)
{
    (void)h, (void)ws_limit, (void)cache, (void)flags;
    fake_filter *f = (fake_filter *)a->fd;
    int bf = s->prec == PX_CUDA_BF16;
    if (f->t != (bf ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT) || f->k != s->yc || f->c != s->xc ||
        f->h != s->kh)
        return px_errf(err, errlen, PX_EINVAL, "filter %d x %d x %d (type %d) for a %s %d -> %d",
                       f->k, f->c, f->h, (int)f->t, bf ? "bf16" : "fp32", s->xc, s->yc);
    fake_op *o = calloc(1, sizeof *o);
    o->s = *s, o->fd = a->fd;
    op->xd = (cudnnTensorDescriptor_t)o;
    g_built++;
    return 0;
}

int px_cuda_conv_run(const px_cuda_conv *op, cudnnHandle_t h, const px_cuda_conv_args *a, char *err,
                     size_t errlen)
{
    (void)h;
    const fake_op *o = (const fake_op *)op->xd;
    const px_cuda_conv_shape *s = &o->s;
    int bf = s->prec == PX_CUDA_BF16, H = s->ih, W = s->iw, ci = s->xc, co = s->yc, k = s->kh;
    if (o->fd != a->fd) return px_errf(err, errlen, PX_EINVAL, "run with another filter");
    if (a->x == a->y) return px_errf(err, errlen, PX_EINVAL, "a convolution in place");
    need(a->x, bf, "a convolution");
    if (a->acc) need(a->y, bf, "an accumulating convolution");
    float *out = malloc((size_t)H * W * co * sizeof *out);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < co; c++) {
                double acc = 0;
                for (int t = 0; t < k * k; t++) {
                    int yy = y + t / k - s->pad, xx = x + t % k - s->pad;
                    if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                    for (int i = 0; i < ci; i++)
                        acc += (double)ldv(a->w, bf, ((size_t)c * k * k + t) * ci + i) *
                               ldv(a->x, bf, ((size_t)yy * W + xx) * ci + i);
                }
                size_t q = ((size_t)y * W + x) * co + c;
                out[q] = (float)acc * a->alpha + (a->acc ? ldv(a->y, bf, q) : 0.0f);
            }
    for (size_t q = 0; q < (size_t)H * W * co; q++) stv(a->y, bf, q, out[q]);
    free(out);
    wrote(a->y, bf);
    g_ran++;
    return 0;
}

void px_cuda_conv_free(px_cuda_conv *op)
{
    free(op->xd);
    memset(op, 0, sizeof *op);
}

px_cuda_prof *px_cuda_prof_start(cudaStream_t s)
{
    (void)s;
    return NULL;
}

void px_cuda_prof_mark(px_cuda_prof *pf, const char *label)
{
    (void)pf, (void)label;
}

void px_cuda_prof_report(px_cuda_prof *pf, FILE *f, const char *title)
{
    (void)pf, (void)f, (void)title;
}

void px_cuda_prof_free(px_cuda_prof *pf)
{
    (void)pf;
}

/* ------------------------------------------------------------- kernels */

static long g_bias;   /* bias passes (zc_bias_add in place) */
static long g_soft16; /* bf16 softmax calls: the bf16 attention ran */

/* zkernels.h's switch, read on every call here (the check turns it off
 * between decoders; the real one reads it once). */
int zc_wide_kernels(void)
{
    const char *v = getenv("PX_ZIMAGE_CUDA_FUSE");
    return !v || strcmp(v, "0");
}

/* x's value at i with a pending per-channel bias (NULL: none), in fp32 as
 * the kernels form it. */
static float ldb(const void *x, const float *xb, int bf, size_t i, int C)
{
    return ldv(x, bf, i) + (xb ? xb[i % C] : 0.0f);
}

int zc_gn_stats(zc_stream s, const void *x, const float *xb, int bf, int hw, int C, int G,
                float eps, int part_pairs, double *part, float *stats)
{
    (void)s, (void)part;
    CHECK(part_pairs >= C, "GroupNorm partials: room for %d pairs, %d channels", part_pairs, C);
    need(x, bf, "GroupNorm statistics");
    int cpg = C / G;
    for (int g = 0; g < G; g++) {
        double su = 0, ss = 0;
        for (int p = 0; p < hw; p++)
            for (int c = g * cpg; c < (g + 1) * cpg; c++) {
                double v = ldb(x, xb, bf, (size_t)p * C + c, C);
                su += v, ss += v * v;
            }
        double n = (double)hw * cpg, m = su / n, var = ss / n - m * m;
        stats[2 * g] = (float)m;
        stats[2 * g + 1] = (float)(1.0 / sqrt((var > 0 ? var : 0) + eps));
    }
    return 0;
}

int zc_gn_apply(zc_stream s, const void *x, const float *xb, int bf, int hw, int C, int G,
                const float *stats, const float *gamma, const float *beta, int silu, void *y)
{
    (void)s;
    need(x, bf, "GroupNorm");
    for (size_t i = 0; i < (size_t)hw * C; i++) {
        int c = (int)(i % C), g = c / (C / G);
        float v = (ldb(x, xb, bf, i, C) - stats[2 * g]) * stats[2 * g + 1] * gamma[c] + beta[c];
        stv(y, bf, i, silu ? v / (1.0f + expf(-v)) : v);
    }
    wrote(y, bf);
    return 0;
}

int zc_bias_add(zc_stream s, const void *x, void *y, int bf, const float *b, size_t rows, int C)
{
    (void)s;
    g_bias += x == y; /* a pass of its own (not a residual copy) */
    need(x, bf, "the bias");
    for (size_t i = 0; i < rows * C; i++) stv(y, bf, i, ldb(x, b, bf, i, (int)C));
    wrote(y, bf);
    return 0;
}

int zc_upsample2(zc_stream s, const void *x, int bf, int h, int w, int C, void *y)
{
    (void)s;
    need(x, bf, "the upsample");
    if (x == y) return 1; /* in place: cudaErrorInvalidValue */
    size_t es = bf ? 2 : 4;
    for (int oy = 0; oy < 2 * h; oy++)
        for (int ox = 0; ox < 2 * w; ox++)
            memcpy((char *)y + ((size_t)oy * 2 * w + ox) * C * es,
                   (const char *)x + ((size_t)(oy / 2) * w + ox / 2) * C * es, C * es);
    wrote(y, bf);
    return 0;
}

int zc_vae_convert(zc_stream s, const void *x, int x_bf, void *y, int y_bf, size_t n)
{
    (void)s;
    if (x_bf == y_bf || !n || x == y) return 1;
    need(x, x_bf, "a conversion");
    for (size_t i = 0; i < n; i++) stv(y, y_bf, i, ldv(x, x_bf, i));
    wrote(y, y_bf);
    return 0;
}

int zc_vae_in(zc_stream s, const float *lat, int C, int hw, float scale, float shift, float *z)
{
    (void)s;
    for (int p = 0; p < hw; p++)
        for (int c = 0; c < C; c++) z[(size_t)p * C + c] = lat[(size_t)c * hw + p] / scale + shift;
    wrote(z, 0);
    return 0;
}

int zc_vae_out(zc_stream s, const float *x, int hw, uint8_t *rgb8)
{
    (void)s;
    need(x, 0, "the output");
    for (size_t i = 0; i < (size_t)hw * 3; i++)
        rgb8[i] = (uint8_t)lrintf(fminf(fmaxf((x[i] + 1.0f) / 2.0f, 0.0f), 1.0f) * 255.0f);
    return 0;
}

int zc_softmax_rows(zc_stream s, float *x, int rows, int n, float scale)
{
    (void)s;
    for (int r = 0; r < rows; r++) {
        float *q = x + (size_t)r * n;
        double m = -INFINITY, sum = 0;
        for (int j = 0; j < n; j++) m = fmax(m, (double)q[j] * scale);
        for (int j = 0; j < n; j++) sum += exp((double)q[j] * scale - m);
        for (int j = 0; j < n; j++) q[j] = (float)(exp((double)q[j] * scale - m) / sum);
    }
    return 0;
}

/* The softmax of the bf16 attention (the bf16 decoder's): probabilities
 * as bf16 values into y. */
int zc_vae_softmax_bf16(zc_stream s, float *x, int rows, int n, float scale, void *y)
{
    need(x, 0, "the bf16 softmax");
    zc_softmax_rows(s, x, rows, n, scale);
    for (size_t i = 0; i < (size_t)rows * n; i++) stv(y, 1, i, x[i]);
    wrote(y, 1);
    g_soft16++;
    return 0;
}

/* The mid attention's GEMMs: fp32 (f32_in), or bf16 operands (the bf16
 * decoder's) with an fp32 or bf16 result. */
int zc_gemm_run(zc_gemm *g, const zc_gemm_args *a, char *err, size_t errlen)
{
    (void)g;
    int bf = !a->f32_in, ybf = a->yt == ZC_BF16;
    if (a->f32_in && ybf) return px_errf(err, errlen, PX_EINVAL, "fp32 operands, a bf16 result");
    need(a->x, bf, "a GEMM's input");
    need(a->w, bf, "a GEMM's weight");
    if (a->accumulate) need(a->y, ybf, "an accumulating GEMM");
    for (int m = 0; m < a->M; m++)
        for (int n = 0; n < a->N; n++) {
            double acc = a->bias ? a->bias[n] : 0;
            for (int k = 0; k < a->K; k++)
                acc += (double)ldv(a->x, bf, (size_t)m * a->ldx + k) *
                       ldv(a->w, bf, a->w_kn ? (size_t)k * a->N + n : (size_t)n * a->K + k);
            size_t o = (size_t)m * a->ldy + n;
            stv(a->y, ybf, o, (float)acc + (a->accumulate ? ldv(a->y, ybf, o) : 0.0f));
        }
    wrote(a->y, ybf);
    return 0;
}

/* ---------------------------------------------------------------- checks */

/* Two decodes (the plan's first builds it) of lat with PX_ZIMAGE_CUDA_VAE
 * = mode (NULL: unset, the default) into rgb. */
static void decode(const zi_weights *vw, const zi_vae_config *cfg, const char *mode,
                   const float *lat, int lh, int lw, uint8_t *rgb)
{
    char err[512] = "";
    px_cuda_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    if (mode)
        setenv("PX_ZIMAGE_CUDA_VAE", mode, 1);
    else
        unsetenv("PX_ZIMAGE_CUDA_VAE");
    zc_vae *v = NULL;
    int rc = zc_vae_create(&ctx, NULL, vw, cfg, &v, err, sizeof err);
    unsetenv("PX_ZIMAGE_CUDA_VAE");
    CHECK(!rc, "create (%s): %s", mode ? mode : "default", err);
    g_ntag = 0, g_built = g_ran = g_soft16 = 0;
    for (int rep = 0; !rc && rep < 2; rep++) {
        rc = zc_vae_decode(v, lat, lh, lw, rgb, err, sizeof err);
        CHECK(!rc, "decode %d (%s): %s", rep, mode ? mode : "default", err);
    }
    bool bf = v && !strcmp(zc_vae_precision(v), "bf16");
    printf("  %-7s decoder %s: %ld convolutions built, %ld run in two decodes; attention %s\n",
           mode ? mode : "default", v ? zc_vae_precision(v) : "?", g_built, g_ran,
           g_soft16 ? "bf16" : "fp32");
    CHECK(g_built > 0 && g_ran == 2 * g_built, "built %ld, ran %ld", g_built, g_ran);
    CHECK(bf == (g_soft16 > 0), "the %s decoder ran the %s attention", bf ? "bf16" : "fp32",
          g_soft16 ? "bf16" : "fp32");
    zc_vae_free(v);
}

/* An unknown PX_ZIMAGE_CUDA_VAE is an error at engine open, not a
 * silent default. */
static void refused(const zi_weights *vw, const zi_vae_config *cfg)
{
    char err[512] = "";
    px_cuda_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    setenv("PX_ZIMAGE_CUDA_VAE", "fp16", 1);
    zc_vae *v = NULL;
    int rc = zc_vae_create(&ctx, NULL, vw, cfg, &v, err, sizeof err);
    unsetenv("PX_ZIMAGE_CUDA_VAE");
    printf("  PX_ZIMAGE_CUDA_VAE=fp16: %s\n", err);
    CHECK(rc == PX_EINVAL && strstr(err, "fp16"), "fp16 accepted (rc %d)", rc);
    zc_vae_free(v);
}

static double psnr8(const uint8_t *a, const uint8_t *b, size_t n, int *worst)
{
    double se = 0;
    *worst = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        se += (double)d * d;
        *worst = d > *worst ? d : *worst;
    }
    return se ? 10 * log10(255.0 * 255.0 * (double)n / se) : INFINITY;
}

/* The decoders of every mode (tf32, fp32, bf16, the default) on lat into
 * img[4] (allocated here), held to the CPU engine's VAE and each other. */
static void walks(const zi_weights *vw, const zi_vae_config *cfg, zi_model *m, zi_ctx *cpu,
                  const float *lat, int lh, int lw, size_t npx, uint8_t *img[4])
{
    char err[512] = "";
    const char *modes[4] = {"tf32", "fp32", "bf16", NULL};
    for (int i = 0; i < 4; i++) {
        img[i] = malloc(npx);
        decode(vw, cfg, modes[i], lat, lh, lw, img[i]);
    }
    CHECK(!g_bad, "%d reads of a buffer as the wrong type", g_bad);
    px_image ref = {0};
    int worst = 0;
    CHECK(!zi_model_vae_decode(m, cpu, lat, lh, lw, &ref, err, sizeof err), "CPU VAE: %s", err);
    double p = psnr8(img[0], ref.px, npx, &worst);
    printf("  tf32 vs the CPU engine's VAE: worst %d levels (PSNR %.1f dB)\n", worst, p);
    CHECK(worst <= 1, "the walk differs from the CPU VAE by %d levels", worst);
    CHECK(!memcmp(img[0], img[1], npx), "fp32 and tf32 differ (stand-ins ignore TF32)");
    p = psnr8(img[0], img[2], npx, &worst);
    printf("  bf16 up path vs tf32: worst %d levels, PSNR %.1f dB\n", worst, p);
    CHECK(isfinite(p) && p >= 30.0,
          "bf16 vs tf32: PSNR %.1f dB (identical means the bf16 "
          "path was not taken)",
          p);
    CHECK(!memcmp(img[2], img[3], npx), "the default is not the bf16 up path");
    px_image_free(&ref);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: zc_vae_host_check MODEL_DIR (the tiny test model, HF layout)\n");
        return 2;
    }
    char err[512] = "", vpath[1100];
    zi_model *m = NULL;
    zi_model_paths mp = {.dir = argv[1]};
    zi_weights *vw = NULL;
    zi_ctx *cpu = NULL;
    snprintf(vpath, sizeof vpath, "%s/vae", argv[1]);
    if (zi_model_open(&mp, NULL, &m, err, sizeof err) ||
        zi_weights_open(vpath, ZI_PART_VAE, NULL, &vw, err, sizeof err) ||
        zi_ctx_create(NULL, &cpu, err, sizeof err)) {
        fprintf(stderr, "zc_vae_host_check: %s\n", err);
        return 2;
    }
    const zi_vae_config *cfg = zi_model_vae_config(m);
    int lh = 4, lw = 6, f = 1 << (cfg->nlevels - 1);
    size_t nl = (size_t)cfg->latent_channels * lh * lw, npx = (size_t)lh * f * lw * f * 3;
    float *lat = malloc(nl * sizeof *lat);
    zi_sampler_noise(NULL, 7, lat, nl);
    uint8_t *img[2][4];
    long passes[2];
    for (int fold = 0; fold < 2; fold++) {
        if (!fold) setenv("PX_ZIMAGE_CUDA_FUSE", "0", 1);
        printf(" %s:\n", fold ? "the defaults (biases folded)" : "PX_ZIMAGE_CUDA_FUSE=0 (not folded)");
        g_bias = 0;
        walks(vw, cfg, m, cpu, lat, lh, lw, npx, img[fold]);
        passes[fold] = g_bias;
        unsetenv("PX_ZIMAGE_CUDA_FUSE");
    }
    printf("  bias passes: %ld, folded %ld\n", passes[0], passes[1]);
    CHECK(passes[1] < passes[0] / 2, "folding left %ld of %ld bias passes", passes[1], passes[0]);
    for (int i = 0; i < 3; i++) {
        int worst = 0;
        double p = psnr8(img[0][i], img[1][i], npx, &worst);
        printf("  %s folded vs not: worst %d levels (PSNR %.1f dB)\n",
               i == 0   ? "tf32"
               : i == 1 ? "fp32"
                        : "bf16",
               worst, p);
        /* fp32 activations: a rounding apart; bf16 ones round each bias
         * sum at other places (the bf16 path is itself ~53 dB from tf32) */
        if (i < 2)
            CHECK(worst <= 1, "folding the biases moved the image by %d levels", worst);
        else
            CHECK(p >= 45.0, "folding the biases: bf16 image at %.1f dB from unfolded", p);
    }
    refused(vw, cfg);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++) free(img[k][i]);
    free(lat);
    zi_ctx_destroy(cpu);
    zi_weights_close(vw);
    zi_model_close(m);
    printf(g_fail ? "zc_vae_host_check: FAILED\n" : "zc_vae_host_check: passed\n");
    return g_fail;
}
