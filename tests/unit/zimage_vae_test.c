/*
 * zimage_vae_test.c — the Z-Image VAE decoder and sampler: the decoder
 * against the PyTorch reference (tools/zimage_reference.py, random tiny
 * weights made at test time) on the pipeline's final latent (64x48),
 * from the diffusers directory and from FLUX's ae.safetensors (BFL names),
 * with shape errors naming the tensor; the sampler's schedule, Euler step,
 * guidance, seeds and noise statistics.
 *
 * Tolerance: max abs 1e-4 on the float image in [0, 1] (before the 8-bit
 * quantisation; measured ~1e-6), and the 8-bit image at most one level
 * from round(255 * reference).
 */
#include "core/err.h"
#include "core/pool.h"
#include "core/rng.h"
#include "engine/safetensors.h"
#include "engine/zimage/sampler.h"
#include "engine/zimage/vae.h"
#include "engine/zimage/zconfig.h"
#include "engine/zimage/zops.h"
#include "engine/zimage/zweights.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PY  "/usr/bin/python3 tools/zimage_reference.py"
#define TOL 1e-4

static void sh(const char *cmd)
{
    if (system(cmd) != 0) px_tfail(__FILE__, __LINE__, "command failed: %s", cmd);
}

static float *tensor(const px_st *st, const char *name, size_t *n)
{
    const px_st_tensor *t = px_st_find(st, name);
    if (!t) px_tfail(__FILE__, __LINE__, "reference output lacks %s", name);
    float *p = malloc(t->nelem * sizeof *p);
    T_EQ_INT(px_st_to_f32(t, p), 0);
    if (n) *n = t->nelem;
    return p;
}

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    T_TRUE(f != NULL);
    char *b = malloc(1 << 20);
    *len = fread(b, 1, (1 << 20) - 1, f);
    b[*len] = 0;
    fclose(f);
    return b;
}

/* The tiny model's VAE config from its diffusers config.json. */
static void tiny_config(const char *dir, zi_vae_config *c)
{
    char path[600], err[256] = "";
    size_t len;
    snprintf(path, sizeof path, "%s/m/hf/vae/config.json", dir);
    char *json = read_text(path, &len);
    zi_vae_config_default(c);
    T_EQ_INT(zi_vae_config_parse(json, len, c, err, sizeof err), 0);
    free(json);
}

/* Decodes `latname` of stage file `stages` with the VAE at `wpath` and
 * compares with its `image`: float and 8-bit. Returns max abs error. */
static double check_decode(const char *wpath, const zi_vae_config *cfg, const char *stages,
                           const char *latname)
{
    char err[512] = "";
    zi_weights *w = NULL;
    zi_vae *v = NULL;
    zi_ctx *ctx = NULL;
    px_st *st = NULL;
    if (zi_weights_open(wpath, ZI_PART_VAE, NULL, &w, err, sizeof err))
        px_tfail(__FILE__, __LINE__, "open %s: %s", wpath, err);
    if (zi_vae_create(w, cfg, &v, err, sizeof err)) px_tfail(__FILE__, __LINE__, "%s", err);
    zi_weights_close(w); /* the decoder keeps its own copies */
    T_EQ_INT(zi_ctx_create(NULL, &ctx, err, sizeof err), 0);
    T_EQ_INT(px_st_open(stages, &st, err, sizeof err), 0);
    const px_st_tensor *lt = px_st_find(st, latname);
    T_TRUE(lt != NULL && lt->ndim == 4);
    int h = (int)lt->shape[2], wd = (int)lt->shape[3], f = zi_vae_factor(v);
    size_t n;
    float *lat = tensor(st, latname, NULL), *ref = tensor(st, "image", &n);
    T_EQ_INT((long long)n, (long long)h * f * wd * f * 3);
    float *out = malloc(n * sizeof *out);
    T_EQ_INT(zi_vae_decode_float(v, ctx, lat, h, wd, out, err, sizeof err), 0);
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)out[i] - ref[i]));
    /* Bands of 4 rows (the smallest) give the same image as one band. */
    float *banded = malloc(n * sizeof *banded);
    zi_vae_set_band_bytes(v, 1);
    T_EQ_INT(zi_vae_decode_float(v, ctx, lat, h, wd, banded, err, sizeof err), 0);
    size_t small = zi_vae_activation_bytes(v, h, wd);
    zi_vae_set_band_bytes(v, 0);
    double mb = 0;
    for (size_t i = 0; i < n; i++) mb = fmax(mb, fabs((double)banded[i] - out[i]));
    printf("  bands of 4 rows: max abs diff %.3g from one band; activations %.2f MB\n", mb,
           (double)small / 1048576.0);
    T_CMP_DBL(mb, <=, 1e-6);
    T_CMP_INT((long long)small, <, (long long)zi_vae_activation_bytes(v, h, wd));
    free(banded);
    px_image img;
    T_EQ_INT(zi_vae_decode(v, ctx, lat, h, wd, &img, err, sizeof err), 0);
    T_EQ_INT(img.w, wd * f);
    T_EQ_INT(img.h, h * f);
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)img.px[i] - (int)lrintf(ref[i] * 255.0f));
        worst = d > worst ? d : worst;
    }
    printf("  %-52s %dx%d: max abs err %.3g, 8-bit off by <= %d; activations %.2f MB\n", wpath,
           wd * f, h * f, m, worst, (double)zi_vae_activation_bytes(v, h, wd) / 1048576.0);
    T_CMP_INT(worst, <=, 1);
    px_image_free(&img);
    free(lat);
    free(ref);
    free(out);
    px_st_close(st);
    zi_ctx_destroy(ctx);
    zi_vae_destroy(v);
    return m;
}

TEST(t_decode_reference)
{
    const char *d = px_test_tmpdir();
    char cmd[2048], hf[600], bfl[600], stages[600];
    snprintf(cmd, sizeof cmd,
             PY " make %s/m --config tiny --layouts hf,single --seed 7 && " PY
                " run %s/m/hf --ids 151644,872,198,9707,151645,198 --width 64 --height 48"
                " --steps 2 --seed 2 --out %s/run.safetensors",
             d, d, d);
    sh(cmd);
    zi_vae_config cfg;
    tiny_config(d, &cfg);
    snprintf(hf, sizeof hf, "%s/m/hf/vae", d);
    snprintf(bfl, sizeof bfl, "%s/m/single/ae.safetensors", d);
    snprintf(stages, sizeof stages, "%s/run.safetensors", d);
    T_CMP_DBL(check_decode(hf, &cfg, stages, "final.latent"), <=, TOL);
    T_CMP_DBL(check_decode(bfl, &cfg, stages, "final.latent"), <=, TOL);
}

/* A config that disagrees with the weights: the error names the file, the
 * tensor, and expected vs found; a config the decoder cannot run is refused
 * before any tensor is read. */
TEST(t_shape_errors)
{
    const char *d = px_test_tmpdir();
    char cmd[1024], path[600], err[512] = "";
    snprintf(cmd, sizeof cmd, PY " make %s/m --config tiny --layouts hf --seed 1", d);
    sh(cmd);
    zi_vae_config cfg;
    tiny_config(d, &cfg);
    snprintf(path, sizeof path, "%s/m/hf/vae", d);
    zi_weights *w;
    T_EQ_INT(zi_weights_open(path, ZI_PART_VAE, NULL, &w, err, sizeof err), 0);
    zi_vae *v = NULL;
    zi_vae_config bad = cfg;
    bad.block_out[3] = 64;
    T_EQ_INT(zi_vae_create(w, &bad, &v, err, sizeof err), PX_ECORRUPT);
    T_TRUE(v == NULL);
    T_CONTAINS(err, "decoder.conv_in.weight");
    T_CONTAINS(err, "expected");
    bad = cfg;
    bad.latent_channels = 4;
    T_EQ_INT(zi_vae_create(w, &bad, &v, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "decoder.conv_in.weight");
    bad = cfg;
    bad.layers_per_block = 3;
    T_EQ_INT(zi_vae_create(w, &bad, &v, err, sizeof err), PX_ENOTFOUND);
    T_CONTAINS(err, "decoder.up_blocks.0.resnets.3");
    bad = cfg;
    bad.groups = 3;
    T_EQ_INT(zi_vae_create(w, &bad, &v, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "groups");
    /* And the good config binds, decodes deterministically, refuses a 0 size. */
    T_EQ_INT(zi_vae_create(w, &cfg, &v, err, sizeof err), 0);
    zi_ctx *ctx;
    T_EQ_INT(zi_ctx_create(NULL, &ctx, err, sizeof err), 0);
    float lat[16 * 3 * 5], a[24 * 40 * 3], b[24 * 40 * 3];
    zi_sampler_noise(NULL, 4, lat, 16 * 3 * 5);
    T_EQ_INT(zi_vae_decode_float(v, ctx, lat, 3, 5, a, err, sizeof err), 0);
    T_EQ_INT(zi_vae_decode_float(v, ctx, lat, 3, 5, b, err, sizeof err), 0);
    T_EQ_MEM(a, b, sizeof a);
    T_EQ_INT(zi_vae_decode_float(v, ctx, lat, 0, 5, a, err, sizeof err), PX_EINVAL);
    zi_ctx_destroy(ctx);
    zi_vae_destroy(v);
    zi_weights_close(w);
}

TEST(t_sigmas)
{
    zi_sampler_config c;
    zi_sampler_config_default(&c);
    float s[9];
    char err[256] = "";
    T_EQ_INT(zi_sampler_sigmas(&c, 8, s, err, sizeof err), 0);
    /* The spec's table for 8 steps at shift 3. */
    static const double want[9] = {1, .9545, .9, .8333, .75, .6429, .5, .3, 0};
    for (int i = 0; i < 9; i++) T_NEAR(s[i], want[i], 1e-4);
    for (int i = 0; i < 8; i++) {
        double u = 1.0 - i / 8.0;
        T_NEAR(s[i], 3 * u / (1 + 2 * u), 1e-7);
    }
    c.shift = 1;
    T_EQ_INT(zi_sampler_sigmas(&c, 4, s, err, sizeof err), 0);
    T_NEAR(s[1], 0.75, 1e-7);
    T_NEAR(s[4], 0, 0);
    T_EQ_INT(zi_sampler_sigmas(&c, 0, s, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "steps");
    c.shift = 0;
    T_EQ_INT(zi_sampler_sigmas(&c, 4, s, err, sizeof err), PX_EINVAL);
}

TEST(t_euler_cfg)
{
    float x[3] = {1, 2, 3}, out[3] = {0.5f, -1, 2};
    zi_sampler_euler(x, out, 3, 0.75f, 0.5f); /* x += (0.5 - 0.75) * -out */
    T_NEAR(x[0], 1.125, 1e-7);
    T_NEAR(x[1], 1.75, 1e-7);
    T_NEAR(x[2], 3.5, 1e-7);
    float pos[2] = {1, 2}, neg[2] = {3, -1}, o[2];
    zi_sampler_cfg(o, pos, neg, 2, 0);
    T_NEAR(o[0], 1, 0);
    zi_sampler_cfg(o, pos, neg, 2, 2.5f); /* pos + w (pos - neg) */
    T_NEAR(o[0], 1 + 2.5 * (1 - 3), 1e-6);
    T_NEAR(o[1], 2 + 2.5 * (2 + 1), 1e-6);
    zi_sampler_cfg(pos, pos, neg, 2, 1); /* in place */
    T_NEAR(pos[0], -1, 1e-7);
}

TEST(t_seed_and_noise)
{
    T_EQ_INT((long long)zi_sampler_resolve_seed(42), 42);
    int64_t r1 = zi_sampler_resolve_seed(-1), r2 = zi_sampler_resolve_seed(-1);
    T_TRUE(r1 >= 0 && r1 < (1ll << 53));
    T_TRUE(r2 >= 0 && r1 != r2);
    size_t n = 1 << 20;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    zi_sampler_noise(NULL, 7, a, n);
    zi_sampler_noise(NULL, 7, b, n);
    T_EQ_MEM(a, b, n * sizeof *a);
    zi_sampler_noise(NULL, 8, b, n);
    T_TRUE(memcmp(a, b, n * sizeof *a) != 0);
    double s = 0, ss = 0, s4 = 0;
    size_t beyond3 = 0;
    for (size_t i = 0; i < n; i++) {
        s += a[i];
        ss += (double)a[i] * a[i];
        s4 += (double)a[i] * a[i] * a[i] * a[i];
        beyond3 += fabsf(a[i]) > 3;
        T_TRUE(isfinite(a[i]));
    }
    double mean = s / n, var = ss / n - mean * mean;
    printf("  noise: mean %.5f, variance %.5f, 4th moment %.4f, |x| > 3: %.5f\n", mean, var, s4 / n,
           (double)beyond3 / n);
    T_NEAR(mean, 0, 0.005);  /* standard error 0.001 */
    T_NEAR(var, 1, 0.01);    /* standard error 0.0014 */
    T_NEAR(s4 / n, 3, 0.05); /* normal kurtosis */
    T_NEAR((double)beyond3 / n, 0.0027, 0.0005);
    /* Over a pool of threads (chunks of 8192 values, each generator moved
     * to its chunk) the values are the one-thread ones, bit for bit, and
     * those are the documented stream: Box-Muller over PCG32 pairs in
     * order, computed here one pair after the other. */
    px_pool *pool = px_pool_create(4);
    T_TRUE(pool != NULL);
    const size_t ns[] = {n, 8192 * 3 + 1, 8193, 8191, 1};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        for (size_t i = 0; i < ns[t]; i++) b[i] = NAN;
        zi_sampler_noise(pool, 7, b, ns[t]);
        T_EQ_MEM(a, b, ns[t] * sizeof *a);
    }
    px_rng r;
    px_rng_seed(&r, 7, 0x5a494d47u);
    for (size_t i = 0; i < n; i += 2) {
        double u1 = ((double)px_rng_u32(&r) + 1.0) / 4294967296.0;
        double u2 = (double)px_rng_u32(&r) / 4294967296.0;
        double rad = sqrt(-2.0 * log(u1));
        b[i] = (float)(rad * cos(6.283185307179586 * u2));
        b[i + 1] = (float)(rad * sin(6.283185307179586 * u2));
    }
    T_EQ_MEM(a, b, n * sizeof *a);
    px_pool_destroy(pool);
    /* An odd count still fills every value (the last pair's second half dropped). */
    float odd[3] = {NAN, NAN, NAN};
    zi_sampler_noise(NULL, 7, odd, 3);
    T_TRUE(odd[0] == a[0] && odd[1] == a[1] && odd[2] == a[2]);
    free(a);
    free(b);
}

TEST_MAIN(t_decode_reference, t_shape_errors, t_sigmas, t_euler_cfg, t_seed_and_noise)
