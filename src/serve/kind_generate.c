/*
 * kind_generate.c — the text-to-image request kind (see kind_generate.h):
 * parse either dialect (pixserve's / the seed reports' fields, or OpenAI's
 * images API), one engine item per image, encode, and the replies: JSON
 * with images or URLs and the timings, OpenAI's {created, data}, or for the
 * jobs API the images as result parts.
 */
#include "serve/kind_generate.h"

#include "core/alloc.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "core/rng.h"
#include "image/codec.h"
#include "serve/loras.h"
#include "serve/task.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The largest seed: 2^53 (every JSON client's exact integers) less room
 * for the images' seed + k. */
#define MAX_SEED ((1LL << 53) - PX_GEN_MAX_IMAGES)

typedef struct gen_req {
    char *prompt, *negative;
    int width, height, steps, n;
    double cfg;
    int64_t seed;
    int url; /* reply with /outputs URLs instead of base64 */
    enum px_format fmt;
    const char *size_field; /* how the dialect names the size: "width" or "size" */
    px_image out[PX_GEN_MAX_IMAGES];
    px_engine_item eit[PX_GEN_MAX_IMAGES];
    px_buf enc[PX_GEN_MAX_IMAGES];
    char name[PX_GEN_MAX_IMAGES][PX_OUTPUT_NAME_MAX];
    /* Summed over the images by finish (step_ms: the mean per step). */
    double queue_ms, text_ms, denoise_ms, vae_ms, encode_ms, total_ms;
    double step_ms[PX_ENGINE_GEN_MAX_STEPS];
    int nstep_ms;
    uint64_t peak[3]; /* text encode, denoise, VAE decode: the largest */
    int mem_source;   /* px_gen_mem: what peak[] measures */
    int prompt_tokens, truncated;
    /* LoRAs asked for, and held (by check) while the engine may use them. */
    int nloras;
    char lora_name[PX_ENGINE_MAX_LORAS][PX_LORA_NAME_MAX + 1];
    float lora_scale[PX_ENGINE_MAX_LORAS];
    px_lora_hold *lora_hold[PX_ENGINE_MAX_LORAS];
    px_loras *loras; /* the registry they are held in */
} gen_req;

/* Lets go of the LoRAs (the engine is done with the items); again is a no-op. */
static void gen_release(void *p)
{
    gen_req *r = p;
    for (int i = 0; i < r->nloras; i++) {
        px_loras_release(r->loras, r->lora_hold[i]);
        r->lora_hold[i] = NULL;
    }
}

static void gen_free(void *p)
{
    gen_req *r = p;
    gen_release(r);
    free(r->prompt);
    free(r->negative);
    for (int i = 0; i < PX_GEN_MAX_IMAGES; i++) {
        px_image_free(&r->out[i]);
        px_buf_free(&r->enc[i]);
    }
    free(r);
}

/* ------------------------------------------------------------ parse */

static int bad(char *err, size_t errlen, const char *key, const char *what)
{
    return px_errf(err, errlen, PX_EINVAL, "field '%s' %s", key, what);
}

static int get_int(const cJSON *v, const char *key, long long lo, long long hi, long long *out,
                   char *err, size_t errlen)
{
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return bad(err, errlen, key, "must be an integer");
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return px_errf(err, errlen, PX_EINVAL, "field '%s' must be from %lld to %lld, got %.0f",
                       key, lo, hi, v->valuedouble);
    *out = (long long)v->valuedouble;
    return 0;
}

/* Characters (UTF-8 code points) of s. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int get_text(const cJSON *v, const char *key, char **out, char *err, size_t errlen)
{
    if (!cJSON_IsString(v)) return bad(err, errlen, key, "must be a string");
    if (utf8_chars(v->valuestring) > PX_GEN_MAX_PROMPT)
        return px_errf(err, errlen, PX_EINVAL, "field '%s' is longer than %d characters", key,
                       PX_GEN_MAX_PROMPT);
    free(*out);
    *out = px_xstrdup(v->valuestring);
    return 0;
}

static int get_choice(const cJSON *v, const char *key, const char *const *names, int *out,
                      char *err, size_t errlen)
{
    for (int i = 0; cJSON_IsString(v) && names[i]; i++)
        if (!strcasecmp(v->valuestring, names[i])) return *out = i, 0;
    char msg[160] = "must be one of";
    for (int i = 0; names[i]; i++)
        snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "%s %s", i ? "," : "", names[i]);
    return bad(err, errlen, key, msg);
}

/* One entry of "loras": {"name": "...", "scale": 0.85} (scale 1 if absent). */
static int get_lora(gen_req *r, const cJSON *v, int k, char *err, size_t errlen)
{
    if (!cJSON_IsObject(v))
        return px_errf(err, errlen, PX_EINVAL,
                       "field 'loras': entry %d must be an object {\"name\": ..., \"scale\": ...}",
                       k);
    double scale = 1.0;
    const char *name = NULL;
    for (const cJSON *m = v->child; m; m = m->next) {
        const char *key = m->string ? m->string : "";
        int is_name = !strcmp(key, "name"), is_scale = !strcmp(key, "scale");
        if ((is_name && !cJSON_IsString(m)) || (is_scale && !cJSON_IsNumber(m)) ||
            (!is_name && !is_scale))
            return px_errf(err, errlen, PX_EINVAL,
                           "field 'loras': entry %d: a LoRA is {\"name\": a string, \"scale\": a "
                           "number} (got '%.40s')", k, key);
        if (is_name) name = m->valuestring;
        else scale = m->valuedouble;
    }
    if (!name) return px_errf(err, errlen, PX_EINVAL, "field 'loras': entry %d has no \"name\"", k);
    if (!px_lora_name_ok(name))
        return px_errf(err, errlen, PX_EINVAL,
                       "field 'loras': '%.80s' is not a LoRA name (1 to %d of A-Z a-z 0-9 _ . -)",
                       name, PX_LORA_NAME_MAX);
    if (!(scale >= -PX_LORA_MAX_SCALE && scale <= PX_LORA_MAX_SCALE))
        return px_errf(err, errlen, PX_EINVAL,
                       "field 'loras': the scale of '%s' must be from %g to %g", name,
                       -PX_LORA_MAX_SCALE, PX_LORA_MAX_SCALE);
    for (int i = 0; i < r->nloras; i++)
        if (!strcmp(r->lora_name[i], name))
            return px_errf(err, errlen, PX_EINVAL, "field 'loras': '%s' is named twice", name);
    snprintf(r->lora_name[r->nloras], sizeof r->lora_name[0], "%s", name);
    r->lora_scale[r->nloras++] = (float)scale;
    return 0;
}

/* "loras": [{"name", "scale"}, ...], at most PX_ENGINE_MAX_LORAS. */
static int get_loras(gen_req *r, const cJSON *v, char *err, size_t errlen)
{
    if (!cJSON_IsArray(v)) return bad(err, errlen, "loras", "must be an array of {\"name\", \"scale\"}");
    if (cJSON_GetArraySize(v) > PX_ENGINE_MAX_LORAS)
        return px_errf(err, errlen, PX_EINVAL, "field 'loras' takes at most %d LoRAs",
                       PX_ENGINE_MAX_LORAS);
    r->nloras = 0;
    int k = 0, rc = 0;
    for (const cJSON *it = v->child; it && !rc; it = it->next) rc = get_lora(r, it, k++, err, errlen);
    return rc;
}

/* Options both dialects share. 1 if key is not one of them. */
static int common_option(gen_req *r, px_kind_opts *o, const cJSON *v, const char *key, char *err,
                         size_t errlen)
{
    long long x;
    int rc = 0, k;
    static const char *const fmts[] = {"png", "jpeg", "webp", "jpg", NULL};
    static const char *const prios[] = {"high", "normal", "low", NULL};
    if (!strcmp(key, "prompt")) rc = get_text(v, key, &r->prompt, err, errlen);
    else if (!strcmp(key, "negative_prompt")) rc = get_text(v, key, &r->negative, err, errlen);
    else if (!strcmp(key, "seed")) {
        if (!(rc = get_int(v, key, -1, MAX_SEED, &x, err, errlen))) r->seed = x;
    } else if (!strcmp(key, "cfg_scale")) {
        if (!cJSON_IsNumber(v)) return bad(err, errlen, key, "must be a number");
        if (!(v->valuedouble >= 0 && v->valuedouble <= PX_GEN_MAX_CFG))
            return px_errf(err, errlen, PX_EINVAL, "field 'cfg_scale' must be from 0 to %g",
                           PX_GEN_MAX_CFG);
        r->cfg = v->valuedouble;
    } else if (!strcmp(key, "output_format")) {
        if (!(rc = get_choice(v, key, fmts, &k, err, errlen)))
            r->fmt = k == 0 ? PX_FMT_PNG : k == 2 ? PX_FMT_WEBP : PX_FMT_JPEG;
    } else if (!strcmp(key, "model")) {
        if (!cJSON_IsString(v)) return bad(err, errlen, key, "must be a string");
        if (strlen(v->valuestring) >= sizeof o->engine) return bad(err, errlen, key, "is too long");
        snprintf(o->engine, sizeof o->engine, "%s", v->valuestring);
    } else if (!strcmp(key, "priority")) {
        if (!(rc = get_choice(v, key, prios, &k, err, errlen))) o->priority = k;
    } else if (!strcmp(key, "timeout_ms")) {
        if (!(rc = get_int(v, key, 1, 3600000, &x, err, errlen))) o->timeout_ms = x;
    } else if (!strcmp(key, "loras")) {
        rc = get_loras(r, v, err, errlen);
    } else return 1;
    return rc;
}

/* pixserve's fields (the seed reports' format). 1 if key is not one. */
static int v1_option(gen_req *r, const cJSON *v, const char *key, char *err, size_t errlen)
{
    long long x;
    int rc, k;
    static const char *const rets[] = {"base64", "image_url", NULL};
    if (!strcmp(key, "width") || !strcmp(key, "height")) {
        if ((rc = get_int(v, key, PX_GEN_MIN_SIDE, PX_GEN_MAX_SIDE, &x, err, errlen))) return rc;
        *(key[0] == 'w' ? &r->width : &r->height) = (int)x;
    } else if (!strcmp(key, "num_inference_steps") || !strcmp(key, "steps")) {
        if ((rc = get_int(v, key, 1, PX_GEN_MAX_STEPS, &x, err, errlen))) return rc;
        r->steps = (int)x;
    } else if (!strcmp(key, "num_images")) {
        if ((rc = get_int(v, key, 1, PX_GEN_MAX_IMAGES, &x, err, errlen))) return rc;
        r->n = (int)x;
    } else if (!strcmp(key, "return_type")) {
        if ((rc = get_choice(v, key, rets, &k, err, errlen))) return rc;
        r->url = k == 1;
    } else return 1;
    return 0;
}

/* OpenAI's images API fields (plus steps). 1 if key is not one. */
static int openai_option(gen_req *r, const cJSON *v, const char *key, char *err, size_t errlen)
{
    long long x;
    int rc, k;
    static const char *const rets[] = {"b64_json", "url", NULL};
    if (!strcmp(key, "size")) {
        int w, h;
        char tail;
        if (cJSON_IsString(v) && !strcmp(v->valuestring, "auto")) return 0;
        if (!cJSON_IsString(v) || sscanf(v->valuestring, "%dx%d%c", &w, &h, &tail) != 2)
            return bad(err, errlen, key, "must be \"WIDTHxHEIGHT\", e.g. \"1024x1024\"");
        if (w < PX_GEN_MIN_SIDE || h < PX_GEN_MIN_SIDE || w > PX_GEN_MAX_SIDE ||
            h > PX_GEN_MAX_SIDE)
            return px_errf(err, errlen, PX_EINVAL, "field 'size': sides must be from %d to %d",
                           PX_GEN_MIN_SIDE, PX_GEN_MAX_SIDE);
        r->width = w, r->height = h;
    } else if (!strcmp(key, "n")) {
        if ((rc = get_int(v, key, 1, PX_GEN_MAX_IMAGES, &x, err, errlen))) return rc;
        r->n = (int)x;
    } else if (!strcmp(key, "steps") || !strcmp(key, "num_inference_steps")) {
        if ((rc = get_int(v, key, 1, PX_GEN_MAX_STEPS, &x, err, errlen))) return rc;
        r->steps = (int)x;
    } else if (!strcmp(key, "response_format")) {
        if ((rc = get_choice(v, key, rets, &k, err, errlen))) return rc;
        r->url = k == 1;
    } else return 1;
    return 0;
}

/* A seed nobody asked for: different for every request. */
static int64_t random_seed(void)
{
    static atomic_ullong counter;
    uint64_t x = px_hash64((uint64_t)px_now_ns() ^ (atomic_fetch_add(&counter, 1) << 40));
    return (int64_t)(x & 0xffffffffu);
}

/* Checks what single fields cannot: the prompt, the size's multiple and the
 * pixel cap. */
static int check_request(const px_kind_ctx *c, gen_req *r, char *err, size_t errlen)
{
    const char *p = r->prompt;
    while (p && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    if (!r->prompt) return px_errf(err, errlen, PX_EINVAL, "missing field 'prompt' (a string)");
    if (!*p) return bad(err, errlen, "prompt", "is empty");
    const char *sz = r->size_field;
    int sf = !strcmp(sz, "size");
    if (r->width % 16 || r->height % 16)
        return px_errf(err, errlen, PX_EINVAL, "field '%s'%s must be a multiple of 16, got %d",
                       sf ? sz : r->width % 16 ? "width" : "height",
                       sf ? " (each side)" : "",
                       r->width % 16 ? r->width : r->height);
    uint64_t px = (uint64_t)r->width * (uint64_t)r->height, cap = c->env->cfg->max_gen_pixels;
    if (cap && px > cap)
        return px_errf(err, errlen, PX_EINVAL,
                       "field '%s': %dx%d is %llu pixels, above this server's limit of %llu "
                       "(--max-gen-pixels)",
                       sf ? sz : "width", r->width, r->height, (unsigned long long)px,
                       (unsigned long long)cap);
    if (r->seed < 0) r->seed = random_seed();
    return 0;
}

static int content_is_json(const char *ct)
{
    return !ct[0] || !strncasecmp(ct, "application/json", 16);
}

static int gen_parse(const px_kind_ctx *c, const uint8_t *body, size_t len, void **out,
                     px_kind_opts *o, char *err, size_t errlen)
{
    int openai = c->dialect == PX_DIALECT_OPENAI;
    gen_req *r = px_xcalloc(1, sizeof *r);
    *out = r;
    *r = (gen_req){.width = 1024, .height = 1024, .steps = 8, .n = 1, .seed = -1,
                   .fmt = PX_FMT_PNG, .size_field = openai ? "size" : "width"};
    if (!content_is_json(c->content_type))
        return px_errf(err, errlen, PX_EUNSUP, "Content-Type '%.100s' is not supported here; send "
                       "application/json", c->content_type);
    if (len > PX_GEN_MAX_BODY)
        return px_errf(err, errlen, PX_ETOOBIG, "a text-to-image request body is at most %d bytes",
                       PX_GEN_MAX_BODY);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)body, len, &end, 0);
    if (!root) {
        size_t off = end && end >= (const char *)body ? (size_t)(end - (const char *)body) : 0;
        return px_errf(err, errlen, PX_EINVAL, "malformed JSON near byte %zu", off);
    }
    int rc = 0;
    if (!cJSON_IsObject(root)) rc = px_errf(err, errlen, PX_EINVAL, "request body must be a JSON object");
    for (const cJSON *it = root->child; !rc && it; it = it->next) {
        if (!it->string || cJSON_IsNull(it)) continue; /* null: the default */
        rc = common_option(r, o, it, it->string, err, errlen);
        if (rc == 1)
            rc = openai ? openai_option(r, it, it->string, err, errlen)
                        : v1_option(r, it, it->string, err, errlen);
        if (rc == 1) rc = 0; /* unknown fields are ignored, as clients send many */
    }
    cJSON_Delete(root);
    return rc ? rc : check_request(c, r, err, errlen);
}

/* ------------------------------------------------------------ items */

/* Holds the request's LoRAs as opened on its engine (loading them there
 * the first time), before admission: an unknown name or a file that does
 * not fit the model is a 4xx, not a queue slot. */
static int gen_check(const px_kind_ctx *c, void *p, char *err, size_t errlen)
{
    gen_req *r = p;
    if (!r->nloras) return 0;
    if (!c->env->loras)
        return px_errf(err, errlen, PX_EINVAL,
                       "field 'loras': this server has no LoRAs (start it with --lora-dir DIR)");
    r->loras = c->env->loras;
    char msg[256];
    for (int i = 0; i < r->nloras; i++) {
        int rc = px_loras_acquire(r->loras, c->engine, r->lora_name[i], &r->lora_hold[i], msg,
                                  sizeof msg);
        if (rc == PX_ENOTFOUND || rc == PX_EUNSUP) /* the request's mistake, not a file's */
            return px_errf(err, errlen, PX_EINVAL, "field 'loras': %s", msg);
        if (rc)
            return px_errf(err, errlen, rc, "field 'loras': LoRA '%s' does not load: %s",
                           r->lora_name[i], msg);
    }
    return 0;
}

static int gen_prepare(const px_kind_ctx *c, void *p, int *nitems, char *err, size_t errlen)
{
    (void)c;
    gen_req *r = p;
    for (int i = 0; i < r->n; i++)
        if (px_image_alloc(&r->out[i], r->width, r->height, 3, NULL, NULL, 0))
            return px_errf(err, errlen, PX_ENOMEM, "out of memory for %d %dx%d images", r->n,
                           r->width, r->height);
    *nitems = r->n;
    return 0;
}

static void gen_make_items(const px_kind_ctx *c, void *p, px_sched_item *items, int n)
{
    (void)c;
    gen_req *r = p;
    for (int i = 0; i < n; i++) {
        r->eit[i] = (px_engine_item){
            .out = &r->out[i], .seed = (uint64_t)(r->seed + i),
            .gen = {.prompt = r->prompt, .negative_prompt = r->negative, .width = r->width,
                    .height = r->height, .steps = r->steps, .cfg_scale = (float)r->cfg,
                    .nloras = r->nloras}};
        for (int k = 0; k < r->nloras; k++)
            r->eit[i].gen.loras[k] = (px_engine_lora_use){px_lora_hold_lora(r->lora_hold[k]),
                                                          r->lora_scale[k]};
        items[i].payload = &r->eit[i];
        items[i].shape = (px_engine_shape){r->width, r->height, r->steps, r->cfg > 0};
        /* Guidance doubles the DiT's batch: never mix it with unguided items.
         * LoRAs are not in the key: engines apply them per item. */
        items[i].key = px_kind_key3(r->width, r->height, r->steps) ^ (r->cfg > 0 ? 1ull << 63 : 0);
    }
}

/* ------------------------------------------------------------ finish */

/* Sums the engine's per-image figures into the request's. */
static void collect_stats(px_metrics *m, gen_req *r)
{
    for (int i = 0; i < r->n; i++) {
        const px_engine_gen *g = &r->eit[i].gen;
        double st[PX_GEN_STAGE_COUNT] = {(double)g->encode_ns / 1e9, (double)g->denoise_ns / 1e9,
                                         (double)g->decode_ns / 1e9};
        px_metrics_generate(m, st, g->step_ms, g->nstep_ms);
        r->text_ms += st[0] * 1e3;
        r->denoise_ms += st[1] * 1e3;
        r->vae_ms += st[2] * 1e3;
        if (g->nstep_ms > r->nstep_ms) r->nstep_ms = g->nstep_ms;
        for (int k = 0; k < g->nstep_ms; k++) r->step_ms[k] += g->step_ms[k] / r->n;
        uint64_t pk[3] = {g->encode_peak_bytes, g->denoise_peak_bytes, g->decode_peak_bytes};
        for (int k = 0; k < 3; k++)
            if (pk[k] > r->peak[k]) r->peak[k] = pk[k];
        if (g->mem_source) r->mem_source = g->mem_source;
    }
    r->prompt_tokens = r->eit[0].gen.prompt_tokens;
    r->truncated = r->eit[0].gen.prompt_truncated;
}

static void put_ms(px_buf *b, const char *name, double v)
{
    px_buf_printf(b, ",\"%s\":", name);
    px_json_num(b, round(v * 1000) / 1000);
}

/* ,"seeds":[..],"timings":{..},"memory":{..},"prompt_tokens":..,"prompt_truncated":.. */
/* ,"loras":[{"name","scale"}...] as the request named them. */
static int put_loras(const gen_req *r, px_buf *b)
{
    px_buf_puts(b, ",\"loras\":[");
    for (int i = 0; i < r->nloras; i++) {
        px_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        px_json_str(b, r->lora_name[i]);
        px_buf_puts(b, ",\"scale\":");
        px_json_num(b, r->lora_scale[i]);
        px_buf_puts(b, "}");
    }
    return px_buf_puts(b, "]");
}

static int put_details(const gen_req *r, px_buf *b)
{
    px_buf_puts(b, ",\"seeds\":[");
    for (int i = 0; i < r->n; i++) px_buf_printf(b, "%s%lld", i ? "," : "", (long long)(r->seed + i));
    px_buf_puts(b, "],\"timings\":{\"queue_ms\":");
    px_json_num(b, round(r->queue_ms * 1000) / 1000);
    put_ms(b, "text_encode_ms", r->text_ms);
    put_ms(b, "denoise_ms", r->denoise_ms);
    px_buf_puts(b, ",\"step_ms\":[");
    for (int k = 0; k < r->nstep_ms; k++) {
        if (k) px_buf_puts(b, ",");
        px_json_num(b, round(r->step_ms[k] * 1000) / 1000);
    }
    px_buf_puts(b, "]");
    put_ms(b, "vae_decode_ms", r->vae_ms);
    put_ms(b, "encode_ms", r->encode_ms);
    put_ms(b, "total_ms", r->total_ms);
    px_buf_printf(b,
                  "},\"memory\":{\"source\":\"%s\",\"text_encode_peak_bytes\":%llu,"
                  "\"denoise_peak_bytes\":%llu,\"vae_decode_peak_bytes\":%llu},\"prompt_tokens\":%d,"
                  "\"prompt_truncated\":%s",
                  r->mem_source == PX_GEN_MEM_GPU        ? "gpu"
                  : r->mem_source == PX_GEN_MEM_HOST_RSS ? "host_rss"
                                                         : "none",
                  (unsigned long long)r->peak[0], (unsigned long long)r->peak[1],
                  (unsigned long long)r->peak[2], r->prompt_tokens,
                  r->truncated ? "true" : "false");
    return put_loras(r, b);
}

/* One image of the reply: base64 text or its URL (absolute for OpenAI). */
static void put_image(const px_kind_ctx *c, const gen_req *r, int i, px_buf *b)
{
    if (r->url) {
        char url[PX_OUTPUT_NAME_MAX + 160];
        int abs = c->dialect == PX_DIALECT_OPENAI && c->host && c->host[0];
        snprintf(url, sizeof url, "%s%.120s/outputs/%s", abs ? "http://" : "", abs ? c->host : "",
                 r->name[i]);
        px_json_str(b, url);
        return;
    }
    px_buf_puts(b, "\"");
    b->len += px_b64_encode(r->enc[i].data, r->enc[i].len, (char *)b->data + b->len);
    px_buf_puts(b, "\"");
}

static int build_json(const px_kind_ctx *c, const gen_req *r, px_buf *b)
{
    size_t cap = 8192;
    for (int i = 0; i < r->n; i++) cap += px_b64_encoded_len(r->enc[i].len) + 256;
    px_buf_init(b, cap);
    if (px_buf_reserve(b, cap)) return PX_ENOMEM;
    if (c->dialect == PX_DIALECT_OPENAI) {
        px_buf_printf(b, "{\"created\":%lld,\"data\":[", (long long)(px_wall_ms() / 1000));
        for (int i = 0; i < r->n; i++) {
            px_buf_puts(b, i ? ",{" : "{");
            px_buf_puts(b, r->url ? "\"url\":" : "\"b64_json\":");
            put_image(c, r, i, b);
            px_buf_puts(b, "}");
        }
        return px_buf_puts(b, "]}\n");
    }
    px_buf_puts(b, "{\"images\":[");
    for (int i = 0; i < r->n; i++) {
        if (i) px_buf_puts(b, ",");
        put_image(c, r, i, b);
    }
    px_buf_printf(b, "],\"format\":\"%s\",\"width\":%d,\"height\":%d,\"steps\":%d,\"cfg_scale\":",
                  px_format_name(r->fmt), r->width, r->height, r->steps);
    px_json_num(b, r->cfg);
    px_buf_puts(b, ",\"model\":");
    px_json_str(b, px_engine_name(c->engine));
    put_details(r, b);
    return px_buf_puts(b, "}\n");
}

static int save_outputs(const px_kind_ctx *c, gen_req *r, char *err, size_t errlen)
{
    int64_t t0 = px_now_ns();
    int rc = 0;
    for (int i = 0; i < r->n && !rc; i++)
        rc = px_outputs_save(c->env->outputs, r->enc[i].data, r->enc[i].len,
                             px_format_name(r->fmt), r->name[i], err, errlen);
    px_task_note_save(c->task, px_now_ns() - t0);
    return rc;
}

static int gen_finish(const px_kind_ctx *c, void *p, px_kind_reply *out, char *err, size_t errlen)
{
    gen_req *r = p;
    int64_t t0 = px_now_ns();
    px_encode_opts eo = {.fmt = r->fmt, .png_level = c->env->cfg->png_level};
    for (int i = 0; i < r->n; i++) {
        px_buf_init(&r->enc[i], (size_t)1 << 30);
        int rc = px_encode(&r->out[i], &eo, &r->enc[i], err, errlen);
        if (rc) return rc;
        px_image_free(&r->out[i]); /* the encoded bytes are what is kept */
    }
    int64_t enc_ns = px_now_ns() - t0;
    px_task_note_stage(c->task, PX_STAGE_ENCODE, enc_ns);
    collect_stats(c->env->metrics, r);
    px_task_timings tm;
    px_task_timings_get(c->task, &tm);
    r->queue_ms = tm.queue_ms;
    r->encode_ms = px_ns_to_ms(enc_ns);
    r->total_ms = tm.total_ms;
    if (c->async) {
        /* The jobs API serves the images as result parts; the reply is the first. */
        out->content_type = px_format_mime(r->fmt);
        px_buf_init(&out->body, r->enc[0].len + 1);
        return px_buf_append(&out->body, r->enc[0].data, r->enc[0].len);
    }
    int rc;
    if (r->url && (rc = save_outputs(c, r, err, errlen))) return rc;
    out->content_type = "application/json";
    if ((rc = build_json(c, r, &out->body)))
        return px_errf(err, errlen, rc, "out of memory building the reply");
    return 0;
}

/* ------------------------------------------------------------ jobs API */

static int gen_status_result(const void *p, px_buf *b)
{
    const gen_req *r = p;
    return px_buf_printf(b, ",\"width\":%d,\"height\":%d,\"steps\":%d", r->width, r->height,
                         r->steps);
}

static int gen_status_request(const void *p, px_buf *b)
{
    return put_loras(p, b);
}

static int gen_status_extra(const void *p, const px_task_timings *tm, px_buf *b)
{
    (void)tm; /* the request keeps its own, taken when it finished */
    return put_details(p, b);
}

static void gen_server_timing(const void *p, const px_task_timings *tm, char *out, size_t n)
{
    const gen_req *r = p;
    snprintf(out, n,
             "queue;dur=%.2f, text_encode;dur=%.2f, denoise;dur=%.2f, vae_decode;dur=%.2f, "
             "encode;dur=%.2f, save;dur=%.2f, total;dur=%.2f",
             tm->queue_ms, r->text_ms, r->denoise_ms, r->vae_ms, r->encode_ms, tm->save_ms,
             tm->total_ms);
}

/* OpenAI's error type for a code. */
static const char *openai_type(int code)
{
    int st = px_err_http_status(code);
    return st == 429 ? "rate_limit_error" : st >= 500 ? "server_error" : "invalid_request_error";
}

/* Errors in the dialect's shape: OpenAI's {"error": {"message", "type",
 * "param", "code"}} (param: the field a "field 'x'" message names), else
 * pixserve's {"error": {"code", "message"}}. */
static void gen_error_body(enum px_dialect d, int code, const char *msg, px_buf *b)
{
    if (d != PX_DIALECT_OPENAI) {
        px_buf_puts(b, "{\"error\":{\"code\":");
        px_json_str(b, px_err_name(code));
        px_buf_puts(b, ",\"message\":");
        px_json_str(b, msg);
        px_buf_puts(b, "}}\n");
        return;
    }
    char param[48] = "";
    const char *f = msg ? strstr(msg, "field '") : NULL;
    if (f) {
        f += 7;
        size_t n = strcspn(f, "'");
        if (f[n] == '\'' && n < sizeof param) memcpy(param, f, n), param[n] = 0;
    }
    px_buf_puts(b, "{\"error\":{\"message\":");
    px_json_str(b, msg);
    px_buf_printf(b, ",\"type\":\"%s\",\"param\":", openai_type(code));
    if (param[0]) px_json_str(b, param);
    else px_buf_puts(b, "null");
    px_buf_puts(b, ",\"code\":null}}\n");
}

static int gen_result(const void *p, int index, const uint8_t **data, size_t *len,
                      const char **content_type)
{
    const gen_req *r = p;
    if (index < 0 || index >= r->n || !r->enc[index].data) return PX_ENOTFOUND;
    *data = r->enc[index].data;
    *len = r->enc[index].len;
    *content_type = px_format_mime(r->fmt);
    return 0;
}

const px_kind px_kind_generate = {
    .name = "generate",
    .engine_kind = PX_ENGINE_GENERATE,
    .prepare_stage = "prepare",
    .finish_stage = "encode",
    .step_stages = 1,
    .unknown_engine_code = PX_ENOTFOUND,
    .parse = gen_parse,
    .check = gen_check,
    .prepare = gen_prepare,
    .make_items = gen_make_items,
    .run = px_kind_run_engine_items,
    .run_join = px_kind_run_engine_items_join,
    .finish = gen_finish,
    .free = gen_free,
    .release = gen_release,
    .status_request = gen_status_request,
    .status_result = gen_status_result,
    .status_extra = gen_status_extra,
    .result = gen_result,
    .server_timing = gen_server_timing,
    .error_body = gen_error_body,
};
