/*
 * zimage_weights_test.c — the Z-Image weight store, the GGUF reader and the
 * config parsers: the same random tiny model (tools/zimage_reference.py,
 * run at test time) loaded from the Hugging Face layout (sharded), the
 * single-file layouts and GGUF (tools/gguf_write.py) gives identical
 * canonical tensors; quantized GGUF types equal an independent numpy
 * dequantizer and stay close to the original; wrong, truncated and
 * mismatched files are refused with messages that name the file, the tensor
 * and what was expected.
 */
#include "core/err.h"
#include "engine/safetensors.h"
#include "engine/zimage/gguf.h"
#include "engine/zimage/zconfig.h"
#include "engine/zimage/zweights.h"
#include "harness.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF "/usr/bin/python3 tools/zimage_reference.py"
#define GGUFW "/usr/bin/python3 tools/gguf_write.py"

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0) px_tfail(__FILE__, __LINE__, "command failed (%d): %s", rc, cmd);
}

/* The tiny reference model in dir/hf and dir/single (layouts "hf,single"
 * or one of them). */
static const char *make_model(const char *layouts)
{
    static char dir[400];
    snprintf(dir, sizeof dir, "%s/m", px_test_tmpdir());
    sh(REF " make %s --config tiny --layouts %s >/dev/null", dir, layouts);
    return dir;
}

static zi_weights *open_ok(const char *path, zi_part part, const zi_load_opts *o)
{
    zi_weights *w = NULL;
    char err[512] = "";
    int rc = zi_weights_open(path, part, o, &w, err, sizeof err);
    if (rc) px_tfail(__FILE__, __LINE__, "open %s: %d %s", path, rc, err);
    return w;
}

/* The error text of a refused open (asserting the code). */
static const char *open_fails(const char *path, zi_part part, const zi_load_opts *o, int want)
{
    static char err[1024];
    zi_weights *w = NULL;
    err[0] = 0;
    int rc = zi_weights_open(path, part, o, &w, err, sizeof err);
    if (rc != want) px_tfail(__FILE__, __LINE__, "open %s: got %d (%s), want %d", path, rc, err, want);
    if (w) px_tfail(__FILE__, __LINE__, "failed open left a store");
    return err;
}

static float elem(const zi_tensor *t, size_t i)
{
    if (t->dtype == ZI_F32) return ((const float *)t->data)[i];
    uint32_t b = (uint32_t)((const uint16_t *)t->data)[i] << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* Same canonical names and shapes; data within tol (0: bitwise equal as
 * floats). Returns the largest difference. */
static double same_tensors(const zi_weights *a, const zi_weights *b, double tol)
{
    T_EQ_INT(zi_weights_count(a), zi_weights_count(b));
    double worst = 0;
    for (int i = 0; i < zi_weights_count(a); i++) {
        const zi_tensor *x = zi_weights_at(a, i), *y = zi_weights_at(b, i);
        T_EQ_STR(x->name, y->name);
        T_EQ_INT(x->ndim, y->ndim);
        for (int d = 0; d < x->ndim; d++) T_EQ_INT(x->shape[d], y->shape[d]);
        T_EQ_INT(x->nelem, y->nelem);
        T_EQ_INT((uintptr_t)x->data % 64, 0);
        for (size_t k = 0; k < x->nelem; k++) {
            double d = fabs((double)elem(x, k) - (double)elem(y, k));
            if (!(d <= tol))
                px_tfail(__FILE__, __LINE__, "%s[%zu]: %.9g vs %.9g (tol %g)", x->name, k,
                         elem(x, k), elem(y, k), tol);
            if (d > worst) worst = d;
        }
    }
    return worst;
}

static const char *path2(const char *a, const char *b)
{
    static char buf[4][1024];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", a, b);
    return p;
}

/* HF (sharded) and single-file layouts of all three parts give identical
 * canonical tensors. */
TEST(t_layouts_agree)
{
    const char *m = make_model("hf,single");
    static const struct {
        zi_part part;
        const char *hf, *single;
        int count;
    } c[] = {
        {ZI_PART_DIT, "hf/transformer", "single/z_image_turbo.safetensors", 0},
        {ZI_PART_TEXT, "hf/text_encoder", "single/qwen_3_4b.safetensors", 0},
        {ZI_PART_VAE, "hf/vae", "single/ae.safetensors", 0},
    };
    for (int i = 0; i < 3; i++) {
        zi_weights *a = open_ok(path2(m, c[i].hf), c[i].part, NULL);
        zi_weights *b = open_ok(path2(m, c[i].single), c[i].part, NULL);
        same_tensors(a, b, 0);
        printf("  %s: %d tensors, %zu bytes\n", c[i].hf, zi_weights_count(a), zi_weights_bytes(a));
        zi_weights_close(a);
        zi_weights_close(b);
    }
}

/* Largest |a - b| over all tensors relative to the largest |b| of each
 * tensor (names and shapes must agree). */
static double rel_err(const zi_weights *a, const zi_weights *b)
{
    T_EQ_INT(zi_weights_count(a), zi_weights_count(b));
    double worst = 0;
    for (int i = 0; i < zi_weights_count(a); i++) {
        const zi_tensor *x = zi_weights_at(a, i), *y = zi_weights_at(b, i);
        T_EQ_STR(x->name, y->name);
        T_EQ_INT(x->nelem, y->nelem);
        double big = 0, d = 0;
        for (size_t k = 0; k < y->nelem; k++) big = fmax(big, fabs(elem(y, k)));
        for (size_t k = 0; k < x->nelem; k++) d = fmax(d, fabs((double)elem(x, k) - elem(y, k)));
        if (big > 0 && d / big > worst) worst = d / big;
    }
    return worst;
}

/* GGUF files of every supported type (written by tools/gguf_write.py from
 * the single DiT file) load to exactly what the numpy dequantizer decodes,
 * and stay within each format's error of the original. */
TEST(t_gguf_types)
{
    const char *m = make_model("single");
    static const struct {
        const char *type;
        double tol; /* of the largest magnitude per tensor */
        int quantized; /* tensors expected in this type (row a multiple of the block) */
    } c[] = {{"F32", 0, 1}, {"F16", 1e-3, 1}, {"BF16", 4e-3, 1}, {"Q8_0", 1e-2, 1},
             {"Q4_0", 0.15, 1}, {"Q4_K", 0.15, 1}, {"Q5_K", 0.07, 1}, {"Q6_K", 0.04, 1}};
    zi_weights *orig = open_ok(path2(m, "single/z_image_turbo.safetensors"), ZI_PART_DIT, NULL);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char g[600], r[600];
        snprintf(g, sizeof g, "%s/dit_%s.gguf", m, c[i].type);
        snprintf(r, sizeof r, "%s/dit_%s_numpy.safetensors", m, c[i].type);
        sh(GGUFW " write %s/single/z_image_turbo.safetensors %s --type %s --kv-extra --dequant %s", m,
           g, c[i].type, r);
        /* The file really holds tensors of the type. */
        zi_gguf *gg = NULL;
        char err[512];
        T_EQ_INT(zi_gguf_open(g, &gg, err, sizeof err), 0);
        int n = 0;
        for (int k = 0; k < zi_gguf_count(gg); k++)
            n += !strcmp(zi_gguf_type_name(zi_gguf_at(gg, k)->type), c[i].type);
        T_CMP_INT(n, >=, 2);
        T_EQ_INT(zi_gguf_version(gg), 3);
        zi_gguf_close(gg);

        zi_weights *a = open_ok(g, ZI_PART_DIT, NULL), *b = open_ok(r, ZI_PART_DIT, NULL);
        same_tensors(a, b, 0);
        double e = rel_err(a, orig);
        printf("  %-5s %3d tensors of the type; vs original: max|err| / max|w| = %.3g (bound %g)\n",
               c[i].type, n, e, c[i].tol);
        fflush(stdout);
        T_CMP_DBL(e, <=, c[i].tol);
        if (c[i].tol > 0) T_CMP_DBL(e, >, 0);
        /* BF16 output: the F32 values rounded to nearest even. */
        zi_load_opts o = {.convert_to = ZI_BF16, .keep_bf16 = 1};
        zi_weights *h = open_ok(g, ZI_PART_DIT, &o);
        int nbf = 0;
        for (int k = 0; k < zi_weights_count(h); k++) {
            const zi_tensor *x = zi_weights_at(h, k), *y = zi_weights_at(a, k);
            nbf += x->dtype == ZI_BF16;
            for (size_t q = 0; q < x->nelem; q++) {
                float want = elem(y, q);
                if (x->dtype == ZI_BF16) T_NEAR(elem(x, q), want, fabs(want) / 256 + 1e-30);
                else T_EQ_INT(elem(x, q) == want, 1);
            }
        }
        T_EQ_INT(nbf > 0, strcmp(c[i].type, "F32") != 0);
        zi_weights_close(h);
        zi_weights_close(a);
        zi_weights_close(b);
    }
    zi_weights_close(orig);
}

/* BF16 sources: kept as BF16 on request, else widened exactly. */
TEST(t_bf16_sources)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/b", px_test_tmpdir());
    sh(REF " make %s --config tiny --dtype bf16 --layouts single >/dev/null", dir);
    const char *f = path2(dir, "single/ae.safetensors");
    zi_load_opts keep = {.convert_to = ZI_F32, .keep_bf16 = 1};
    zi_weights *a = open_ok(f, ZI_PART_VAE, &keep), *b = open_ok(f, ZI_PART_VAE, NULL);
    for (int i = 0; i < zi_weights_count(a); i++) {
        T_EQ_INT(zi_weights_at(a, i)->dtype, ZI_BF16);
        T_EQ_INT(zi_weights_at(b, i)->dtype, ZI_F32);
    }
    same_tensors(a, b, 0);
    T_EQ_INT(zi_weights_bytes(a) * 2, zi_weights_bytes(b));
    zi_weights_close(a);
    zi_weights_close(b);
}

/* Files that do not fit: each refusal names the file, the tensor and what
 * was expected. */
TEST(t_refusals)
{
    const char *m = make_model("hf,single");
    sh("/usr/bin/python3 tests/unit/zimage_weights_fixtures.py %s", m);
    char b[520];
    snprintf(b, sizeof b, "%s/bad", m);
    const char *e;

    e = open_fails(path2(b, "unknown.safetensors"), ZI_PART_DIT, NULL, PX_EUNSUP);
    T_CONTAINS(e, "unknown.safetensors: 2 tensors unknown to the Z-Image DiT");
    T_CONTAINS(e, "foo.bar.weight");
    T_CONTAINS(e, "model.diffusion_model.layers.0.attention.to_x.weight");
    /* A file of another part: its names are unknown to this part. */
    e = open_fails(path2(m, "single/ae.safetensors"), ZI_PART_DIT, NULL, PX_EUNSUP);
    T_CONTAINS(e, "ae.safetensors: 136 tensors unknown to the Z-Image DiT: decoder.");
    e = open_fails(path2(m, "single/z_image_turbo.safetensors"), ZI_PART_TEXT, NULL, PX_EUNSUP);
    T_CONTAINS(e, "unknown to the Z-Image text encoder");
    e = open_fails(path2(m, "hf/text_encoder"), ZI_PART_VAE, NULL, PX_EUNSUP);
    T_CONTAINS(e, "unknown to the Z-Image VAE: model.");

    e = open_fails(path2(b, "dup.safetensors"), ZI_PART_DIT, NULL, PX_ECORRUPT);
    T_CONTAINS(e, "tensor x_embedder.weight appears twice (as model.diffusion_model.x_embedder.weight in");
    e = open_fails(path2(b, "int.safetensors"), ZI_PART_DIT, NULL, PX_EUNSUP);
    T_CONTAINS(e, "int.safetensors: tensor model.diffusion_model.x_pad_token has the type I32");

    e = open_fails(path2(b, "wrong_shard"), ZI_PART_DIT, NULL, PX_ECORRUPT);
    T_CONTAINS(e, "index.json: tensor x_pad_token is listed in ");
    T_CONTAINS(e, ", which does not hold it");
    e = open_fails(path2(b, "unlisted"), ZI_PART_DIT, NULL, PX_ECORRUPT);
    T_CONTAINS(e, "of-00002.safetensors: tensor cap_pad_token is not in the index");
    e = open_fails(path2(b, "both"), ZI_PART_DIT, NULL, PX_ECORRUPT);
    T_CONTAINS(e, ": tensor x_pad_token is in this shard too, but the index puts it in diffusion_pytorch_model-0000");
    e = open_fails(path2(b, "no_shard"), ZI_PART_DIT, NULL, PX_EIO);
    T_CONTAINS(e, "cannot open ");
    T_CONTAINS(e, "no_shard/diffusion_pytorch_model-00002-of-00002.safetensors");
    e = open_fails(path2(b, "no_to_k"), ZI_PART_DIT, NULL, PX_ECORRUPT);
    T_CONTAINS(e, "tensor layers.0.attention.qkv.weight: the attention's to_k weight is missing");
    e = open_fails(path2(b, "escape"), ZI_PART_DIT, NULL, PX_ECORRUPT);
    T_CONTAINS(e, "tensor x_pad_token: shard is not a file name in the directory");
    e = open_fails(path2(b, "no_config"), ZI_PART_DIT, NULL, PX_EUNSUP);
    T_CONTAINS(e, "no_config: no config.json");
    e = open_fails(path2(b, "no_index"), ZI_PART_DIT, NULL, PX_EUNSUP);
    T_CONTAINS(e, "no_index: several *.safetensors files and no index");
    e = open_fails(path2(b, "nonexistent"), ZI_PART_DIT, NULL, PX_EIO);
    T_CONTAINS(e, "cannot open ");

    /* Truncated single file and GGUF. */
    char t[1024], g[1024];
    snprintf(t, sizeof t, "%s/trunc.safetensors", b);
    sh("head -c 1000000 %s/single/z_image_turbo.safetensors > %s", m, t);
    e = open_fails(t, ZI_PART_DIT, NULL, PX_ECORRUPT);
    T_CONTAINS(e, "trunc.safetensors: safetensors: \"");
    T_CONTAINS(e, "outside the ");
    snprintf(g, sizeof g, "%s/dit.gguf", b);
    sh(GGUFW " write %s/single/z_image_turbo.safetensors %s --type Q8_0", m, g);
    sh("head -c -1000 %s > %s/trunc.gguf", g, b);
    e = open_fails(path2(b, "trunc.gguf"), ZI_PART_DIT, NULL, PX_ETRUNC);
    T_CONTAINS(e, "trunc.gguf: gguf: tensor ");
    T_CONTAINS(e, "but the data section has ");

    /* Missing and misshapen tensors, as the consumers see them. */
    zi_weights *w = open_ok(path2(m, "single/z_image_turbo.safetensors"), ZI_PART_DIT, NULL);
    const zi_tensor *x;
    char err[512];
    T_EQ_INT(zi_weights_get(w, "layers.9.attention.qkv.weight", 2, (int64_t[]){-1, -1}, &x, err,
                            sizeof err), PX_ENOTFOUND);
    T_CONTAINS(err, "z_image_turbo.safetensors: tensor layers.9.attention.qkv.weight is missing");
    T_EQ_INT(zi_weights_get(w, "layers.0.attention.qkv.weight", 2, (int64_t[]){3 * 64, 65}, &x, err,
                            sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "z_image_turbo.safetensors: tensor layers.0.attention.qkv.weight: expected [192, 65], found [192, 64]");
    T_EQ_INT(zi_weights_get(w, "layers.0.attention.qkv.weight", 2, (int64_t[]){-1, 64}, &x, err,
                            sizeof err), 0);
    T_EQ_INT(x->shape[0], 192);
    zi_weights_close(w);
}
TEST_MAIN(t_layouts_agree, t_gguf_types, t_bf16_sources, t_refusals)
