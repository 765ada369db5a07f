/*
 * zimage.c — the Z-Image pipeline (see zimage.h): opening the components
 * with their configs, and one generation (tokenize, encode, denoise,
 * decode) with per-stage timings and memory.
 */
#include "engine/zimage/zimage.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/proc.h"
#include "engine/zimage/dit.h"
#include "engine/zimage/lora_apply.h"
#include "engine/zimage/qwen3.h"
#include "engine/zimage/sampler.h"
#include "engine/zimage/tokenizer.h"
#include "engine/zimage/vae.h"
#include "engine/zimage/zweights.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct zi_model {
    zi_dit_config dit_cfg;
    zi_qwen3_config text_cfg;
    zi_vae_config vae_cfg;
    zi_sampler_config sampler_cfg;
    zi_weights *dit_w, *text_w; /* the VAE copies its weights: its store is closed */
    zi_dit *dit;
    zi_qwen3 *text;
    zi_vae *vae;
    zi_tok *tok;
    px_pool *pool;
    size_t weight_bytes;
};

/* --- opening ------------------------------------------------------------------------ */

#define CONFIG_MAX ((size_t)1 << 20)

/* A config file's text (NUL-terminated, caller frees), or NULL in *text
 * when optional and absent. */
static int read_config(const char *path, bool optional, char **text, size_t *len, char *err,
                       size_t errlen)
{
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (optional && errno == ENOENT) return 0;
        return px_errf(err, errlen, errno == ENOENT ? PX_ENOTFOUND : PX_EIO, "cannot open %s: %s",
                       path, strerror(errno));
    }
    char *b = malloc(CONFIG_MAX + 1);
    size_t n = b ? fread(b, 1, CONFIG_MAX + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!b) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    if (bad || n > CONFIG_MAX) {
        free(b);
        return px_errf(err, errlen, bad ? PX_EIO : PX_ETOOBIG, "%s: %s", path,
                       bad ? "read error" : "larger than 1 MiB");
    }
    b[n] = 0;
    *text = b;
    *len = n;
    return 0;
}

typedef int (*parse_fn)(const char *json, size_t len, void *cfg, char *err, size_t errlen);

/* dir/rel parsed into cfg (left at its defaults when optional and absent);
 * parse errors are prefixed with the file's name. */
static int load_config(const char *dir, const char *rel, bool optional, parse_fn parse, void *cfg,
                       char *err, size_t errlen)
{
    char path[4096], msg[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *text;
    size_t len;
    int rc = read_config(path, optional, &text, &len, err, errlen);
    if (rc || !text) return rc;
    rc = parse(text, len, cfg, msg, sizeof msg);
    free(text);
    return rc ? px_errf(err, errlen, rc, "%s: %s", path, msg) : 0;
}

static int parse_dit(const char *j, size_t n, void *c, char *e, size_t el)
{
    return zi_dit_config_parse(j, n, c, e, el);
}
static int parse_text(const char *j, size_t n, void *c, char *e, size_t el)
{
    return zi_qwen3_config_parse(j, n, c, e, el);
}
static int parse_vae(const char *j, size_t n, void *c, char *e, size_t el)
{
    return zi_vae_config_parse(j, n, c, e, el);
}
static int parse_sampler(const char *j, size_t n, void *c, char *e, size_t el)
{
    return zi_sampler_config_parse(j, n, c, e, el);
}

/* A component's config: parsed from path/config.json over the full-size
 * defaults when path is a directory that has one, else zeroed so that
 * *_config_from_weights fills the shapes from the tensors (and the
 * constants shapes cannot show from the defaults). */
static int component_config(const char *path, parse_fn parse, void *cfg, size_t size,
                            void (*defaults)(void *), char *err, size_t errlen)
{
    struct stat st;
    char conf[4096];
    snprintf(conf, sizeof conf, "%s/config.json", path);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && stat(conf, &st) == 0) {
        defaults(cfg);
        return load_config(path, "config.json", false, parse, cfg, err, errlen);
    }
    memset(cfg, 0, size);
    return 0;
}

static void dit_defaults(void *c)
{
    zi_dit_config_default(c);
}
static void text_defaults(void *c)
{
    zi_qwen3_config_default(c);
}
static void vae_defaults(void *c)
{
    zi_vae_config_default(c);
}

/* A Hugging Face directory must say it is one. */
static int check_model_dir(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    struct stat st;
    if (stat(dir, &st))
        return px_errf(err, errlen, PX_ENOTFOUND, "model directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return px_errf(err, errlen, PX_EINVAL, "model directory %s is not a directory", dir);
    snprintf(path, sizeof path, "%s/model_index.json", dir);
    if (stat(path, &st))
        return px_errf(err, errlen, PX_ENOTFOUND,
                       "%s is missing: %s is not a Hugging Face Z-Image directory", path, dir);
    return 0;
}

typedef struct comp_paths {
    char dit[4096], text[4096], vae[4096];
    const char *tok;
} comp_paths;

static int load_configs(zi_model *m, const zi_model_paths *p, comp_paths *cp, char *err,
                        size_t errlen)
{
    int rc;
    zi_sampler_config_default(&m->sampler_cfg);
    cp->tok = p->tokenizer;
    if (p->dir) {
        if ((rc = check_model_dir(p->dir, err, errlen))) return rc;
        snprintf(cp->dit, sizeof cp->dit, "%s/transformer", p->dir);
        snprintf(cp->text, sizeof cp->text, "%s/text_encoder", p->dir);
        snprintf(cp->vae, sizeof cp->vae, "%s/vae", p->dir);
        if (!cp->tok) cp->tok = p->dir;
        if ((rc = load_config(p->dir, "scheduler/scheduler_config.json", true, parse_sampler,
                              &m->sampler_cfg, err, errlen)))
            return rc;
    } else {
        snprintf(cp->dit, sizeof cp->dit, "%s", p->dit);
        snprintf(cp->text, sizeof cp->text, "%s", p->text_encoder);
        snprintf(cp->vae, sizeof cp->vae, "%s", p->vae);
    }
    if ((rc = component_config(cp->dit, parse_dit, &m->dit_cfg, sizeof m->dit_cfg, dit_defaults,
                               err, errlen)) ||
        (rc = component_config(cp->text, parse_text, &m->text_cfg, sizeof m->text_cfg,
                               text_defaults, err, errlen)))
        return rc;
    return component_config(cp->vae, parse_vae, &m->vae_cfg, sizeof m->vae_cfg, vae_defaults, err,
                            errlen);
}

static int open_weights(const char *path, zi_part part, const zi_model_opts *o, zi_weights **w,
                        char *err, size_t errlen)
{
    zi_load_opts lo = {.convert_to = o && o->keep_bf16 ? ZI_BF16 : ZI_F32,
                       .keep_bf16 = o ? o->keep_bf16 : 0};
    return zi_weights_open(path, part, &lo, w, err, errlen);
}

static int open_components(zi_model *m, const comp_paths *cp, const zi_model_opts *o, char *err,
                           size_t errlen)
{
    const char *dp = cp->dit, *tp = cp->text, *vp = cp->vae, *tok = cp->tok;
    zi_weights *vw = NULL;
    int rc;
    if ((rc = open_weights(dp, ZI_PART_DIT, o, &m->dit_w, err, errlen)) ||
        (rc = zi_dit_config_from_weights(m->dit_w, &m->dit_cfg, err, errlen)) ||
        (rc = zi_dit_bind(m->dit_w, &m->dit_cfg, &m->dit, err, errlen)) ||
        (rc = open_weights(tp, ZI_PART_TEXT, o, &m->text_w, err, errlen)) ||
        (rc = zi_qwen3_config_from_weights(m->text_w, &m->text_cfg, err, errlen)) ||
        (rc = zi_qwen3_bind(m->text_w, &m->text_cfg, &m->text, err, errlen)) ||
        (rc = open_weights(vp, ZI_PART_VAE, NULL, &vw, err, errlen)) ||
        (rc = zi_vae_config_from_weights(vw, &m->vae_cfg, err, errlen)) ||
        (rc = zi_vae_create(vw, &m->vae_cfg, &m->vae, err, errlen)) ||
        (rc = zi_tok_load(tok, &m->tok, err, errlen)))
        goto done;
    if (m->vae_cfg.latent_channels != m->dit_cfg.in_channels)
        rc = px_errf(err, errlen, PX_ECORRUPT,
                     "the VAE (%s) takes %d latent channels, the DiT (%s) makes %d", vp,
                     m->vae_cfg.latent_channels, dp, m->dit_cfg.in_channels);
    else if (m->text_cfg.hidden != m->dit_cfg.cap_feat_dim)
        rc = px_errf(err, errlen, PX_ECORRUPT,
                     "the text encoder (%s) gives %d features, the DiT (%s) takes %d", tp,
                     m->text_cfg.hidden, dp, m->dit_cfg.cap_feat_dim);
done:
    zi_weights_close(vw);
    return rc;
}

int zi_model_open(const zi_model_paths *p, const zi_model_opts *o, zi_model **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (!p->dir && (!p->dit || !p->text_encoder || !p->vae || !p->tokenizer))
        return px_errf(err, errlen, PX_EINVAL,
                       "give a model directory, or all four of the DiT, text encoder, VAE and "
                       "tokenizer files");
    zi_model *m = calloc(1, sizeof *m);
    if (!m) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    m->pool = o ? o->pool : NULL;
    comp_paths cp;
    int rc;
    if ((rc = load_configs(m, p, &cp, err, errlen)) ||
        (rc = open_components(m, &cp, o, err, errlen))) {
        zi_model_close(m);
        return rc;
    }
    m->weight_bytes =
        zi_weights_bytes(m->dit_w) + zi_weights_bytes(m->text_w) + zi_vae_weight_bytes(m->vae);
    *out = m;
    return 0;
}

void zi_model_close(zi_model *m)
{
    if (!m) return;
    zi_tok_free(m->tok);
    zi_vae_destroy(m->vae);
    zi_qwen3_free(m->text);
    zi_dit_free(m->dit);
    zi_weights_close(m->text_w);
    zi_weights_close(m->dit_w);
    free(m);
}

const zi_dit_config *zi_model_dit_config(const zi_model *m)
{
    return &m->dit_cfg;
}

const zi_vae_config *zi_model_vae_config(const zi_model *m)
{
    return &m->vae_cfg;
}

int zi_model_size_multiple(const zi_model *m)
{
    return zi_vae_factor(m->vae) * m->dit_cfg.patch;
}

size_t zi_model_weight_bytes(const zi_model *m)
{
    return m->weight_bytes;
}

const zi_weights *zi_model_weights(const zi_model *m, zi_part part)
{
    return part == ZI_PART_DIT ? m->dit_w : part == ZI_PART_TEXT ? m->text_w : NULL;
}

const zi_qwen3_config *zi_model_text_config(const zi_model *m)
{
    return &m->text_cfg;
}

const zi_sampler_config *zi_model_sampler_config(const zi_model *m)
{
    return &m->sampler_cfg;
}

int zi_model_tokenize(const zi_model *m, const char *prompt, int32_t *ids, size_t cap, size_t *n,
                      bool *truncated, char *err, size_t errlen)
{
    return zi_tok_encode_prompt(m->tok, prompt, ids, cap, n, truncated, err, errlen);
}

int zi_model_vae_decode(const zi_model *m, zi_ctx *ctx, const float *latent, int lat_h, int lat_w,
                        px_image *out, char *err, size_t errlen)
{
    return zi_vae_decode(m->vae, ctx, latent, lat_h, lat_w, out, err, errlen);
}

/* --- generating ----------------------------------------------------------------------- */

/* Starts a stage's peak: writing 5 to clear_refs resets VmHWM to the
 * current RSS (Linux >= 4.0). False when the kernel refused. */
static bool reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

static double ms_since(int64_t t0)
{
    return px_ns_to_ms(px_now_ns() - t0);
}

static int check_params(const zi_model *m, const zi_gen_params *p, char *err, size_t errlen)
{
    int mult = zi_model_size_multiple(m);
    if (!p->prompt) return px_errf(err, errlen, PX_EINVAL, "a prompt is required");
    if (p->width < mult || p->height < mult || p->width > ZI_MAX_SIDE || p->height > ZI_MAX_SIDE ||
        p->width % mult || p->height % mult)
        return px_errf(err, errlen, PX_EINVAL,
                       "width and height must be multiples of %d between %d and %d, got %dx%d",
                       mult, mult, ZI_MAX_SIDE, p->width, p->height);
    if (p->steps < 1 || p->steps > ZI_MAX_STEPS)
        return px_errf(err, errlen, PX_EINVAL, "steps must be between 1 and %d, got %d",
                       ZI_MAX_STEPS, p->steps);
    if (!(p->cfg_scale >= 0 && p->cfg_scale <= 100))
        return px_errf(err, errlen, PX_EINVAL, "cfg_scale must be between 0 (off) and 100, got %g",
                       (double)p->cfg_scale);
    /* before any work: a LoRA of another model is refused up front */
    return zi_lora_check_uses(p->loras, p->nloras, zi_model_dit_config(m), err, errlen);
}

/* Tokenizes (chat template, 512 cap) and encodes one prompt: *feat is
 * malloc'd [*n, hidden]. */
static int encode_prompt(const zi_model *m, zi_ctx *ctx, const char *prompt,
                         const atomic_int *cancel, float **feat, int *n, bool *truncated, char *err,
                         size_t errlen)
{
    int32_t ids[ZI_TOK_MAX_PROMPT];
    size_t nid;
    int rc =
        zi_tok_encode_prompt(m->tok, prompt, ids, ZI_TOK_MAX_PROMPT, &nid, truncated, err, errlen);
    if (rc) return rc;
    if (!(*feat = px_alloc_array(nid * (size_t)m->text_cfg.hidden, sizeof **feat)))
        return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    *n = (int)nid;
    return zi_qwen3_encode(m->text, ctx, ids, (int)nid, *feat, cancel, err, errlen);
}

typedef struct gen_state {
    float *pos, *neg; /* text features */
    int npos, nneg;
    float *lat, *out, *sigmas;
} gen_state;

static int denoise(const zi_model *m, zi_ctx *ctx, const zi_gen_params *p, gen_state *g,
                   zi_gen_stats *st, char *err, size_t errlen)
{
    int f = zi_vae_factor(m->vae), lh = p->height / f, lw = p->width / f, rc;
    size_t n = (size_t)m->dit_cfg.in_channels * lh * lw;
    bool cfg = p->cfg_scale > 0;
    if (!(g->lat = px_alloc_array(n, sizeof *g->lat)) ||
        !(g->out = px_alloc_array(n, cfg ? 2 * sizeof *g->out : sizeof *g->out)) ||
        !(g->sigmas = px_alloc_array((size_t)p->steps + 1, sizeof *g->sigmas)) ||
        !(st->step_ms = calloc((size_t)p->steps, sizeof *st->step_ms)))
        return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    if ((rc = zi_sampler_sigmas(&m->sampler_cfg, p->steps, g->sigmas, err, errlen))) return rc;
    if (p->latents)
        memcpy(g->lat, p->latents, n * sizeof *g->lat);
    else
        zi_sampler_noise(m->pool, (uint64_t)st->seed, g->lat, n);
    for (int i = 0; i < p->steps; i++) {
        if (p->cancel && atomic_load(p->cancel))
            return px_errf(err, errlen, PX_ECANCELED, "cancelled before step %d of %d", i + 1,
                           p->steps);
        int64_t t0 = px_now_ns();
        float t_in = zi_dit_t_in(&m->dit_cfg, g->sigmas[i]);
        zi_dit_input items[2] = {{g->lat, t_in, g->pos, g->npos, p->loras, p->nloras},
                                 {g->lat, t_in, g->neg, g->nneg, p->loras, p->nloras}};
        if ((rc = zi_dit_forward(m->dit, ctx, items, cfg ? 2 : 1, lh, lw, g->out, p->cancel, err,
                                 errlen)))
            return rc;
        if (cfg) zi_sampler_cfg(g->out, g->out, g->out + n, n, p->cfg_scale);
        zi_sampler_euler(g->lat, g->out, n, g->sigmas[i], g->sigmas[i + 1]);
        st->step_ms[i] = ms_since(t0);
        if (p->progress) p->progress(p->progress_user, i + 1, p->steps, st->step_ms[i]);
    }
    return 0;
}

/* The three stages; stats filled as they go. */
static int run_stages(const zi_model *m, zi_ctx *ctx, const zi_gen_params *p, gen_state *g,
                      zi_gen_result *r, char *err, size_t errlen)
{
    zi_gen_stats *st = &r->stats;
    int rc, f = zi_vae_factor(m->vae);
    st->peak_per_stage = reset_peak_rss();
    int64_t t0 = px_now_ns();
    if ((rc = encode_prompt(m, ctx, p->prompt, p->cancel, &g->pos, &g->npos, &st->prompt_truncated,
                            err, errlen)))
        return rc;
    if (p->cfg_scale > 0 &&
        (rc = encode_prompt(m, ctx, p->negative_prompt ? p->negative_prompt : "", p->cancel,
                            &g->neg, &g->nneg, &st->negative_truncated, err, errlen)))
        return rc;
    st->prompt_tokens = g->npos;
    st->negative_tokens = g->nneg;
    st->text_ms = ms_since(t0);
    st->peak_rss_text = px_proc_peak_rss_bytes();

    st->peak_per_stage = reset_peak_rss() && st->peak_per_stage;
    t0 = px_now_ns();
    if ((rc = denoise(m, ctx, p, g, st, err, errlen))) return rc;
    st->denoise_ms = ms_since(t0);
    st->peak_rss_denoise = px_proc_peak_rss_bytes();

    st->peak_per_stage = reset_peak_rss() && st->peak_per_stage;
    t0 = px_now_ns();
    if ((rc = zi_vae_decode(m->vae, ctx, g->lat, p->height / f, p->width / f, &r->image, err,
                            errlen)))
        return rc;
    st->vae_ms = ms_since(t0);
    st->peak_rss_vae = px_proc_peak_rss_bytes();
    return 0;
}

int zi_generate(const zi_model *m, zi_ctx *ctx, const zi_gen_params *p, zi_gen_result *out,
                char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc = check_params(m, p, err, errlen);
    if (rc) return rc;
    int64_t t0 = px_now_ns();
    zi_ctx *own = NULL;
    if (!ctx && (rc = zi_ctx_create(m->pool, &own, err, errlen))) return rc;
    out->stats.seed = zi_sampler_resolve_seed(p->seed);
    out->stats.steps = p->steps;
    gen_state g = {0};
    rc = run_stages(m, ctx ? ctx : own, p, &g, out, err, errlen);
    out->stats.total_ms = ms_since(t0);
    free(g.pos);
    free(g.neg);
    free(g.lat);
    free(g.out);
    free(g.sigmas);
    zi_ctx_destroy(own);
    if (rc) zi_gen_result_free(out);
    return rc;
}

void zi_gen_result_free(zi_gen_result *r)
{
    if (!r) return;
    px_image_free(&r->image);
    free(r->stats.step_ms);
    memset(r, 0, sizeof *r);
}
