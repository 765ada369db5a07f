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

#define REF   "/usr/bin/python3 tools/zimage_reference.py"
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
    if (rc != want)
        px_tfail(__FILE__, __LINE__, "open %s: got %d (%s), want %d", path, rc, err, want);
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
 * and stay within each format's error of the original. (Alignment 64: the
 * F32 tensors are used in place in the mapping.) */
TEST(t_gguf_types)
{
    const char *m = make_model("single");
    static const struct {
        const char *type;
        double tol;    /* of the largest magnitude per tensor */
        int quantized; /* tensors expected in this type (row a multiple of the block) */
    } c[] = {{"F32", 0, 1},     {"F16", 1e-3, 1},  {"BF16", 4e-3, 1}, {"Q8_0", 1e-2, 1},
             {"Q4_0", 0.15, 1}, {"Q4_1", 0.15, 1}, {"Q5_0", 0.08, 1}, {"Q5_1", 0.08, 1},
             {"Q2_K", 0.6, 1},  {"Q3_K", 0.3, 1},  {"Q4_K", 0.15, 1}, {"Q5_K", 0.07, 1},
             {"Q6_K", 0.04, 1}};
    zi_weights *orig = open_ok(path2(m, "single/z_image_turbo.safetensors"), ZI_PART_DIT, NULL);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char g[600], r[600];
        snprintf(g, sizeof g, "%s/dit_%s.gguf", m, c[i].type);
        snprintf(r, sizeof r, "%s/dit_%s_numpy.safetensors", m, c[i].type);
        sh(GGUFW " write %s/single/z_image_turbo.safetensors %s --type %s --kv-extra --alignment "
                 "64 --dequant %s",
           m, g, c[i].type, r);
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
                if (x->dtype == ZI_BF16)
                    T_NEAR(elem(x, q), want, fabs(want) / 256 + 1e-30);
                else
                    T_EQ_INT(elem(x, q) == want, 1);
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

/* The other spellings: the DiT without the prefix and with diffusers'
 * names in one file, Qwen3 without `model.` and with llama.cpp's GGUF
 * names, the diffusers VAE file opened directly. */
TEST(t_name_variants)
{
    const char *m = make_model("hf,single");
    sh("/usr/bin/python3 tests/unit/zimage_weights_fixtures.py %s", m);
    char g[520];
    snprintf(g, sizeof g, "%s/good", m);
    static const struct {
        zi_part part;
        const char *ref, *file;
    } c[] = {
        {ZI_PART_DIT, "hf/transformer", "dit_noprefix.safetensors"},
        {ZI_PART_DIT, "hf/transformer", "dit_diffusers.safetensors"},
        {ZI_PART_TEXT, "hf/text_encoder", "qwen_noprefix.safetensors"},
        {ZI_PART_TEXT, "hf/text_encoder", "qwen_llama.safetensors"},
        {ZI_PART_VAE, "single/ae.safetensors", "../hf/vae/diffusion_pytorch_model.safetensors"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        zi_weights *a = open_ok(path2(m, c[i].ref), c[i].part, NULL);
        zi_weights *b = open_ok(path2(g, c[i].file), c[i].part, NULL);
        same_tensors(a, b, 0);
        zi_weights_close(a);
        zi_weights_close(b);
    }
    /* llama.cpp names through GGUF too. */
    sh(GGUFW " write %s/qwen_llama.safetensors %s/qwen.gguf --type F16 --dequant "
             "%s/qwen_numpy.safetensors",
       g, g, g);
    zi_weights *a = open_ok(path2(g, "qwen.gguf"), ZI_PART_TEXT, NULL);
    zi_weights *b = open_ok(path2(g, "qwen_numpy.safetensors"), ZI_PART_TEXT, NULL);
    same_tensors(a, b, 0);
    T_TRUE(zi_weights_find(a, "layers.2.mlp.down_proj.weight") != NULL);
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
    T_CONTAINS(
        e, "tensor x_embedder.weight appears twice (as model.diffusion_model.x_embedder.weight in");
    e = open_fails(path2(b, "int.safetensors"), ZI_PART_DIT, NULL, PX_EUNSUP);
    T_CONTAINS(e, "int.safetensors: tensor model.diffusion_model.x_pad_token has type I32, which "
                  "is not loaded");

    e = open_fails(path2(b, "wrong_shard"), ZI_PART_DIT, NULL, PX_ECORRUPT);
    T_CONTAINS(e, "index.json: tensor x_pad_token is listed in ");
    T_CONTAINS(e, ", which does not hold it");
    e = open_fails(path2(b, "unlisted"), ZI_PART_DIT, NULL, PX_ECORRUPT);
    T_CONTAINS(e, "of-00002.safetensors: tensor cap_pad_token is not in the index");
    e = open_fails(path2(b, "both"), ZI_PART_DIT, NULL, PX_ECORRUPT);
    T_CONTAINS(e, ": tensor x_pad_token is in this shard too, but the index puts it in "
                  "diffusion_pytorch_model-0000");
    e = open_fails(path2(b, "no_shard"), ZI_PART_DIT, NULL, PX_EIO);
    T_CONTAINS(e, "cannot open ");
    T_CONTAINS(e, "no_shard/diffusion_pytorch_model-00002-of-00002.safetensors");
    e = open_fails(path2(b, "no_to_k"), ZI_PART_DIT, NULL, PX_ECORRUPT);
    T_CONTAINS(e, "tensor layers.0.attention.qkv.weight: the attention's to_k weight is missing");
    e = open_fails(path2(b, "escape"), ZI_PART_DIT, NULL, PX_ECORRUPT);
    T_CONTAINS(e, "tensor x_pad_token: shard is not a file name in the directory");
    e = open_fails(path2(b, "no_config"), ZI_PART_DIT, NULL, PX_EUNSUP);
    T_CONTAINS(e, "no_config: no config.json");
    e = open_fails(path2(m, "hf"), ZI_PART_DIT, NULL, PX_EUNSUP);
    T_CONTAINS(e, "hf: no config.json: not a Hugging Face component directory (a pipeline "
                  "directory: give its transformer/, text_encoder/ or vae/)");
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
                            sizeof err),
             PX_ENOTFOUND);
    T_CONTAINS(err, "z_image_turbo.safetensors: tensor layers.9.attention.qkv.weight is missing");
    T_EQ_INT(zi_weights_get(w, "layers.0.attention.qkv.weight", 2, (int64_t[]){3 * 64, 65}, &x, err,
                            sizeof err),
             PX_ECORRUPT);
    T_CONTAINS(err, "z_image_turbo.safetensors: tensor layers.0.attention.qkv.weight: expected "
                    "[192, 65], found [192, 64]");
    T_EQ_INT(zi_weights_get(w, "layers.0.attention.qkv.weight", 2, (int64_t[]){-1, 64}, &x, err,
                            sizeof err),
             0);
    T_EQ_INT(x->shape[0], 192);
    zi_weights_close(w);
}

/* ---- GGUF files built byte by byte -------------------------------------------------- */

typedef struct gb {
    uint8_t b[8192];
    size_t n;
} gb;

static void put(gb *g, const void *p, size_t n)
{
    T_CMP_INT(g->n + n, <=, sizeof g->b);
    memcpy(g->b + g->n, p, n);
    g->n += n;
}
static void u32(gb *g, uint32_t v)
{
    put(g, &v, 4);
}
static void u64(gb *g, uint64_t v)
{
    put(g, &v, 8);
}
static void str(gb *g, const char *s)
{
    u64(g, strlen(s));
    put(g, s, strlen(s));
}
static void pad(gb *g, size_t a)
{
    while (g->n % a) g->b[g->n++] = 0;
}

/* One tensor info: name, dims (innermost first), type, offset. */
static void tinfo(gb *g, const char *name, int nd, const uint64_t *ne, uint32_t type, uint64_t off)
{
    str(g, name);
    u32(g, (uint32_t)nd);
    for (int i = 0; i < nd; i++) u64(g, ne[i]);
    u32(g, type);
    u64(g, off);
}

/* A valid file: every kv type, two tensors (F32 [2, 32] and Q8_0 [32]). */
static void good_gguf(gb *g, uint32_t version, uint32_t align)
{
    g->n = 0;
    put(g, "GGUF", 4);
    u32(g, version);
    u64(g, 2);
    u64(g, align ? 10 : 9);
    str(g, "general.architecture"), u32(g, ZI_GGUF_KV_STRING), str(g, "test");
    if (align) str(g, "general.alignment"), u32(g, ZI_GGUF_KV_U32), u32(g, align);
    str(g, "k.u8"), u32(g, ZI_GGUF_KV_U8), put(g, "\x07", 1);
    str(g, "k.i16"), u32(g, ZI_GGUF_KV_I16), put(g, "\xfd\xff", 2);
    str(g, "k.i32"), u32(g, ZI_GGUF_KV_I32), u32(g, (uint32_t)-5);
    str(g, "k.f32"), u32(g, ZI_GGUF_KV_F32), put(g, &(float){1.5f}, 4);
    str(g, "k.bool"), u32(g, ZI_GGUF_KV_BOOL), put(g, "\x01", 1);
    str(g, "k.u64"), u32(g, ZI_GGUF_KV_U64), u64(g, (uint64_t)1 << 40);
    str(g, "k.f64"), u32(g, ZI_GGUF_KV_F64), put(g, &(double){0.25}, 8);
    str(g, "k.strs"), u32(g, ZI_GGUF_KV_ARRAY), u32(g, ZI_GGUF_KV_STRING), u64(g, 2), str(g, "ab"),
        str(g, "");
    uint32_t a = align ? align : 32;
    tinfo(g, "a", 2, (uint64_t[]){32, 2}, ZI_GGUF_F32, 0);
    tinfo(g, "b", 1, (uint64_t[]){32}, ZI_GGUF_Q8_0, 256 > a ? 256 : a);
    pad(g, a);
    for (int i = 0; i < 64; i++) put(g, &(float){(float)i - 10}, 4);
    pad(g, a);
    u32(g, 0x3800); /* d = 0.5 (fp16) as the low half; next 2 bytes are q0, q1 */
    g->n -= 2;
    for (int i = 0; i < 32; i++) g->b[g->n++] = (uint8_t)(int8_t)(i - 16);
}

static int gparse(const gb *g, char *err, size_t errlen, zi_gguf **out)
{
    err[0] = 0;
    *out = NULL;
    int rc = zi_gguf_parse(g->b, g->n, out, err, errlen);
    if (rc && (!err[0] || *out)) px_tfail(__FILE__, __LINE__, "failure without message: %d", rc);
    return rc;
}

TEST(t_gguf_parse)
{
    gb g;
    char err[256];
    zi_gguf *gg;
    for (uint32_t v = 2; v <= 3; v++)
        for (uint32_t align = 0; align <= 64; align += 64) {
            good_gguf(&g, v, align);
            T_EQ_INT(gparse(&g, err, sizeof err, &gg), 0);
            T_EQ_INT(zi_gguf_version(gg), (int)v);
            T_EQ_INT(zi_gguf_count(gg), 2);
            T_EQ_INT(zi_gguf_kv_count(gg), align ? 10 : 9);
            T_EQ_STR(zi_gguf_kv_find(gg, "general.architecture")->str, "test");
            T_EQ_INT(zi_gguf_kv_find(gg, "k.u8")->u, 7);
            T_EQ_INT(zi_gguf_kv_find(gg, "k.i16")->i, -3);
            T_EQ_INT(zi_gguf_kv_find(gg, "k.i32")->i, -5);
            T_EQ_INT(zi_gguf_kv_find(gg, "k.f32")->f == 1.5, 1);
            T_EQ_INT(zi_gguf_kv_find(gg, "k.bool")->u, 1);
            T_EQ_INT(zi_gguf_kv_find(gg, "k.u64")->u, (uint64_t)1 << 40);
            T_EQ_INT(zi_gguf_kv_find(gg, "k.f64")->f == 0.25, 1);
            T_EQ_INT(zi_gguf_kv_find(gg, "k.strs")->count, 2);
            T_EQ_INT(zi_gguf_kv_find(gg, "k.strs")->elem_type, ZI_GGUF_KV_STRING);
            const zi_gguf_tensor *a = zi_gguf_find(gg, "a"), *b = zi_gguf_find(gg, "b");
            T_TRUE(a && b && !zi_gguf_find(gg, "c"));
            T_EQ_INT(a->ndim, 2);
            T_EQ_INT(a->ne[1], 2);
            T_EQ_INT((a->data - g.b) % (align ? align : 32), 0);
            T_EQ_INT((b->data - g.b) % (align ? align : 32), 0);
            float f[64];
            T_EQ_INT(zi_gguf_dequant(a->type, a->data, 64, f), 0);
            T_EQ_INT(f[63] == 53, 1);
            T_EQ_INT(zi_gguf_dequant(b->type, b->data, 32, f), 0);
            for (int i = 0; i < 32; i++) T_EQ_INT(f[i] == 0.5f * (float)(i - 16), 1);
            T_EQ_INT(zi_gguf_dequant(ZI_GGUF_Q8_1, b->data, 32, f), PX_EUNSUP);
            zi_gguf_close(gg);
        }
    /* Every truncation of a valid file is refused with a message. */
    good_gguf(&g, 3, 0);
    gb t = g;
    for (size_t n = 0; n < g.n; n++) {
        t.n = n;
        int rc = gparse(&t, err, sizeof err, &gg);
        if (rc != PX_ETRUNC && rc != PX_ECORRUPT)
            px_tfail(__FILE__, __LINE__, "prefix %zu: %d %s", n, rc, err);
    }
}

/* Byte-level refusals: each names what is wrong. */
TEST(t_gguf_rejects)
{
    gb g;
    char err[256];
    zi_gguf *gg;
    good_gguf(&g, 3, 0);
    g.b[0] = 'X';
    T_EQ_INT(gparse(&g, err, sizeof err, &gg), PX_ECORRUPT);
    T_CONTAINS(err, "no GGUF magic");
    good_gguf(&g, 1, 0);
    T_EQ_INT(gparse(&g, err, sizeof err, &gg), PX_EUNSUP);
    T_CONTAINS(err, "version 1 is not supported (2 and 3 are)");
    good_gguf(&g, 0x03000000, 0);
    T_EQ_INT(gparse(&g, err, sizeof err, &gg), PX_EUNSUP);
    T_CONTAINS(err, "big-endian");
    good_gguf(&g, 3, 0);
    memcpy(g.b + 8, &(uint64_t){1ull << 60}, 8);
    T_EQ_INT(gparse(&g, err, sizeof err, &gg), PX_ETRUNC);
    T_CONTAINS(err, "cannot fit");
    good_gguf(&g, 3, 48);
    T_EQ_INT(gparse(&g, err, sizeof err, &gg), PX_ECORRUPT);
    T_CONTAINS(err, "general.alignment is not a power of two");

    static const struct {
        uint32_t type;
        uint64_t ne0, off;
        int nd, rc;
        const char *msg;
    } c[] = {
        {99, 32, 0, 1, PX_EUNSUP, "gguf: tensor t has unknown type 99"},
        {ZI_GGUF_Q8_0, 33, 0, 1, PX_ECORRUPT,
         "row of 33 elements is not a multiple of Q8_0's block of 32"},
        {ZI_GGUF_F32, 4, 8, 1, PX_ECORRUPT, "offset 8 is not a multiple of the alignment 32"},
        {ZI_GGUF_F32, 64, 0, 1, PX_ETRUNC,
         "gguf: tensor t: 256 bytes at offset 0, but the data section has 128"},
        {ZI_GGUF_F32, 4, 0, 5, PX_ECORRUPT, "tensor t has 5 dimensions (1 to 4)"},
        {ZI_GGUF_F32, 4, 0, 0, PX_ECORRUPT, "tensor t has 0 dimensions"},
        {ZI_GGUF_F32, (uint64_t)1 << 62, 0, 4, PX_ECORRUPT, "tensor t: size overflows"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        g.n = 0;
        put(&g, "GGUF", 4), u32(&g, 3), u64(&g, 1), u64(&g, 0);
        uint64_t ne[5] = {c[i].ne0, c[i].ne0, c[i].ne0, c[i].ne0, 1};
        tinfo(&g, "t", c[i].nd, ne, c[i].type, c[i].off);
        pad(&g, 32);
        for (int k = 0; k < 128; k++) g.b[g.n++] = 0;
        T_EQ_INT(gparse(&g, err, sizeof err, &gg), c[i].rc);
        T_CONTAINS(err, c[i].msg);
    }
    /* Overlapping and duplicate tensors. */
    for (int dup = 0; dup < 2; dup++) {
        g.n = 0;
        put(&g, "GGUF", 4), u32(&g, 3), u64(&g, 2), u64(&g, 0);
        tinfo(&g, "t", 1, (uint64_t[]){16}, ZI_GGUF_F32, 0);
        tinfo(&g, dup ? "t" : "u", 1, (uint64_t[]){16}, ZI_GGUF_F32, dup ? 64 : 32);
        pad(&g, 32);
        for (int k = 0; k < 128; k++) g.b[g.n++] = 0;
        T_EQ_INT(gparse(&g, err, sizeof err, &gg), PX_ECORRUPT);
        T_CONTAINS(err, dup ? "gguf: tensor t appears twice" : "gguf: tensors t and u overlap");
    }
    /* Keys: a bool that is not 0/1, an array of arrays, a NUL in a key. */
    static const struct {
        const char *key;
        uint32_t type;
        const char *val;
        size_t vlen;
        const char *msg;
    } k[] = {
        {"b", ZI_GGUF_KV_BOOL, "\x02", 1, "key b: bool value 2"},
        {"arr", ZI_GGUF_KV_ARRAY, "\x09\0\0\0\x01\0\0\0\0\0\0\0", 12, "key arr: array of type 9"},
        {"x", 77, "", 0, "key x has unknown type 77"},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        g.n = 0;
        put(&g, "GGUF", 4), u32(&g, 3), u64(&g, 0), u64(&g, 1);
        str(&g, k[i].key), u32(&g, k[i].type), put(&g, k[i].val, k[i].vlen);
        for (int q = 0; q < 64; q++) g.b[g.n++] = 0;
        T_EQ_INT(gparse(&g, err, sizeof err, &gg), PX_ECORRUPT);
        T_CONTAINS(err, k[i].msg);
    }
    g.n = 0;
    put(&g, "GGUF", 4), u32(&g, 3), u64(&g, 0), u64(&g, 1);
    u64(&g, 3), put(&g, "a\0b", 3), u32(&g, ZI_GGUF_KV_U8), put(&g, "\x01", 1);
    for (int q = 0; q < 64; q++) g.b[g.n++] = 0;
    T_EQ_INT(gparse(&g, err, sizeof err, &gg), PX_ECORRUPT);
    T_CONTAINS(err, "a key holds a NUL byte");

    /* A type the parser knows but the loader does not dequantize: refused
     * by zi_weights_open naming the tensor and the type. */
    g.n = 0;
    put(&g, "GGUF", 4), u32(&g, 3), u64(&g, 1), u64(&g, 0);
    tinfo(&g, "x_pad_token", 2, (uint64_t[]){32, 1}, ZI_GGUF_Q8_1, 0);
    pad(&g, 32);
    for (int q = 0; q < 36; q++) g.b[g.n++] = 0;
    char path[600];
    snprintf(path, sizeof path, "%s/q81.gguf", px_test_tmpdir());
    FILE *f = fopen(path, "wb");
    T_TRUE(f && fwrite(g.b, 1, g.n, f) == g.n);
    fclose(f);
    const char *e = open_fails(path, ZI_PART_DIT, NULL, PX_EUNSUP);
    T_CONTAINS(e,
               "q81.gguf: tensor x_pad_token has type Q8_1, which is not loaded (F32, F16, BF16, "
               "F64, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K are)");
}

/* ---- configs ---------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) px_tfail(__FILE__, __LINE__, "cannot open %s", path);
    char *b = malloc(1 << 20);
    *len = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

/* The reference's config.json files parse to its tiny configuration; the
 * tensors fill a zeroed config with the same shapes, check a parsed one,
 * and refuse a config that contradicts them. */
TEST(t_config_with_weights)
{
    const char *m = make_model("hf,single");
    char err[512];
    size_t n;
    char *j = slurp(path2(m, "hf/transformer/config.json"), &n);
    zi_dit_config d, z = {0};
    zi_dit_config_default(&d);
    T_EQ_INT(zi_dit_config_parse(j, n, &d, err, sizeof err), 0);
    T_EQ_INT(d.dim, 64);
    T_EQ_INT(d.n_heads, 2);
    T_EQ_INT(d.n_layers, 2);
    T_EQ_INT(d.n_refiner_layers, 1);
    T_EQ_INT(d.cap_feat_dim, 32);
    T_EQ_INT(d.axes_dims[1], 12);
    T_EQ_INT(d.patch, 2);
    T_EQ_INT(d.ffn_hidden, 170);
    T_EQ_INT(d.t_dim, 64);
    free(j);
    zi_weights *w = open_ok(path2(m, "single/z_image_turbo.safetensors"), ZI_PART_DIT, NULL);
    T_EQ_INT(zi_dit_config_from_weights(w, &d, err, sizeof err), 0);
    T_EQ_INT(zi_dit_config_from_weights(w, &z, err, sizeof err), 0);
    T_EQ_MEM(&z, &d, sizeof d);
    zi_dit_config bad = d;
    bad.dim = 128;
    T_EQ_INT(zi_dit_config_from_weights(w, &bad, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "z_image_turbo.safetensors: tensor x_embedder.weight: expected dim = 128 (the "
                    "config), found 64 (shape [64, 64])");
    bad = d;
    bad.n_layers = 3;
    T_EQ_INT(zi_dit_config_from_weights(w, &bad, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err,
               "tensor layers.0.attention.qkv.weight: expected n_layers = 3 (the config), found 2");
    zi_weights_close(w);

    j = slurp(path2(m, "hf/text_encoder/config.json"), &n);
    zi_qwen3_config q, qz = {0};
    zi_qwen3_config_default(&q);
    T_EQ_INT(zi_qwen3_config_parse(j, n, &q, err, sizeof err), 0);
    free(j);
    T_EQ_INT(q.hidden, 32);
    T_EQ_INT(q.n_layers, 3);
    T_EQ_INT(q.n_heads, 4);
    T_EQ_INT(q.n_kv_heads, 2);
    T_EQ_INT(q.head_dim, 16);
    T_EQ_INT(q.intermediate, 96);
    T_NEAR(q.rope_theta, 1e6, 1);
    w = open_ok(path2(m, "hf/text_encoder"), ZI_PART_TEXT, NULL);
    T_EQ_INT(zi_qwen3_config_from_weights(w, &q, err, sizeof err), 0);
    T_EQ_INT(zi_qwen3_config_from_weights(w, &qz, err, sizeof err), 0);
    T_EQ_MEM(&qz, &q, sizeof q);
    q.head_dim = 8;
    T_EQ_INT(zi_qwen3_config_from_weights(w, &q, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "-of-00002.safetensors: tensor layers.0.self_attn.q_norm.weight: expected "
                    "head_dim = 8 (the config), found 16 (shape [16])");
    zi_weights_close(w);

    j = slurp(path2(m, "hf/vae/config.json"), &n);
    zi_vae_config v, vz = {0};
    zi_vae_config_default(&v);
    T_EQ_INT(zi_vae_config_parse(j, n, &v, err, sizeof err), 0);
    free(j);
    T_EQ_INT(v.nlevels, 4);
    T_EQ_INT(v.block_out[0], 16);
    T_EQ_INT(v.block_out[3], 32);
    T_EQ_INT(v.groups, 8);
    vz.groups = 8;
    w = open_ok(path2(m, "single/ae.safetensors"), ZI_PART_VAE, NULL);
    T_EQ_INT(zi_vae_config_from_weights(w, &v, err, sizeof err), 0);
    T_EQ_INT(zi_vae_config_from_weights(w, &vz, err, sizeof err), 0);
    T_EQ_MEM(&vz, &v, sizeof v);
    v.block_out[0] = 24;
    T_EQ_INT(zi_vae_config_from_weights(w, &v, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "ae.safetensors: tensor decoder.up_blocks.3.resnets.0.conv2.weight: expected "
                    "block_out_channels[0] = 24 (the config), found 16");
    zi_weights_close(w);

    j = slurp(path2(m, "hf/scheduler/scheduler_config.json"), &n);
    zi_sampler_config sc;
    zi_sampler_config_default(&sc);
    T_EQ_INT(zi_sampler_config_parse(j, n, &sc, err, sizeof err), 0);
    free(j);
    T_NEAR(sc.shift, 3, 0);
    T_EQ_INT(sc.num_train_timesteps, 1000);
}

/* Config texts: defaults kept for missing keys, unknown keys ignored, and
 * every wrong type or range refused naming the key. */
TEST(t_config_parse)
{
    char err[256];
    zi_dit_config d;
    zi_dit_config_default(&d);
    const char *ok = "{\"dim\": 128, \"n_heads\": 4, \"axes_dims\": [8, 12, 12], \"x\": [{}]}";
    T_EQ_INT(zi_dit_config_parse(ok, strlen(ok), &d, err, sizeof err), 0);
    T_EQ_INT(d.dim, 128);
    T_EQ_INT(d.n_layers, 30);
    T_EQ_INT(d.ffn_hidden, 341);
    static const struct {
        int which; /* 0 DiT, 1 Qwen3, 2 VAE, 3 scheduler */
        const char *json, *msg;
    } c[] = {
        {0, "{\"dim\": \"x\"}", "config key \"dim\" is not an integer"},
        {0, "{\"dim\": 64.5}", "config key \"dim\" is not an integer"},
        {0, "{\"dim\": 1e12}", "config key \"dim\" is 1000000000000, outside [1, 1048576]"},
        {0, "{\"dim\": 64, \"n_heads\": 3}", "config key \"n_heads\" does not divide dim"},
        {0, "{\"axes_dims\": [1, 2]}", "config key \"axes_dims\" has 2 elements, not 3"},
        {0, "{\"axes_dims\": [31, 49, 48]}",
         "config key \"axes_dims\" are not even sizes that sum"},
        {0, "{\"all_patch_size\": []}", "config key \"all_patch_size\" has 0 elements"},
        {0, "{\"norm_eps\": \"1e-5\"}", "config key \"norm_eps\" is not a number"},
        {0, "[1]", "transformer config is not a JSON object"},
        {0, "{\"dim\": ", "transformer config is not valid JSON"},
        {0, "{\"a\": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}", "nests deeper than 16 levels"},
        {1, "{\"num_key_value_heads\": 5}", "config key \"num_key_value_heads\" does not divide"},
        {1, "{\"rms_norm_eps\": -1}", "config key \"rms_norm_eps\" is -1, outside"},
        {1, "{\"head_dim\": 127}", "config key \"head_dim\" is odd"},
        {2, "{\"block_out_channels\": []}", "config key \"block_out_channels\" has 0 elements"},
        {2, "{\"block_out_channels\": [1,2,3,4,5,6,7,8,9]}", "has 9 elements (1 to 8)"},
        {2, "{\"norm_num_groups\": 5}", "config key \"norm_num_groups\" does not divide"},
        {2, "{\"scaling_factor\": 0}", "config key \"scaling_factor\" is 0, outside"},
        {3, "{\"shift\": null}", "config key \"shift\" is not a number"},
        {3, "{\"num_train_timesteps\": 0}", "config key \"num_train_timesteps\" is 0, outside"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        zi_qwen3_config q;
        zi_vae_config v;
        zi_sampler_config s;
        zi_dit_config_default(&d);
        zi_qwen3_config_default(&q);
        zi_vae_config_default(&v);
        zi_sampler_config_default(&s);
        size_t n = strlen(c[i].json);
        err[0] = 0;
        int rc = c[i].which == 0   ? zi_dit_config_parse(c[i].json, n, &d, err, sizeof err)
                 : c[i].which == 1 ? zi_qwen3_config_parse(c[i].json, n, &q, err, sizeof err)
                 : c[i].which == 2 ? zi_vae_config_parse(c[i].json, n, &v, err, sizeof err)
                                   : zi_sampler_config_parse(c[i].json, n, &s, err, sizeof err);
        if (rc != PX_EINVAL) px_tfail(__FILE__, __LINE__, "%s: rc %d (%s)", c[i].json, rc, err);
        T_CONTAINS(err, c[i].msg);
    }
    zi_vae_config v;
    zi_vae_config_default(&v);
    const char *vj = "{\"shift_factor\": null, \"block_out_channels\": [64, 128]}";
    T_EQ_INT(zi_vae_config_parse(vj, strlen(vj), &v, err, sizeof err), 0);
    T_EQ_INT(v.shift_factor == 0, 1);
    T_EQ_INT(v.nlevels, 2);
    T_EQ_INT(v.block_out[1], 128);
}

TEST_MAIN(t_layouts_agree, t_name_variants, t_gguf_types, t_bf16_sources, t_refusals, t_gguf_parse,
          t_gguf_rejects, t_config_with_weights, t_config_parse)
