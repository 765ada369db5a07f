/*
 * dit.c — the Z-Image DiT forward (dit.h) on the zops CPU ops.
 *
 * Rows are tokens. A batch is laid out item after item: the refiners run on
 * XI (every item's padded image tokens) and XT (every item's padded text
 * tokens), the joint blocks on U (item b's image tokens then its text
 * tokens). The linear layers run once over all rows of a buffer (one big
 * GEMM for the whole batch); attention, the adaLN modulation and the gates
 * run per item ("segment"), so attention never crosses items and no key
 * mask is needed. Each row carries its own RoPE table row, so positions
 * travel with the tokens.
 *
 * LoRAs are per item: after a block's base linear ran over all rows, each
 * item's deltas are added to its own rows (lora_apply.h); a batch without
 * LoRAs takes no extra step.
 *
 * Rounding follows the PyTorch reference (tools/zimage_reference.py):
 * sinusoid frequencies and arguments in float, RMSNorm then the norm weight
 * then (1 + scale), gates as tanh in float.
 */
#include "engine/zimage/dit.h"
#include "engine/zimage/lora_apply.h"
#include "engine/zimage/znames.h"

#include "core/alloc.h"
#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_MULTI 32 /* text and image runs are padded to a multiple of this */

typedef struct dblock {
    const zi_tensor *qkv, *out, *w1, *w2, *w3;
    const zi_tensor *ada_w; /* NULL in the context refiner */
    float *ada_b, *q_norm, *k_norm, *n1, *n2, *f1, *f2;
} dblock;

struct zi_dit {
    zi_dit_config cfg;
    int hd, pf, nblocks; /* head dim, patch features, blocks in all */
    const zi_tensor *x_w, *cap_w, *t0_w, *t2_w, *fin_w, *fin_ada_w;
    float *x_b, *cap_norm, *cap_b, *t0_b, *t2_b, *fin_b, *fin_ada_b, *x_pad, *cap_pad;
    dblock *blocks; /* noise refiner, context refiner, joint layers */
};

typedef struct seg {
    int row0, rows;
} seg;

/* Context buffer slots. */
enum { S_U, S_XI, S_XT, S_H, S_QKV, S_ATT, S_FF, S_CSI, S_CST, S_CSU, S_SMALL, S_PATCH, S_LORA,
       S_N };

static int pad_to(int n)
{
    return (n + SEQ_MULTI - 1) / SEQ_MULTI * SEQ_MULTI;
}

const zi_dit_config *zi_dit_config_of(const zi_dit *d)
{
    return &d->cfg;
}

float zi_dit_t_in(const zi_dit_config *cfg, float sigma)
{
    float s = 1.0f - sigma;
    return s * cfg->t_scale;
}

/* --- binding ------------------------------------------------------------------- */

static void block_free(dblock *b)
{
    free(b->ada_b), free(b->q_norm), free(b->k_norm);
    free(b->n1), free(b->n2), free(b->f1), free(b->f2);
}

void zi_dit_free(zi_dit *d)
{
    if (!d) return;
    for (int i = 0; d->blocks && i < d->nblocks; i++) block_free(&d->blocks[i]);
    free(d->blocks);
    float *v[9] = {d->x_b, d->cap_norm, d->cap_b, d->t0_b, d->t2_b, d->fin_b, d->fin_ada_b,
                   d->x_pad, d->cap_pad};
    for (int i = 0; i < 9; i++) free(v[i]);
    free(d);
}

/* prefix.what with shape [a] (b < 0) or [a, b]. */
static int get(const zi_weights *w, const char *prefix, const char *what, int64_t a, int64_t b,
               const zi_tensor **t, char *err, size_t errlen)
{
    char name[160];
    snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", what);
    int64_t shape[2] = {a, b};
    return zi_weights_get(w, name, b < 0 ? 1 : 2, shape, t, err, errlen);
}

static int get_f32(const zi_weights *w, const char *prefix, const char *what, int64_t a, int64_t b,
                   float **dst, char *err, size_t errlen)
{
    const zi_tensor *t;
    int rc = get(w, prefix, what, a, b, &t, err, errlen);
    if (rc) return rc;
    if (!(*dst = zi_tensor_dup_f32(t))) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    return 0;
}

static int bind_block(const zi_weights *w, const zi_dit *d, const char *p, int modulated,
                      dblock *b, char *err, size_t errlen)
{
    int64_t D = d->cfg.dim, F = d->cfg.ffn_hidden, T = d->cfg.t_dim, hd = d->hd;
    int rc;
    if ((rc = get(w, p, "attention.qkv.weight", 3 * D, D, &b->qkv, err, errlen)) ||
        (rc = get(w, p, "attention.out.weight", D, D, &b->out, err, errlen)) ||
        (rc = get(w, p, "feed_forward.w1.weight", F, D, &b->w1, err, errlen)) ||
        (rc = get(w, p, "feed_forward.w2.weight", D, F, &b->w2, err, errlen)) ||
        (rc = get(w, p, "feed_forward.w3.weight", F, D, &b->w3, err, errlen)) ||
        (rc = get_f32(w, p, "attention.q_norm.weight", hd, -1, &b->q_norm, err, errlen)) ||
        (rc = get_f32(w, p, "attention.k_norm.weight", hd, -1, &b->k_norm, err, errlen)) ||
        (rc = get_f32(w, p, "attention_norm1.weight", D, -1, &b->n1, err, errlen)) ||
        (rc = get_f32(w, p, "attention_norm2.weight", D, -1, &b->n2, err, errlen)) ||
        (rc = get_f32(w, p, "ffn_norm1.weight", D, -1, &b->f1, err, errlen)) ||
        (rc = get_f32(w, p, "ffn_norm2.weight", D, -1, &b->f2, err, errlen)))
        return rc;
    if (!modulated) return 0;
    if ((rc = get(w, p, "adaLN_modulation.0.weight", 4 * D, T, &b->ada_w, err, errlen)) ||
        (rc = get_f32(w, p, "adaLN_modulation.0.bias", 4 * D, -1, &b->ada_b, err, errlen)))
        return rc;
    return 0;
}

static int check_config(const zi_dit_config *c, char *err, size_t errlen)
{
    int ok = c->dim > 0 && c->n_heads > 0 && c->dim % c->n_heads == 0 && c->patch > 0 &&
             c->in_channels > 0 && c->n_layers >= 0 && c->n_refiner_layers >= 0 &&
             c->ffn_hidden > 0 && c->cap_feat_dim > 0 && c->t_dim > 0 && c->t_hidden > 0 &&
             c->t_freq > 0 && c->t_freq % 2 == 0;
    int sum = 0;
    for (int i = 0; i < 3; i++) {
        ok = ok && c->axes_dims[i] >= 0 && c->axes_dims[i] % 2 == 0;
        sum += c->axes_dims[i];
    }
    if (!ok || sum != c->dim / c->n_heads)
        return px_errf(err, errlen, PX_EINVAL,
                       "dit: unusable config (dim %d, %d heads, axes %d+%d+%d, t_freq %d)", c->dim,
                       c->n_heads, c->axes_dims[0], c->axes_dims[1], c->axes_dims[2], c->t_freq);
    return 0;
}

static int bind_top(const zi_weights *w, zi_dit *d, char *err, size_t errlen)
{
    const zi_dit_config *c = &d->cfg;
    int64_t D = c->dim, P = d->pf;
    int rc;
    if ((rc = get(w, "", "x_embedder.weight", D, P, &d->x_w, err, errlen)) ||
        (rc = get_f32(w, "", "x_embedder.bias", D, -1, &d->x_b, err, errlen)) ||
        (rc = get_f32(w, "", "cap_embedder.0.weight", c->cap_feat_dim, -1, &d->cap_norm, err, errlen)) ||
        (rc = get(w, "", "cap_embedder.1.weight", D, c->cap_feat_dim, &d->cap_w, err, errlen)) ||
        (rc = get_f32(w, "", "cap_embedder.1.bias", D, -1, &d->cap_b, err, errlen)) ||
        (rc = get(w, "", "t_embedder.mlp.0.weight", c->t_hidden, c->t_freq, &d->t0_w, err, errlen)) ||
        (rc = get_f32(w, "", "t_embedder.mlp.0.bias", c->t_hidden, -1, &d->t0_b, err, errlen)) ||
        (rc = get(w, "", "t_embedder.mlp.2.weight", c->t_dim, c->t_hidden, &d->t2_w, err, errlen)) ||
        (rc = get_f32(w, "", "t_embedder.mlp.2.bias", c->t_dim, -1, &d->t2_b, err, errlen)) ||
        (rc = get_f32(w, "", "x_pad_token", 1, D, &d->x_pad, err, errlen)) ||
        (rc = get_f32(w, "", "cap_pad_token", 1, D, &d->cap_pad, err, errlen)) ||
        (rc = get(w, "", "final_layer.linear.weight", P, D, &d->fin_w, err, errlen)) ||
        (rc = get_f32(w, "", "final_layer.linear.bias", P, -1, &d->fin_b, err, errlen)) ||
        (rc = get(w, "", "final_layer.adaLN_modulation.1.weight", D, c->t_dim, &d->fin_ada_w, err,
                  errlen)) ||
        (rc = get_f32(w, "", "final_layer.adaLN_modulation.1.bias", D, -1, &d->fin_ada_b, err,
                      errlen)))
        return rc;
    return 0;
}

int zi_dit_bind(const zi_weights *w, const zi_dit_config *cfg, zi_dit **out, char *err,
                size_t errlen)
{
    *out = NULL;
    int rc = check_config(cfg, err, errlen);
    if (rc) return rc;
    zi_dit *d = calloc(1, sizeof *d);
    if (!d) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    d->cfg = *cfg;
    d->hd = cfg->dim / cfg->n_heads;
    d->pf = cfg->patch * cfg->patch * cfg->in_channels;
    d->nblocks = 2 * cfg->n_refiner_layers + cfg->n_layers;
    d->blocks = calloc(d->nblocks ? (size_t)d->nblocks : 1, sizeof *d->blocks);
    if (!d->blocks) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = bind_top(w, d, err, errlen))) goto fail;
    for (int i = 0; i < d->nblocks; i++) {
        char p[64];
        int modulated = zi_names_dit_block(i, cfg->n_refiner_layers, p, sizeof p);
        if ((rc = bind_block(w, d, p, modulated, &d->blocks[i], err, errlen)))
            goto fail;
    }
    *out = d;
    return 0;
fail:
    zi_dit_free(d);
    return rc;
}

double zi_dit_flops(const zi_dit_config *c, int lat_h, int lat_w, int text_len)
{
    double D = c->dim, F = c->ffn_hidden, p = c->patch;
    double ni = pad_to((int)((lat_h / p) * (lat_w / p))), nt = pad_to(text_len), s = ni + nt;
    double blk = 2 * (3 * D * D + D * D + 3 * D * F); /* per token */
    double att = 4 * D;                                /* per token pair */
    double f = c->n_refiner_layers * (ni * blk + ni * ni * att + nt * blk + nt * nt * att);
    f += c->n_layers * (s * blk + s * s * att);
    f += 2 * ni * D * (p * p * c->in_channels) * 2 + 2 * nt * D * c->cap_feat_dim;
    return f;
}

/* --- row helpers ------------------------------------------------------------------- */

typedef struct {
    float *x;
    const float *h, *v; /* v: a row vector, or NULL */
    int n;
    int add; /* 0: x *= v; 1: x += v·h (v NULL: x += h) */
} rows_job;

static void rows_fn(void *ctx, int b, int e)
{
    const rows_job *j = ctx;
    for (int r = b; r < e; r++) {
        float *x = j->x + (size_t)r * j->n;
        const float *h = j->h ? j->h + (size_t)r * j->n : NULL;
        if (!j->add)
            for (int i = 0; i < j->n; i++) x[i] *= j->v[i];
        else if (j->v)
            for (int i = 0; i < j->n; i++) x[i] += j->v[i] * h[i];
        else
            for (int i = 0; i < j->n; i++) x[i] += h[i];
    }
}

/* x[rows, n] *= v (per column), or x += v·h / x += h. */
static void rows_op(zi_ctx *c, float *x, const float *h, const float *v, int rows, int n, int add)
{
    rows_job j = {x, h, v, n, add};
    int g = rows > 0 ? (int)(((size_t)1 << 16) / (size_t)n) : 1;
    zi_parallel_for(c, rows, g < 1 ? 1 : g, rows_fn, &j);
}

/* mod [4D] from the linear -> (1 + scale_msa, tanh gate_msa, 1 + scale_mlp,
 * tanh gate_mlp), in place. */
static void modulation(float *mod, int D)
{
    for (int i = 0; i < D; i++) {
        mod[i] = 1.0f + mod[i];
        mod[D + i] = tanhf(mod[D + i]);
        mod[2 * D + i] = 1.0f + mod[2 * D + i];
        mod[3 * D + i] = tanhf(mod[3 * D + i]);
    }
}

/* --- one transformer block ---------------------------------------------------------- */

typedef struct run {
    const zi_dit *d;
    zi_ctx *c;
    float *buf[S_N];
    const float *temb; /* [n, t_dim] */
    float *mod;        /* [n, 4D] scratch */
    const zi_dit_input *items;
    int lora_rank;     /* largest LoRA rank of the batch; 0: no item has LoRAs */
    int blk;           /* the block running */
    char *err;
    size_t errlen;
} run;

/* x = x + gate · RMSNorm_post(h), per segment; h is normed in place. */
static void gated_residual(run *r, float *x, float *h, const float *wpost, const seg *sg, int ns,
                           int rows, int gate_at)
{
    int D = r->d->cfg.dim;
    zi_op_rmsnorm(r->c, h, rows, D, D, wpost, r->d->cfg.norm_eps, h, D);
    for (int s = 0; s < ns; s++) {
        const float *g = gate_at < 0 ? NULL : r->mod + (size_t)s * 4 * D + (size_t)gate_at * D;
        size_t o = (size_t)sg[s].row0 * D;
        rows_op(r->c, x + o, h + o, g, sg[s].rows, D, 1);
    }
}

/* h = RMSNorm(x) · (1 + scale), per segment (scale_at < 0: unmodulated). */
static void modulated_norm(run *r, const float *x, float *h, const float *w, const seg *sg, int ns,
                           int rows, int scale_at)
{
    int D = r->d->cfg.dim;
    zi_op_rmsnorm(r->c, x, rows, D, D, w, r->d->cfg.norm_eps, h, D);
    if (scale_at < 0) return;
    for (int s = 0; s < ns; s++)
        rows_op(r->c, h + (size_t)sg[s].row0 * D, NULL, r->mod + (size_t)s * 4 * D + (size_t)scale_at * D,
                sg[s].rows, D, 0);
}

/* The items' LoRA deltas of the block's linear site: input x, output y,
 * item s on the rows of segment s (sg NULL: row s, the adaLN linear). */
static int lora(run *r, zi_lora_site site, const float *x, int ldx, float *y, int ldy,
                const seg *sg, int ns)
{
    for (int s = 0; r->lora_rank && s < ns; s++) {
        const zi_dit_input *it = &r->items[s];
        size_t row0 = sg ? (size_t)sg[s].row0 : (size_t)s;
        int rc = zi_lora_apply(r->c, it->loras, it->nloras, r->blk, site, x + row0 * ldx,
                               sg ? sg[s].rows : 1, ldx, y + row0 * ldy, ldy, r->buf[S_LORA],
                               r->err, r->errlen);
        if (rc) return rc;
    }
    return 0;
}

static int attention_part(run *r, const dblock *b, float *x, int rows, const seg *sg, int ns,
                          const float *cs, int mod)
{
    const zi_dit_config *cf = &r->d->cfg;
    int D = cf->dim, hd = r->d->hd, rc;
    float *h = r->buf[S_H], *qkv = r->buf[S_QKV], *att = r->buf[S_ATT];
    modulated_norm(r, x, h, b->n1, sg, ns, rows, mod ? 0 : -1);
    if ((rc = zi_op_linear(r->c, h, rows, D, b->qkv, NULL, qkv, 3 * D, 0, r->err, r->errlen)) ||
        (rc = lora(r, ZI_LORA_QKV, h, D, qkv, 3 * D, sg, ns)))
        return rc;
    zi_op_rmsnorm_heads(r->c, qkv, rows, cf->n_heads, hd, 3 * D, b->q_norm, cf->norm_eps);
    zi_op_rmsnorm_heads(r->c, qkv + D, rows, cf->n_heads, hd, 3 * D, b->k_norm, cf->norm_eps);
    zi_op_rope(r->c, qkv, rows, cf->n_heads, hd, 3 * D, cs, ZI_ROPE_INTERLEAVED);
    zi_op_rope(r->c, qkv + D, rows, cf->n_heads, hd, 3 * D, cs, ZI_ROPE_INTERLEAVED);
    for (int s = 0; s < ns; s++) {
        const float *q = qkv + (size_t)sg[s].row0 * 3 * D;
        zi_attn_args a = {.q = q, .k = q + D, .v = q + 2 * D, .ldq = 3 * D, .ldk = 3 * D,
                          .ldv = 3 * D, .o = att + (size_t)sg[s].row0 * D, .ldo = D,
                          .n_q = sg[s].rows, .n_kv = sg[s].rows, .n_heads = cf->n_heads,
                          .n_kv_heads = cf->n_heads, .head_dim = hd,
                          .scale = 1.0f / sqrtf((float)hd)};
        if ((rc = zi_op_attention(r->c, &a, r->err, r->errlen))) return rc;
    }
    if ((rc = zi_op_linear(r->c, att, rows, D, b->out, NULL, h, D, 0, r->err, r->errlen)) ||
        (rc = lora(r, ZI_LORA_OUT, att, D, h, D, sg, ns)))
        return rc;
    gated_residual(r, x, h, b->n2, sg, ns, rows, mod ? 1 : -1);
    return 0;
}

static int ffn_part(run *r, const dblock *b, float *x, int rows, const seg *sg, int ns, int mod)
{
    int D = r->d->cfg.dim, F = r->d->cfg.ffn_hidden, rc;
    float *h = r->buf[S_H], *ff = r->buf[S_FF];
    modulated_norm(r, x, h, b->f1, sg, ns, rows, mod ? 2 : -1);
    if ((rc = zi_op_linear(r->c, h, rows, D, b->w1, NULL, ff, 2 * F, 0, r->err, r->errlen)) ||
        (rc = zi_op_linear(r->c, h, rows, D, b->w3, NULL, ff + F, 2 * F, 0, r->err, r->errlen)) ||
        (rc = lora(r, ZI_LORA_W1, h, D, ff, 2 * F, sg, ns)) ||
        (rc = lora(r, ZI_LORA_W3, h, D, ff + F, 2 * F, sg, ns)))
        return rc;
    zi_op_swiglu(r->c, ff, 2 * F, ff + F, 2 * F, ff, 2 * F, rows, F);
    if ((rc = zi_op_linear(r->c, ff, rows, 2 * F, b->w2, NULL, h, D, 0, r->err, r->errlen)) ||
        (rc = lora(r, ZI_LORA_W2, ff, 2 * F, h, D, sg, ns)))
        return rc;
    gated_residual(r, x, h, b->f2, sg, ns, rows, mod ? 3 : -1);
    return 0;
}

/* One block over rows of x in segments (one per item, in item order). */
static int block(run *r, const dblock *b, float *x, int rows, const seg *sg, int ns,
                 const float *cs)
{
    int D = r->d->cfg.dim, T = r->d->cfg.t_dim, rc;
    int mod = b->ada_w != NULL;
    if (mod) {
        if ((rc = zi_op_linear(r->c, r->temb, ns, T, b->ada_w, b->ada_b, r->mod, 4 * D, 0, r->err,
                               r->errlen)) ||
            (rc = lora(r, ZI_LORA_ADA, r->temb, T, r->mod, 4 * D, NULL, ns)))
            return rc;
        for (int s = 0; s < ns; s++) modulation(r->mod + (size_t)s * 4 * D, D);
    }
    if ((rc = attention_part(r, b, x, rows, sg, ns, cs, mod))) return rc;
    return ffn_part(r, b, x, rows, sg, ns, mod);
}

/* --- the forward ------------------------------------------------------------------------ */

#define MAX_ITEMS ZI_DIT_MAX_ITEMS

typedef struct layout {
    int n, ht, wt, nimg, ni; /* items, patch grid, image tokens, padded */
    int ri, rt, ru;          /* rows of XI, XT, U */
    seg si[MAX_ITEMS], st[MAX_ITEMS], su[MAX_ITEMS];
} layout;

static int plan(const zi_dit *d, const zi_dit_input *it, int n, int lat_h, int lat_w, layout *l,
                char *err, size_t errlen)
{
    const zi_dit_config *c = &d->cfg;
    int p = c->patch;
    if (n < 1 || n > MAX_ITEMS || lat_h < p || lat_w < p || lat_h % p || lat_w % p ||
        (int64_t)(lat_h / p) * (lat_w / p) > (1 << 20))
        return px_errf(err, errlen, PX_EINVAL, "dit: %d items of %dx%d latents (patch %d)", n,
                       lat_h, lat_w, p);
    memset(l, 0, sizeof *l);
    l->n = n, l->ht = lat_h / p, l->wt = lat_w / p;
    l->nimg = l->ht * l->wt, l->ni = pad_to(l->nimg);
    for (int b = 0; b < n; b++) {
        if (!it[b].latent || !it[b].text || it[b].text_len < 1 || it[b].text_len > (1 << 16))
            return px_errf(err, errlen, PX_EINVAL, "dit: item %d: no latent or text (%d tokens)",
                           b, it[b].text_len);
        int rc = zi_lora_check_uses(it[b].loras, it[b].nloras, c, err, errlen);
        if (rc) return rc;
        int lp = pad_to(it[b].text_len);
        l->si[b] = (seg){l->ri, l->ni};
        l->st[b] = (seg){l->rt, lp};
        l->su[b] = (seg){l->ru, l->ni + lp};
        l->ri += l->ni, l->rt += lp, l->ru += l->ni + lp;
    }
    return 0;
}

static int buffers(run *r, const layout *l)
{
    const zi_dit_config *c = &r->d->cfg;
    size_t D = (size_t)c->dim, hd = (size_t)r->d->hd, n = (size_t)l->n;
    /* temb, sinusoid, MLP hidden, then the modulation (also the final
     * layer's scale and SiLU(temb)) */
    size_t small = n * (2 * (size_t)c->t_dim + (size_t)c->t_freq + (size_t)c->t_hidden + 4 * D);
    size_t need[S_N][2] = {
        [S_U] = {(size_t)l->ru, D}, [S_XI] = {(size_t)l->ri, D}, [S_XT] = {(size_t)l->rt, D},
        [S_H] = {(size_t)l->ru, D}, [S_QKV] = {(size_t)l->ru, 3 * D}, [S_ATT] = {(size_t)l->ru, D},
        [S_FF] = {(size_t)l->ru, 2 * (size_t)c->ffn_hidden}, [S_CSI] = {(size_t)l->ri, hd},
        [S_CST] = {(size_t)l->rt, hd}, [S_CSU] = {(size_t)l->ru, hd}, [S_SMALL] = {small, 1},
        [S_PATCH] = {(size_t)l->ri, (size_t)r->d->pf},
        [S_LORA] = {r->lora_rank ? (size_t)(l->ru > l->ri ? l->ru : l->ri) : 1,
                    (size_t)r->lora_rank + 1}};
    for (int i = 0; i < S_N; i++) {
        size_t f;
        if (!px_mul_size(need[i][0], need[i][1], &f) || !(r->buf[i] = zi_ctx_buf(r->c, i, f)))
            return PX_ENOMEM;
    }
    return 0;
}

/* temb [n, t_dim] = MLP(sinusoid(t_in)), in the small slot. */
static int timestep(run *r, const zi_dit_input *it, int n)
{
    const zi_dit *d = r->d;
    const zi_dit_config *c = &d->cfg;
    int half = c->t_freq / 2, rc;
    float *temb = r->buf[S_SMALL], *sin_ = temb + (size_t)n * c->t_dim;
    float *hid = sin_ + (size_t)n * c->t_freq;
    r->temb = temb;
    r->mod = hid + (size_t)n * c->t_hidden;
    for (int b = 0; b < n; b++)
        for (int i = 0; i < half; i++) {
            float e = (float)-log(10000.0) * (float)i / (float)half;
            float arg = it[b].t_in * (float)exp((double)e);
            sin_[(size_t)b * c->t_freq + i] = (float)cos((double)arg);
            sin_[(size_t)b * c->t_freq + half + i] = (float)sin((double)arg);
        }
    if ((rc = zi_op_linear(r->c, sin_, n, c->t_freq, d->t0_w, d->t0_b, hid, c->t_hidden, 0, r->err,
                           r->errlen)))
        return rc;
    zi_op_silu(r->c, hid, (size_t)n * c->t_hidden);
    return zi_op_linear(r->c, hid, n, c->t_hidden, d->t2_w, d->t2_b, temb, c->t_dim, 0, r->err,
                        r->errlen);
}

/* XI = x_embedder(patches) with pad rows = x_pad_token; XT likewise. */
static int embed(run *r, const zi_dit_input *it, const layout *l)
{
    const zi_dit *d = r->d;
    const zi_dit_config *c = &d->cfg;
    int D = c->dim, p = c->patch, C = c->in_channels, pf = d->pf, W = l->wt * p, rc;
    float *pt = r->buf[S_PATCH], *xi = r->buf[S_XI], *xt = r->buf[S_XT], *h = r->buf[S_H];
    memset(pt, 0, (size_t)l->ri * pf * sizeof *pt);
    for (int b = 0; b < l->n; b++)
        for (int t = 0; t < l->nimg; t++) {
            int gh = t / l->wt, gw = t % l->wt;
            float *row = pt + (size_t)(l->si[b].row0 + t) * pf;
            for (int ph = 0; ph < p; ph++)
                for (int pw = 0; pw < p; pw++)
                    for (int ch = 0; ch < C; ch++)
                        row[(ph * p + pw) * C + ch] =
                            it[b].latent[((size_t)ch * l->ht * p + gh * p + ph) * W + gw * p + pw];
        }
    if ((rc = zi_op_linear(r->c, pt, l->ri, pf, d->x_w, d->x_b, xi, D, 0, r->err, r->errlen)))
        return rc;
    memset(h, 0, (size_t)l->rt * D * sizeof *h);
    for (int b = 0; b < l->n; b++)
        zi_op_rmsnorm(r->c, it[b].text, it[b].text_len, c->cap_feat_dim, c->cap_feat_dim,
                      d->cap_norm, c->norm_eps, h + (size_t)l->st[b].row0 * c->cap_feat_dim,
                      c->cap_feat_dim);
    if ((rc = zi_op_linear(r->c, h, l->rt, c->cap_feat_dim, d->cap_w, d->cap_b, xt, D, 0, r->err,
                           r->errlen)))
        return rc;
    for (int b = 0; b < l->n; b++) {
        for (int t = l->nimg; t < l->ni; t++)
            memcpy(xi + (size_t)(l->si[b].row0 + t) * D, d->x_pad, (size_t)D * sizeof *xi);
        for (int t = it[b].text_len; t < l->st[b].rows; t++)
            memcpy(xt + (size_t)(l->st[b].row0 + t) * D, d->cap_pad, (size_t)D * sizeof *xt);
    }
    return 0;
}

/* RoPE tables of XI, XT and U rows from the 3-axis positions. */
static int tables(run *r, const layout *l)
{
    const zi_dit_config *c = &r->d->cfg;
    int rows = l->ri > l->rt ? l->ri : l->rt;
    int *pos = calloc((size_t)rows * 3, sizeof *pos);
    if (!pos) return PX_ENOMEM;
    for (int b = 0; b < l->n; b++)
        for (int t = 0; t < l->nimg; t++) {
            int *q = pos + (size_t)(l->si[b].row0 + t) * 3;
            q[0] = l->st[b].rows + 1, q[1] = t / l->wt, q[2] = t % l->wt;
        }
    zi_rope_table(pos, l->ri, 3, c->axes_dims, c->rope_theta, r->buf[S_CSI]);
    memset(pos, 0, (size_t)rows * 3 * sizeof *pos);
    for (int b = 0; b < l->n; b++)
        for (int t = 0; t < l->st[b].rows; t++) pos[(size_t)(l->st[b].row0 + t) * 3] = 1 + t;
    zi_rope_table(pos, l->rt, 3, c->axes_dims, c->rope_theta, r->buf[S_CST]);
    free(pos);
    return 0;
}

/* U item b = [XI item b; XT item b] for rows of width w (activations or tables). */
static void assemble(const layout *l, const float *xi, const float *xt, float *u, int w)
{
    for (int b = 0; b < l->n; b++) {
        float *dst = u + (size_t)l->su[b].row0 * w;
        memcpy(dst, xi + (size_t)l->si[b].row0 * w, (size_t)l->ni * w * sizeof *u);
        memcpy(dst + (size_t)l->ni * w, xt + (size_t)l->st[b].row0 * w,
               (size_t)l->st[b].rows * w * sizeof *u);
    }
}

/* Final layer of every item's image rows of U, unpatchified into out. */
static int final_layer(run *r, const layout *l, float *out)
{
    const zi_dit *d = r->d;
    const zi_dit_config *c = &d->cfg;
    int D = c->dim, pf = d->pf, p = c->patch, C = c->in_channels, W = l->wt * p, rc;
    float *h = r->buf[S_H], *scale = r->mod, *pt = r->buf[S_PATCH], *st = r->mod + (size_t)l->n * D;
    memcpy(st, r->temb, (size_t)l->n * c->t_dim * sizeof *st);
    zi_op_silu(r->c, st, (size_t)l->n * c->t_dim);
    if ((rc = zi_op_linear(r->c, st, l->n, c->t_dim, d->fin_ada_w, d->fin_ada_b, scale, D, 0, r->err,
                           r->errlen)))
        return rc;
    for (size_t i = 0; i < (size_t)l->n * D; i++) scale[i] = 1.0f + scale[i];
    for (int b = 0; b < l->n; b++) {
        float *hb = h + (size_t)l->su[b].row0 * D;
        zi_op_layernorm(r->c, r->buf[S_U] + (size_t)l->su[b].row0 * D, l->nimg, D, D, 1e-6f, hb, D);
        rows_op(r->c, hb, NULL, scale + (size_t)b * D, l->nimg, D, 0);
        if ((rc = zi_op_linear(r->c, hb, l->nimg, D, d->fin_w, d->fin_b, pt, pf, 0, r->err,
                               r->errlen)))
            return rc;
        float *o = out + (size_t)b * C * l->ht * p * W;
        for (int t = 0; t < l->nimg; t++) {
            int gh = t / l->wt, gw = t % l->wt;
            for (int ph = 0; ph < p; ph++)
                for (int pw = 0; pw < p; pw++)
                    for (int ch = 0; ch < C; ch++)
                        o[((size_t)ch * l->ht * p + gh * p + ph) * W + gw * p + pw] =
                            pt[(size_t)t * pf + (ph * p + pw) * C + ch];
        }
    }
    return 0;
}

static int blocks(run *r, const layout *l, const atomic_int *cancel)
{
    const zi_dit *d = r->d;
    int nr = d->cfg.n_refiner_layers, rc;
    for (int i = 0; i < d->nblocks; i++) {
        if (cancel && atomic_load(cancel))
            return px_errf(r->err, r->errlen, PX_ECANCELED, "cancelled");
        if (i == 2 * nr) {
            assemble(l, r->buf[S_XI], r->buf[S_XT], r->buf[S_U], d->cfg.dim);
            assemble(l, r->buf[S_CSI], r->buf[S_CST], r->buf[S_CSU], d->hd);
        }
        r->blk = i;
        if (i < nr)
            rc = block(r, &d->blocks[i], r->buf[S_XI], l->ri, l->si, l->n, r->buf[S_CSI]);
        else if (i < 2 * nr)
            rc = block(r, &d->blocks[i], r->buf[S_XT], l->rt, l->st, l->n, r->buf[S_CST]);
        else
            rc = block(r, &d->blocks[i], r->buf[S_U], l->ru, l->su, l->n, r->buf[S_CSU]);
        if (rc) return rc;
    }
    if (d->nblocks == 2 * nr) { /* no joint layers: still assemble for the final layer */
        assemble(l, r->buf[S_XI], r->buf[S_XT], r->buf[S_U], d->cfg.dim);
    }
    return 0;
}

int zi_dit_forward(const zi_dit *d, zi_ctx *c, const zi_dit_input *items, int n, int lat_h,
                   int lat_w, float *out, const atomic_int *cancel, char *err, size_t errlen)
{
    layout l;
    int rc = plan(d, items, n, lat_h, lat_w, &l, err, errlen);
    if (rc) return rc;
    run r = {.d = d, .c = c, .items = items, .err = err, .errlen = errlen};
    for (int i = 0; i < n; i++) {
        int k = zi_lora_uses_max_rank(items[i].loras, items[i].nloras);
        if (k > r.lora_rank) r.lora_rank = k;
    }
    if (buffers(&r, &l) || tables(&r, &l))
        return px_errf(err, errlen, PX_ENOMEM, "dit: out of memory for %d items of %d tokens", n,
                       l.ru / n);
    if ((rc = timestep(&r, items, n)) || (rc = embed(&r, items, &l)) ||
        (rc = blocks(&r, &l, cancel)))
        return rc;
    if (cancel && atomic_load(cancel)) return px_errf(err, errlen, PX_ECANCELED, "cancelled");
    return final_layer(&r, &l, out);
}
