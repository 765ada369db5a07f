/*
 * vae.c — the FLUX VAE decoder on the CPU (see vae.h).
 *
 * Layout: activations are NHWC float32 (what the conv backend, conv.h,
 * wants), batch 1. That backend pads only bottom/right, so every 3x3 'same'
 * convolution reads its input with a one-pixel zero border added. That
 * input is never a whole tensor: it is made a band of rows at a time (the
 * band's rows plus the one above and below) into the padded band buffer P
 * by the op before the convolution — GroupNorm+SiLU (statistics over the
 * whole activation first), nearest x2 upsampling, or the latent scaling —
 * and the band is convolved into its rows of the output.
 *
 * Memory: four buffers for a whole decode, sized by a dry run of the same
 * walk over the network (walk.run = 0): the activation X, the other one Y
 * (they swap when a layer's output cannot overwrite its input), the band
 * buffer P (32 MiB, zi_vae_set_band_bytes) and O. A resnet is
 *     Y = conv1(silu(gn1(X)))                 (bands of X's rows)
 *     X = conv2(silu(gn2(Y))) + X             (same channels: in place)
 *     Y = conv2(silu(gn2(Y))) + shortcut(X)   (channels change; swap)
 * where the last one's bands go through O (two band outputs), because a
 * band written straight into Y would overwrite the row the next band needs.
 * At 1024x1024 the peak is the 256-channel level-2 upsampling's 1024^2 output
 * (1 GiB) beside the 512^2 x 512 activation it came from (0.5 GiB): 1673 MiB
 * in all (2564 MiB when the whole padded input was made at once);
 * zi_vae_activation_bytes() tells. The attention's q, k, v live in P, its
 * output in Y, its score tiles in the zi_ctx (zops.h computes them a chunk
 * of queries at a time), so 16384 positions never need a 16384^2 matrix.
 *
 * oneDNN primitives are created per decode (their creation is milliseconds
 * against the seconds of a decode); weights are converted to oneDNN's layout
 * once, on the first decode, and kept (conv_dnnl.c). Each convolution runs
 * in oneDNN's blocked layout (nChw8c on AVX2; px_conv_args.blocked): its
 * band is reordered into the conv scratch and the result back into NHWC,
 * which costs a band's input and output more memory (~130 MB at 256^2)
 * and took ~0.65x the CPU time of the convolutions straight on NHWC
 * (docs/benchmarks/zimage-cpu.md); zi_vae_set_blocked(v, 0) runs the latter.
 */
#include "engine/zimage/vae.h"

#include "core/alloc.h"
#include "core/err.h"
#include "engine/conv.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEVELS 8
#define MAX_GROUPS 1024

typedef struct gnorm {
    float *g, *b;
    int c;
} gnorm;

typedef struct resnet {
    int cin, cout;
    gnorm n1, n2;
    px_conv_weights *c1, *c2, *sc; /* sc: 1x1 shortcut when cin != cout, else NULL */
} resnet;

struct zi_vae {
    zi_vae_config cfg;
    px_conv_weights *conv_in, *conv_out, *upconv[MAX_LEVELS];
    resnet mid[2];
    gnorm attn_norm, norm_out;
    float *wq, *wk, *wv, *wo, *bq, *bk, *bv, *bo; /* [c, c] and [c] */
    resnet *up;                                   /* nlevels x (layers_per_block + 1) */
    size_t bytes;
    size_t band_bytes; /* of a band of P (zi_vae_set_band_bytes) */
    bool nhwc;         /* convolutions on NHWC, not blocked (zi_vae_set_blocked) */
};

/* 32 MiB: a blocked convolution (see below) holds its band twice more in
 * the scratch (input and output); 64 MiB bands put 1024^2 at 2228 MiB peak. */
#define BAND_DEFAULT_BYTES ((size_t)32 << 20)
#define BAND_MIN_ROWS      4

/* --- binding the weights ------------------------------------------------------------ */

typedef struct binder {
    const zi_weights *w;
    zi_vae *v;
    char *err;
    size_t errlen;
} binder;

/* An fp32 malloc'd copy of tensor `name` of the given shape. */
static int take(binder *bd, const char *name, int ndim, const int64_t *shape, float **out)
{
    const zi_tensor *t;
    int rc = zi_weights_get(bd->w, name, ndim, shape, &t, bd->err, bd->errlen);
    if (rc) return rc;
    if (!(*out = zi_tensor_dup_f32(t)))
        return px_errf(bd->err, bd->errlen, PX_ENOMEM, "out of memory");
    bd->v->bytes += t->nelem * sizeof(float);
    return 0;
}

static int bind_norm(binder *bd, const char *prefix, int c, gnorm *n)
{
    char name[192];
    int64_t shape[1] = {c};
    n->c = c;
    snprintf(name, sizeof name, "%s.weight", prefix);
    int rc = take(bd, name, 1, shape, &n->g);
    snprintf(name, sizeof name, "%s.bias", prefix);
    return rc ? rc : take(bd, name, 1, shape, &n->b);
}

/* A k x k convolution with its bias. */
static int bind_conv(binder *bd, const char *prefix, int cout, int cin, int k,
                     px_conv_weights **out)
{
    char name[192];
    int64_t wshape[4] = {cout, cin, k, k}, bshape[1] = {cout};
    px_conv_spec sp = {.cout = cout, .cin = cin, .kh = k, .kw = k, .stride = 1};
    snprintf(name, sizeof name, "%s.weight", prefix);
    int rc = take(bd, name, 4, wshape, &sp.w);
    snprintf(name, sizeof name, "%s.bias", prefix);
    if (!rc) rc = take(bd, name, 1, bshape, &sp.b);
    if (!rc) rc = px_conv_weights_create(&sp, out, bd->err, bd->errlen);
    free(sp.w);
    free(sp.b);
    return rc;
}

static int bind_resnet(binder *bd, const char *prefix, int cin, int cout, resnet *r)
{
    char p[160];
    int rc;
    r->cin = cin;
    r->cout = cout;
    snprintf(p, sizeof p, "%s.norm1", prefix);
    if ((rc = bind_norm(bd, p, cin, &r->n1))) return rc;
    snprintf(p, sizeof p, "%s.conv1", prefix);
    if ((rc = bind_conv(bd, p, cout, cin, 3, &r->c1))) return rc;
    snprintf(p, sizeof p, "%s.norm2", prefix);
    if ((rc = bind_norm(bd, p, cout, &r->n2))) return rc;
    snprintf(p, sizeof p, "%s.conv2", prefix);
    if ((rc = bind_conv(bd, p, cout, cout, 3, &r->c2))) return rc;
    if (cin == cout) return 0;
    snprintf(p, sizeof p, "%s.conv_shortcut", prefix);
    return bind_conv(bd, p, cout, cin, 1, &r->sc);
}

static int check_config(const zi_vae_config *c, char *err, size_t errlen)
{
    if (c->nlevels < 1 || c->nlevels > MAX_LEVELS)
        return px_errf(err, errlen, PX_EINVAL, "VAE: %d levels (1..%d supported)", c->nlevels,
                       MAX_LEVELS);
    if (c->latent_channels < 1 || c->layers_per_block < 0 || c->groups < 1 ||
        c->groups > MAX_GROUPS || !(c->scaling_factor != 0) || !(c->eps > 0))
        return px_errf(err, errlen, PX_EINVAL,
                       "VAE: bad config (latent channels %d, layers per block %d, groups %d, "
                       "scaling factor %g, eps %g)",
                       c->latent_channels, c->layers_per_block, c->groups,
                       (double)c->scaling_factor, (double)c->eps);
    for (int i = 0; i < c->nlevels; i++)
        if (c->block_out[i] < 1 || c->block_out[i] % c->groups)
            return px_errf(err, errlen, PX_EINVAL,
                           "VAE: block_out_channels[%d] = %d is not a positive multiple of the "
                           "%d groups",
                           i, c->block_out[i], c->groups);
    return 0;
}

static int bind_mid(binder *bd, int c)
{
    zi_vae *v = bd->v;
    const char *at = "decoder.mid_block.attentions.0";
    char p[160];
    int rc;
    int64_t ws[2] = {c, c}, bs[1] = {c};
    if ((rc = bind_resnet(bd, "decoder.mid_block.resnets.0", c, c, &v->mid[0])) ||
        (rc = bind_resnet(bd, "decoder.mid_block.resnets.1", c, c, &v->mid[1])))
        return rc;
    snprintf(p, sizeof p, "%s.group_norm", at);
    if ((rc = bind_norm(bd, p, c, &v->attn_norm))) return rc;
    static const char *const proj[4] = {"to_q", "to_k", "to_v", "to_out.0"};
    float **wdst[4] = {&v->wq, &v->wk, &v->wv, &v->wo},
          **bdst[4] = {&v->bq, &v->bk, &v->bv, &v->bo};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s.%s.weight", at, proj[i]);
        if ((rc = take(bd, p, 2, ws, wdst[i]))) return rc;
        snprintf(p, sizeof p, "%s.%s.bias", at, proj[i]);
        if ((rc = take(bd, p, 1, bs, bdst[i]))) return rc;
    }
    return 0;
}

int zi_vae_create(const zi_weights *w, const zi_vae_config *cfg, zi_vae **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    int rc = check_config(cfg, err, errlen);
    if (rc) return rc;
    zi_vae *v = calloc(1, sizeof *v);
    int L = cfg->nlevels, per = cfg->layers_per_block + 1;
    if (!v || !(v->up = calloc((size_t)L * per, sizeof *v->up))) {
        free(v);
        return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    }
    v->cfg = *cfg;
    v->band_bytes = BAND_DEFAULT_BYTES;
    binder bd = {w, v, err, errlen};
    int top = cfg->block_out[L - 1];
    if ((rc = bind_conv(&bd, "decoder.conv_in", top, cfg->latent_channels, 3, &v->conv_in)) ||
        (rc = bind_mid(&bd, top)))
        goto fail;
    int cin = top;
    for (int i = 0; i < L; i++) {
        /* diffusers up_blocks.0 is the deepest level: block_out reversed. */
        int cout = cfg->block_out[L - 1 - i];
        char p[160];
        for (int j = 0; j < per; j++) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
            if ((rc = bind_resnet(&bd, p, j ? cout : cin, cout, &v->up[i * per + j]))) goto fail;
        }
        cin = cout;
        if (i == L - 1) break;
        snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.conv", i);
        if ((rc = bind_conv(&bd, p, cout, cout, 3, &v->upconv[i]))) goto fail;
    }
    if ((rc = bind_norm(&bd, "decoder.conv_norm_out", cin, &v->norm_out)) ||
        (rc = bind_conv(&bd, "decoder.conv_out", 3, cin, 3, &v->conv_out)))
        goto fail;
    *out = v;
    return 0;
fail:
    zi_vae_destroy(v);
    return rc;
}

static void free_norm(gnorm *n)
{
    free(n->g);
    free(n->b);
}

static void free_resnet(resnet *r)
{
    free_norm(&r->n1);
    free_norm(&r->n2);
    px_conv_weights_destroy(r->c1);
    px_conv_weights_destroy(r->c2);
    px_conv_weights_destroy(r->sc);
}

void zi_vae_destroy(zi_vae *v)
{
    if (!v) return;
    int per = v->cfg.layers_per_block + 1;
    for (int i = 0; v->up && i < v->cfg.nlevels * per; i++) free_resnet(&v->up[i]);
    free(v->up);
    for (int i = 0; i < MAX_LEVELS; i++) px_conv_weights_destroy(v->upconv[i]);
    free_resnet(&v->mid[0]);
    free_resnet(&v->mid[1]);
    free_norm(&v->attn_norm);
    free_norm(&v->norm_out);
    float *lin[8] = {v->wq, v->wk, v->wv, v->wo, v->bq, v->bk, v->bv, v->bo};
    for (int i = 0; i < 8; i++) free(lin[i]);
    px_conv_weights_destroy(v->conv_in);
    px_conv_weights_destroy(v->conv_out);
    free(v);
}

int zi_vae_factor(const zi_vae *v)
{
    return 1 << (v->cfg.nlevels - 1);
}

size_t zi_vae_weight_bytes(const zi_vae *v)
{
    return v->bytes;
}

void zi_vae_set_band_bytes(zi_vae *v, size_t bytes)
{
    v->band_bytes = bytes ? bytes : BAND_DEFAULT_BYTES;
}

void zi_vae_set_blocked(zi_vae *v, int on)
{
    v->nhwc = !on;
}

/* --- rows of a convolution's input, made on the context's threads ---------------- */

/* The source of a 3x3 convolution's input: row r (0..h-1, unpadded) is
 * written as w x c floats by fn. The rows are made a band at a time into
 * the padded buffer P, never as a whole tensor (see w_rows_conv). */
typedef struct rows_src rows_src;
struct rows_src {
    void (*fn)(const rows_src *s, int r, float *dst);
    int h, w, c;        /* of the rows made */
    const float *x;     /* what they are made from */
    const float *a, *b; /* groupnorm as y = a[ch]*x + b[ch] */
    int silu;
    float scale, shift; /* latent: x / scale + shift */
};

static void row_norm(const rows_src *s, int r, float *dst)
{
    const float *src = s->x + (size_t)r * s->w * s->c;
    for (int p = 0; p < s->w; p++, src += s->c, dst += s->c) {
        if (s->silu) {
            for (int i = 0; i < s->c; i++) {
                float y = s->a[i] * src[i] + s->b[i];
                dst[i] = y / (1.0f + expf(-y));
            }
        } else {
            for (int i = 0; i < s->c; i++) dst[i] = s->a[i] * src[i] + s->b[i];
        }
    }
}

/* Nearest x2: row r of the output is row r/2 of x (w/2 wide), each pixel twice. */
static void row_upsample(const rows_src *s, int r, float *dst)
{
    int iw = s->w / 2;
    size_t cb = (size_t)s->c * sizeof(float);
    const float *src = s->x + (size_t)(r / 2) * iw * s->c;
    for (int p = 0; p < iw; p++) {
        memcpy(dst + (size_t)(2 * p) * s->c, src + (size_t)p * s->c, cb);
        memcpy(dst + (size_t)(2 * p + 1) * s->c, src + (size_t)p * s->c, cb);
    }
}

/* z = latent / scaling_factor + shift_factor, NCHW -> NHWC. */
static void row_latent(const rows_src *s, int r, float *dst)
{
    size_t hw = (size_t)s->h * s->w;
    for (int p = 0; p < s->w; p++)
        for (int ch = 0; ch < s->c; ch++)
            dst[(size_t)p * s->c + ch] = s->x[ch * hw + (size_t)r * s->w + p] / s->scale + s->shift;
}

typedef struct fill_job {
    const rows_src *src;
    float *dst;
    int r0;     /* first source row of the band (-1: the zero row above) */
    int padded; /* dst rows are (w+2) x c with zero ends */
} fill_job;

static void fill_fn(void *ctx, int begin, int end)
{
    const fill_job *j = ctx;
    const rows_src *s = j->src;
    size_t c = (size_t)s->c, row = (size_t)(s->w + 2 * j->padded) * c;
    for (int k = begin; k < end; k++) {
        int r = j->r0 + k;
        float *d = j->dst + (size_t)k * row;
        if (j->padded) {
            memset(d, 0, c * sizeof *d);
            memset(d + (size_t)(s->w + 1) * c, 0, c * sizeof *d);
            d += c;
        }
        if (r < 0 || r >= s->h)
            memset(d, 0, (size_t)s->w * c * sizeof *d);
        else
            s->fn(s, r, d);
    }
}

#define GN_CHUNKS 64

typedef struct gn_job {
    const float *x;
    size_t npix;
    int c, groups;
    double *part; /* GN_CHUNKS x groups x 2 (sum, sum of squares) */
} gn_job;

static void gn_stats_fn(void *ctx, int begin, int end)
{
    const gn_job *j = ctx;
    int cg = j->c / j->groups;
    for (int k = begin; k < end; k++) {
        double *acc = j->part + (size_t)k * j->groups * 2;
        memset(acc, 0, (size_t)j->groups * 2 * sizeof *acc);
        size_t p0 = j->npix * k / GN_CHUNKS, p1 = j->npix * (k + 1) / GN_CHUNKS;
        for (size_t p = p0; p < p1; p++) {
            const float *px = j->x + p * j->c;
            for (int g = 0; g < j->groups; g++) {
                float s = 0, ss = 0;
                for (int i = 0; i < cg; i++) {
                    float t = px[g * cg + i];
                    s += t;
                    ss += t * t;
                }
                acc[2 * g] += s;
                acc[2 * g + 1] += ss;
            }
        }
    }
}

/* GroupNorm of an h x w x c activation as ab[ch] = a, ab[c + ch] = b of
 * y = a*x + b. Statistics in double over chunks whose partial sums are added
 * in a fixed order (the result does not depend on the threads). */
static int gn_coeffs(zi_ctx *ctx, const float *x, int h, int w, const gnorm *n, int groups,
                     float eps, float *ab)
{
    int c = n->c, cg = c / groups;
    double *part = malloc((size_t)GN_CHUNKS * groups * 2 * sizeof *part);
    if (!part) return PX_ENOMEM;
    gn_job j = {.x = x, .npix = (size_t)h * w, .c = c, .groups = groups, .part = part};
    zi_parallel_for(ctx, GN_CHUNKS, 1, gn_stats_fn, &j);
    double cnt = (double)j.npix * cg;
    for (int g = 0; g < groups; g++) {
        double s = 0, ss = 0;
        for (int k = 0; k < GN_CHUNKS; k++) {
            s += part[((size_t)k * groups + g) * 2];
            ss += part[((size_t)k * groups + g) * 2 + 1];
        }
        double mean = s / cnt, var = ss / cnt - mean * mean;
        double rstd = 1.0 / sqrt((var > 0 ? var : 0) + eps);
        for (int i = g * cg; i < (g + 1) * cg; i++) {
            ab[i] = (float)(rstd * n->g[i]);
            ab[c + i] = (float)(n->b[i] - mean * rstd * n->g[i]);
        }
    }
    free(part);
    return 0;
}

/* --- the walk over the network ------------------------------------------------------ */

enum { B_X0, B_X1, B_P, B_O, B_N, B_OUT = B_N }; /* B_O: two band outputs */

typedef struct walk {
    zi_vae *v;
    zi_ctx *ctx;
    int run; /* 0: only size the buffers (need) */
    size_t need[B_N];
    float *b[B_N + 1]; /* + B_OUT: the caller's output */
    int x;             /* the buffer holding the activation: B_X0 or B_X1 */
    int c, h, w;
    px_conv_stream *stream;
    void *scratch;
    size_t scratch_cap;
    char *err;
    size_t errlen;
} walk;

static int other(const walk *s)
{
    return s->x == B_X0 ? B_X1 : B_X0;
}

static int use(walk *s, int buf, size_t a, size_t b, size_t c)
{
    size_t n;
    if (!px_mul3_size(a, b, c, &n))
        return px_errf(s->err, s->errlen, PX_EINVAL, "VAE: size overflows");
    if (buf < B_N && n > s->need[buf]) s->need[buf] = n;
    return 0;
}

/* dst [+]= conv(src), src sh x sw (its padding included): one convolution
 * bound to these pointers (oneDNN's primitive cache makes repeats cheap). */
static int conv_run(walk *s, px_conv_weights *cw, const float *src, int sh, int sw, float *dst,
                    bool acc)
{
    px_conv_args a = {.h = sh, .w = sw, .src = src, .dst = dst, .accumulate = acc, .blocked = !s->v->nhwc};
    px_conv *cv;
    int rc = px_conv_create(cw, &a, &cv, s->err, s->errlen);
    if (rc) return rc;
    size_t sb = px_conv_scratch_bytes(cv);
    if (sb > s->scratch_cap) {
        free(s->scratch);
        s->scratch_cap = 0;
        if (!(s->scratch = aligned_alloc(64, (sb + 63) / 64 * 64))) {
            px_conv_destroy(cv);
            return px_errf(s->err, s->errlen, PX_ENOMEM, "out of memory (conv scratch)");
        }
        s->scratch_cap = sb;
    }
    rc = px_conv_bind_scratch(cv, s->scratch, s->err, s->errlen);
    if (!rc && (rc = px_conv_run(cv, s->stream)))
        px_errf(s->err, s->errlen, rc, "VAE: oneDNN convolution failed");
    px_conv_destroy(cv);
    return rc;
}

/* Rows per band of a padded input w+2 wide with c channels. */
static int band_rows(const walk *s, int h, int w, int c)
{
    size_t row = (size_t)(w + 2) * c * sizeof(float);
    size_t rows = s->v->band_bytes / row;
    rows = rows > BAND_MIN_ROWS + 2 ? rows - 2 : BAND_MIN_ROWS;
    return rows < (size_t)h ? (int)rows : h;
}

/*
 * dst (h x w x cout) [+]= conv3x3(src's rows, zero-padded by one): a band of
 * rows at a time, made into P with the row above and below, then convolved
 * into its rows of dst (which must not be what the rows are made from: a
 * band's output would overwrite the next band's rows).
 */
static int w_rows_conv(walk *s, const rows_src *src, px_conv_weights *cw, int cout, int dst,
                       bool acc)
{
    int h = src->h, w = src->w, rows = band_rows(s, h, w, src->c), rc;
    if (!s->run) {
        if ((rc = use(s, B_P, (size_t)rows + 2, (size_t)w + 2, (size_t)src->c))) return rc;
        return use(s, dst, (size_t)h, (size_t)w, (size_t)cout);
    }
    for (int r0 = 0; r0 < h; r0 += rows) {
        int n = h - r0 < rows ? h - r0 : rows;
        fill_job j = {.src = src, .dst = s->b[B_P], .r0 = r0 - 1, .padded = 1};
        zi_parallel_for(s->ctx, n + 2, 0, fill_fn, &j);
        float *out = s->b[dst] + (size_t)r0 * w * cout;
        if ((rc = conv_run(s, cw, s->b[B_P], n + 2, w + 2, out, acc))) return rc;
    }
    return 0;
}

/* dst [+]= conv3x3(silu(gn(src))). */
static int w_norm_conv(walk *s, int src, const gnorm *n, px_conv_weights *cw, int cout, int dst,
                       bool acc)
{
    rows_src rs = {.fn = row_norm, .h = s->h, .w = s->w, .c = n->c, .x = s->b[src], .silu = 1};
    float *ab = NULL;
    if (s->run) {
        if (!(ab = malloc((size_t)2 * n->c * sizeof *ab)) ||
            gn_coeffs(s->ctx, rs.x, s->h, s->w, n, s->v->cfg.groups, s->v->cfg.eps, ab)) {
            free(ab);
            return px_errf(s->err, s->errlen, PX_ENOMEM, "out of memory");
        }
        rs.a = ab;
        rs.b = ab + n->c;
    }
    int rc = w_rows_conv(s, &rs, cw, cout, dst, acc);
    free(ab);
    return rc;
}

/* Y = conv2(silu(gn2(Y))) + shortcut(X) in bands. A band's output cannot
 * go straight into Y: the next band's rows read its last row. So it goes to
 * one of two band buffers in O and is copied into Y once the next band's
 * rows are made. */
static int w_shortcut_out(walk *s, const resnet *r, int y)
{
    /* A third of the usual band: its input and two outputs fit in one. */
    int h = s->h, w = s->w, cout = r->cout, rows = band_rows(s, h, w, cout), rc = 0;
    if (rows < h) rows = rows / 3 > BAND_MIN_ROWS ? rows / 3 : BAND_MIN_ROWS;
    size_t band = (size_t)rows * w * cout, rowf = (size_t)w * cout;
    if (!s->run) {
        if ((rc = use(s, B_P, (size_t)rows + 2, (size_t)w + 2, (size_t)cout))) return rc;
        return use(s, B_O, rows < h ? 2 : 1, band, 1);
    }
    float *ab = malloc((size_t)2 * cout * sizeof *ab), *o[2] = {s->b[B_O], s->b[B_O] + band};
    if (!ab || gn_coeffs(s->ctx, s->b[y], h, w, &r->n2, s->v->cfg.groups, s->v->cfg.eps, ab)) {
        free(ab);
        return px_errf(s->err, s->errlen, PX_ENOMEM, "out of memory");
    }
    rows_src rs = {.fn = row_norm,
                   .h = h,
                   .w = w,
                   .c = cout,
                   .x = s->b[y],
                   .a = ab,
                   .b = ab + cout,
                   .silu = 1};
    int prev_r0 = 0, prev_n = 0, k = 0;
    for (int r0 = 0; r0 < h && !rc; r0 += rows, k ^= 1) {
        int n = h - r0 < rows ? h - r0 : rows;
        fill_job j = {.src = &rs, .dst = s->b[B_P], .r0 = r0 - 1, .padded = 1};
        zi_parallel_for(s->ctx, n + 2, 0, fill_fn, &j);
        if (prev_n) memcpy(s->b[y] + prev_r0 * rowf, o[k ^ 1], prev_n * rowf * sizeof(float));
        if (!(rc = conv_run(s, r->c2, s->b[B_P], n + 2, w + 2, o[k], false)))
            rc = conv_run(s, r->sc, s->b[s->x] + (size_t)r0 * w * r->cin, n, w, o[k], true);
        prev_r0 = r0;
        prev_n = n;
    }
    if (!rc) memcpy(s->b[y] + prev_r0 * rowf, o[k ^ 1], prev_n * rowf * sizeof(float));
    free(ab);
    return rc;
}

/* Y = conv1(X); then X += conv2(Y), or, when the channels change, Y =
 * conv2(Y) + shortcut(X) and swap. */
static int w_resnet(walk *s, const resnet *r)
{
    int rc, y = other(s);
    if ((rc = w_norm_conv(s, s->x, &r->n1, r->c1, r->cout, y, false))) return rc;
    if (!r->sc) return w_norm_conv(s, y, &r->n2, r->c2, r->cout, s->x, true);
    rc = w_shortcut_out(s, r, y);
    s->x = y;
    s->c = r->cout;
    return rc;
}

/* X += out(attention(q(gn X), k(gn X), v(gn X))): q, k, v in P, the
 * normalised input and then the attention's output in Y. */
static int w_attention(walk *s)
{
    const zi_vae *v = s->v;
    int c = s->c, n = s->h * s->w, y = other(s), rc;
    if (!s->run) {
        if ((rc = use(s, y, (size_t)n, (size_t)c, 1))) return rc;
        return use(s, B_P, 3, (size_t)n, (size_t)c);
    }
    float *ab = malloc((size_t)2 * c * sizeof *ab);
    if (!ab ||
        gn_coeffs(s->ctx, s->b[s->x], s->h, s->w, &v->attn_norm, v->cfg.groups, v->cfg.eps, ab)) {
        free(ab);
        return px_errf(s->err, s->errlen, PX_ENOMEM, "out of memory");
    }
    rows_src rs = {
        .fn = row_norm, .h = s->h, .w = s->w, .c = c, .x = s->b[s->x], .a = ab, .b = ab + c};
    fill_job j = {.src = &rs, .dst = s->b[y], .r0 = 0, .padded = 0};
    zi_parallel_for(s->ctx, s->h, 0, fill_fn, &j);
    free(ab);
    float *q = s->b[B_P], *k = q + (size_t)n * c, *vv = k + (size_t)n * c, *h = s->b[y];
    if ((rc = zi_op_matmul(s->ctx, h, n, c, c, v->wq, ZI_F32, c, v->bq, q, c, 0, s->err,
                           s->errlen)) ||
        (rc = zi_op_matmul(s->ctx, h, n, c, c, v->wk, ZI_F32, c, v->bk, k, c, 0, s->err,
                           s->errlen)) ||
        (rc = zi_op_matmul(s->ctx, h, n, c, c, v->wv, ZI_F32, c, v->bv, vv, c, 0, s->err,
                           s->errlen)))
        return rc;
    zi_attn_args a = {.q = q,
                      .k = k,
                      .v = vv,
                      .ldq = c,
                      .ldk = c,
                      .ldv = c,
                      .o = h,
                      .ldo = c,
                      .n_q = n,
                      .n_kv = n,
                      .n_heads = 1,
                      .n_kv_heads = 1,
                      .head_dim = c,
                      .scale = 1.0f / sqrtf((float)c)};
    if ((rc = zi_op_attention(s->ctx, &a, s->err, s->errlen))) return rc;
    return zi_op_matmul(s->ctx, h, n, c, c, v->wo, ZI_F32, c, v->bo, s->b[s->x], c, ZI_LIN_ACCUM,
                        s->err, s->errlen);
}

/* Y = conv(nearest x2 (X)) in bands; swap. */
static int w_upsample(walk *s, px_conv_weights *cw)
{
    int y = other(s);
    rows_src rs = {.fn = row_upsample, .h = 2 * s->h, .w = 2 * s->w, .c = s->c, .x = s->b[s->x]};
    s->h *= 2;
    s->w *= 2;
    s->x = y;
    return w_rows_conv(s, &rs, cw, s->c, y, false);
}

/* The whole decoder; the RGB result (before the final mapping) into B_OUT. */
static int w_decoder(walk *s, const float *latent)
{
    zi_vae *v = s->v;
    const zi_vae_config *c = &v->cfg;
    int L = c->nlevels, per = c->layers_per_block + 1, top = c->block_out[L - 1], rc;
    rows_src z = {.fn = row_latent,
                  .h = s->h,
                  .w = s->w,
                  .c = c->latent_channels,
                  .x = latent,
                  .scale = c->scaling_factor,
                  .shift = c->shift_factor};
    s->x = B_X0;
    if ((rc = w_rows_conv(s, &z, v->conv_in, top, s->x, false))) return rc;
    s->c = top;
    if ((rc = w_resnet(s, &v->mid[0])) || (rc = w_attention(s)) || (rc = w_resnet(s, &v->mid[1])))
        return rc;
    for (int i = 0; i < L; i++) {
        for (int j = 0; j < per; j++)
            if ((rc = w_resnet(s, &v->up[i * per + j]))) return rc;
        if (i < L - 1 && (rc = w_upsample(s, v->upconv[i]))) return rc;
    }
    return w_norm_conv(s, s->x, &v->norm_out, v->conv_out, 3, B_OUT, false);
}

static int check_size(const zi_vae *v, int h, int w, char *err, size_t errlen)
{
    int f = zi_vae_factor(v);
    if (h < 1 || w < 1 || h > PX_IMG_DEFAULT_MAX_SIDE / f || w > PX_IMG_DEFAULT_MAX_SIDE / f)
        return px_errf(err, errlen, PX_EINVAL, "VAE: latent %dx%d outside 1..%d a side", w, h,
                       PX_IMG_DEFAULT_MAX_SIDE / f);
    return 0;
}

size_t zi_vae_activation_bytes(const zi_vae *v, int h, int w)
{
    if (check_size(v, h, w, NULL, 0)) return 0;
    walk s = {.v = (zi_vae *)v, .h = h, .w = w};
    if (w_decoder(&s, NULL)) return 0;
    size_t n = 0;
    for (int i = 0; i < B_N; i++) n += s.need[i];
    return n * sizeof(float);
}

int zi_vae_decode_float(zi_vae *v, zi_ctx *ctx, const float *latent, int h, int w, float *rgb,
                        char *err, size_t errlen)
{
    int rc = check_size(v, h, w, err, errlen);
    if (rc) return rc;
    walk s = {.v = v, .ctx = ctx, .h = h, .w = w, .err = err, .errlen = errlen};
    if ((rc = w_decoder(&s, NULL))) return rc;
    for (int i = 0; i < B_N; i++)
        if (!(s.b[i] = px_alloc_array(s.need[i] ? s.need[i] : 1, sizeof(float)))) {
            rc = px_errf(err, errlen, PX_ENOMEM, "VAE: out of memory for %zu MB of activations",
                         zi_vae_activation_bytes(v, h, w) >> 20);
            goto done;
        }
    s.b[B_OUT] = rgb;
    if (!(s.stream = px_conv_stream_create())) {
        rc = px_errf(err, errlen, PX_EUNSUP, "oneDNN: cannot create a stream");
        goto done;
    }
    px_conv_stream_set_pool(s.stream, zi_ctx_pool(ctx)); /* NULL: the calling thread */
    s.run = 1;
    s.h = h;
    s.w = w;
    if ((rc = w_decoder(&s, latent))) goto done;
    size_t n = (size_t)s.h * s.w * 3;
    for (size_t i = 0; i < n; i++) {
        float t = rgb[i] * 0.5f + 0.5f;
        rgb[i] = t < 0 ? 0 : t > 1 ? 1 : t;
    }
done:
    px_conv_stream_destroy(s.stream);
    free(s.scratch);
    for (int i = 0; i < B_N; i++) free(s.b[i]);
    return rc;
}

int zi_vae_decode(zi_vae *v, zi_ctx *ctx, const float *latent, int h, int w, px_image *out,
                  char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int f = zi_vae_factor(v), rc = check_size(v, h, w, err, errlen);
    if (rc) return rc;
    float *rgb = px_alloc_array((size_t)h * f * w * f * 3, sizeof *rgb);
    if (!rgb) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    if (!(rc = zi_vae_decode_float(v, ctx, latent, h, w, rgb, err, errlen)) &&
        !(rc = px_image_alloc(out, w * f, h * f, 3, NULL, err, errlen))) {
        size_t n = (size_t)out->w * out->h * 3;
        for (size_t i = 0; i < n; i++) out->px[i] = (uint8_t)lrintf(rgb[i] * 255.0f);
    }
    free(rgb);
    return rc;
}
