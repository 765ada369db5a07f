/*
 * lama_test.c — the LaMa engine: the safetensors reader's every rejection
 * path, the weights loader's checks, the network against the PyTorch
 * reference (tools/lama_reference.py, run at test time with random weights)
 * layer by layer and at the output on sizes that are not multiples of 8,
 * with odd prime FFT sizes and non-square, the full big-lama architecture on
 * one small image, and the engine contract (pixels outside the mask, cancel,
 * concurrent runs, memory estimate, description).
 *
 * The per-layer comparison is also the debugging helper: run
 *   PX_LAMA_LAYERS=1 build/release/tests/lama_test t_reference_tiny
 * to print every layer's error against the reference.
 */
#include "core/err.h"
#include "core/pool.h"
#include "engine/engine.h"
#include "engine/lama/graph.h"
#include "engine/safetensors.h"
#include "engine/lama/weights.h"
#include "harness.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PY "/usr/bin/python3 tools/lama_reference.py"

/* Tolerance in fp32 on outputs in [0, 1] (the bound). */
#define TOL 1e-4

/* --- a safetensors writer for tests ------------------------------------------------- */

/* header text + data -> file image (8-byte length first). */
static uint8_t *st_raw(const char *hdr, const void *data, size_t dlen, size_t *len)
{
    size_t h = strlen(hdr);
    *len = 8 + h + dlen;
    uint8_t *b = malloc(*len + 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, hdr, h);
    if (dlen) memcpy(b + 8 + h, data, dlen);
    return b;
}

static int parse_raw(const char *hdr, size_t dlen, char *err, size_t errlen)
{
    uint8_t zeros[64] = {0};
    size_t len;
    uint8_t *b = st_raw(hdr, zeros, dlen, &len);
    px_st *st = NULL;
    err[0] = 0;
    int rc = px_st_parse(b, len, &st, err, errlen);
    px_st_close(st);
    free(b);
    return rc;
}

typedef struct {
    char name[160];
    const char *dtype;
    int ndim;
    int64_t shape[8];
    const void *data;
    size_t nbytes;
} wtensor;

/* Writes tensors (and metadata "k":"v" pairs as one JSON fragment) to path. */
static void st_write(const char *path, const char *meta, const wtensor *t, int n)
{
    size_t cap = 1 << 20, at = 0, off = 0;
    char *h = malloc(cap);
    at += (size_t)snprintf(h + at, cap - at, "{");
    if (meta) at += (size_t)snprintf(h + at, cap - at, "\"__metadata__\":{%s}", meta);
    for (int i = 0; i < n; i++) {
        if (at + 512 > cap) h = realloc(h, cap *= 2);
        at += (size_t)snprintf(h + at, cap - at, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                               (meta || i) ? "," : "", t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++)
            at += (size_t)snprintf(h + at, cap - at, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        at += (size_t)snprintf(h + at, cap - at, "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].nbytes);
        off += t[i].nbytes;
    }
    at += (size_t)snprintf(h + at, cap - at, "}");
    FILE *f = fopen(path, "wb");
    T_TRUE(f != NULL);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)at >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(h, 1, at, f);
    for (int i = 0; i < n; i++)
        if (t[i].nbytes) fwrite(t[i].data, 1, t[i].nbytes, f);
    fclose(f);
    free(h);
}

/* --- safetensors reader --------------------------------------------------------------- */

TEST(t_st_rejects)
{
    static const struct {
        const char *hdr;
        size_t dlen;
        int rc;
        const char *msg;
    } cases[] = {
        {"[1]", 0, PX_ECORRUPT, "not a JSON object"},
        {" {}", 0, PX_ECORRUPT, "not a JSON object"},
        {"{\"a\":", 0, PX_ECORRUPT, "not valid JSON"},
        {"{}x", 0, PX_ECORRUPT, "after the header"},
        {"{\"a\":1}", 0, PX_ECORRUPT, "not an object"},
        {"{\"a\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, PX_ECORRUPT, "unknown dtype"},
        {"{\"a\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, PX_ECORRUPT, "dtype is not a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4, PX_ECORRUPT, "not an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, PX_ECORRUPT, "non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, PX_ECORRUPT, "non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, PX_ECORRUPT, "dimensions"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, PX_ECORRUPT, "overflows"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, PX_ECORRUPT, "[begin, end]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, PX_ECORRUPT, "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4, PX_ECORRUPT, "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, PX_ECORRUPT, "needs 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, PX_ECORRUPT, "overlaps"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, PX_ECORRUPT, "unused bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, PX_ECORRUPT, "after the last"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, PX_ECORRUPT, "appears twice"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, PX_ECORRUPT, "unknown field"},
        {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, PX_ECORRUPT, "repeats"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, PX_ECORRUPT, "lacks data_offsets"},
        {"{\"__metadata__\":{\"k\":1}}", 0, PX_ECORRUPT, "not a string"},
        {"{\"__metadata__\":[]}", 0, PX_ECORRUPT, "__metadata__ is not an object"},
        {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, PX_ECORRUPT, "appears twice"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, PX_ECORRUPT, "two __metadata__"},
        {"{\"a\":[[[[[1]]]]]}", 0, PX_ECORRUPT, "nests deeper"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = parse_raw(cases[i].hdr, cases[i].dlen, err, sizeof err);
        if (rc != cases[i].rc || !strstr(err, cases[i].msg))
            px_tfail(PX_TLOC_, "case %zu (%s): rc %d (want %d), err \"%s\" (want \"%s\")", i,
                     cases[i].hdr, rc, cases[i].rc, err, cases[i].msg);
    }
    /* Lengths: shorter than 8, a header past the end, a header above the cap. */
    px_st *st = NULL;
    uint8_t b[16] = {0};
    T_EQ_INT(px_st_parse(b, 7, &st, err, sizeof err), PX_ETRUNC);
    b[0] = 100;
    T_EQ_INT(px_st_parse(b, 16, &st, err, sizeof err), PX_ETRUNC);
    T_CONTAINS(err, "only 8 follow");
    memset(b, 0, 8);
    b[4] = 1; /* 2^32 bytes */
    T_EQ_INT(px_st_parse(b, 16, &st, err, sizeof err), PX_ETOOBIG);
    T_TRUE(st == NULL);
    /* Files: missing, a directory, too short. */
    T_EQ_INT(px_st_open("/nonexistent/x.safetensors", &st, err, sizeof err), PX_EIO);
    T_EQ_INT(px_st_open("/tmp", &st, err, sizeof err), PX_EIO);
    char path[512];
    snprintf(path, sizeof path, "%s/short", px_test_tmpdir());
    FILE *f = fopen(path, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    T_EQ_INT(px_st_open(path, &st, err, sizeof err), PX_ETRUNC);
}

TEST(t_st_reads)
{
    /* F32 pair, an F16 and a BF16 (1.0, -2.5, 65504, 2^-24), a scalar I64,
     * an empty tensor, metadata; written with unaligned data (odd header). */
    float f32[2] = {1.5f, -3.25f};
    uint16_t f16[4] = {0x3c00, 0xc100, 0x7bff, 0x0001};
    uint16_t bf16[2] = {0x3f80, 0xc020};
    int64_t i64 = 42;
    wtensor t[] = {
        {"w", "F32", 2, {1, 2}, f32, 8},   {"h", "F16", 1, {4}, f16, 8},
        {"b", "BF16", 1, {2}, bf16, 4},     {"n", "I64", 0, {0}, &i64, 8},
        {"e", "F32", 2, {0, 3}, NULL, 0},
    };
    char path[512];
    snprintf(path, sizeof path, "%s/ok.safetensors", px_test_tmpdir());
    st_write(path, "\"k\":\"v\",\"a\":\"1\"", t, 5);
    px_st *st;
    char err[256];
    T_EQ_INT(px_st_open(path, &st, err, sizeof err), 0);
    T_EQ_INT(px_st_count(st), 5);
    T_EQ_STR(px_st_at(st, 0)->name, "b"); /* name order */
    T_EQ_STR(px_st_meta(st, "k"), "v");
    T_EQ_STR(px_st_meta(st, "a"), "1");
    T_TRUE(px_st_meta(st, "zz") == NULL);
    T_TRUE(px_st_find(st, "nope") == NULL);
    const px_st_tensor *x = px_st_find(st, "w");
    T_EQ_INT(x->ndim, 2);
    T_EQ_INT(x->shape[1], 2);
    float out[4];
    T_EQ_INT(px_st_to_f32(x, out), 0);
    T_EQ_MEM(out, f32, 8);
    T_EQ_INT(px_st_to_f32(px_st_find(st, "h"), out), 0);
    T_NEAR(out[0], 1.0, 0);
    T_NEAR(out[1], -2.5, 0);
    T_NEAR(out[2], 65504.0, 0);
    T_NEAR(out[3], ldexp(1.0, -24), 0);
    T_EQ_INT(px_st_to_f32(px_st_find(st, "b"), out), 0);
    T_NEAR(out[0], 1.0, 0);
    T_NEAR(out[1], -2.5, 0);
    x = px_st_find(st, "n");
    T_EQ_INT(x->ndim, 0);
    T_EQ_INT(x->nelem, 1);
    T_EQ_INT(px_st_to_f32(x, out), PX_EUNSUP);
    T_EQ_INT(px_st_find(st, "e")->nelem, 0);
    px_st_close(st);
}

/* --- reference data -------------------------------------------------------------- */

/* Runs the reference: random weights of `config` and cases of `sizes`. */
static char *make_reference(const char *config, const char *sizes, bool dump)
{
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/ref", px_test_tmpdir());
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             PY " cases --config %s --weights-seed 7 --weights %s/w.safetensors --sizes %s "
                "--seed 11 --out %s %s",
             config, dir, sizes, dir, dump ? "--dump" : "");
    int rc = system(cmd);
    if (rc != 0) px_tfail(PX_TLOC_, "reference failed (%d): %s", rc, cmd);
    return dir;
}

static char *weights_path(const char *dir)
{
    static char p[700];
    snprintf(p, sizeof p, "%s/w.safetensors", dir);
    return p;
}

typedef struct {
    const px_st *ref;
    int nlayers;
    double worst_rel;
    char worst[64];
    bool print;
} layer_cmp;

/* Compares one layer with the reference's dump of the same name. */
static void on_layer(void *ctx, const char *name, const float *t, int h, int w, int c)
{
    layer_cmp *lc = ctx;
    const px_st_tensor *r = px_st_find(lc->ref, name);
    if (!r) return;
    if (r->ndim != 3 || r->shape[0] != h || r->shape[1] != w || r->shape[2] != c)
        px_tfail(PX_TLOC_, "%s: shape %dx%dx%d, reference %lldx%lldx%lld", name, h, w, c,
                 (long long)r->shape[0], (long long)r->shape[1], (long long)r->shape[2]);
    size_t n = (size_t)h * w * c;
    float *ref = malloc(n * sizeof *ref);
    px_st_to_f32(r, ref);
    double md = 0, mag = 0, sum = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)t[i] - ref[i]);
        md = fmax(md, d);
        sum += d;
        mag = fmax(mag, fabs(ref[i]));
    }
    free(ref);
    double rel = md / fmax(1.0, mag);
    lc->nlayers++;
    if (rel >= lc->worst_rel) {
        lc->worst_rel = rel;
        snprintf(lc->worst, sizeof lc->worst, "%s", name);
    }
    if (lc->print || rel > TOL)
        printf("      %-22s %4dx%-4dx%-4d max|d| %.3g  mean|d| %.3g  max|ref| %.3g\n", name, w, h, c,
               md, sum / (double)n, mag);
}

/* Runs one case file through the network; returns max abs error, sets mean. */
static double run_case(px_lama_net *net, px_pool *pool, const char *path, bool layers, double *mean,
                       int *w_out, int *h_out, layer_cmp *lc)
{
    px_st *st;
    char err[300];
    if (px_st_open(path, &st, err, sizeof err)) px_tfail(PX_TLOC_, "%s", err);
    const px_st_tensor *ti = px_st_find(st, "image"), *tm = px_st_find(st, "mask"),
                       *tr = px_st_find(st, "result");
    T_TRUE(ti && tm && tr && ti->dtype == PX_ST_U8 && tm->dtype == PX_ST_U8);
    int h = (int)ti->shape[0], w = (int)ti->shape[1];
    px_image img = {w, h, 3, malloc(ti->nbytes)}, mask = {w, h, 1, malloc(tm->nbytes)};
    memcpy(img.px, ti->data, ti->nbytes);
    memcpy(mask.px, tm->data, tm->nbytes);
    float *ref = malloc(tr->nelem * sizeof *ref), *res = malloc(tr->nelem * sizeof *res);
    px_st_to_f32(tr, ref);
    const px_lama_arch *a = px_lama_net_arch(net);
    px_lama_plan *plan;
    int H = px_lama_padded_side(a, h), W = px_lama_padded_side(a, w);
    if (px_lama_plan_create(net, H, W, px_pool_threads(pool), &plan, err, sizeof err))
        px_tfail(PX_TLOC_, "%s", err);
    *lc = (layer_cmp){.ref = st, .print = layers};
    if (px_lama_plan_run(plan, pool, &img, &mask, res, NULL, on_layer, lc, err, sizeof err))
        px_tfail(PX_TLOC_, "%s", err);
    double md = 0, sum = 0;
    for (size_t i = 0; i < tr->nelem; i++) {
        double d = fabs((double)res[i] - ref[i]);
        md = fmax(md, d);
        sum += d;
    }
    *mean = sum / (double)tr->nelem;
    *w_out = w;
    *h_out = h;
    px_lama_plan_destroy(plan);
    free(ref);
    free(res);
    free(img.px);
    free(mask.px);
    px_st_close(st);
    return md;
}

static void compare_sizes(const char *config, const char *sizes, bool dump, bool print_layers)
{
    const char *dir = make_reference(config, sizes, dump);
    px_lama_net *net;
    char err[300];
    if (px_lama_net_load(weights_path(dir), &net, err, sizeof err)) px_tfail(PX_TLOC_, "%s", err);
    px_pool *pool = px_pool_create(0);
    bool env = getenv("PX_LAMA_LAYERS") != NULL;
    char list[256];
    snprintf(list, sizeof list, "%s", sizes);
    int k = 0;
    for (char *save, *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save), k++) {
        char path[800];
        snprintf(path, sizeof path, "%s/case_%s.safetensors", dir, s);
        double mean;
        int w, h;
        layer_cmp lc;
        double md = run_case(net, pool, path, env || (print_layers && k == 0), &mean, &w, &h, &lc);
        int H = px_lama_padded_side(px_lama_net_arch(net), h), W = px_lama_padded_side(px_lama_net_arch(net), w);
        printf("    %s %dx%d (padded %dx%d, FFT %dx%d): max|err| %.3g  mean|err| %.3g", config, w, h,
               W, H, W >> 3, H >> 3, md, mean);
        if (lc.nlayers) printf("  (%d layers, worst %s rel %.3g)", lc.nlayers, lc.worst, lc.worst_rel);
        printf("\n");
        T_CMP_DBL(md, <=, TOL);
        if (lc.nlayers) T_CMP_DBL(lc.worst_rel, <=, TOL);
    }
    px_pool_destroy(pool);
    px_lama_net_free(net);
}

/* Tiny configuration (ngf 8, 2 blocks): square; 61x45 (not multiples of 8);
 * 100x53 (FFT 13x7, odd primes), 37x120 (FFT 5x15), 13x10 (below the minimum
 * side, padded to 16: FFT 2x2), 200x24 (FFT 25x3, wide). */
TEST(t_reference_tiny)
{
    compare_sizes("tiny", "64x64,61x45,100x53,37x120,13x10,200x24", true, true);
}

/* A second shape of network: ngf 16 (trunk 128: 32 local, 96 global), one
 * block; its 16-channel output layer takes the backend's direct RGB kernel
 * (conv_narrow.c) where the CPU has AVX-512. */
TEST(t_reference_tiny1)
{
    compare_sizes("tiny1", "40x40,57x31", true, false);
}

/* The full big-lama architecture (18 blocks, 51 M parameters) on one small
 * image. Sanitizer builds skip it: loading and folding 200 MB of weights
 * under ASan adds a minute for no new coverage (the same code runs above). */
TEST(t_reference_big_lama)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    printf("    skipped under sanitizers: big-lama's 51 M weights (the tiny configurations cover "
           "the same code)\n");
#else
    compare_sizes("big-lama", "64x48", false, false);
#endif
}

/* --- weights loader ------------------------------------------------------------ */

typedef struct {
    px_st *st;
    wtensor *t;
    int n;
    char meta[2048];
} wfile;

static void wfile_read(wfile *wf, const char *path)
{
    char err[300];
    if (px_st_open(path, &wf->st, err, sizeof err)) px_tfail(PX_TLOC_, "%s", err);
    wf->n = px_st_count(wf->st);
    wf->t = calloc((size_t)wf->n + 1, sizeof *wf->t);
    for (int i = 0; i < wf->n; i++) {
        const px_st_tensor *x = px_st_at(wf->st, i);
        snprintf(wf->t[i].name, sizeof wf->t[i].name, "%s", x->name);
        wf->t[i].dtype = px_st_dtype_name(x->dtype);
        wf->t[i].ndim = x->ndim;
        memcpy(wf->t[i].shape, x->shape, sizeof x->shape);
        wf->t[i].data = x->data;
        wf->t[i].nbytes = x->nbytes;
    }
    snprintf(wf->meta, sizeof wf->meta,
             "\"format\":\"pixserve-lama\",\"arch\":\"ffc_resnet\",\"ngf\":\"%s\","
             "\"n_downsampling\":\"%s\",\"n_blocks\":\"%s\",\"ratio_g\":\"%s\"",
             px_st_meta(wf->st, "ngf"), px_st_meta(wf->st, "n_downsampling"),
             px_st_meta(wf->st, "n_blocks"), px_st_meta(wf->st, "ratio_g"));
}

static int find_t(const wfile *wf, const char *name)
{
    for (int i = 0; i < wf->n; i++)
        if (!strcmp(wf->t[i].name, name)) return i;
    px_tfail(PX_TLOC_, "no tensor %s", name);
}

/* Writes the (modified) tensors and tries to load them as a network. */
static int try_load(const wfile *wf, const char *meta, int n, char *err, size_t errlen)
{
    char path[600];
    snprintf(path, sizeof path, "%s/variant.safetensors", px_test_tmpdir());
    st_write(path, meta, wf->t, n);
    px_lama_net *net = NULL;
    err[0] = 0;
    int rc = px_lama_net_load(path, &net, err, errlen);
    px_lama_net_free(net);
    return rc;
}

TEST(t_weights_rejects)
{
    const char *dir = make_reference("tiny1", "16x16", false);
    wfile wf;
    wfile_read(&wf, weights_path(dir));
    char err[400];
    T_EQ_INT(try_load(&wf, wf.meta, wf.n, err, sizeof err), 0);

    /* Metadata: none, another format, a count missing, an architecture
     * that does not match the tensors. */
    T_EQ_INT(try_load(&wf, NULL, wf.n, err, sizeof err), PX_EUNSUP);
    T_CONTAINS(err, "lama_convert.py");
    T_EQ_INT(try_load(&wf, "\"format\":\"other\",\"arch\":\"ffc_resnet\"", wf.n, err, sizeof err), PX_EUNSUP);
    T_EQ_INT(try_load(&wf, "\"format\":\"pixserve-lama\",\"arch\":\"ffc_resnet\",\"ngf\":\"16\"", wf.n,
                      err, sizeof err), PX_EUNSUP);
    T_CONTAINS(err, "n_downsampling");
    char meta[2200];
    snprintf(meta, sizeof meta, "%s,\"out_act\":\"tanh\"", wf.meta);
    T_EQ_INT(try_load(&wf, meta, wf.n, err, sizeof err), PX_EUNSUP);
    T_CONTAINS(err, "sigmoid");
    snprintf(meta, sizeof meta,
             "\"format\":\"pixserve-lama\",\"arch\":\"ffc_resnet\",\"ngf\":\"16\","
             "\"n_downsampling\":\"3\",\"n_blocks\":\"2\",\"ratio_g\":\"0.75\"");
    T_EQ_INT(try_load(&wf, meta, wf.n, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "model.6.conv1.ffc.convl2l.weight is missing");
    snprintf(meta, sizeof meta,
             "\"format\":\"pixserve-lama\",\"arch\":\"ffc_resnet\",\"ngf\":\"16\","
             "\"n_downsampling\":\"3\",\"n_blocks\":\"1\",\"ratio_g\":\"1.5\"");
    T_EQ_INT(try_load(&wf, meta, wf.n, err, sizeof err), PX_EUNSUP);
    T_CONTAINS(err, "ratio");

    /* A tensor missing (renamed), with a wrong shape, a wrong dtype,
     * a non-finite value, and an extra one. */
    int i = find_t(&wf, "model.5.conv1.ffc.convg2g.fu.conv_layer.weight");
    wtensor keep = wf.t[i];
    snprintf(wf.t[i].name, sizeof wf.t[i].name, "renamed");
    T_EQ_INT(try_load(&wf, wf.meta, wf.n, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "model.5.conv1.ffc.convg2g.fu.conv_layer.weight is missing");
    wf.t[i] = keep;
    wf.t[i].shape[0] = keep.shape[1] * 2; /* same bytes, another shape */
    wf.t[i].shape[1] = keep.shape[0] / 2;
    T_EQ_INT(try_load(&wf, wf.meta, wf.n, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "has shape [192x48x1x1], expected [96x96x1x1]");
    wf.t[i] = keep;
    wf.t[i].dtype = "I32";
    T_EQ_INT(try_load(&wf, wf.meta, wf.n, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "not a float tensor");
    wf.t[i] = keep;
    float *bad = malloc(keep.nbytes);
    memcpy(bad, keep.data, keep.nbytes);
    bad[3] = NAN;
    wf.t[i].data = bad;
    T_EQ_INT(try_load(&wf, wf.meta, wf.n, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "non-finite");
    wf.t[i] = keep;
    float extra = 1;
    wf.t[wf.n] = (wtensor){"model.5.conv1.ffc.convg2g.lfu.conv_layer.weight", "F32", 1, {1}, &extra, 4};
    T_EQ_INT(try_load(&wf, wf.meta, wf.n + 1, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "lfu.conv_layer.weight is not part of the architecture");
    int v = find_t(&wf, "model.1.bn_l.running_var");
    keep = wf.t[v];
    float *neg = malloc(keep.nbytes);
    memcpy(neg, keep.data, keep.nbytes);
    neg[0] = -1;
    wf.t[v].data = neg;
    T_EQ_INT(try_load(&wf, wf.meta, wf.n, err, sizeof err), PX_ECORRUPT);
    T_CONTAINS(err, "negative");
    wf.t[v] = keep;

    /* The Lightning checkpoint's own names ("generator." prefix) load too. */
    for (int k = 0; k < wf.n; k++) {
        char *nm = wf.t[k].name;
        size_t len = strlen(nm);
        T_TRUE(len + 11 <= sizeof wf.t[k].name);
        memmove(nm + 10, nm, len + 1);
        memcpy(nm, "generator.", 10);
    }
    T_EQ_INT(try_load(&wf, wf.meta, wf.n, err, sizeof err), 0);
    free(bad);
    free(neg);
    free(wf.t);
    px_st_close(wf.st);

    /* Architecture arithmetic: big-lama's trunk split. */
    px_lama_arch a;
    T_EQ_INT(px_lama_arch_init(&a, 64, 3, 18, 0.75, err, sizeof err), 0);
    T_EQ_INT(a.dim, 512);
    T_EQ_INT(a.cl, 128);
    T_EQ_INT(a.cg, 384);
    T_EQ_INT(a.cs, 192);
    T_EQ_INT(px_lama_padded_side(&a, 1), 16);
    T_EQ_INT(px_lama_padded_side(&a, 17), 24);
    T_EQ_INT(px_lama_padded_side(&a, 512), 512);
    T_EQ_INT(px_lama_plan_arena_bytes(&a, 20, 16), 0); /* not a padded side */
}

/* --- the engine --------------------------------------------------------------- */

static px_engine *open_engine(const char *weights, px_pool *pool)
{
    px_engine *e;
    char err[300];
    px_engine_config cfg = {.weights = weights, .pool = pool};
    if (px_engine_open("lama", &cfg, &e, err, sizeof err)) px_tfail(PX_TLOC_, "%s", err);
    return e;
}

static px_image synth(int w, int h, int c, unsigned seed)
{
    px_image im = {w, h, c, malloc((size_t)w * h * c)};
    for (size_t i = 0; i < (size_t)w * h * c; i++) {
        seed = seed * 1103515245u + 12345u;
        im.px[i] = (uint8_t)(c == 1 ? ((seed >> 16) % 5 == 0 ? 255 : 0) : (seed >> 16));
    }
    return im;
}

typedef struct {
    px_engine *e;
    const px_image *img, *mask;
    px_image out;
    int rc;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    px_engine_item it = {.image = j->img, .mask = j->mask, .out = &j->out};
    j->rc = px_engine_run(j->e, &it, 1);
    return NULL;
}

TEST(t_engine_contract)
{
    const char *dir = make_reference("tiny", "16x16", false);
    px_pool *pool = px_pool_create(2);
    px_engine *e = open_engine(weights_path(dir), pool);
    T_EQ_STR(px_engine_name(e), "lama");
    T_TRUE(px_engine_caps(e) & PX_ENGINE_CAP_WEIGHTS);
    T_TRUE(px_engine_caps(e) & PX_ENGINE_CAP_DETERMINISTIC);

    /* Outside the mask: the input's bytes; inside: something computed. */
    px_image img = synth(53, 29, 3, 1), mask = synth(53, 29, 1, 2);
    px_image out = {53, 29, 3, calloc(53 * 29, 3)};
    px_engine_item it = {.image = &img, .mask = &mask, .out = &out};
    T_EQ_INT(px_engine_run(e, &it, 1), 0);
    size_t changed = 0;
    for (size_t i = 0; i < (size_t)53 * 29; i++)
        for (int k = 0; k < 3; k++) {
            if (!mask.px[i]) T_EQ_INT(out.px[i * 3 + k], img.px[i * 3 + k]);
            else changed += out.px[i * 3 + k] != img.px[i * 3 + k];
        }
    T_CMP_INT(changed, >, 0);

    /* Concurrent runs (two shapes, two of one shape) equal lone runs. */
    px_image img2 = synth(40, 64, 3, 3), mask2 = synth(40, 64, 1, 4);
    job jobs[4] = {{e, &img, &mask, {53, 29, 3, NULL}, 0}, {e, &img2, &mask2, {40, 64, 3, NULL}, 0},
                   {e, &img, &mask, {53, 29, 3, NULL}, 0}, {e, &img2, &mask2, {40, 64, 3, NULL}, 0}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].out.px = calloc((size_t)jobs[i].out.w * jobs[i].out.h, 3);
        pthread_create(&th[i], NULL, run_job, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    px_image lone2 = {40, 64, 3, calloc(40 * 64, 3)};
    px_engine_item it2 = {.image = &img2, .mask = &mask2, .out = &lone2};
    T_EQ_INT(px_engine_run(e, &it2, 1), 0);
    for (int i = 0; i < 4; i++) {
        T_EQ_INT(jobs[i].rc, 0);
        T_EQ_MEM(jobs[i].out.px, i % 2 ? lone2.px : out.px, (size_t)jobs[i].out.w * jobs[i].out.h * 3);
        free(jobs[i].out.px);
    }

    /* Deterministic: one thread gives the bytes of two (oneDNN computes each
     * output element on one thread; FFTW splits independent transforms). */
    px_pool *pool1 = px_pool_create(1);
    px_engine *e1 = open_engine(weights_path(dir), pool1);
    px_image one = {40, 64, 3, calloc(40 * 64, 3)};
    px_engine_item it1 = {.image = &img2, .mask = &mask2, .out = &one};
    T_EQ_INT(px_engine_run(e1, &it1, 1), 0);
    T_EQ_MEM(one.px, lone2.px, 40 * 64 * 3);
    px_engine_close(e1);
    px_pool_destroy(pool1);
    free(one.px);

    /* A batch with one bad item: the good one still runs. */
    px_image small_out = {10, 10, 3, calloc(100, 3)};
    px_engine_item two[2] = {{.image = &img, .mask = &mask, .out = &small_out},
                             {.image = &img, .mask = &mask, .out = &out}};
    T_EQ_INT(px_engine_run(e, two, 2), PX_EINVAL);
    T_EQ_INT(two[1].status, 0);

    /* Cancelled before and while running. */
    atomic_int cancel = 1;
    px_engine_item ic = {.image = &img, .mask = &mask, .out = &out, .cancel = &cancel};
    T_EQ_INT(px_engine_run(e, &ic, 1), PX_ECANCELED);
    T_CONTAINS(ic.err, "cancel");

    /* Memory estimate: grows with the image, at least the plan's arena. */
    size_t m256 = px_engine_mem_estimate(e, 1, (px_engine_shape){256, 256, 0, 0});
    size_t m512 = px_engine_mem_estimate(e, 1, (px_engine_shape){512, 512, 0, 0});
    T_CMP_INT(m512, >, m256);
    px_lama_arch tiny;
    T_EQ_INT(px_lama_arch_init(&tiny, 8, 3, 2, 0.75, NULL, 0), 0);
    T_CMP_INT(m256, >=, px_lama_plan_arena_bytes(&tiny, 256, 256));
    T_CMP_INT(px_lama_plan_arena_bytes(&tiny, 256, 256), >, 256 * 256 * 8 * 4);
    T_CMP_INT(px_lama_plan_arena_bytes(&tiny, 512, 512), >, 3 * px_lama_plan_arena_bytes(&tiny, 256, 256));
    px_buf b;
    px_buf_init(&b, 1 << 16);
    T_EQ_INT(px_engine_describe(e, &b), 0);
    T_CONTAINS((char *)b.data, "\"name\":\"lama\"");
    T_CONTAINS((char *)b.data, "\"n_blocks\":2");
    T_CONTAINS((char *)b.data, "\"ngf\":8");
    T_CONTAINS((char *)b.data, "oneDNN");
    px_buf_free(&b);
    px_engine_close(e);
    px_pool_destroy(pool);
    free(img.px);
    free(mask.px);
    free(img2.px);
    free(mask2.px);
    free(out.px);
    free(lone2.px);
    free(small_out.px);
}

TEST(t_engine_open_errors)
{
    px_engine *e;
    char err[300];
    px_engine_config cfg = {0};
    T_EQ_INT(px_engine_open("lama", &cfg, &e, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "--weights");
    cfg.weights = "/nonexistent.safetensors";
    T_EQ_INT(px_engine_open("lama", &cfg, &e, err, sizeof err), PX_EIO);
    T_CONTAINS(err, "/nonexistent.safetensors");
    cfg.device = "cuda:0";
    T_EQ_INT(px_engine_open("lama", &cfg, &e, err, sizeof err), PX_EUNSUP);
    /* A safetensors file that is not LaMa weights. */
    char path[512];
    snprintf(path, sizeof path, "%s/other.safetensors", px_test_tmpdir());
    float one = 1;
    wtensor t = {"x", "F32", 1, {1}, &one, 4};
    st_write(path, NULL, &t, 1);
    cfg = (px_engine_config){.weights = path};
    T_EQ_INT(px_engine_open("lama", &cfg, &e, err, sizeof err), PX_EUNSUP);
    T_CONTAINS(err, "pixserve-lama");
}

TEST_MAIN(t_st_rejects, t_st_reads, t_reference_tiny, t_reference_tiny1, t_reference_big_lama,
          t_weights_rejects, t_engine_contract, t_engine_open_errors)
