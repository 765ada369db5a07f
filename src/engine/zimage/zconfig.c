/*
 * zconfig.c — the Z-Image configurations (see zconfig.h): defaults of the
 * full-size model, table-driven parsers of the Hugging Face config.json
 * texts (untrusted: bounded JSON, every value type- and range-checked), and
 * the shapes read off the tensors. A zero shape field is filled from the
 * tensors; a nonzero one (from a config or a default) is checked against
 * them, so a config.json that does not match its weights is refused before
 * any maths runs on it.
 */
#include "engine/zimage/zconfig.h"

#include "core/err.h"
#include "core/jsonr.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define MAX_CONFIG_BYTES ((size_t)1 << 20)

void zi_dit_config_default(zi_dit_config *c)
{
    *c = (zi_dit_config){.in_channels = 16,
                         .patch = 2,
                         .dim = 3840,
                         .n_heads = 30,
                         .n_layers = 30,
                         .n_refiner_layers = 2,
                         .ffn_hidden = 10240,
                         .cap_feat_dim = 2560,
                         .t_dim = 256,
                         .t_hidden = 1024,
                         .t_freq = 256,
                         .norm_eps = 1e-5f,
                         .rope_theta = 256.0f,
                         .t_scale = 1000.0f,
                         .axes_dims = {32, 48, 48},
                         .axes_lens = {1024, 512, 512}};
}

void zi_qwen3_config_default(zi_qwen3_config *c)
{
    *c = (zi_qwen3_config){.vocab_size = 151936,
                           .hidden = 2560,
                           .n_layers = 36,
                           .n_heads = 32,
                           .n_kv_heads = 8,
                           .head_dim = 128,
                           .intermediate = 9728,
                           .rms_eps = 1e-6f,
                           .rope_theta = 1e6f,
                           .max_positions = 40960};
}

void zi_vae_config_default(zi_vae_config *c)
{
    *c = (zi_vae_config){.latent_channels = 16,
                         .nlevels = 4,
                         .block_out = {128, 256, 512, 512},
                         .layers_per_block = 2,
                         .groups = 32,
                         .eps = 1e-6f,
                         .scaling_factor = 0.3611f,
                         .shift_factor = 0.1159f};
}

void zi_sampler_config_default(zi_sampler_config *c)
{
    *c = (zi_sampler_config){.shift = 3.0f, .num_train_timesteps = 1000};
}

/* ---- parsing ------------------------------------------------------------------ */

typedef enum { K_INT, K_FLOAT, K_INTS, K_FIRST, K_NFLOAT } kind;

/* One config key: where it goes and what it may be. K_INTS fills exactly n
 * ints (n = 0: 1..8 ints, count into *count_off); K_FIRST takes the first
 * element of a non-empty int array; K_NFLOAT is a float that may be null
 * (read as 0). */
typedef struct key {
    const char *name;
    kind kind;
    size_t off;
    double lo, hi;
    int n;
    size_t count_off;
} key;

static int bad(const char *k, const char *why, char *err, size_t errlen)
{
    return px_errf(err, errlen, PX_EINVAL, "config key \"%s\" %s", k, why);
}

static int get_int(const cJSON *v, const key *k, int *out, char *err, size_t errlen)
{
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return bad(k->name, "is not an integer", err, errlen);
    if (!(v->valuedouble >= k->lo && v->valuedouble <= k->hi)) {
        char why[96];
        snprintf(why, sizeof why, "is %.17g, outside [%.17g, %.17g]", v->valuedouble, k->lo, k->hi);
        return bad(k->name, why, err, errlen);
    }
    *out = (int)v->valuedouble;
    return 0;
}

static int set_key(const cJSON *v, const key *k, void *c, char *err, size_t errlen)
{
    char *base = c;
    switch (k->kind) {
    case K_INT:
        return get_int(v, k, (int *)(base + k->off), err, errlen);
    case K_NFLOAT:
        if (cJSON_IsNull(v)) {
            *(float *)(base + k->off) = 0;
            return 0;
        }
        /* fall through */
    case K_FLOAT: {
        if (!cJSON_IsNumber(v)) return bad(k->name, "is not a number", err, errlen);
        double d = v->valuedouble;
        if (!(d >= k->lo && d <= k->hi)) {
            char why[96];
            snprintf(why, sizeof why, "is %.9g, outside [%.9g, %.9g]", d, k->lo, k->hi);
            return bad(k->name, why, err, errlen);
        }
        *(float *)(base + k->off) = (float)d;
        return 0;
    }
    case K_INTS:
    case K_FIRST: {
        if (!cJSON_IsArray(v)) return bad(k->name, "is not an array", err, errlen);
        int n = cJSON_GetArraySize(v);
        int want = k->kind == K_FIRST ? -1 : k->n;
        if ((want > 0 && n != want) || n < 1 || (want == 0 && n > 8)) {
            char why[64];
            if (want > 0)
                snprintf(why, sizeof why, "has %d elements, not %d", n, want);
            else
                snprintf(why, sizeof why, "has %d elements (1 to %d)", n, want == 0 ? 8 : 64);
            return bad(k->name, why, err, errlen);
        }
        int i = 0;
        for (const cJSON *e = v->child; e && (k->kind == K_INTS || i < 1); e = e->next, i++) {
            int rc = get_int(e, k, (int *)(base + k->off) + i, err, errlen);
            if (rc) return rc;
        }
        if (k->kind == K_INTS && k->n == 0) *(int *)(base + k->count_off) = n;
        return 0;
    }
    }
    return 0;
}

static int parse(const char *json, size_t len, const key *keys, size_t nkeys, void *c,
                 const char *what, char *err, size_t errlen)
{
    if (len > MAX_CONFIG_BYTES)
        return px_errf(err, errlen, PX_EINVAL, "%s is larger than %zu bytes", what,
                       MAX_CONFIG_BYTES);
    char msg[200];
    cJSON *root = px_json_parse(json, len, 16, (size_t)1 << 16, what, NULL, msg, sizeof msg);
    if (!root) return px_errf(err, errlen, PX_EINVAL, "%s", msg);
    int rc = 0;
    if (!cJSON_IsObject(root))
        rc = px_errf(err, errlen, PX_EINVAL, "%s is not a JSON object", what);
    for (const cJSON *e = rc ? NULL : root->child; e && !rc; e = e->next)
        for (size_t i = 0; i < nkeys && !rc; i++)
            if (!strcmp(e->string, keys[i].name)) rc = set_key(e, &keys[i], c, err, errlen);
    cJSON_Delete(root);
    return rc;
}

#define BIG 1e9
#define KI(s, f, lo, hi)                                                                           \
    {                                                                                              \
#f, K_INT, offsetof(s, f), lo, hi, 0, 0                                                    \
    }
#define KN(s, name, f, lo, hi)                                                                     \
    {                                                                                              \
        name, K_INT, offsetof(s, f), lo, hi, 0, 0                                                  \
    }
#define KF(s, name, f, lo, hi)                                                                     \
    {                                                                                              \
        name, K_FLOAT, offsetof(s, f), lo, hi, 0, 0                                                \
    }

int zi_dit_config_parse(const char *json, size_t len, zi_dit_config *c, char *err, size_t errlen)
{
    static const key keys[] = {
        KI(zi_dit_config, in_channels, 1, 4096),
        KI(zi_dit_config, dim, 1, 1 << 20),
        KI(zi_dit_config, n_layers, 0, 10000),
        KI(zi_dit_config, n_refiner_layers, 0, 10000),
        KI(zi_dit_config, n_heads, 1, 1 << 16),
        KI(zi_dit_config, cap_feat_dim, 1, 1 << 20),
        KF(zi_dit_config, "norm_eps", norm_eps, 1e-30, 1),
        KF(zi_dit_config, "rope_theta", rope_theta, 1e-6, 1e30),
        KF(zi_dit_config, "t_scale", t_scale, 1e-6, 1e30),
        {"axes_dims", K_INTS, offsetof(zi_dit_config, axes_dims), 0, 1 << 16, 3, 0},
        {"axes_lens", K_INTS, offsetof(zi_dit_config, axes_lens), 1, 1 << 24, 3, 0},
        {"all_patch_size", K_FIRST, offsetof(zi_dit_config, patch), 1, 64, 0, 0},
    };
    int rc =
        parse(json, len, keys, sizeof keys / sizeof keys[0], c, "transformer config", err, errlen);
    if (rc) return rc;
    if (c->dim % c->n_heads) return bad("n_heads", "does not divide dim", err, errlen);
    int hd = c->dim / c->n_heads;
    if (c->axes_dims[0] + c->axes_dims[1] + c->axes_dims[2] != hd || c->axes_dims[0] % 2 ||
        c->axes_dims[1] % 2 || c->axes_dims[2] % 2)
        return bad("axes_dims", "are not even sizes that sum to dim / n_heads", err, errlen);
    /* Not in config.json: the rules of diffusers' model (checked against
     * the tensors by zi_dit_config_from_weights). */
    c->ffn_hidden = (int)((double)c->dim / 3 * 8);
    c->t_dim = c->dim < 256 ? c->dim : 256;
    return 0;
}

int zi_qwen3_config_parse(const char *json, size_t len, zi_qwen3_config *c, char *err,
                          size_t errlen)
{
    static const key keys[] = {
        KI(zi_qwen3_config, vocab_size, 1, 1 << 24),
        KN(zi_qwen3_config, "hidden_size", hidden, 1, 1 << 20),
        KN(zi_qwen3_config, "num_hidden_layers", n_layers, 1, 10000),
        KN(zi_qwen3_config, "num_attention_heads", n_heads, 1, 1 << 16),
        KN(zi_qwen3_config, "num_key_value_heads", n_kv_heads, 1, 1 << 16),
        KI(zi_qwen3_config, head_dim, 2, 1 << 16),
        KN(zi_qwen3_config, "intermediate_size", intermediate, 1, 1 << 22),
        KF(zi_qwen3_config, "rms_norm_eps", rms_eps, 1e-30, 1),
        KF(zi_qwen3_config, "rope_theta", rope_theta, 1e-6, 1e30),
        KN(zi_qwen3_config, "max_position_embeddings", max_positions, 1, 1 << 30),
    };
    int rc =
        parse(json, len, keys, sizeof keys / sizeof keys[0], c, "text encoder config", err, errlen);
    if (rc) return rc;
    if (c->n_heads % c->n_kv_heads)
        return bad("num_key_value_heads", "does not divide num_attention_heads", err, errlen);
    if (c->head_dim % 2) return bad("head_dim", "is odd (RoPE rotates pairs)", err, errlen);
    return 0;
}

int zi_vae_config_parse(const char *json, size_t len, zi_vae_config *c, char *err, size_t errlen)
{
    static const key keys[] = {
        KI(zi_vae_config, latent_channels, 1, 4096),
        {"block_out_channels", K_INTS, offsetof(zi_vae_config, block_out), 1, 1 << 16, 0,
         offsetof(zi_vae_config, nlevels)},
        KI(zi_vae_config, layers_per_block, 1, 64),
        KN(zi_vae_config, "norm_num_groups", groups, 1, 1 << 16),
        KF(zi_vae_config, "scaling_factor", scaling_factor, 1e-9, 1e9),
        {"shift_factor", K_NFLOAT, offsetof(zi_vae_config, shift_factor), -1e9, 1e9, 0, 0},
    };
    int rc = parse(json, len, keys, sizeof keys / sizeof keys[0], c, "VAE config", err, errlen);
    if (rc) return rc;
    for (int i = 0; i < c->nlevels; i++)
        if (c->block_out[i] % c->groups)
            return bad("norm_num_groups", "does not divide every block_out_channels entry", err,
                       errlen);
    return 0;
}

int zi_sampler_config_parse(const char *json, size_t len, zi_sampler_config *c, char *err,
                            size_t errlen)
{
    static const key keys[] = {
        KF(zi_sampler_config, "shift", shift, 1e-6, 1e6),
        KI(zi_sampler_config, num_train_timesteps, 1, 1 << 24),
    };
    return parse(json, len, keys, sizeof keys / sizeof keys[0], c, "scheduler config", err, errlen);
}

/* ---- from the tensors ------------------------------------------------------------- */

typedef struct wctx {
    const zi_weights *w;
    char *err;
    size_t errlen;
} wctx;

static const zi_tensor *need(wctx *x, const char *name, int ndim, int *rc)
{
    const zi_tensor *t = zi_weights_find(x->w, name);
    if (*rc) return NULL;
    if (!t || t->ndim != ndim) {
        const char *src = t ? zi_weights_source(x->w, t) : zi_weights_source(x->w, NULL);
        *rc = t ? px_errf(x->err, x->errlen, PX_ECORRUPT,
                          "%s: tensor %s: expected %d-D, found %d-D", src, name, ndim, t->ndim)
                : px_errf(x->err, x->errlen, PX_ECORRUPT, "%s: tensor %s is missing", src, name);
        return NULL;
    }
    return t;
}

/* Fills *slot (when 0) or checks it against the value a tensor shows. */
static void field(wctx *x, const zi_tensor *t, const char *what, int *slot, int64_t found, int *rc)
{
    if (*rc || !t) return;
    if (found <= 0 || found > (1 << 30)) {
        *rc = px_errf(x->err, x->errlen, PX_ECORRUPT, "%s: tensor %s gives %s = %lld, not a size",
                      zi_weights_source(x->w, t), t->name, what, (long long)found);
    } else if (*slot == 0) {
        *slot = (int)found;
    } else if (*slot != found) {
        char shape[96];
        size_t at = 0;
        for (int i = 0; i < t->ndim && at < sizeof shape; i++)
            at += (size_t)snprintf(shape + at, sizeof shape - at, "%s%lld", i ? ", " : "",
                                   (long long)t->shape[i]);
        *rc = px_errf(x->err, x->errlen, PX_ECORRUPT,
                      "%s: tensor %s: expected %s = %d (the config), found %lld (shape [%s])",
                      zi_weights_source(x->w, t), t->name, what, *slot, (long long)found, shape);
    }
}

/* Number of consecutive blocks prefix.N.suffix from N = 0. */
static int count_blocks(const zi_weights *w, const char *prefix, const char *suffix)
{
    char name[128];
    int n = 0;
    for (;; n++) {
        snprintf(name, sizeof name, "%s.%d.%s", prefix, n, suffix);
        if (!zi_weights_find(w, name) || n > 100000) return n;
    }
}

static int64_t quot(int64_t a, int64_t b)
{
    return b > 0 && a % b == 0 ? a / b : -1;
}

int zi_dit_config_from_weights(const zi_weights *w, zi_dit_config *c, char *err, size_t errlen)
{
    wctx x = {w, err, errlen};
    int rc = 0;
    zi_dit_config d;
    zi_dit_config_default(&d);
    if (!c->patch) c->patch = d.patch;
    const zi_tensor *xe = need(&x, "x_embedder.weight", 2, &rc);
    field(&x, xe, "dim", &c->dim, xe ? xe->shape[0] : 0, &rc);
    field(&x, xe, "in_channels", &c->in_channels,
          xe ? quot(xe->shape[1], (int64_t)c->patch * c->patch) : 0, &rc);
    const zi_tensor *qn = need(&x, "layers.0.attention.q_norm.weight", 1, &rc);
    field(&x, qn, "n_heads", &c->n_heads, qn ? quot(c->dim, qn->shape[0]) : 0, &rc);
    const zi_tensor *w1 = need(&x, "layers.0.feed_forward.w1.weight", 2, &rc);
    field(&x, w1, "ffn_hidden", &c->ffn_hidden, w1 ? w1->shape[0] : 0, &rc);
    const zi_tensor *ce = need(&x, "cap_embedder.1.weight", 2, &rc);
    field(&x, ce, "cap_feat_dim", &c->cap_feat_dim, ce ? ce->shape[1] : 0, &rc);
    const zi_tensor *m0 = need(&x, "t_embedder.mlp.0.weight", 2, &rc);
    field(&x, m0, "t_hidden", &c->t_hidden, m0 ? m0->shape[0] : 0, &rc);
    field(&x, m0, "t_freq", &c->t_freq, m0 ? m0->shape[1] : 0, &rc);
    const zi_tensor *m2 = need(&x, "t_embedder.mlp.2.weight", 2, &rc);
    field(&x, m2, "t_dim", &c->t_dim, m2 ? m2->shape[0] : 0, &rc);
    if (rc) return rc;
    int nl = count_blocks(w, "layers", "attention.qkv.weight");
    int nr = count_blocks(w, "noise_refiner", "attention.qkv.weight");
    int nc = count_blocks(w, "context_refiner", "attention.qkv.weight");
    const zi_tensor *l0 = zi_weights_find(w, "layers.0.attention.qkv.weight");
    field(&x, l0, "n_layers", &c->n_layers, nl, &rc);
    if (nr || nc) {
        const zi_tensor *r0 = zi_weights_find(w, nr ? "noise_refiner.0.attention.qkv.weight"
                                                    : "context_refiner.0.attention.qkv.weight");
        field(&x, r0, "n_refiner_layers", &c->n_refiner_layers, nr ? nr : nc, &rc);
        if (!rc && nr != nc)
            rc = px_errf(err, errlen, PX_ECORRUPT,
                         "%s: %d noise_refiner blocks but %d context_refiner blocks",
                         zi_weights_source(w, r0), nr, nc);
    } else if (!rc && c->n_refiner_layers) {
        rc = px_errf(err, errlen, PX_ECORRUPT,
                     "%s: tensor noise_refiner.0.attention.qkv.weight is missing",
                     zi_weights_source(w, NULL));
    }
    if (rc) return rc;
    if (!c->norm_eps) c->norm_eps = d.norm_eps;
    if (!c->rope_theta) c->rope_theta = d.rope_theta;
    if (!c->t_scale) c->t_scale = d.t_scale;
    int hd = c->dim / c->n_heads;
    if (!c->axes_dims[0] && !c->axes_dims[1] && !c->axes_dims[2] && hd % 8 == 0) {
        /* Not in the shapes: the full model's split [32, 48, 48] of 128,
         * i.e. [1/4, 3/8, 3/8] of the head (the reference's small models
         * keep it). */
        c->axes_dims[0] = hd / 4;
        c->axes_dims[1] = c->axes_dims[2] = hd * 3 / 8;
    }
    if (!c->axes_lens[0]) memcpy(c->axes_lens, d.axes_lens, sizeof d.axes_lens);
    if (c->axes_dims[0] + c->axes_dims[1] + c->axes_dims[2] != c->dim / c->n_heads)
        return px_errf(
            err, errlen, PX_ECORRUPT,
            "%s: tensor layers.0.attention.q_norm.weight: head size %d, but the RoPE axes "
            "[%d, %d, %d] sum to %d",
            zi_weights_source(w, qn), c->dim / c->n_heads, c->axes_dims[0], c->axes_dims[1],
            c->axes_dims[2], c->axes_dims[0] + c->axes_dims[1] + c->axes_dims[2]);
    return 0;
}

int zi_qwen3_config_from_weights(const zi_weights *w, zi_qwen3_config *c, char *err, size_t errlen)
{
    wctx x = {w, err, errlen};
    int rc = 0;
    zi_qwen3_config d;
    zi_qwen3_config_default(&d);
    const zi_tensor *e = need(&x, "embed_tokens.weight", 2, &rc);
    field(&x, e, "vocab_size", &c->vocab_size, e ? e->shape[0] : 0, &rc);
    field(&x, e, "hidden_size", &c->hidden, e ? e->shape[1] : 0, &rc);
    const zi_tensor *qn = need(&x, "layers.0.self_attn.q_norm.weight", 1, &rc);
    field(&x, qn, "head_dim", &c->head_dim, qn ? qn->shape[0] : 0, &rc);
    const zi_tensor *q = need(&x, "layers.0.self_attn.q_proj.weight", 2, &rc);
    field(&x, q, "num_attention_heads", &c->n_heads, q ? quot(q->shape[0], c->head_dim) : 0, &rc);
    const zi_tensor *k = need(&x, "layers.0.self_attn.k_proj.weight", 2, &rc);
    field(&x, k, "num_key_value_heads", &c->n_kv_heads, k ? quot(k->shape[0], c->head_dim) : 0,
          &rc);
    const zi_tensor *g = need(&x, "layers.0.mlp.gate_proj.weight", 2, &rc);
    field(&x, g, "intermediate_size", &c->intermediate, g ? g->shape[0] : 0, &rc);
    const zi_tensor *l0 = need(&x, "layers.0.input_layernorm.weight", 1, &rc);
    field(&x, l0, "num_hidden_layers", &c->n_layers,
          count_blocks(w, "layers", "input_layernorm.weight"), &rc);
    if (rc) return rc;
    if (c->n_heads % c->n_kv_heads)
        return px_errf(err, errlen, PX_ECORRUPT,
                       "%s: tensor %s: %d key-value heads do not divide %d heads",
                       zi_weights_source(w, k), k->name, c->n_kv_heads, c->n_heads);
    if (!c->rms_eps) c->rms_eps = d.rms_eps;
    if (!c->rope_theta) c->rope_theta = d.rope_theta;
    if (!c->max_positions) c->max_positions = d.max_positions;
    return 0;
}

int zi_vae_config_from_weights(const zi_weights *w, zi_vae_config *c, char *err, size_t errlen)
{
    wctx x = {w, err, errlen};
    int rc = 0;
    zi_vae_config d;
    zi_vae_config_default(&d);
    const zi_tensor *ci = need(&x, "decoder.conv_in.weight", 4, &rc);
    field(&x, ci, "latent_channels", &c->latent_channels, ci ? ci->shape[1] : 0, &rc);
    int nl = count_blocks(w, "decoder.up_blocks", "resnets.0.conv1.weight");
    const zi_tensor *u0 = need(&x, "decoder.up_blocks.0.resnets.0.conv1.weight", 4, &rc);
    if (nl > 8 && !rc)
        rc = px_errf(err, errlen, PX_ECORRUPT, "%s: %d up blocks (at most 8)",
                     zi_weights_source(w, u0), nl);
    field(&x, u0, "number of levels", &c->nlevels, nl, &rc);
    int nr = count_blocks(w, "decoder.up_blocks.0.resnets", "conv1.weight");
    field(&x, u0, "layers_per_block", &c->layers_per_block, nr - 1, &rc);
    for (int i = 0; i < nl && !rc; i++) {
        char name[96];
        snprintf(name, sizeof name, "decoder.up_blocks.%d.resnets.0.conv2.weight", i);
        const zi_tensor *t = need(&x, name, 4, &rc);
        char what[48];
        snprintf(what, sizeof what, "block_out_channels[%d]", nl - 1 - i);
        field(&x, t, what, &c->block_out[nl - 1 - i], t ? t->shape[0] : 0, &rc);
    }
    if (rc) return rc;
    if (!c->groups) c->groups = d.groups;
    for (int i = 0; i < nl; i++)
        if (c->block_out[i] % c->groups)
            return px_errf(err, errlen, PX_ECORRUPT,
                           "%s: %d channels at level %d are not a multiple of %d groups",
                           zi_weights_source(w, u0), c->block_out[i], i, c->groups);
    if (!c->eps) c->eps = d.eps;
    if (!c->scaling_factor) { /* not from a config (its parser refuses 0) */
        c->scaling_factor = d.scaling_factor;
        c->shift_factor = d.shift_factor;
    }
    return 0;
}
