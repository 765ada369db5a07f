/*
 * graph.c — the LaMa generator's forward pass and its per-shape plans (see
 * graph.h). The network, for n_down = 3 (big-lama):
 *
 *   pad 3 (reflect) -> 7x7 conv+BN+ReLU           (model.0, model.1)
 *   3 x [pad 1 (reflect) -> 3x3 s2 conv+BN+ReLU]    (model.2..4; the last
 *        splits into local cl and global cg channels)
 *   n_blocks x FFC residual block                   (model.5..)
 *   concat(local, global)
 *   3 x [transposed 3x3 s2 conv+BN+ReLU]            (as four sub-pixel convs, below)
 *   pad 3 (reflect) -> 7x7 conv -> sigmoid
 *
 * One FFC (BN folded, weights.h):
 *   out_l = relu(l2l(pad(l)) + g2l(pad(g)))
 *   x     = relu(st1(g));  f = relu(fu(rfft2(x) * a)) ; y = x + irfft2(f) * a
 *   out_g = relu(st2(y) + l2g(pad(l)))                 (a = 1/sqrt(h*w), "ortho")
 * and a residual block is (l, g) += FFC2(FFC1(l, g)).
 *
 * Transposed convolutions (k3, stride 2, padding 1, output_padding 1) run as
 * four ordinary convolutions, one per output phase (row parity a, column
 * parity b): output (2m+a, 2n+b) only sees kernel row 1 at input row m when
 * a = 0, and kernel rows 2 and 0 at input rows m and m+1 when a = 1 (the
 * same for columns). So phase (a, b) is a (1+a) x (1+b) convolution over the
 * input zero-padded by a row below and b columns right, with the kernel taps
 * picked from the 3x3 one, and a scatter interleaves the four results. Same
 * arithmetic, but on the backend's fast convolutions (oneDNN's NHWC
 * deconvolution measured 10-20x slower).
 */
#include "engine/lama/graph.h"

#include "core/alloc.h"
#include "core/err.h"
#include "engine/conv.h"
#include "engine/lama/fft.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXD PX_LAMA_MAX_DOWN

enum { F_L2L, F_G2L, F_L2G, F_ST1, F_FU, F_ST2, F_N };

struct px_lama_net {
    px_lama_weights w; /* dims of every layer; the arrays moved into cw */
    px_conv_weights *stem, *down[MAXD], *down_g, *up[MAXD][4], *out;
    px_conv_weights *(*blk)[2][F_N];
};

/* --- activation memory plan -------------------------------------------------------- */

/* Buffer indices of a plan. */
enum {
    B_IN, B_PSTEM, B_A, /* A[0..L-1]: stem and downsampling outputs */
    B_PD = B_A + MAXD,  /* PD[0..L-1]: their reflect-padded copies */
    B_TL = B_PD + MAXD, B_TG, B_LP, B_GP, B_L1, B_G1, B_X, B_SPEC, B_SPEC2, B_Y, B_CAT,
    B_U,                /* U[0..L-1]: upsampling outputs */
    B_UPH = B_U + MAXD, /* UPH[0..L-1]: the four phases of U[i] before the scatter */
    B_PF = B_UPH + MAXD, B_OUT, B_N
};

typedef struct {
    size_t floats; /* 0: unused */
    int first, last;
    size_t off;    /* in floats, from the arena's start */
} pbuf;

typedef struct {
    int L, H, W, h[MAXD + 1], w[MAXD + 1]; /* level i: H >> i */
    int th, tw, twf;                       /* trunk and its spectrum width */
    pbuf b[B_N];
    size_t total; /* floats */
} layout;

static bool set_buf(layout *lo, int i, size_t a, size_t b, size_t c, int first, int last)
{
    size_t n;
    if (!px_mul3_size(a, b, c, &n) || n > SIZE_MAX / 8) return false;
    lo->b[i].floats = (n + 15) / 16 * 16; /* 64-byte granules keep every buffer aligned */
    lo->b[i].first = first;
    lo->b[i].last = last;
    return true;
}

/* Lifetimes are in steps of the forward pass; two buffers may share memory
 * when their step ranges do not overlap. Placement is greedy, largest first,
 * at the lowest offset that fits: near-optimal for a chain like this one. */
static bool plan_layout(const px_lama_arch *a, int H, int W, layout *lo)
{
    memset(lo, 0, sizeof *lo);
    int L = a->n_down;
    lo->L = L;
    lo->H = H;
    lo->W = W;
    for (int i = 0; i <= L; i++) {
        lo->h[i] = H >> i;
        lo->w[i] = W >> i;
    }
    int h = lo->h[L], w = lo->w[L], wf = w / 2 + 1;
    lo->th = h;
    lo->tw = w;
    lo->twf = wf;
    int T = 3 + 2 * L; /* the trunk's step */
    bool ok = set_buf(lo, B_IN, (size_t)H, (size_t)W, PX_LAMA_IN_CH, 0, 1) &&
              set_buf(lo, B_PSTEM, (size_t)H + 6, (size_t)W + 6, PX_LAMA_IN_CH, 1, 2);
    for (int i = 0; ok && i < L; i++) {
        ok = set_buf(lo, B_A + i, (size_t)lo->h[i], (size_t)lo->w[i], (size_t)a->ch[i], 2 + 2 * i, 3 + 2 * i) &&
             set_buf(lo, B_PD + i, (size_t)lo->h[i] + 2, (size_t)lo->w[i] + 2, (size_t)a->ch[i], 3 + 2 * i,
                     4 + 2 * i);
    }
    size_t hw = (size_t)h * w, hp = (size_t)(h + 2) * (w + 2), hf = (size_t)h * wf;
    ok = ok && set_buf(lo, B_TL, hw, 1, (size_t)a->cl, 2 + 2 * L, T + 1) &&
         set_buf(lo, B_TG, hw, 1, (size_t)a->cg, 2 + 2 * L, T + 1) &&
         set_buf(lo, B_LP, hp, 1, (size_t)a->cl, T, T) && set_buf(lo, B_GP, hp, 1, (size_t)a->cg, T, T) &&
         set_buf(lo, B_L1, hw, 1, (size_t)a->cl, T, T) && set_buf(lo, B_G1, hw, 1, (size_t)a->cg, T, T) &&
         set_buf(lo, B_X, hw, 1, (size_t)a->cs, T, T) &&
         set_buf(lo, B_SPEC, hf, 2, (size_t)a->cs, T, T) &&
         set_buf(lo, B_SPEC2, hf, 2, (size_t)a->cs, T, T) && set_buf(lo, B_Y, hw, 1, (size_t)a->cs, T, T) &&
         set_buf(lo, B_CAT, hw, 1, (size_t)a->dim, T + 1, T + 2);
    for (int i = 0; ok && i < L; i++) {
        int lv = L - 1 - i;
        ok = set_buf(lo, B_U + i, (size_t)lo->h[lv], (size_t)lo->w[lv], (size_t)a->ch[lv], T + 2 + i, T + 3 + i) &&
             set_buf(lo, B_UPH + i, (size_t)lo->h[lv], (size_t)lo->w[lv], (size_t)a->ch[lv], T + 2 + i, T + 2 + i);
    }
    ok = ok && set_buf(lo, B_PF, (size_t)H + 6, (size_t)W + 6, (size_t)a->ngf, T + 2 + L, T + 3 + L) &&
         set_buf(lo, B_OUT, (size_t)H, (size_t)W, PX_LAMA_OUT_CH, T + 3 + L, T + 4 + L);
    if (!ok) return false;
    int order[B_N], n = 0;
    for (int i = 0; i < B_N; i++)
        if (lo->b[i].floats) order[n++] = i;
    for (int i = 1; i < n; i++) /* insertion sort, largest first */
        for (int j = i; j > 0 && lo->b[order[j]].floats > lo->b[order[j - 1]].floats; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        pbuf *p = &lo->b[order[i]];
        size_t off = 0;
        for (bool moved = true; moved;) {
            moved = false;
            for (int j = 0; j < i; j++) {
                const pbuf *q = &lo->b[order[j]];
                bool live = p->first <= q->last && q->first <= p->last;
                if (live && off < q->off + q->floats && q->off < off + p->floats) {
                    off = q->off + q->floats;
                    moved = true;
                }
            }
        }
        p->off = off;
        if (off + p->floats > lo->total) lo->total = off + p->floats;
    }
    return lo->total <= SIZE_MAX / sizeof(float);
}

int px_lama_padded_side(const px_lama_arch *a, int side)
{
    int m = 1 << a->n_down;
    int s = (side + m - 1) / m * m;
    return s < 2 * m ? 2 * m : s;
}

static bool valid_side(const px_lama_arch *a, int s)
{
    int m = 1 << a->n_down;
    return s >= 2 * m && s % m == 0 && s <= (1 << 20);
}

size_t px_lama_plan_arena_bytes(const px_lama_arch *a, int H, int W)
{
    layout lo;
    if (!valid_side(a, H) || !valid_side(a, W) || !plan_layout(a, H, W, &lo)) return 0;
    return lo.total * sizeof(float);
}

/* --- the network ------------------------------------------------------------------- */

const px_lama_arch *px_lama_net_arch(const px_lama_net *n)
{
    return &n->w.arch;
}

size_t px_lama_net_params(const px_lama_net *n)
{
    return n->w.nparams;
}

static px_conv_weights **net_all(px_lama_net *n, int *count, px_conv_weights **buf, int cap)
{
    int k = 0, L = n->w.arch.n_down;
    buf[k++] = n->stem;
    for (int i = 0; i < L; i++) buf[k++] = n->down[i];
    buf[k++] = n->down_g;
    for (int i = 0; i < L; i++)
        for (int ph = 0; ph < 4; ph++) buf[k++] = n->up[i][ph];
    buf[k++] = n->out;
    for (int b = 0; n->blk && b < n->w.arch.n_blocks && k + 2 * F_N <= cap; b++)
        for (int j = 0; j < 2; j++)
            for (int f = 0; f < F_N; f++) buf[k++] = n->blk[b][j][f];
    *count = k;
    return buf;
}

#define ALL_CAP (6 * MAXD + 4 + PX_LAMA_MAX_BLOCKS * 2 * F_N)

size_t px_lama_net_weight_bytes(const px_lama_net *n)
{
    px_conv_weights *all[ALL_CAP];
    int k;
    net_all((px_lama_net *)n, &k, all, ALL_CAP);
    size_t s = 0;
    for (int i = 0; i < k; i++)
        if (all[i]) s += px_conv_weights_bytes(all[i]);
    return s;
}

void px_lama_net_free(px_lama_net *n)
{
    if (!n) return;
    px_conv_weights *all[ALL_CAP];
    int k;
    net_all(n, &k, all, ALL_CAP);
    for (int i = 0; i < k; i++) px_conv_weights_destroy(all[i]);
    free(n->blk);
    px_lama_weights_free(&n->w);
    free(n);
}

/* A direct convolution's weights to the backend (ownership moves). */
static int make_conv(px_lama_conv *c, px_conv_weights **out, char *err, size_t errlen)
{
    px_conv_spec s = {c->cout, c->cin, c->k, c->k, c->stride, c->w, c->b};
    c->w = c->b = NULL;
    int rc = px_conv_weights_create(&s, out, err, errlen);
    free(s.w); /* NULL unless create failed */
    free(s.b);
    return rc;
}

/* The four phase convolutions of a transposed 3x3 stride-2 layer (see the
 * top of this file); weights (cin, cout, 3, 3) as PyTorch's ConvTranspose2d. */
static int make_phases(px_lama_conv *c, px_conv_weights *out[4], char *err, size_t errlen)
{
    static const int tap[2][2] = {{1, -1}, {2, 0}}; /* [parity][t] -> kernel index */
    for (int ph = 0; ph < 4; ph++) {
        int a = ph >> 1, b = ph & 1, kh = 1 + a, kw = 1 + b;
        px_conv_spec s = {c->cout, c->cin, kh, kw, 1, NULL, NULL};
        s.w = px_alloc_array((size_t)c->cout * c->cin * kh * kw, sizeof *s.w);
        s.b = malloc((size_t)c->cout * sizeof *s.b);
        if (!s.w || !s.b) {
            free(s.w);
            free(s.b);
            return px_errf(err, errlen, PX_ENOMEM, "lama: out of memory");
        }
        for (int o = 0; o < c->cout; o++) {
            s.b[o] = c->b[o];
            for (int i = 0; i < c->cin; i++)
                for (int ty = 0; ty < kh; ty++)
                    for (int tx = 0; tx < kw; tx++)
                        s.w[(((size_t)o * c->cin + i) * kh + ty) * kw + tx] =
                            c->w[(((size_t)i * c->cout + o) * 3 + tap[a][ty]) * 3 + tap[b][tx]];
        }
        int rc = px_conv_weights_create(&s, &out[ph], err, errlen);
        free(s.w);
        free(s.b);
        if (rc) return rc;
    }
    free(c->w);
    free(c->b);
    c->w = c->b = NULL;
    return 0;
}

int px_lama_net_load(const char *path, px_lama_net **out, char *err, size_t errlen)
{
    *out = NULL;
    px_st *st;
    int rc = px_st_open(path, &st, err, errlen);
    if (rc) return rc;
    px_lama_net *n = calloc(1, sizeof *n);
    if (!n) {
        px_st_close(st);
        return px_errf(err, errlen, PX_ENOMEM, "lama: out of memory");
    }
    char inner[256];
    rc = px_lama_weights_load(st, &n->w, inner, sizeof inner);
    px_st_close(st); /* the folded weights are copies */
    if (rc) {
        free(n);
        return px_errf(err, errlen, rc, "%s: %s", path, inner);
    }
    const px_lama_arch *a = &n->w.arch;
    n->blk = calloc((size_t)a->n_blocks, sizeof *n->blk);
    if (!n->blk) {
        rc = px_errf(err, errlen, PX_ENOMEM, "lama: out of memory");
        goto fail;
    }
    if ((rc = make_conv(&n->w.stem, &n->stem, err, errlen)) ||
        (rc = make_conv(&n->w.down_g, &n->down_g, err, errlen)) ||
        (rc = make_conv(&n->w.out, &n->out, err, errlen)))
        goto fail;
    for (int i = 0; i < a->n_down; i++)
        if ((rc = make_conv(&n->w.down[i], &n->down[i], err, errlen)) ||
            (rc = make_phases(&n->w.up[i], n->up[i], err, errlen)))
            goto fail;
    for (int b = 0; b < a->n_blocks; b++)
        for (int j = 0; j < 2; j++) {
            px_lama_ffc *f = &n->w.blocks[b][j];
            px_lama_conv *cs[F_N] = {&f->l2l, &f->g2l, &f->l2g, &f->st1, &f->fu, &f->st2};
            for (int k = 0; k < F_N; k++)
                if ((rc = make_conv(cs[k], &n->blk[b][j][k], err, errlen))) goto fail;
        }
    *out = n;
    return 0;
fail:
    px_lama_net_free(n);
    return rc;
}

/* --- plans ----------------------------------------------------------------------- */

struct px_lama_plan {
    px_lama_net *net;
    layout lo;
    float *arena;
    void *scratch;
    size_t scratch_bytes;
    float *buf[B_N];
    px_conv_stream *stream;
    px_fft *fft;
    px_conv *stem, *down[MAXD], *down_g, *up[MAXD][4], *out;
    px_conv *(*blk)[2][F_N];
    int nthreads;
};

const float *px_lama_plan_pred(const px_lama_plan *p)
{
    return p->buf[B_OUT];
}

int px_lama_plan_h(const px_lama_plan *p)
{
    return p->lo.H;
}

int px_lama_plan_w(const px_lama_plan *p)
{
    return p->lo.W;
}

size_t px_lama_plan_bytes(const px_lama_plan *p)
{
    return p->lo.total * sizeof(float) + p->scratch_bytes;
}

void px_lama_plan_destroy(px_lama_plan *p)
{
    if (!p) return;
    int L = p->net->w.arch.n_down;
    px_conv_destroy(p->stem);
    px_conv_destroy(p->down_g);
    px_conv_destroy(p->out);
    for (int i = 0; i < L; i++) {
        px_conv_destroy(p->down[i]);
        for (int ph = 0; ph < 4; ph++) px_conv_destroy(p->up[i][ph]);
    }
    if (p->blk)
        for (int b = 0; b < p->net->w.arch.n_blocks; b++)
            for (int j = 0; j < 2; j++)
                for (int f = 0; f < F_N; f++) px_conv_destroy(p->blk[b][j][f]);
    free(p->blk);
    px_fft_destroy(p->fft);
    px_conv_stream_destroy(p->stream);
    free(p->scratch);
    free(p->arena);
    free(p);
}

/* Binds one layer; collects the largest scratch need. dst_off: floats into
 * the dst buffer; pad: zero rows below / columns right. */
static int bind_at(px_lama_plan *p, px_conv_weights *w, px_conv **out, int h, int wd, int src,
                   int dst, size_t dst_off, bool acc, bool relu, int pad_b, int pad_r, char *err,
                   size_t errlen)
{
    px_conv_args a = {h, wd, p->buf[src], p->buf[dst] + dst_off, acc, relu, pad_b, pad_r, false};
    int rc = px_conv_create(w, &a, out, err, errlen);
    if (!rc && px_conv_scratch_bytes(*out) > p->scratch_bytes)
        p->scratch_bytes = px_conv_scratch_bytes(*out);
    return rc;
}

static int bind(px_lama_plan *p, px_conv_weights *w, px_conv **out, int h, int wd, int src, int dst,
                bool acc, bool relu, char *err, size_t errlen)
{
    return bind_at(p, w, out, h, wd, src, dst, 0, acc, relu, 0, 0, err, errlen);
}

/* Binds every layer of the net to plan p's buffers for an H x W input.
 * Returns 0 or a PX_E* code with err set. */
static int bind_layers(px_lama_plan *p, int H, int W, char *err, size_t errlen)
{
    px_lama_net *n = p->net;
    const px_lama_arch *a = &n->w.arch;
    const layout *lo = &p->lo;
    int rc;
    int L = a->n_down, h = lo->th, w = lo->tw;
    if ((rc = bind(p, n->stem, &p->stem, H + 6, W + 6, B_PSTEM, B_A, false, true, err, errlen)))
        return rc;
    for (int i = 0; i < L; i++) {
        int hp = lo->h[i] + 2, wp = lo->w[i] + 2;
        int dst = i == L - 1 ? B_TL : B_A + i + 1;
        if ((rc =
                 bind(p, n->down[i], &p->down[i], hp, wp, B_PD + i, dst, false, true, err, errlen)))
            return rc;
        if (i == L - 1 &&
            (rc = bind(p, n->down_g, &p->down_g, hp, wp, B_PD + i, B_TG, false, true, err, errlen)))
            return rc;
    }
    for (int b = 0; b < a->n_blocks; b++)
        for (int j = 0; j < 2; j++) {
            px_conv **c = p->blk[b][j];
            px_conv_weights **cw = n->blk[b][j];
            int xg = j ? B_G1 : B_TG;
            if ((rc = bind(p, cw[F_L2L], &c[F_L2L], h + 2, w + 2, B_LP, B_L1, false, false, err, errlen)) ||
                (rc = bind(p, cw[F_G2L], &c[F_G2L], h + 2, w + 2, B_GP, B_L1, true, true, err, errlen)) ||
                (rc = bind(p, cw[F_ST1], &c[F_ST1], h, w, xg, B_X, false, true, err, errlen)) ||
                (rc = bind(p, cw[F_FU], &c[F_FU], h, lo->twf, B_SPEC, B_SPEC2, false, true, err, errlen)) ||
                (rc = bind(p, cw[F_ST2], &c[F_ST2], h, w, B_Y, B_G1, false, false, err, errlen)) ||
                (rc = bind(p, cw[F_L2G], &c[F_L2G], h + 2, w + 2, B_LP, B_G1, true, true, err, errlen)))
                return rc;
        }
    for (int i = 0; i < L; i++) {
        int lv = L - i; /* input level */
        size_t phase = (size_t)lo->h[lv] * lo->w[lv] * a->ch[lv - 1];
        for (int ph = 0; ph < 4; ph++)
            if ((rc = bind_at(p, n->up[i][ph], &p->up[i][ph], lo->h[lv], lo->w[lv],
                              i ? B_U + i - 1 : B_CAT, B_UPH + i, (size_t)ph * phase, false, true,
                              ph >> 1, ph & 1, err, errlen)))
                return rc;
    }
    if ((rc = bind(p, n->out, &p->out, H + 6, W + 6, B_PF, B_OUT, false, false, err, errlen)))
        return rc;
    return 0;
}

/* One scratch area for every layer: they run one after another. Returns 0
 * or a PX_E* code with err set. */
static int bind_scratch(px_lama_plan *p, char *err, size_t errlen)
{
    const px_lama_arch *a = &p->net->w.arch;
    int L = a->n_down, rc;
    if (!p->scratch_bytes) return 0;
    p->scratch = aligned_alloc(64, (p->scratch_bytes + 63) / 64 * 64);
    if (!p->scratch) return px_errf(err, errlen, PX_ENOMEM, "lama: out of memory for scratch");
    px_conv *all[] = {p->stem, p->down_g, p->out};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if ((rc = px_conv_bind_scratch(all[i], p->scratch, err, errlen))) return rc;
    for (int i = 0; i < L; i++) {
        if ((rc = px_conv_bind_scratch(p->down[i], p->scratch, err, errlen))) return rc;
        for (int ph = 0; ph < 4; ph++)
            if ((rc = px_conv_bind_scratch(p->up[i][ph], p->scratch, err, errlen))) return rc;
    }
    for (int b = 0; b < a->n_blocks; b++)
        for (int j = 0; j < 2; j++)
            for (int f = 0; f < F_N; f++)
                if ((rc = px_conv_bind_scratch(p->blk[b][j][f], p->scratch, err, errlen)))
                    return rc;
    return 0;
}

int px_lama_plan_create(px_lama_net *n, int H, int W, int nthreads, px_lama_plan **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    const px_lama_arch *a = &n->w.arch;
    if (!valid_side(a, H) || !valid_side(a, W))
        return px_errf(err, errlen, PX_EINVAL,
                       "lama: %dx%d is not a padded size (multiple of %d, "
                       "at least %d)",
                       W, H, 1 << a->n_down, 2 << a->n_down);
    px_lama_plan *p = calloc(1, sizeof *p);
    if (!p) return px_errf(err, errlen, PX_ENOMEM, "lama: out of memory");
    p->net = n;
    p->nthreads = nthreads;
    int rc;
    if (!plan_layout(a, H, W, &p->lo)) {
        free(p);
        return px_errf(err, errlen, PX_ETOOBIG, "lama: %dx%d is too large to plan", W, H);
    }
    const layout *lo = &p->lo;
    size_t bytes = lo->total * sizeof(float);
    p->arena = aligned_alloc(64, bytes ? bytes : 64);
    p->blk = calloc((size_t)a->n_blocks, sizeof *p->blk);
    p->stream = px_conv_stream_create();
    if (!p->arena || !p->blk || !p->stream) {
        rc = px_errf(err, errlen, PX_ENOMEM, "lama: out of memory for a %dx%d plan (%zu MiB)", W, H,
                     bytes >> 20);
        goto fail;
    }
    for (int i = 0; i < B_N; i++) p->buf[i] = lo->b[i].floats ? p->arena + lo->b[i].off : NULL;
    /* Primitives are made for the thread count they will run with. */
    px_conv_set_threads(nthreads);
    if ((rc = px_fft_create(lo->th, lo->tw, a->cs, nthreads, &p->fft, err, errlen))) goto fail;
    if ((rc = bind_layers(p, H, W, err, errlen))) goto fail;
    if ((rc = bind_scratch(p, err, errlen))) goto fail;
    *out = p;
    return 0;
fail:
    px_lama_plan_destroy(p);
    return rc;
}

/* --- element-wise passes (on the pool, split by rows) ------------------------------- */

/* Index of a reflected coordinate: ... 2 1 | 0 1 2 ... n-1 | n-2 n-3 ...
 * (edge not repeated: torch "reflect"); requires p < n. */
static inline int reflect(int i, int n)
{
    return i < 0 ? -i : i >= n ? 2 * n - 2 - i : i;
}

/* numpy "symmetric" (edge repeated), periodic for any distance. */
static inline int symmetric(int i, int n)
{
    int m = i % (2 * n);
    if (m < 0) m += 2 * n;
    return m < n ? m : 2 * n - 1 - m;
}

typedef struct {
    const float *src;
    float *dst;
    int h, w, c, p;
} pad_job;

static void pad_rows(void *ctx, int y0, int y1)
{
    const pad_job *j = ctx;
    size_t c = (size_t)j->c, wp = (size_t)(j->w + 2 * j->p);
    for (int y = y0; y < y1; y++) {
        const float *s = j->src + (size_t)reflect(y - j->p, j->h) * j->w * c;
        float *d = j->dst + (size_t)y * wp * c;
        memcpy(d + (size_t)j->p * c, s, (size_t)j->w * c * sizeof *d);
        for (int x = 0; x < j->p; x++) {
            memcpy(d + (size_t)x * c, s + (size_t)reflect(x - j->p, j->w) * c, c * sizeof *d);
            int xr = j->w + j->p + x;
            memcpy(d + (size_t)xr * c, s + (size_t)reflect(xr - j->p, j->w) * c, c * sizeof *d);
        }
    }
}

static void pad_reflect(px_pool *pool, const float *src, int h, int w, int c, int p, float *dst)
{
    pad_job j = {src, dst, h, w, c, p};
    px_pool_parallel_for(pool, h + 2 * p, 0, pad_rows, &j);
}

typedef struct {
    float *a;
    const float *b;
    float s;
    size_t n;
} vec_job;

/* a = a + b (chunks of 4096) */
static void add_chunks(void *ctx, int c0, int c1)
{
    const vec_job *j = ctx;
    size_t e = (size_t)c1 * 4096 < j->n ? (size_t)c1 * 4096 : j->n;
    for (size_t i = (size_t)c0 * 4096; i < e; i++) j->a[i] += j->b[i];
}

/* a = b + s * a */
static void axpy_chunks(void *ctx, int c0, int c1)
{
    const vec_job *j = ctx;
    size_t e = (size_t)c1 * 4096 < j->n ? (size_t)c1 * 4096 : j->n;
    for (size_t i = (size_t)c0 * 4096; i < e; i++) j->a[i] = j->b[i] + j->s * j->a[i];
}

/* a = s * a */
static void scale_chunks(void *ctx, int c0, int c1)
{
    const vec_job *j = ctx;
    size_t e = (size_t)c1 * 4096 < j->n ? (size_t)c1 * 4096 : j->n;
    for (size_t i = (size_t)c0 * 4096; i < e; i++) j->a[i] *= j->s;
}

static void vec(px_pool *pool, px_range_fn fn, float *a, const float *b, float s, size_t n)
{
    vec_job j = {a, b, s, n};
    px_pool_parallel_for(pool, (int)((n + 4095) / 4096), 0, fn, &j);
}

typedef struct {
    const float *l, *g;
    float *dst;
    int cl, cg;
} cat_job;

static void cat_px(void *ctx, int i0, int i1)
{
    const cat_job *j = ctx;
    for (int i = i0; i < i1; i++) {
        float *d = j->dst + (size_t)i * (j->cl + j->cg);
        memcpy(d, j->l + (size_t)i * j->cl, (size_t)j->cl * sizeof *d);
        memcpy(d + j->cl, j->g + (size_t)i * j->cg, (size_t)j->cg * sizeof *d);
    }
}

typedef struct {
    const px_image *img, *mask;
    float *in;
    float *res;
    const float *pred;
    int H, W;
} io_job;

/* The network's input: masked image and mask, symmetric-padded to H x W. */
static void input_rows(void *ctx, int y0, int y1)
{
    const io_job *j = ctx;
    int w = j->img->w, h = j->img->h;
    for (int y = y0; y < y1; y++) {
        int sy = symmetric(y, h);
        const uint8_t *ir = j->img->px + (size_t)sy * w * 3, *mr = j->mask->px + (size_t)sy * w;
        float *d = j->in + (size_t)y * j->W * PX_LAMA_IN_CH;
        for (int x = 0; x < j->W; x++, d += PX_LAMA_IN_CH) {
            int sx = symmetric(x, w);
            float m = mr[sx] ? 1.0f : 0.0f;
            for (int k = 0; k < 3; k++) d[k] = (float)ir[sx * 3 + k] / 255.0f * (1.0f - m);
            d[3] = m;
        }
    }
}

/* mask * pred + (1 - mask) * image over the unpadded area. */
static void result_rows(void *ctx, int y0, int y1)
{
    const io_job *j = ctx;
    int w = j->img->w;
    for (int y = y0; y < y1; y++) {
        const uint8_t *ir = j->img->px + (size_t)y * w * 3, *mr = j->mask->px + (size_t)y * w;
        const float *pr = j->pred + (size_t)y * j->W * 3;
        float *d = j->res + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) {
            float m = mr[x] ? 1.0f : 0.0f;
            for (int k = 0; k < 3; k++)
                d[x * 3 + k] = m * pr[x * 3 + k] + (1.0f - m) * ((float)ir[x * 3 + k] / 255.0f);
        }
    }
}

typedef struct {
    const float *phases; /* 4 x (h x w x c), phase = 2 * row parity + column parity */
    float *dst;          /* 2h x 2w x c */
    int h, w, c;
} scatter_job;

static void scatter_rows(void *ctx, int y0, int y1)
{
    const scatter_job *j = ctx;
    size_t c = (size_t)j->c, plane = (size_t)j->h * j->w * c;
    for (int y = y0; y < y1; y++) {
        int a = y & 1, m = y >> 1;
        float *d = j->dst + (size_t)y * 2 * j->w * c;
        const float *p0 = j->phases + (size_t)(2 * a) * plane + (size_t)m * j->w * c;
        const float *p1 = p0 + plane;
        for (int n = 0; n < j->w; n++) {
            memcpy(d + (size_t)(2 * n) * c, p0 + (size_t)n * c, c * sizeof *d);
            memcpy(d + (size_t)(2 * n + 1) * c, p1 + (size_t)n * c, c * sizeof *d);
        }
    }
}

static void sigmoid_chunks(void *ctx, int c0, int c1)
{
    const vec_job *j = ctx;
    size_t e = (size_t)c1 * 4096 < j->n ? (size_t)c1 * 4096 : j->n;
    for (size_t i = (size_t)c0 * 4096; i < e; i++) j->a[i] = 1.0f / (1.0f + expf(-j->a[i]));
}

/* --- forward --------------------------------------------------------------------- */

#define RUN(c)                                                                   \
    do {                                                                         \
        if (px_conv_run((c), p->stream))                                         \
            return px_errf(err, errlen, PX_EUNSUP, "lama: a convolution failed"); \
    } while (0)
#define CANCELLED() (cancel && atomic_load(cancel))

static void dumpf(px_lama_dump_fn dump, void *ctx, const float *t, int h, int w, int c,
                  const char *fmt, int i)
{
    if (!dump) return;
    char name[64];
    snprintf(name, sizeof name, fmt, i);
    dump(ctx, name, t, h, w, c);
}

int px_lama_plan_run(px_lama_plan *p, px_pool *pool, const px_image *img, const px_image *mask,
                     float *result, const atomic_int *cancel, px_lama_dump_fn dump, void *dctx,
                     char *err, size_t errlen)
{
    const px_lama_arch *a = &p->net->w.arch;
    const layout *lo = &p->lo;
    float **B = p->buf;
    int L = a->n_down, H = lo->H, W = lo->W, h = lo->th, w = lo->tw, nb = a->n_blocks;
    if (!img || !mask || img->c != 3 || mask->c != 1 || img->w != mask->w || img->h != mask->h ||
        px_lama_padded_side(a, img->h) != H || px_lama_padded_side(a, img->w) != W)
        return px_errf(err, errlen, PX_EINVAL, "lama: image does not fit this %dx%d plan", W, H);
    px_conv_set_threads(px_pool_threads(pool));
    px_conv_stream_set_pool(p->stream, pool);

    io_job io = {img, mask, B[B_IN], result, B[B_OUT], H, W};
    px_pool_parallel_for(pool, H, 0, input_rows, &io);
    pad_reflect(pool, B[B_IN], H, W, PX_LAMA_IN_CH, 3, B[B_PSTEM]);
    dumpf(dump, dctx, B[B_PSTEM], H + 6, W + 6, PX_LAMA_IN_CH, "act.model.%d", 0);
    RUN(p->stem);
    dumpf(dump, dctx, B[B_A], H, W, a->ngf, "act.model.%d.l", 1);
    for (int i = 0; i < L; i++) {
        if (CANCELLED()) return px_errf(err, errlen, PX_ECANCELED, "lama: cancelled");
        pad_reflect(pool, B[B_A + i], lo->h[i], lo->w[i], a->ch[i], 1, B[B_PD + i]);
        if (i < L - 1) {
            RUN(p->down[i]);
            dumpf(dump, dctx, B[B_A + i + 1], lo->h[i + 1], lo->w[i + 1], a->ch[i + 1], "act.model.%d.l", 2 + i);
        } else {
            RUN(p->down[i]);
            RUN(p->down_g);
            dumpf(dump, dctx, B[B_TL], h, w, a->cl, "act.model.%d.l", 2 + i);
            dumpf(dump, dctx, B[B_TG], h, w, a->cg, "act.model.%d.g", 2 + i);
        }
    }
    /* Orthonormal scaling, once per direction. */
    float ortho = (float)(1.0 / sqrt((double)h * w));
    size_t nspec = (size_t)h * lo->twf * 2 * a->cs, nx = (size_t)h * w * a->cs;
    for (int b = 0; b < nb; b++) {
        for (int j = 0; j < 2; j++) {
            if (CANCELLED()) return px_errf(err, errlen, PX_ECANCELED, "lama: cancelled");
            px_conv **c = p->blk[b][j];
            pad_reflect(pool, B[j ? B_L1 : B_TL], h, w, a->cl, 1, B[B_LP]);
            pad_reflect(pool, B[j ? B_G1 : B_TG], h, w, a->cg, 1, B[B_GP]);
            RUN(c[F_L2L]);
            RUN(c[F_G2L]);
            RUN(c[F_ST1]);
            px_fft_forward(p->fft, B[B_X], B[B_SPEC]);
            vec(pool, scale_chunks, B[B_SPEC], NULL, ortho, nspec);
            RUN(c[F_FU]);
            px_fft_inverse(p->fft, B[B_SPEC2], B[B_Y]);
            vec(pool, axpy_chunks, B[B_Y], B[B_X], ortho, nx);
            RUN(c[F_ST2]);
            RUN(c[F_L2G]);
        }
        vec(pool, add_chunks, B[B_TL], B[B_L1], 0, (size_t)h * w * a->cl);
        vec(pool, add_chunks, B[B_TG], B[B_G1], 0, (size_t)h * w * a->cg);
        dumpf(dump, dctx, B[B_TL], h, w, a->cl, "act.model.%d.l", 2 + L + b);
        dumpf(dump, dctx, B[B_TG], h, w, a->cg, "act.model.%d.g", 2 + L + b);
    }
    cat_job cj = {B[B_TL], B[B_TG], B[B_CAT], a->cl, a->cg};
    px_pool_parallel_for(pool, h * w, 0, cat_px, &cj);
    dumpf(dump, dctx, B[B_CAT], h, w, a->dim, "act.model.%d", 2 + L + nb);
    int u0 = 3 + L + nb;
    for (int i = 0; i < L; i++) {
        if (CANCELLED()) return px_errf(err, errlen, PX_ECANCELED, "lama: cancelled");
        for (int ph = 0; ph < 4; ph++) RUN(p->up[i][ph]);
        int lv = L - 1 - i;
        scatter_job sj = {B[B_UPH + i], B[B_U + i], lo->h[lv + 1], lo->w[lv + 1], a->ch[lv]};
        px_pool_parallel_for(pool, lo->h[lv], 0, scatter_rows, &sj);
        dumpf(dump, dctx, B[B_U + i], lo->h[lv], lo->w[lv], a->ch[lv], "act.model.%d", u0 + 3 * i + 2);
    }
    pad_reflect(pool, B[B_U + L - 1], H, W, a->ngf, 3, B[B_PF]);
    dumpf(dump, dctx, B[B_PF], H + 6, W + 6, a->ngf, "act.model.%d", u0 + 3 * L);
    RUN(p->out);
    dumpf(dump, dctx, B[B_OUT], H, W, PX_LAMA_OUT_CH, "act.model.%d", u0 + 3 * L + 1);
    vec(pool, sigmoid_chunks, B[B_OUT], NULL, 0, (size_t)H * W * PX_LAMA_OUT_CH);
    dumpf(dump, dctx, B[B_OUT], H, W, PX_LAMA_OUT_CH, "act.model.%d", u0 + 3 * L + 2);
    if (CANCELLED()) return px_errf(err, errlen, PX_ECANCELED, "lama: cancelled");
    if (result) px_pool_parallel_for(pool, img->h, 0, result_rows, &io);
    return 0;
}
