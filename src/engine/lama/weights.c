/*
 * weights.c — maps a LaMa safetensors file onto the graph's convolutions and
 * folds BatchNorm into them (see weights.h). Every tensor of the file must be
 * used (or be a BatchNorm's num_batches_tracked): a file with extra tensors
 * is another architecture (for example one with LFU enabled), and running it
 * as big-lama would silently compute something else.
 */
#include "engine/lama/weights.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/jsonw.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_EPS 1e-5
#define MAX_FEATURES 1024

typedef struct {
    const px_st *st;
    unsigned char *used; /* per tensor index */
    size_t nparams;
    char *err;
    size_t errlen;
} loader;

int px_lama_arch_init(px_lama_arch *a, int ngf, int n_down, int n_blocks, double ratio, char *err,
                      size_t errlen)
{
    memset(a, 0, sizeof *a);
    if (ngf < 1 || ngf > 1024)
        return px_errf(err, errlen, PX_EUNSUP, "lama: ngf %d outside 1..1024", ngf);
    if (n_down < 1 || n_down > PX_LAMA_MAX_DOWN)
        return px_errf(err, errlen, PX_EUNSUP, "lama: %d downsamplings outside 1..%d", n_down,
                       PX_LAMA_MAX_DOWN);
    if (n_blocks < 1 || n_blocks > PX_LAMA_MAX_BLOCKS)
        return px_errf(err, errlen, PX_EUNSUP, "lama: %d residual blocks outside 1..%d", n_blocks,
                       PX_LAMA_MAX_BLOCKS);
    if (!(ratio > 0 && ratio < 1))
        return px_errf(err, errlen, PX_EUNSUP, "lama: global ratio %g outside (0, 1)", ratio);
    a->ngf = ngf;
    a->n_down = n_down;
    a->n_blocks = n_blocks;
    a->ratio = ratio;
    for (int i = 0; i <= n_down; i++) {
        long c = (long)ngf << i;
        a->ch[i] = c > MAX_FEATURES ? MAX_FEATURES : (int)c;
    }
    a->dim = a->ch[n_down];
    a->cg = (int)(a->dim * ratio); /* Python's int(): truncation */
    a->cl = a->dim - a->cg;
    a->cs = a->cg / 2;
    if (a->cg < 2 || a->cl < 1)
        return px_errf(err, errlen, PX_EUNSUP,
                       "lama: trunk of %d channels at ratio %g leaves %d local / %d global", a->dim,
                       ratio, a->cl, a->cg);
    return 0;
}

/* Finds "name" (or "generator.name"), checks dtype and shape, marks it used. */
static const px_st_tensor *want(loader *L, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static const px_st_tensor *want(loader *L, int ndim, const int64_t *shape, const char *fmt, ...)
{
    char name[160], pre[180];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const px_st_tensor *t = px_st_find(L->st, name);
    if (!t) {
        snprintf(pre, sizeof pre, "generator.%s", name);
        t = px_st_find(L->st, pre);
    }
    if (!t) {
        px_errf(L->err, L->errlen, PX_ECORRUPT, "lama weights: tensor %s is missing", name);
        return NULL;
    }
    if (t->dtype != PX_ST_F32 && t->dtype != PX_ST_F16 && t->dtype != PX_ST_BF16) {
        px_errf(L->err, L->errlen, PX_ECORRUPT, "lama weights: %s is %s, not a float tensor", name,
                px_st_dtype_name(t->dtype));
        return NULL;
    }
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[96] = "", exp[96] = "";
        size_t g = 0, e = 0;
        for (int i = 0; i < t->ndim && g < sizeof got; i++)
            g += (size_t)snprintf(got + g, sizeof got - g, "%s%lld", i ? "x" : "", (long long)t->shape[i]);
        for (int i = 0; i < ndim && e < sizeof exp; i++)
            e += (size_t)snprintf(exp + e, sizeof exp - e, "%s%lld", i ? "x" : "", (long long)shape[i]);
        px_errf(L->err, L->errlen, PX_ECORRUPT, "lama weights: %s has shape [%s], expected [%s]",
                name, got, exp);
        return NULL;
    }
    L->used[t - px_st_at(L->st, 0)] = 1;
    L->nparams += t->nelem;
    return t;
}

static float *read_f32(loader *L, const px_st_tensor *t)
{
    float *p = px_alloc_array(t->nelem ? t->nelem : 1, sizeof *p);
    if (!p) {
        px_errf(L->err, L->errlen, PX_ENOMEM, "lama weights: out of memory reading %s", t->name);
        return NULL;
    }
    px_st_to_f32(t, p); /* dtype checked by want() */
    px_st_release(L->st, t);
    for (size_t i = 0; i < t->nelem; i++)
        if (!isfinite(p[i])) {
            px_errf(L->err, L->errlen, PX_ECORRUPT, "lama weights: %s has a non-finite value",
                    t->name);
            free(p);
            return NULL;
        }
    return p;
}

/* A convolution's weight (and bias when has_bias) named prefix.weight/.bias. */
static int load_conv(loader *L, px_lama_conv *c, int cout, int cin, int k, int stride,
                     bool transposed, bool has_bias, const char *prefix)
{
    memset(c, 0, sizeof *c);
    c->cout = cout;
    c->cin = cin;
    c->k = k;
    c->stride = stride;
    c->transposed = transposed;
    int64_t ws[4] = {transposed ? cin : cout, transposed ? cout : cin, k, k};
    const px_st_tensor *t = want(L, 4, ws, "%s.weight", prefix);
    if (!t || !(c->w = read_f32(L, t))) return PX_ECORRUPT;
    if (has_bias) {
        int64_t bs[1] = {cout};
        if (!(t = want(L, 1, bs, "%s.bias", prefix)) || !(c->b = read_f32(L, t))) return PX_ECORRUPT;
    }
    return 0;
}

/* BatchNorm `prefix` of n channels as per-channel scale s and shift t. */
static int load_bn(loader *L, int n, const char *prefix, double *s, double *t)
{
    int64_t shp[1] = {n};
    static const char *const parts[4] = {"weight", "bias", "running_mean", "running_var"};
    float *v[4] = {0};
    int rc = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        const px_st_tensor *x = want(L, 1, shp, "%s.%s", prefix, parts[i]);
        if (!x || !(v[i] = read_f32(L, x))) rc = PX_ECORRUPT;
    }
    if (!rc) {
        char nb[200];
        snprintf(nb, sizeof nb, "%s.num_batches_tracked", prefix);
        const px_st_tensor *x = px_st_find(L->st, nb);
        if (!x) {
            char pre[220];
            snprintf(pre, sizeof pre, "generator.%s", nb);
            x = px_st_find(L->st, pre);
        }
        if (x) L->used[x - px_st_at(L->st, 0)] = 1; /* bookkeeping only, not used in eval */
        for (int c = 0; c < n; c++) {
            if (v[3][c] < 0) {
                rc = px_errf(L->err, L->errlen, PX_ECORRUPT,
                             "lama weights: %s.running_var has a negative value", prefix);
                break;
            }
            s[c] = v[0][c] / sqrt((double)v[3][c] + BN_EPS);
            t[c] = v[1][c] - v[2][c] * s[c];
        }
    }
    for (int i = 0; i < 4; i++) free(v[i]);
    return rc;
}

/* Scales output channel o of c by s[o]; sets the bias to s*b + t (t may be
 * NULL: then the conv keeps a bias only if it had one, scaled). */
static int fold(loader *L, px_lama_conv *c, const double *s, const double *t)
{
    size_t kk = (size_t)c->k * c->k;
    for (int o = 0; o < c->cout; o++)
        for (int i = 0; i < c->cin; i++) {
            float *w = c->transposed ? c->w + ((size_t)i * c->cout + o) * kk
                                     : c->w + ((size_t)o * c->cin + i) * kk;
            for (size_t k = 0; k < kk; k++) w[k] = (float)(w[k] * s[o]);
        }
    if (!t) {
        if (c->b)
            for (int o = 0; o < c->cout; o++) c->b[o] = (float)(c->b[o] * s[o]);
        return 0;
    }
    if (!c->b && !(c->b = calloc(c->cout > 0 ? (size_t)c->cout : 1, sizeof *c->b)))
        return px_errf(L->err, L->errlen, PX_ENOMEM, "lama weights: out of memory");
    for (int o = 0; o < c->cout; o++) c->b[o] = (float)(c->b[o] * s[o] + t[o]);
    return 0;
}

static void free_conv(px_lama_conv *c)
{
    free(c->w);
    free(c->b);
    c->w = c->b = NULL;
}

void px_lama_weights_free(px_lama_weights *w)
{
    free_conv(&w->stem);
    for (int i = 0; i < PX_LAMA_MAX_DOWN; i++) {
        free_conv(&w->down[i]);
        free_conv(&w->up[i]);
    }
    free_conv(&w->down_g);
    if (w->blocks)
        for (int b = 0; b < w->arch.n_blocks; b++)
            for (int j = 0; j < 2; j++) {
                px_lama_ffc *f = &w->blocks[b][j];
                px_lama_conv *cs[6] = {&f->l2l, &f->g2l, &f->l2g, &f->st1, &f->fu, &f->st2};
                for (int k = 0; k < 6; k++) free_conv(cs[k]);
            }
    free(w->blocks);
    free_conv(&w->out);
    memset(w, 0, sizeof *w);
}

static int meta_int(const px_st *st, const char *key, int *out, char *err, size_t errlen)
{
    const char *v = px_st_meta(st, key);
    char *end;
    if (!v) return px_errf(err, errlen, PX_EUNSUP, "lama weights: metadata has no \"%s\"", key);
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < 0 || x > 1 << 20)
        return px_errf(err, errlen, PX_EUNSUP, "lama weights: metadata %s=\"%.20s\" is not a count",
                       key, v);
    *out = (int)x;
    return 0;
}

/* One FFC_BN_ACT of a residual block at prefix "model.N.convK". */
static int load_ffc(loader *L, const px_lama_arch *a, px_lama_ffc *f, const char *p, double *s,
                    double *t)
{
    char q[128];
    int rc;
#define SUB(fmt) (snprintf(q, sizeof q, "%s." fmt, p), q)
    if ((rc = load_conv(L, &f->l2l, a->cl, a->cl, 3, 1, false, false, SUB("ffc.convl2l"))) ||
        (rc = load_conv(L, &f->g2l, a->cl, a->cg, 3, 1, false, false, SUB("ffc.convg2l"))) ||
        (rc = load_conv(L, &f->l2g, a->cg, a->cl, 3, 1, false, false, SUB("ffc.convl2g"))) ||
        (rc = load_conv(L, &f->st1, a->cs, a->cg, 1, 1, false, false, SUB("ffc.convg2g.conv1.0"))) ||
        (rc = load_conv(L, &f->fu, 2 * a->cs, 2 * a->cs, 1, 1, false, false,
                        SUB("ffc.convg2g.fu.conv_layer"))) ||
        (rc = load_conv(L, &f->st2, a->cg, a->cs, 1, 1, false, false, SUB("ffc.convg2g.conv2"))))
        return rc;
    if ((rc = load_bn(L, a->cs, SUB("ffc.convg2g.conv1.1"), s, t)) || (rc = fold(L, &f->st1, s, t)))
        return rc;
    if ((rc = load_bn(L, 2 * a->cs, SUB("ffc.convg2g.fu.bn"), s, t)) || (rc = fold(L, &f->fu, s, t)))
        return rc;
    if ((rc = load_bn(L, a->cl, SUB("bn_l"), s, t)) || (rc = fold(L, &f->l2l, s, t)) ||
        (rc = fold(L, &f->g2l, s, NULL)))
        return rc;
    if ((rc = load_bn(L, a->cg, SUB("bn_g"), s, t)) || (rc = fold(L, &f->st2, s, t)) ||
        (rc = fold(L, &f->l2g, s, NULL)))
        return rc;
#undef SUB
    return 0;
}

/* The architecture the metadata states, checked against what this engine
 * builds (a checkpoint converted by tools/lama_convert.py). Returns 0 or
 * PX_EUNSUP / PX_ECORRUPT with err set. */
static int check_meta(const px_st *st, int *ngf, int *nd, int *nb, double *ratio, char *err,
                      size_t errlen)
{
    const char *fmt = px_st_meta(st, "format"), *arch = px_st_meta(st, "arch");
    if (!fmt || strcmp(fmt, "pixserve-lama") != 0 || !arch || strcmp(arch, "ffc_resnet") != 0)
        return px_errf(err, errlen, PX_EUNSUP,
                       "lama weights: metadata does not say format=pixserve-lama, arch=ffc_resnet "
                       "(convert the checkpoint with tools/lama_convert.py)");
    int x, rc;
    if ((rc = meta_int(st, "ngf", ngf, err, errlen)) ||
        (rc = meta_int(st, "n_downsampling", nd, err, errlen)) ||
        (rc = meta_int(st, "n_blocks", nb, err, errlen)))
        return rc;
    const char *rs = px_st_meta(st, "ratio_g");
    char *end = NULL;
    *ratio = rs ? strtod(rs, &end) : 0;
    if (!rs || end == rs || *end)
        return px_errf(err, errlen, PX_EUNSUP, "lama weights: metadata ratio_g is missing or not a number");
    if (px_st_meta(st, "input_nc") &&
        ((rc = meta_int(st, "input_nc", &x, err, errlen)) || x != PX_LAMA_IN_CH))
        return rc ? rc : px_errf(err, errlen, PX_EUNSUP, "lama weights: input_nc %d, expected 4", x);
    if (px_st_meta(st, "output_nc") &&
        ((rc = meta_int(st, "output_nc", &x, err, errlen)) || x != PX_LAMA_OUT_CH))
        return rc ? rc : px_errf(err, errlen, PX_EUNSUP, "lama weights: output_nc %d, expected 3", x);
    if (px_st_meta(st, "max_features") &&
        ((rc = meta_int(st, "max_features", &x, err, errlen)) || x != MAX_FEATURES))
        return rc ? rc : px_errf(err, errlen, PX_EUNSUP, "lama weights: max_features %d, expected 1024", x);
    const char *act = px_st_meta(st, "out_act");
    if (act && strcmp(act, "sigmoid") != 0)
        return px_errf(err, errlen, PX_EUNSUP, "lama weights: output activation \"%.20s\" (only sigmoid)", act);
    return 0;
}

/* Loads every layer of architecture a into w, folding each batch norm into
 * its convolution (s, t: scratch for the norm's scale and shift). Returns 0
 * or a PX_E* code with L's err set. */
static int load_layers(loader *L, px_lama_weights *w, const px_lama_arch *a, double *s, double *t)
{
    int rc, nd = a->n_down, nb = a->n_blocks;
    char p[96];
    /* model.1: stem (reflection pad 3 is model.0). */
    if ((rc = load_conv(L, &w->stem, a->ngf, PX_LAMA_IN_CH, 7, 1, false, false,
                        "model.1.ffc.convl2l")) ||
        (rc = load_bn(L, a->ngf, "model.1.bn_l", s, t)) || (rc = fold(L, &w->stem, s, t)))
        return rc;
    for (int i = 0; i < nd; i++) {
        bool last = i == nd - 1;
        int cout = last ? a->cl : a->ch[i + 1];
        snprintf(p, sizeof p, "model.%d.ffc.convl2l", 2 + i);
        if ((rc = load_conv(L, &w->down[i], cout, a->ch[i], 3, 2, false, false, p))) return rc;
        snprintf(p, sizeof p, "model.%d.bn_l", 2 + i);
        if ((rc = load_bn(L, cout, p, s, t)) || (rc = fold(L, &w->down[i], s, t))) return rc;
        if (!last) continue;
        snprintf(p, sizeof p, "model.%d.ffc.convl2g", 2 + i);
        if ((rc = load_conv(L, &w->down_g, a->cg, a->ch[i], 3, 2, false, false, p))) return rc;
        snprintf(p, sizeof p, "model.%d.bn_g", 2 + i);
        if ((rc = load_bn(L, a->cg, p, s, t)) || (rc = fold(L, &w->down_g, s, t))) return rc;
    }
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < 2; j++) {
            snprintf(p, sizeof p, "model.%d.conv%d", 2 + nd + b, j + 1);
            if ((rc = load_ffc(L, a, &w->blocks[b][j], p, s, t))) return rc;
        }
    int u0 = 3 + nd + nb; /* after the blocks and the concatenation */
    for (int i = 0; i < nd; i++) {
        int cin = a->ch[nd - i], cout = a->ch[nd - i - 1];
        snprintf(p, sizeof p, "model.%d", u0 + 3 * i);
        if ((rc = load_conv(L, &w->up[i], cout, cin, 3, 2, true, true, p))) return rc;
        snprintf(p, sizeof p, "model.%d", u0 + 3 * i + 1);
        if ((rc = load_bn(L, cout, p, s, t)) || (rc = fold(L, &w->up[i], s, t))) return rc;
    }
    snprintf(p, sizeof p, "model.%d", u0 + 3 * nd + 1);
    if ((rc = load_conv(L, &w->out, PX_LAMA_OUT_CH, a->ngf, 7, 1, false, true, p))) return rc;
    return 0;
}

int px_lama_weights_load(const px_st *st, px_lama_weights *w, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    int ngf, nd, nb, rc;
    double ratio = 0;
    if ((rc = check_meta(st, &ngf, &nd, &nb, &ratio, err, errlen))) return rc;
    if ((rc = px_lama_arch_init(&w->arch, ngf, nd, nb, ratio, err, errlen))) return rc;
    const px_lama_arch *a = &w->arch;

    loader L = {.st = st, .err = err, .errlen = errlen};
    double *s = malloc(MAX_FEATURES * 2 * sizeof *s), *t = malloc(MAX_FEATURES * 2 * sizeof *t);
    L.used = calloc((size_t)px_st_count(st) + 1, 1);
    w->blocks = calloc((size_t)nb, sizeof *w->blocks);
    if (!s || !t || !L.used || !w->blocks) {
        rc = px_errf(err, errlen, PX_ENOMEM, "lama weights: out of memory");
        goto fail;
    }
    if ((rc = load_layers(&L, w, a, s, t))) goto fail;
    for (int i = 0; i < px_st_count(st); i++)
        if (!L.used[i]) {
            rc = px_errf(err, errlen, PX_ECORRUPT,
                         "lama weights: tensor %s is not part of the architecture in the metadata "
                         "(ngf %d, %d downsamplings, %d blocks, ratio %g)",
                         px_st_at(st, i)->name, ngf, nd, nb, ratio);
            goto fail;
        }
    w->nparams = L.nparams;
    free(L.used);
    free(s);
    free(t);
    return 0;
fail:
    free(L.used);
    free(s);
    free(t);
    px_lama_weights_free(w);
    return rc;
}

int px_lama_arch_describe(px_buf *out, const char *weights, const px_lama_arch *a)
{
    int rc = px_buf_puts(out, "\"weights\":");
    if (!rc) rc = px_json_str(out, weights);
    if (!rc)
        rc = px_buf_printf(out,
                           ",\"arch\":\"ffc_resnet\",\"ngf\":%d,\"n_downsampling\":%d,"
                           "\"n_blocks\":%d,\"ratio_g\":%.4g",
                           a->ngf, a->n_down, a->n_blocks, a->ratio);
    return rc;
}
