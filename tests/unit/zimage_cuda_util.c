/*
 * zimage_cuda_util.c — zimage_cuda_util.h: what the Z-Image CUDA test
 * binaries share (the engine on the tiny model or PX_ZIMAGE_MODEL, the
 * stage errors against the PyTorch reference and the CPU engine).
 */
#include "zimage_cuda_util.h"

#include "core/err.h"
#include "engine/safetensors.h"
#include "engine/zimage/sampler.h"
#include "engine/zimage/tokenizer.h"
#include "engine/zimage/zimage.h"
#include "engine/zimage/zimage_cuda.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The image size: 32x64 on the tiny model; PX_ZIMAGE_SIZE (e.g.
 * "512x512") with PX_ZIMAGE_MODEL (a full-size model directory, the
 * issue's full-size accuracy check on the GPU). */
int g_w = 32, g_h = 64;
bool g_full; /* PX_ZIMAGE_MODEL given: full size (the LoRA test's bars doubled) */

char g_dir[600];

/* A python3 with torch: PX_PYTHON (bench/gpu_env.sh sets it on the GPU
 * machine), else Debian's. */
const char *python(void)
{
    const char *p = getenv("PX_PYTHON");
    return p ? p : "/usr/bin/python3";
}

void sh(const char *cmd)
{
    if (system(cmd) != 0) px_tfail(__FILE__, __LINE__, "command failed: %s", cmd);
}

/* The CUDA engine on the tiny model in `precision` (NULL: the default,
 * bf16), or NULL (skip, saying why: no GPU, or fp8 on a GPU without it). */
px_engine *open_cuda_prec(const char *precision)
{
    char why[300];
    if (zi_cuda_probe(why, sizeof why)) {
        printf("    skipped: %s\n", why);
        return NULL;
    }
    const char *given = getenv("PX_ZIMAGE_MODEL"), *size = getenv("PX_ZIMAGE_SIZE");
    if (given && !g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "%s", given);
        g_full = true;
        if (size && sscanf(size, "%dx%d", &g_w, &g_h) != 2) g_w = 32, g_h = 64;
    }
    if (!g_dir[0]) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd,
                 "%s tools/zimage_reference.py make %s/m --config tiny --layouts hf --seed 5 "
                 "--tokenizer " TOKENIZER " >/dev/null",
                 python(), px_test_tmpdir());
        sh(cmd);
        snprintf(g_dir, sizeof g_dir, "%s/m/hf", px_test_tmpdir());
    }
    px_engine_config cfg = {.weights = g_dir, .device = "cuda", .precision = precision};
    px_engine *e = NULL;
    char err[512] = "";
    int rc = px_engine_open("zimage", &cfg, &e, err, sizeof err);
    if (rc == PX_EUNSUP) {
        printf("    skipped: %s\n", err);
        return NULL;
    }
    if (rc) px_tfail(__FILE__, __LINE__, "open: %s", err);
    return e;
}

px_engine *open_cuda(void)
{
    return open_cuda_prec(NULL);
}

/* The stage tests hold the VAE to the reference within one level: that
 * bar is for fp32 activations (PX_ZIMAGE_CUDA_VAE=tf32), unless the
 * caller chose a decoder. The default's bf16 up path is held to the TF32
 * one by t_vae_bf16_default_near_tf32 here and by its full-size gate. */
px_engine *open_cuda_fp32_vae(const char *precision)
{
    if (getenv("PX_ZIMAGE_CUDA_VAE")) return open_cuda_prec(precision);
    setenv("PX_ZIMAGE_CUDA_VAE", "tf32", 1);
    px_engine *e = open_cuda_prec(precision);
    unsetenv("PX_ZIMAGE_CUDA_VAE");
    return e;
}

/* max|a - b| / max|b| over n floats. */
double rel_err(const float *a, const float *b, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        d = e > d ? e : d;
        m = fabs((double)b[i]) > m ? fabs((double)b[i]) : m;
    }
    return m > 0 ? d / m : d;
}

static float *tensor(const px_st *st, const char *name, size_t *n)
{
    const px_st_tensor *t = px_st_find(st, name);
    if (!t) px_tfail(__FILE__, __LINE__, "the reference wrote no %s", name);
    float *v = malloc(t->nelem * sizeof *v);
    T_TRUE(v != NULL);
    px_st_to_f32(t, v);
    if (n) *n = t->nelem;
    return v;
}

/* The templated prompt's ids (the CPU tokenizer). */
static size_t prompt_ids(int32_t *ids)
{
    char err[300];
    zi_tok *tok;
    size_t n;
    bool trunc;
    T_EQ_INT(zi_tok_load(g_dir, &tok, err, sizeof err), 0);
    T_EQ_INT(zi_tok_encode_prompt(tok, PROMPT, ids, ZI_TOK_MAX_PROMPT, &n, &trunc, err, sizeof err),
             0);
    zi_tok_free(tok);
    return n;
}

static int worst_levels(const uint8_t *px, const float *ref01, size_t n)
{
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)px[i] - (int)lrintf(ref01[i] * 255.0f));
        worst = d > worst ? d : worst;
    }
    return worst;
}


/* The reference's stage file of PROMPT (3 steps, seed 6); ids get the
 * prompt's tokens. */
static px_st *ref_stages(int32_t *ids, size_t *n)
{
    char cmd[16384], path[700], err[512] = "", idlist[4096] = "";
    *n = prompt_ids(ids);
    for (size_t i = 0, at = 0; i < *n; i++)
        at += (size_t)snprintf(idlist + at, sizeof idlist - at, "%s%d", i ? "," : "", ids[i]);
    snprintf(cmd, sizeof cmd,
             "%s tools/zimage_reference.py run %s --ids %s --width %d --height %d --steps 3 "
             "--seed 6 --out %s/st.safetensors%s >/dev/null",
             python(), g_dir, idlist, g_w, g_h, px_test_tmpdir(), g_full ? " --device cuda" : "");
    sh(cmd);
    snprintf(path, sizeof path, "%s/st.safetensors", px_test_tmpdir());
    px_st *st;
    T_EQ_INT(px_st_open(path, &st, err, sizeof err), 0);
    return st;
}

/* The worst level between px and the CPU engine's (fp32) image from the
 * same latents. */
static int cpu_levels(const float *init, const uint8_t *px, size_t nimg)
{
    char err[512] = "";
    zi_model *m = NULL;
    zi_model_paths mp = {.dir = g_dir};
    T_EQ_INT(zi_model_open(&mp, NULL, &m, err, sizeof err), 0);
    zi_gen_params gp = {.prompt = PROMPT, .width = g_w, .height = g_h, .steps = 3, .latents = init};
    zi_gen_result r;
    T_EQ_INT(zi_generate(m, NULL, &gp, &r, err, sizeof err), 0);
    int worst = 0;
    for (size_t i = 0; i < nimg; i++) {
        int d = abs((int)r.image.px[i] - (int)px[i]);
        worst = d > worst ? d : worst;
    }
    zi_gen_result_free(&r);
    zi_model_close(m);
    return worst;
}

void stage_errors(px_engine *e, const char *what, stage_errs *r)
{
    char err[512] = "";
    int32_t ids[ZI_TOK_MAX_PROMPT];
    size_t n, nf, nl, nimg;
    px_st *st = ref_stages(ids, &n);
    float *feat = tensor(st, "text.features", &nf), *init = tensor(st, "init.latent", &nl);
    float *out0 = tensor(st, "dit.out0", NULL), *fin = tensor(st, "final.latent", NULL);
    float *img = tensor(st, "image", &nimg), *sig = tensor(st, "sigmas", NULL);
    float *ours = malloc(nf * sizeof *ours), *o0 = malloc(nl * sizeof *o0);
    float *lf = malloc(nl * sizeof *lf);
    uint8_t *vpx = malloc(nimg);
    T_EQ_INT(zi_cuda_encode(e, ids, (int)n, ours, err, sizeof err), 0);
    r->text = rel_err(ours, feat, nf);
    const float *lat1[1] = {init}, *txt1[1] = {feat};
    float *out1[1] = {o0};
    int len1[1] = {(int)n};
    T_EQ_INT(zi_cuda_dit_forward(e, lat1, txt1, len1, NULL, NULL, 1, g_h / 8, g_w / 8, sig[0], out1,
                                 err, sizeof err),
             0);
    r->dit = rel_err(o0, out0, nl);
    px_image im = {0};
    T_EQ_INT(px_image_alloc(&im, g_w, g_h, 3, NULL, NULL, 0), 0);
    px_engine_item it = {
        .out = &im,
        .seed = 1,
        .gen = {.prompt = PROMPT, .width = g_w, .height = g_h, .steps = 3, .latents = init}};
    T_EQ_INT(zi_cuda_run_latents(e, &it, 1, lf, err, sizeof err), 0);
    r->latent = rel_err(lf, fin, nl);
    r->levels = worst_levels(im.px, img, nimg);
    /* The VAE alone (fp32 tensors both sides; TF32 convolutions and
     * mid-attention GEMMs here by default) on the reference's final latent. */
    T_EQ_INT(zi_cuda_vae_decode(e, fin, g_h / 8, g_w / 8, vpx, err, sizeof err), 0);
    r->vae = worst_levels(vpx, img, nimg);
    r->cpu = cpu_levels(init, im.px, nimg);
    const char *vae = getenv("PX_ZIMAGE_CUDA_VAE");
    vae = vae ? vae : "TF32";
    printf("  %s vs the fp32 reference: text.features %.2e, dit.out0 %.2e, final.latent %.2e "
           "(max|diff|/max|ref|); image within %d levels of the reference, %d of the CPU "
           "engine; the GPU VAE (%s convolutions and attention) alone within %d\n",
           what, r->text, r->dit, r->latent, r->levels, r->cpu, vae, r->vae);
    px_image_free(&im);
    free(feat), free(init), free(out0), free(fin), free(img), free(sig), free(ours), free(o0);
    free(lf), free(vpx);
    px_st_close(st);
}

void fill(float *v, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = ((float)(seed >> 8) / (float)(1u << 24) - 0.5f) * 2.0f;
    }
}
