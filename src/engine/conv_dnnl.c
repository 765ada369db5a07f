/*
 * conv_dnnl.c — the CPU convolution backend (conv.h) on oneDNN's C API.
 *
 * Activations stay NHWC ("nhwc" tag) so the rest of the graph (padding, the
 * FFT, residual adds) works on plain arrays; weights are given to oneDNN as
 * "any" so it picks its fast blocked layout, and converted once per layer
 * and layout, shared by every plan. BatchNorm is already folded (bias), and
 * the FFC sums and ReLUs are post-ops (sum, then eltwise relu), so a layer is
 * one pass over its output. With px_conv_args.blocked, src and dst are given
 * as "any" too and reordered to and from NHWC around the convolution, in the
 * scratch area (the sum then moves into the reorder back: dst = conv + dst,
 * the same additions). (oneDNN's own deconvolution was tried for the
 * transposed layers and measured 10-20x slower than its brgemm convolutions
 * on NHWC, hence the graph's sub-pixel decomposition.) Scratchpads are in "user" mode: each plan gives
 * one area shared by its layers, so nothing is allocated while running and
 * two plans never share a scratchpad when run from two threads.
 *
 * oneDNN here (Debian 12, 2.6) runs on OpenMP; px_conv_set_threads() sets
 * the team size of the calling thread. Layers with at most 4 output channels
 * (the RGB output) go to conv_narrow.c instead, on the stream's px_pool.
 */
#include "engine/conv.h"

#include "core/err.h"
#include "engine/dnnl.h"
#include "engine/conv_narrow.h"

#include <dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one OpenMP call needed; declared here rather than through <omp.h>,
 * which clang (the fuzz build) only has with libomp's headers. */
void omp_set_num_threads(int n);

#define MAX_VERSIONS 4

struct px_conv_weights {
    px_conv_spec spec; /* owns spec.w (plain, may be freed) and spec.b */
    pthread_mutex_t mu;
    dnnl_memory_desc_t plain_md;
    bool plain_used; /* some px_conv reads the plain weights directly */
    int nv;
    struct {
        dnnl_memory_desc_t md;
        void *buf;
        size_t bytes;
    } v[MAX_VERSIONS];
    float *narrow_w; /* (cout, kh, kw, cin) when conv_narrow.c can run the layer */
};

struct px_conv {
    px_conv_weights *wts;
    bool narrow; /* runs on conv_narrow.c, not oneDNN */
    px_conv_args args;
    dnnl_primitive_t prim;
    dnnl_primitive_desc_t pd;
    dnnl_memory_t src, wei, bias, dst, scratch;
    size_t scratch_bytes; /* oneDNN's, then (blocked) the two copies below */
    /* blocked: reorders NHWC src -> src_blk and dst_blk -> NHWC dst (NULL
     * when oneDNN picked NHWC anyway), the copies living in the scratch. */
    dnnl_primitive_t r_src, r_dst;
    dnnl_memory_t src_blk, dst_blk;
    size_t dnnl_scratch, src_blk_bytes, dst_blk_bytes;
    const char *impl;
};

struct px_conv_stream {
    dnnl_stream_t s;
    px_pool *pool;
};

static dnnl_engine_t engine(void)
{
    return px_dnnl_engine();
}

void px_conv_set_threads(int n)
{
    if (n > 0) omp_set_num_threads(n);
}

static int dnnl_fail(char *err, size_t errlen, dnnl_status_t st, const char *what)
{
    return px_errf(err, errlen, st == dnnl_out_of_memory ? PX_ENOMEM : PX_EUNSUP,
                   "oneDNN: %s failed (status %d)", what, (int)st);
}

void px_conv_out_size(const px_conv_weights *c, const px_conv_args *a, int *oh, int *ow)
{
    *oh = (a->h + a->pad_b - c->spec.kh) / c->spec.stride + 1;
    *ow = (a->w + a->pad_r - c->spec.kw) / c->spec.stride + 1;
}

int px_conv_weights_create(px_conv_spec *c, px_conv_weights **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!engine()) return px_errf(err, errlen, PX_EUNSUP, "oneDNN: no CPU engine");
    px_conv_weights *w = calloc(1, sizeof *w);
    if (!w) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    w->spec = *c;
    c->w = c->b = NULL;
    pthread_mutex_init(&w->mu, NULL);
    dnnl_dims_t d = {w->spec.cout, w->spec.cin, w->spec.kh, w->spec.kw};
    /* PyTorch's Conv2d layout (out, in, kh, kw) is oneDNN's oihw. */
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&w->plain_md, 4, d, dnnl_f32, dnnl_oihw);
    if (st != dnnl_success) {
        px_conv_weights_destroy(w);
        return dnnl_fail(err, errlen, st, "weights descriptor");
    }
    const px_conv_spec *sp = &w->spec;
    if (px_narrow_supported(sp->cout, sp->cin, sp->stride, 0, 0)) {
        size_t taps = (size_t)sp->kh * sp->kw;
        w->narrow_w = malloc((size_t)sp->cout * taps * sp->cin * sizeof *w->narrow_w);
        if (!w->narrow_w) {
            px_conv_weights_destroy(w);
            return px_errf(err, errlen, PX_ENOMEM, "out of memory");
        }
        for (int o = 0; o < sp->cout; o++)
            for (int i = 0; i < sp->cin; i++)
                for (size_t t = 0; t < taps; t++)
                    w->narrow_w[((size_t)o * taps + t) * sp->cin + i] =
                        sp->w[((size_t)o * sp->cin + i) * taps + t];
    }
    *out = w;
    return 0;
}

void px_conv_weights_destroy(px_conv_weights *w)
{
    if (!w) return;
    for (int i = 0; i < w->nv; i++) free(w->v[i].buf);
    free(w->narrow_w);
    free(w->spec.w);
    free(w->spec.b);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

size_t px_conv_weights_bytes(const px_conv_weights *cw)
{
    /* Plans may be converting weights in other threads. */
    px_conv_weights *w = (px_conv_weights *)cw;
    pthread_mutex_lock(&w->mu);
    size_t n = w->spec.b ? (size_t)w->spec.cout * 4 : 0;
    if (w->spec.w) n += dnnl_memory_desc_get_size(&w->plain_md);
    for (int i = 0; i < w->nv; i++) n += w->v[i].bytes;
    if (w->narrow_w) n += (size_t)w->spec.cout * w->spec.kh * w->spec.kw * w->spec.cin * 4;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* The weights in layout md: the plain array, a cached conversion, or a new
 * one (converted from whichever copy exists). Once a converted copy exists
 * and no convolution reads the plain one, the plain one is freed: big-lama
 * would otherwise hold its 200 MB of weights twice. Called under w->mu. */
static void *weights_as(px_conv_weights *w, const dnnl_memory_desc_t *md, int *rc, char *err,
                        size_t errlen)
{
    *rc = 0;
    if (w->spec.w && dnnl_memory_desc_equal(md, &w->plain_md)) {
        w->plain_used = true;
        return w->spec.w;
    }
    for (int i = 0; i < w->nv; i++)
        if (dnnl_memory_desc_equal(md, &w->v[i].md)) return w->v[i].buf;
    if (w->nv == MAX_VERSIONS) {
        *rc = px_errf(err, errlen, PX_EUNSUP, "oneDNN: too many weight layouts for one layer");
        return NULL;
    }
    const dnnl_memory_desc_t *from_md = w->spec.w ? &w->plain_md : &w->v[0].md;
    void *from = w->spec.w ? w->spec.w : w->v[0].buf;
    size_t bytes = dnnl_memory_desc_get_size(md);
    void *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!buf) {
        *rc = px_errf(err, errlen, PX_ENOMEM, "out of memory converting weights");
        return NULL;
    }
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_memory_t ms = NULL, md_mem = NULL;
    dnnl_stream_t s = NULL;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&rpd, from_md, engine(), md, engine(), NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&r, rpd);
    if (st == dnnl_success) st = dnnl_memory_create(&ms, from_md, engine(), from);
    if (st == dnnl_success) st = dnnl_memory_create(&md_mem, md, engine(), buf);
    if (st == dnnl_success) st = dnnl_stream_create(&s, engine(), dnnl_stream_default_flags);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md_mem}};
        st = dnnl_primitive_execute(r, s, 2, args);
        if (st == dnnl_success) st = dnnl_stream_wait(s);
    }
    if (s) dnnl_stream_destroy(s);
    if (ms) dnnl_memory_destroy(ms);
    if (md_mem) dnnl_memory_destroy(md_mem);
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (st != dnnl_success) {
        free(buf);
        *rc = dnnl_fail(err, errlen, st, "weights reorder");
        return NULL;
    }
    w->v[w->nv].md = *md;
    w->v[w->nv].buf = buf;
    w->v[w->nv].bytes = bytes;
    w->nv++;
    if (w->spec.w && !w->plain_used) {
        free(w->spec.w);
        w->spec.w = NULL;
    }
    return buf;
}

static size_t round64(size_t n)
{
    return (n + 63) / 64 * 64;
}

/* A reorder primitive from -> to, with dst = reorder(src) + dst when sum. */
static dnnl_status_t reorder_create(dnnl_primitive_t *r, const dnnl_memory_desc_t *from,
                                    const dnnl_memory_desc_t *to, bool sum)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_success;
    if (sum && (!(st = dnnl_primitive_attr_create(&attr)) && !(st = dnnl_post_ops_create(&po)) &&
                !(st = dnnl_post_ops_append_sum(po, 1.0f))))
        st = dnnl_primitive_attr_set_post_ops(attr, po);
    if (!st) st = dnnl_reorder_primitive_desc_create(&pd, from, engine(), to, engine(), attr);
    if (!st) st = dnnl_primitive_create(r, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

/* blocked: the reorders around the convolution and the memory objects of
 * the layouts oneDNN picked (their data in the scratch, px_conv_bind_scratch),
 * which is then oneDNN's own scratch and the two copies. */
static dnnl_status_t blocked_create(px_conv *cv, const dnnl_memory_desc_t *src_md,
                                    const dnnl_memory_desc_t *dst_md, bool sum)
{
    const dnnl_memory_desc_t *sb = dnnl_primitive_desc_query_md(cv->pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *db = dnnl_primitive_desc_query_md(cv->pd, dnnl_query_dst_md, 0);
    dnnl_status_t st;
    if ((st = reorder_create(&cv->r_src, src_md, sb, false)) ||
        (st = reorder_create(&cv->r_dst, db, dst_md, sum)) ||
        (st = dnnl_memory_create(&cv->src_blk, sb, engine(), DNNL_MEMORY_NONE)) ||
        (st = dnnl_memory_create(&cv->dst_blk, db, engine(), DNNL_MEMORY_NONE)))
        return st;
    cv->dnnl_scratch = round64(cv->scratch_bytes);
    cv->src_blk_bytes = round64(dnnl_memory_desc_get_size(sb));
    cv->dst_blk_bytes = round64(dnnl_memory_desc_get_size(db));
    cv->scratch_bytes = cv->dnnl_scratch + cv->src_blk_bytes + cv->dst_blk_bytes;
    return dnnl_success;
}

/* The attributes of a convolution: a user scratchpad (one area shared by
 * every layer of a plan), and as post-ops the sum for accumulate (the
 * blocked path adds in its own reorder instead) and the ReLU. */
static dnnl_status_t make_attr(const px_conv_args *a, bool blk, dnnl_primitive_attr_t *attr,
                               dnnl_post_ops_t *po)
{
    dnnl_status_t st;
    if ((st = dnnl_primitive_attr_create(attr)) ||
        (st = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user)) ||
        (st = dnnl_post_ops_create(po)))
        return st;
    if (a->accumulate && !blk && (st = dnnl_post_ops_append_sum(*po, 1.0f))) return st;
    if (a->relu && (st = dnnl_post_ops_append_eltwise(*po, 1.0f, dnnl_eltwise_relu, 0.f, 0.f)))
        return st;
    return dnnl_primitive_attr_set_post_ops(*attr, *po);
}

/* The memory objects over the caller's source and destination, the
 * weights in the primitive's layout and the bias (if any). */
static dnnl_status_t make_memories(px_conv *cv, const dnnl_memory_desc_t *src_md,
                                   const dnnl_memory_desc_t *dst_md, const dnnl_memory_desc_t *wmd,
                                   void *wbuf, const dnnl_memory_desc_t *bias_md)
{
    const px_conv_args *a = &cv->args;
    const px_conv_spec *c = &cv->wts->spec;
    dnnl_status_t st;
    if ((st = dnnl_memory_create(&cv->src, src_md, engine(), (void *)a->src)) ||
        (st = dnnl_memory_create(&cv->dst, dst_md, engine(), a->dst)) ||
        (st = dnnl_memory_create(&cv->wei, wmd, engine(), wbuf)))
        return st;
    if (c->b) st = dnnl_memory_create(&cv->bias, bias_md, engine(), c->b);
    return st;
}

int px_conv_create(px_conv_weights *w, const px_conv_args *a, px_conv **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    const px_conv_spec *c = &w->spec;
    int oh, ow;
    px_conv_out_size(w, a, &oh, &ow);
    if (oh < 1 || ow < 1)
        return px_errf(err, errlen, PX_EINVAL, "convolution input %dx%d smaller than its kernel",
                       a->w, a->h);
    px_conv *cv = calloc(1, sizeof *cv);
    if (!cv) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    cv->wts = w;
    cv->args = *a;
    if (w->narrow_w && px_narrow_supported(c->cout, c->cin, c->stride, a->pad_b, a->pad_r)) {
        cv->narrow = true;
        cv->impl = "narrow:avx512f";
        *out = cv;
        return 0;
    }
    dnnl_memory_desc_t src_md, dst_md, wei_any, bias_md, csrc_md, cdst_md;
    bool blk = a->blocked && !(a->relu && a->accumulate);
    dnnl_format_tag_t ctag = blk ? dnnl_format_tag_any : dnnl_nhwc;
    dnnl_dims_t sd = {1, c->cin, a->h, a->w}, dd = {1, c->cout, oh, ow};
    dnnl_dims_t wd = {c->cout, c->cin, c->kh, c->kw}, bd = {c->cout};
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_status_t st;
    const char *what = "descriptors";
    if ((st = dnnl_memory_desc_init_by_tag(&src_md, 4, sd, dnnl_f32, dnnl_nhwc)) ||
        (st = dnnl_memory_desc_init_by_tag(&dst_md, 4, dd, dnnl_f32, dnnl_nhwc)) ||
        (st = dnnl_memory_desc_init_by_tag(&csrc_md, 4, sd, dnnl_f32, ctag)) ||
        (st = dnnl_memory_desc_init_by_tag(&cdst_md, 4, dd, dnnl_f32, ctag)) ||
        (st = dnnl_memory_desc_init_by_tag(&wei_any, 4, wd, dnnl_f32, dnnl_format_tag_any)) ||
        (st = dnnl_memory_desc_init_by_tag(&bias_md, 1, bd, dnnl_f32, dnnl_a)))
        goto fail;
    what = "attributes";
    if ((st = make_attr(a, blk, &attr, &po))) goto fail;
    what = "convolution descriptor";
    dnnl_convolution_desc_t dsc;
    dnnl_dims_t strides = {c->stride, c->stride}, pl = {0, 0}, pr = {a->pad_b, a->pad_r};
    st = dnnl_convolution_forward_desc_init(&dsc, dnnl_forward_inference, dnnl_convolution_direct,
                                            &csrc_md, &wei_any, c->b ? &bias_md : NULL, &cdst_md,
                                            strides, pl, pr);
    if (!st) st = dnnl_primitive_desc_create(&cv->pd, &dsc, attr, engine(), NULL);
    if (st) goto fail;
    what = "primitive";
    if ((st = dnnl_primitive_create(&cv->prim, cv->pd))) goto fail;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(cv->pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success)
        cv->impl = impl;
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(cv->pd, dnnl_query_weights_md, 0);
    int wrc;
    pthread_mutex_lock(&w->mu);
    void *wbuf = weights_as(w, wmd, &wrc, err, errlen);
    pthread_mutex_unlock(&w->mu);
    if (!wbuf) {
        dnnl_primitive_attr_destroy(attr);
        dnnl_post_ops_destroy(po);
        px_conv_destroy(cv);
        return wrc;
    }
    what = "memory objects";
    if ((st = make_memories(cv, &src_md, &dst_md, wmd, wbuf, &bias_md))) goto fail;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(cv->pd, dnnl_query_scratchpad_md, 0);
    cv->scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    what = "reorders";
    if (blk && (st = blocked_create(cv, &src_md, &dst_md, a->accumulate))) goto fail;
    dnnl_primitive_attr_destroy(attr);
    dnnl_post_ops_destroy(po);
    *out = cv;
    return 0;
fail:
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (po) dnnl_post_ops_destroy(po);
    px_conv_destroy(cv);
    return dnnl_fail(err, errlen, st, what);
}

int px_conv_bind_scratch(px_conv *c, void *scratch, char *err, size_t errlen)
{
    if (!c->scratch_bytes) return 0;
    dnnl_status_t st = dnnl_success;
    char *p = scratch;
    if (c->src_blk && ((st = dnnl_memory_set_data_handle(c->src_blk, p + c->dnnl_scratch)) ||
                       (st = dnnl_memory_set_data_handle(c->dst_blk, p + c->dnnl_scratch +
                                                                         c->src_blk_bytes))))
        return dnnl_fail(err, errlen, st, "scratchpad");
    if (c->src_blk && !c->dnnl_scratch) return 0;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(c->pd, dnnl_query_scratchpad_md, 0);
    st = dnnl_memory_create(&c->scratch, smd, engine(), scratch);
    return st ? dnnl_fail(err, errlen, st, "scratchpad") : 0;
}

size_t px_conv_scratch_bytes(const px_conv *c)
{
    return c->scratch_bytes;
}

const char *px_conv_impl(const px_conv *c)
{
    return c->impl ? c->impl : "?";
}

void px_conv_destroy(px_conv *c)
{
    if (!c) return;
    dnnl_memory_t ms[7] = {c->src, c->wei, c->bias, c->dst, c->scratch, c->src_blk, c->dst_blk};
    for (int i = 0; i < 7; i++)
        if (ms[i]) dnnl_memory_destroy(ms[i]);
    if (c->r_src) dnnl_primitive_destroy(c->r_src);
    if (c->r_dst) dnnl_primitive_destroy(c->r_dst);
    if (c->prim) dnnl_primitive_destroy(c->prim);
    if (c->pd) dnnl_primitive_desc_destroy(c->pd);
    free(c);
}

void px_conv_stream_set_pool(px_conv_stream *s, px_pool *pool)
{
    s->pool = pool;
}

px_conv_stream *px_conv_stream_create(void)
{
    if (!engine()) return NULL;
    px_conv_stream *s = calloc(1, sizeof *s);
    if (s && dnnl_stream_create(&s->s, engine(), dnnl_stream_default_flags) != dnnl_success) {
        free(s);
        s = NULL;
    }
    return s;
}

void px_conv_stream_destroy(px_conv_stream *s)
{
    if (!s) return;
    dnnl_stream_destroy(s->s);
    free(s);
}

int px_conv_run(px_conv *c, px_conv_stream *s)
{
    if (c->narrow) {
        const px_conv_spec *sp = &c->wts->spec;
        const px_conv_args *a = &c->args;
        px_narrow_conv(s->pool, a->src, a->h, a->w, sp->cin, c->wts->narrow_w, sp->b, sp->cout,
                       sp->kh, sp->kw, a->dst, a->accumulate, a->relu);
        return 0;
    }
    dnnl_exec_arg_t args[5], rs[2] = {{DNNL_ARG_FROM, c->src}, {DNNL_ARG_TO, c->src_blk}},
                             rd[2] = {{DNNL_ARG_FROM, c->dst_blk}, {DNNL_ARG_TO, c->dst}};
    int n = 0;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, c->src_blk ? c->src_blk : c->src};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, c->wei};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, c->dst_blk ? c->dst_blk : c->dst};
    if (c->bias) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, c->bias};
    if (c->scratch) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, c->scratch};
    if ((c->r_src && dnnl_primitive_execute(c->r_src, s->s, 2, rs) != dnnl_success) ||
        dnnl_primitive_execute(c->prim, s->s, n, args) != dnnl_success ||
        (c->r_dst && dnnl_primitive_execute(c->r_dst, s->s, 2, rd) != dnnl_success))
        return PX_EUNSUP;
    return dnnl_stream_wait(s->s) == dnnl_success ? 0 : PX_EUNSUP;
}
