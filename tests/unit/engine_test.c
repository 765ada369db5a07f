/*
 * engine_test.c — the engine registry, per-item validation before dispatch,
 * method names, and the JSON self-description (parsed back with cJSON);
 * the generate kind's items through a fake generate engine: validation,
 * progress reports, the shape of the memory estimate, kind and device.
 */
#include "core/buf.h"
#include "core/err.h"
#include "engine/engine.h"
#include "engine/engine_impl.h"
#include "harness.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

static px_image mk(int w, int h, int c, uint8_t fill)
{
    px_image m = {w, h, c, malloc((size_t)w * h * c)};
    memset(m.px, fill, (size_t)w * h * c);
    return m;
}

static px_engine *open_classic(void)
{
    px_engine *e = NULL;
    char err[200];
    px_engine_config cfg = {.pool = NULL};
    T_EQ_INT(px_engine_open("classic", &cfg, &e, err, sizeof err), 0);
    T_TRUE(e != NULL);
    return e;
}

TEST(t_names_and_open)
{
    const char *const *names = px_engine_names();
    int n = 0, classic = 0;
    for (; names[n]; n++) classic |= strcmp(names[n], "classic") == 0;
    T_CMP_INT(n, >=, 1);
    T_TRUE(classic);
    px_engine *e = open_classic();
    T_EQ_STR(px_engine_name(e), "classic");
    T_TRUE(px_engine_caps(e) & PX_ENGINE_CAP_DETERMINISTIC);
    T_TRUE(px_engine_caps(e) & PX_ENGINE_CAP_ANY_SIZE);
    T_TRUE(!(px_engine_caps(e) & PX_ENGINE_CAP_GPU));
    T_CMP_INT(px_engine_mem_estimate(e, 1, (px_engine_shape){1000, 1000, 0, 0}), >, 1000 * 1000 * 3);
    px_engine_close(e);
    px_engine_close(NULL);
}

TEST(t_unknown_engine_lists_known)
{
    px_engine *e = (px_engine *)1;
    char err[200];
    T_EQ_INT(px_engine_open("lama-tpu", NULL, &e, err, sizeof err), PX_ENOTFOUND);
    T_TRUE(e == NULL);
    T_CONTAINS(err, "lama-tpu");
    T_CONTAINS(err, "classic");
    T_EQ_INT(px_engine_open(NULL, NULL, &e, err, sizeof err), PX_ENOTFOUND);
    T_CONTAINS(err, "classic");
    /* The classic engine has no GPU code. */
    px_engine_config cfg = {.device = "cuda:0"};
    T_EQ_INT(px_engine_open("classic", &cfg, &e, err, sizeof err), PX_EUNSUP);
    T_CONTAINS(err, "cuda:0");
}

TEST(t_check_method)
{
    px_engine *e = open_classic();
    char err[200];
    T_EQ_INT(px_engine_check_method(e, NULL, err, sizeof err), 0);
    T_EQ_INT(px_engine_check_method(e, "auto", err, sizeof err), 0);
    T_EQ_INT(px_engine_check_method(e, "telea", err, sizeof err), 0);
    T_EQ_INT(px_engine_check_method(e, "patchmatch", err, sizeof err), 0);
    T_EQ_INT(px_engine_check_method(e, "Telea", err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "\"Telea\"");
    T_CONTAINS(err, "auto, patchmatch, telea");
    px_engine_close(e);
}

TEST(t_validation_per_item)
{
    px_engine *e = open_classic();
    px_image rgb = mk(16, 12, 3, 90), rgba = mk(16, 12, 4, 90);
    px_image mask = mk(16, 12, 1, 0), mask3 = mk(16, 12, 3, 0), mask_small = mk(15, 12, 1, 0);
    px_image out = mk(16, 12, 3, 0), out_small = mk(16, 11, 3, 0), unalloc = {16, 12, 3, NULL};
    for (int y = 3; y < 6; y++) memset(mask.px + y * 16 + 4, 255, 5);
    struct {
        const px_image *img, *mask;
        px_image *out;
        const char *method;
        int want;
        const char *msg;
    } cases[] = {
        {&rgb, &mask, &out, NULL, 0, ""},
        {&rgba, &mask, &out, NULL, PX_EINVAL, "3 channels"},
        {&rgb, &mask3, &out, NULL, PX_EINVAL, "1 channel"},
        {&rgb, &mask_small, &out, NULL, PX_EINVAL, "mask is 15x12 but image is 16x12"},
        {&rgb, &mask, &out_small, NULL, PX_EINVAL, "output must be 16x12"},
        {&rgb, &mask, &unalloc, NULL, PX_EINVAL, "not allocated"},
        {&rgb, NULL, &out, NULL, PX_EINVAL, "mask is missing"},
        {&rgb, &mask, &out, "fastest", PX_EINVAL, "accepted: auto, patchmatch, telea"},
    };
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++) {
        px_engine_item it = {.image = cases[i].img, .mask = cases[i].mask, .out = cases[i].out,
                             .method = cases[i].method};
        T_EQ_INT(px_engine_run(e, &it, 1), cases[i].want);
        T_EQ_INT(it.status, cases[i].want);
        if (cases[i].want) T_CONTAINS(it.err, cases[i].msg);
    }

    /* A batch with a bad item in the middle: the good ones still run, and
     * run() reports the first failure. */
    px_image out2 = mk(16, 12, 3, 0);
    px_engine_item items[3] = {
        {.image = &rgb, .mask = &mask, .out = &out, .method = "telea"},
        {.image = &rgba, .mask = &mask, .out = &out},
        {.image = &rgb, .mask = &mask, .out = &out2, .method = "patchmatch"},
    };
    T_EQ_INT(px_engine_run(e, items, 3), PX_EINVAL);
    T_EQ_INT(items[0].status, 0);
    T_EQ_INT(items[1].status, PX_EINVAL);
    T_EQ_INT(items[2].status, 0);
    T_EQ_MEM(out.px, rgb.px, 16 * 12 * 3); /* uniform image: the fill is the same colour */
    T_EQ_MEM(out2.px, rgb.px, 16 * 12 * 3);
    T_EQ_INT(px_engine_run(e, items, 0), 0);
    T_EQ_INT(px_engine_run(e, NULL, 1), PX_EINVAL);
    px_engine_close(e);
    free(rgb.px);
    free(rgba.px);
    free(mask.px);
    free(mask3.px);
    free(mask_small.px);
    free(out.px);
    free(out2.px);
    free(out_small.px);
}

static cJSON *get(const cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) px_tfail(__FILE__, __LINE__, "describe: no key \"%s\"", k);
    return v;
}

TEST(t_describe_is_valid_json)
{
    px_engine *e = open_classic();
    px_buf b;
    px_buf_init(&b, 1 << 16);
    T_EQ_INT(px_engine_describe(e, &b), 0);
    cJSON *j = cJSON_Parse((const char *)b.data);
    if (!j) px_tfail(__FILE__, __LINE__, "not JSON: %s", (const char *)b.data);
    printf("    %s\n", (const char *)b.data);
    T_EQ_STR(cJSON_GetStringValue(get(j, "name")), "classic");
    T_TRUE(cJSON_IsString(get(j, "description")));
    cJSON *caps = get(j, "capabilities");
    T_TRUE(cJSON_IsArray(caps));
    int det = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, caps)
    {
        T_TRUE(cJSON_IsString(it));
        det |= strcmp(it->valuestring, "deterministic") == 0;
    }
    T_TRUE(det);
    cJSON *methods = get(j, "methods");
    T_EQ_INT(cJSON_GetArraySize(methods), 3);
    T_EQ_STR(cJSON_GetArrayItem(methods, 0)->valuestring, "auto");
    T_EQ_STR(cJSON_GetStringValue(get(j, "default_method")), "auto");
    cJSON *mem = get(j, "memory_estimate_bytes");
    T_CMP_DBL(get(mem, "1024x1024")->valuedouble, >, get(mem, "512x512")->valuedouble);
    T_CMP_DBL(get(mem, "1024x1024")->valuedouble, ==,
              (double)px_engine_mem_estimate(e, 1, (px_engine_shape){1024, 1024, 0, 0}));
    cJSON *cfg = get(j, "config");
    T_TRUE(cJSON_IsObject(cfg));
    T_CMP_DBL(get(cfg, "telea_radius")->valuedouble, >=, 1);
    T_CMP_DBL(get(cfg, "patch_size")->valuedouble, ==, 7);
    cJSON_Delete(j);

    /* A buffer too small for the description reports the cap. */
    px_buf small;
    px_buf_init(&small, 40);
    T_EQ_INT(px_engine_describe(e, &small), PX_ETOOBIG);
    px_buf_free(&small);
    px_buf_free(&b);
    px_engine_close(e);
}

/* A generate engine that fills the output with the step count and reports
 * each step. */
static int gen_run(px_engine *e, px_engine_item *items, int n)
{
    (void)e;
    for (int i = 0; i < n; i++) {
        px_engine_item *it = &items[i];
        for (int k = 1; k <= it->gen.steps; k++) {
            if (it->cancel && atomic_load(it->cancel)) break;
            px_engine_progress(it, k, it->gen.steps);
        }
        memset(it->out->px, it->gen.steps, (size_t)it->out->w * it->out->h * 3);
        it->gen.denoise_ns = 1;
        it->status = 0;
    }
    return 0;
}

static size_t gen_mem(const px_engine *e, int n, const px_engine_shape *s)
{
    (void)e;
    return (size_t)n * (size_t)s->w * (size_t)s->h * (size_t)(s->steps + 1);
}

static const char *const gen_methods[] = {"euler", NULL};
static const px_engine_ops gen_ops = {
    .name = "fakegen", .kind = PX_ENGINE_GENERATE, .methods = gen_methods,
    .mem_estimate = gen_mem, .run = gen_run};

static void count_steps(void *arg, int step, int steps)
{
    int *last = arg;
    T_EQ_INT(step, last[0] + 1);
    last[0] = step;
    last[1] = steps;
}

TEST(t_generate_items)
{
    px_engine e = {.ops = &gen_ops};
    T_EQ_INT(px_engine_kind_of(&e), PX_ENGINE_GENERATE);
    T_EQ_STR(px_engine_kind_name(PX_ENGINE_GENERATE), "generate");
    T_EQ_STR(px_engine_device(&e), "cpu");
    T_EQ_INT(px_engine_mem_estimate(&e, 2, (px_engine_shape){8, 4, 3, 0}), 2 * 8 * 4 * 4);
    T_EQ_INT(px_engine_mem_estimate(&e, 1, (px_engine_shape){0, 4, 3, 0}), 0);
    px_image out = mk(8, 4, 3, 0), small = mk(4, 4, 3, 0);
    int seen[2] = {0, 0};
    px_engine_item ok = {.out = &out, .progress = count_steps, .progress_arg = seen,
                         .gen = {.prompt = "a cat", .width = 8, .height = 4, .steps = 5}};
    T_EQ_INT(px_engine_run(&e, &ok, 1), 0);
    T_EQ_INT(seen[0], 5);
    T_EQ_INT(seen[1], 5);
    T_EQ_INT(out.px[0], 5);
    T_EQ_INT(ok.gen.denoise_ns, 1);
    /* Validation per item: the valid ones still run. */
    px_engine_item items[5] = {
        {.out = &out, .gen = {.prompt = NULL, .width = 8, .height = 4, .steps = 1}},
        {.out = &out, .gen = {.prompt = "x", .width = 8, .height = 4, .steps = 0}},
        {.out = &small, .gen = {.prompt = "x", .width = 8, .height = 4, .steps = 1}},
        {.out = &out, .method = "ddim", .gen = {.prompt = "x", .width = 8, .height = 4, .steps = 1}},
        {.out = &out, .method = "euler", .gen = {.prompt = "x", .width = 8, .height = 4, .steps = 2}},
    };
    T_EQ_INT(px_engine_run(&e, items, 5), PX_EINVAL);
    T_CONTAINS(items[0].err, "prompt");
    T_CONTAINS(items[1].err, "steps");
    T_CONTAINS(items[2].err, "8x4");
    T_CONTAINS(items[3].err, "ddim");
    T_EQ_INT(items[4].status, 0);
    T_EQ_INT(out.px[0], 2);
    /* No warm-up operation: nothing to do for a generate engine. */
    char err[160];
    T_EQ_INT(px_engine_warm_up(&e, NULL, err, sizeof err), 0);
    free(out.px);
    free(small.px);
}

TEST(t_kind_and_device_of_registered)
{
    px_engine *e = open_classic();
    T_EQ_INT(px_engine_kind_of(e), PX_ENGINE_INPAINT);
    T_EQ_STR(px_engine_device(e), "cpu");
    char err[200];
    T_EQ_INT(px_engine_warm_up(e, NULL, err, sizeof err), 0); /* one tiny inpaint batch */
    px_engine_close(e);
}

TEST_MAIN(t_names_and_open, t_unknown_engine_lists_known, t_check_method, t_validation_per_item,
          t_describe_is_valid_json, t_generate_items, t_kind_and_device_of_registered)
