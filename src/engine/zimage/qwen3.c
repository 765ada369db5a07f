/*
 * qwen3.c — the Qwen3 text encoder (qwen3.h) on the zops CPU ops.
 *
 * The residual stream lives in the caller's output buffer, so the features
 * need no final copy. q, k and v land side by side in one row buffer
 * (q | k | v) and the gate and up projections in another (gate | up), so
 * the per-head norms, RoPE, attention and SwiGLU read them in place through
 * row strides. Norm weights are copied to F32 at bind time (a few KB); the
 * big matrices are used where the store holds them.
 */
#include "engine/zimage/qwen3.h"

#include "core/alloc.h"
#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct qlayer {
    const zi_tensor *q, *k, *v, *o, *gate, *up, *down;
    float *in_norm, *post_norm, *q_norm, *k_norm;
} qlayer;

struct zi_qwen3 {
    zi_qwen3_config cfg;
    const zi_tensor *embed;
    int nrun; /* layers run: n_layers - 1 (hidden_states[-2]) */
    qlayer *layers;
};

enum { S_H, S_QKV, S_ATT, S_FF, S_CS };

const zi_qwen3_config *zi_qwen3_config_of(const zi_qwen3 *m)
{
    return &m->cfg;
}

void zi_qwen3_free(zi_qwen3 *m)
{
    if (!m) return;
    for (int i = 0; m->layers && i < m->nrun; i++) {
        qlayer *l = &m->layers[i];
        free(l->in_norm), free(l->post_norm), free(l->q_norm), free(l->k_norm);
    }
    free(m->layers);
    free(m);
}

/* Tensor `layers.<i>.<what>` of shape [a] (b < 0) or [a, b]. */
static int get(const zi_weights *w, int i, const char *what, int64_t a, int64_t b,
               const zi_tensor **t, char *err, size_t errlen)
{
    char name[128];
    if (i >= 0)
        snprintf(name, sizeof name, "layers.%d.%s", i, what);
    else
        snprintf(name, sizeof name, "%s", what);
    int64_t shape[2] = {a, b};
    return zi_weights_get(w, name, b < 0 ? 1 : 2, shape, t, err, errlen);
}

static int get_norm(const zi_weights *w, int i, const char *what, int64_t n, float **dst,
                    char *err, size_t errlen)
{
    const zi_tensor *t;
    int rc = get(w, i, what, n, -1, &t, err, errlen);
    if (rc) return rc;
    if (!(*dst = zi_tensor_dup_f32(t))) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    return 0;
}

static int bind_layer(const zi_weights *w, const zi_qwen3_config *c, int i, qlayer *l, char *err,
                      size_t errlen)
{
    int64_t H = c->hidden, qd = (int64_t)c->n_heads * c->head_dim;
    int64_t kvd = (int64_t)c->n_kv_heads * c->head_dim, I = c->intermediate;
    int rc;
    if ((rc = get(w, i, "self_attn.q_proj.weight", qd, H, &l->q, err, errlen)) ||
        (rc = get(w, i, "self_attn.k_proj.weight", kvd, H, &l->k, err, errlen)) ||
        (rc = get(w, i, "self_attn.v_proj.weight", kvd, H, &l->v, err, errlen)) ||
        (rc = get(w, i, "self_attn.o_proj.weight", H, qd, &l->o, err, errlen)) ||
        (rc = get(w, i, "mlp.gate_proj.weight", I, H, &l->gate, err, errlen)) ||
        (rc = get(w, i, "mlp.up_proj.weight", I, H, &l->up, err, errlen)) ||
        (rc = get(w, i, "mlp.down_proj.weight", H, I, &l->down, err, errlen)) ||
        (rc = get_norm(w, i, "input_layernorm.weight", H, &l->in_norm, err, errlen)) ||
        (rc = get_norm(w, i, "post_attention_layernorm.weight", H, &l->post_norm, err, errlen)) ||
        (rc = get_norm(w, i, "self_attn.q_norm.weight", c->head_dim, &l->q_norm, err, errlen)) ||
        (rc = get_norm(w, i, "self_attn.k_norm.weight", c->head_dim, &l->k_norm, err, errlen)))
        return rc;
    return 0;
}

int zi_qwen3_bind(const zi_weights *w, const zi_qwen3_config *cfg, zi_qwen3 **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    const zi_qwen3_config *c = cfg;
    if (c->n_layers < 1 || c->hidden < 1 || c->head_dim < 2 || c->head_dim % 2 ||
        c->n_kv_heads < 1 || c->n_heads < c->n_kv_heads || c->n_heads % c->n_kv_heads ||
        c->intermediate < 1 || c->vocab_size < 1)
        return px_errf(err, errlen, PX_EINVAL,
                       "qwen3: unusable config (%d layers, hidden %d, %d/%d heads of %d)",
                       c->n_layers, c->hidden, c->n_heads, c->n_kv_heads, c->head_dim);
    zi_qwen3 *m = calloc(1, sizeof *m);
    if (!m) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    m->cfg = *c;
    m->nrun = c->n_layers - 1;
    int rc = get(w, -1, "embed_tokens.weight", c->vocab_size, c->hidden, &m->embed, err, errlen);
    if (rc) goto fail;
    m->layers = calloc(m->nrun ? (size_t)m->nrun : 1, sizeof *m->layers);
    if (!m->layers) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < m->nrun; i++)
        if ((rc = bind_layer(w, c, i, &m->layers[i], err, errlen))) goto fail;
    *out = m;
    return 0;
fail:
    zi_qwen3_free(m);
    return rc;
}

double zi_qwen3_flops(const zi_qwen3_config *c, int n)
{
    double H = c->hidden, qd = (double)c->n_heads * c->head_dim;
    double kvd = (double)c->n_kv_heads * c->head_dim, I = c->intermediate;
    double lin = 2.0 * n * (H * qd * 2 + H * kvd * 2 + 3 * H * I);
    double att = 2.0 * qd * (double)n * (n + 1); /* causal: half of 4·n²·qd */
    return (c->n_layers - 1) * (lin + att);
}

/* One decoder layer on the residual stream x [n, H]. */
static int layer(const zi_qwen3 *m, const qlayer *l, zi_ctx *c, float *x, int n, float **buf,
                 char *err, size_t errlen)
{
    const zi_qwen3_config *cf = &m->cfg;
    int H = cf->hidden, hd = cf->head_dim, qd = cf->n_heads * hd, kvd = cf->n_kv_heads * hd;
    int ldqkv = qd + 2 * kvd, I = cf->intermediate;
    float *h = buf[S_H], *qkv = buf[S_QKV], *att = buf[S_ATT], *ff = buf[S_FF];
    int rc;
    zi_op_rmsnorm(c, x, n, H, H, l->in_norm, cf->rms_eps, h, H);
    if ((rc = zi_op_linear(c, h, n, H, l->q, NULL, qkv, ldqkv, 0, err, errlen)) ||
        (rc = zi_op_linear(c, h, n, H, l->k, NULL, qkv + qd, ldqkv, 0, err, errlen)) ||
        (rc = zi_op_linear(c, h, n, H, l->v, NULL, qkv + qd + kvd, ldqkv, 0, err, errlen)))
        return rc;
    zi_op_rmsnorm_heads(c, qkv, n, cf->n_heads, hd, ldqkv, l->q_norm, cf->rms_eps);
    zi_op_rmsnorm_heads(c, qkv + qd, n, cf->n_kv_heads, hd, ldqkv, l->k_norm, cf->rms_eps);
    zi_op_rope(c, qkv, n, cf->n_heads, hd, ldqkv, buf[S_CS], ZI_ROPE_HALF);
    zi_op_rope(c, qkv + qd, n, cf->n_kv_heads, hd, ldqkv, buf[S_CS], ZI_ROPE_HALF);
    zi_attn_args a = {.q = qkv, .k = qkv + qd, .v = qkv + qd + kvd, .ldq = ldqkv, .ldk = ldqkv,
                      .ldv = ldqkv, .o = att, .ldo = qd, .n_q = n, .n_kv = n,
                      .n_heads = cf->n_heads, .n_kv_heads = cf->n_kv_heads, .head_dim = hd,
                      .scale = 1.0f / sqrtf((float)hd), .causal = 1};
    if ((rc = zi_op_attention(c, &a, err, errlen)) ||
        (rc = zi_op_linear(c, att, n, qd, l->o, NULL, x, H, ZI_LIN_ACCUM, err, errlen)))
        return rc;
    zi_op_rmsnorm(c, x, n, H, H, l->post_norm, cf->rms_eps, h, H);
    if ((rc = zi_op_linear(c, h, n, H, l->gate, NULL, ff, 2 * I, 0, err, errlen)) ||
        (rc = zi_op_linear(c, h, n, H, l->up, NULL, ff + I, 2 * I, 0, err, errlen)))
        return rc;
    zi_op_swiglu(c, ff, 2 * I, ff + I, 2 * I, ff, 2 * I, n, I);
    return zi_op_linear(c, ff, n, 2 * I, l->down, NULL, x, H, ZI_LIN_ACCUM, err, errlen);
}

/* The activation buffers of n tokens, in the context's slots. */
static int buffers(const zi_qwen3_config *cf, zi_ctx *c, int n, float **buf)
{
    size_t hd = (size_t)cf->head_dim, qd = (size_t)cf->n_heads * hd;
    size_t kvd = (size_t)cf->n_kv_heads * hd;
    size_t need[5] = {(size_t)cf->hidden, qd + 2 * kvd, qd, 2 * (size_t)cf->intermediate, hd};
    for (int i = 0; i < 5; i++) {
        size_t f;
        if (!px_mul_size(need[i], (size_t)n, &f) || !(buf[i] = zi_ctx_buf(c, i, f)))
            return PX_ENOMEM;
    }
    return 0;
}

int zi_qwen3_encode(const zi_qwen3 *m, zi_ctx *c, const int32_t *ids, int n, float *out,
                    const atomic_int *cancel, char *err, size_t errlen)
{
    const zi_qwen3_config *cf = &m->cfg;
    if (n < 1 || n > cf->max_positions)
        return px_errf(err, errlen, PX_EINVAL, "qwen3: %d tokens (1..%d)", n, cf->max_positions);
    size_t H = (size_t)cf->hidden;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= cf->vocab_size)
            return px_errf(err, errlen, PX_EINVAL, "qwen3: token id %d at %d outside 0..%d",
                           (int)ids[i], i, cf->vocab_size - 1);
        zi_tensor row = *m->embed;
        row.nelem = H;
        row.data = (const char *)m->embed->data +
                   (size_t)ids[i] * H * (m->embed->dtype == ZI_BF16 ? 2 : 4);
        zi_tensor_to_f32(&row, out + (size_t)i * H);
    }
    float *buf[5];
    int *pos = malloc((size_t)n * sizeof *pos);
    if (!pos || buffers(cf, c, n, buf)) {
        free(pos);
        return px_errf(err, errlen, PX_ENOMEM, "qwen3: out of memory for %d tokens", n);
    }
    for (int i = 0; i < n; i++) pos[i] = i;
    zi_rope_table_f32(pos, n, cf->head_dim, cf->rope_theta, buf[S_CS]);
    free(pos);
    for (int i = 0; i < m->nrun; i++) {
        if (cancel && atomic_load(cancel)) return px_errf(err, errlen, PX_ECANCELED, "cancelled");
        int rc = layer(m, &m->layers[i], c, out, n, buf, err, errlen);
        if (rc) return rc;
    }
    return 0;
}
