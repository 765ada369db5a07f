/*
 * profile.c — request bodies per target API and response checks (see
 * profile.h).
 */
#include "bench/profile.h"

#include "bench/prompts.h"
#include "core/alloc.h"
#include "core/base64.h"
#include "core/err.h"
#include "core/jsonw.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct check_ctx {
    enum pb_profile_kind kind;
    enum pb_check_level level;
    int base64_reply; /* seed-inpaint with return_type base64 */
} check_ctx;

static const char *names[] = {"pixserve", "seed-inpaint", "iopaint", "generate", "raw", "openai-images"};

int pb_profile_parse(const char *name)
{
    for (int i = 0; i < 6; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

const char *pb_profile_name(enum pb_profile_kind k)
{
    return (unsigned)k < 6 ? names[k] : "?";
}

const char *pb_profile_path(enum pb_profile_kind k)
{
    switch (k) {
    case PB_PROF_PIXSERVE: return "/api/v1/inpaint";
    case PB_PROF_SEED: return "/inpaint";
    case PB_PROF_IOPAINT: return "/api/v1/inpaint";
    case PB_PROF_GENERATE: return "/api/v1/generate";
    case PB_PROF_RAW: return "/";
    case PB_PROF_OPENAI: return "/v1/images/generations";
    }
    return "/";
}

/* PNG's IHDR holds the size at fixed offsets; enough for `basic`. */
static int png_size(const uint8_t *d, size_t n, int *w, int *h)
{
    if (n < 24 || memcmp(d, "\x89PNG\r\n\x1a\n", 8) || memcmp(d + 12, "IHDR", 4)) return -1;
    *w = (int)((uint32_t)d[16] << 24 | (uint32_t)d[17] << 16 | (uint32_t)d[18] << 8 | d[19]);
    *h = (int)((uint32_t)d[20] << 24 | (uint32_t)d[21] << 16 | (uint32_t)d[22] << 8 | d[23]);
    return 0;
}

static int check_image_bytes(const check_ctx *cc, const pb_request *req, const uint8_t *d,
                             size_t n, char *err, size_t errlen)
{
    enum px_format f = px_format_sniff(d, n);
    if (f == PX_FMT_UNKNOWN) return px_errf(err, errlen, PX_EINVAL, "reply is not an image");
    int w = 0, h = 0;
    if (cc->level == PB_CHECK_FULL) {
        px_image img;
        char e2[200];
        if (px_decode(d, n, NULL, &img, e2, sizeof e2))
            return px_errf(err, errlen, PX_EINVAL, "reply image does not decode: %s", e2);
        w = img.w;
        h = img.h;
        px_image_free(&img);
    } else if (png_size(d, n, &w, &h) != 0) {
        return 0; /* basic: format only for JPEG/WebP */
    }
    if (req->expect_w && (w != req->expect_w || h != req->expect_h))
        return px_errf(err, errlen, PX_EINVAL, "reply image is %dx%d, sent %dx%d", w, h,
                       req->expect_w, req->expect_h);
    return 0;
}

static int check_json_reply(const check_ctx *cc, const pb_request *req, const px_buf *body,
                            char *err, size_t errlen)
{
    cJSON *j = cJSON_ParseWithLength((const char *)body->data, body->len);
    if (!j) return px_errf(err, errlen, PX_EINVAL, "reply is not JSON");
    int rc = 0;
    if (cc->kind == PB_PROF_SEED) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
        const cJSON *url = cJSON_GetObjectItemCaseSensitive(j, "image_url");
        const cJSON *img = cJSON_GetObjectItemCaseSensitive(j, "image");
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "width");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "height");
        if (st && (!cJSON_IsString(st) || strcmp(st->valuestring, "ok")))
            rc = px_errf(err, errlen, PX_EINVAL, "reply status is not \"ok\"");
        else if (!cJSON_IsString(url) && !cJSON_IsString(img))
            rc = px_errf(err, errlen, PX_EINVAL, "reply has neither image_url nor image");
        else if (cJSON_IsNumber(w) && cJSON_IsNumber(h) && req->expect_w &&
                 ((int)w->valuedouble != req->expect_w || (int)h->valuedouble != req->expect_h))
            rc = px_errf(err, errlen, PX_EINVAL, "reply says %dx%d, sent %dx%d",
                         (int)w->valuedouble, (int)h->valuedouble, req->expect_w, req->expect_h);
        else if (cJSON_IsString(img)) {
            uint8_t *bytes;
            size_t n;
            char e2[160];
            const char *s = img->valuestring;
            if (px_b64_decode(s, strlen(s), (size_t)256 << 20, &bytes, &n, e2, sizeof e2))
                rc = px_errf(err, errlen, PX_EINVAL, "reply image is not base64: %s", e2);
            else {
                rc = check_image_bytes(cc, req, bytes, n, err, errlen);
                free(bytes);
            }
        }
    }
    cJSON_Delete(j);
    return rc;
}

static int check(void *ctx, const pb_request *req, const pb_http_parser *resp, const px_buf *body,
                 char *err, size_t errlen)
{
    const check_ctx *cc = ctx;
    if (cc->level == PB_CHECK_NONE || cc->kind == PB_PROF_RAW) return 0;
    const char *ct = resp->content_type;
    int is_json = !strncasecmp(ct, "application/json", 16);
    int is_image = !strncasecmp(ct, "image/", 6);
    switch (cc->kind) {
    case PB_PROF_PIXSERVE:
    case PB_PROF_IOPAINT:
        if (!is_image)
            return px_errf(err, errlen, PX_EINVAL, "content type '%s', not an image", ct);
        if (!body || !body->len) return px_errf(err, errlen, PX_EINVAL, "empty image reply");
        return check_image_bytes(cc, req, body->data, body->len, err, errlen);
    case PB_PROF_SEED:
        if (!is_json) return px_errf(err, errlen, PX_EINVAL, "content type '%s', not JSON", ct);
        if (cc->level == PB_CHECK_FULL && body) return check_json_reply(cc, req, body, err, errlen);
        return 0;
    case PB_PROF_GENERATE:
    case PB_PROF_OPENAI:
        if (resp->body_bytes == 0) return px_errf(err, errlen, PX_EINVAL, "empty reply");
        if (cc->level == PB_CHECK_FULL && is_json && body) {
            cJSON *j = cJSON_ParseWithLength((const char *)body->data, body->len);
            if (!j) return px_errf(err, errlen, PX_EINVAL, "reply is not JSON");
            /* OpenAI's reply must carry its images in data[] */
            int ok = cc->kind != PB_PROF_OPENAI || cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "data")) > 0;
            cJSON_Delete(j);
            if (!ok) return px_errf(err, errlen, PX_EINVAL, "reply has no data[] images");
        }
        return 0;
    case PB_PROF_RAW: return 0;
    }
    return 0;
}

static uint8_t *keep(pb_workload *w, px_buf *b)
{
    size_t n;
    uint8_t *p = px_buf_steal(b, &n);
    if (!p) p = px_xcalloc(1, 1);
    w->owned = realloc(w->owned, (size_t)(w->nowned + 1) * sizeof *w->owned);
    if (!w->owned) abort();
    w->owned[w->nowned++] = p;
    return p;
}

static int b64_field(px_buf *b, const char *name, const px_buf *data, const char *data_url)
{
    size_t el = px_b64_encoded_len(data->len);
    int rc = px_buf_printf(b, "\"%s\":\"%s", name, data_url ? data_url : "");
    if (!rc) rc = px_buf_reserve(b, el + 4);
    if (rc) return rc;
    b->len += px_b64_encode(data->data, data->len, (char *)b->data + b->len);
    return px_buf_puts(b, "\"");
}

static int read_file(const char *path, px_buf *b, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return px_errf(err, errlen, PX_EIO, "cannot open body file %s", path);
    uint8_t chunk[65536];
    size_t k;
    int rc = 0;
    while (!rc && (k = fread(chunk, 1, sizeof chunk, f)) > 0) rc = px_buf_append(b, chunk, k);
    fclose(f);
    return rc ? px_errf(err, errlen, rc, "body file %s is too large", path) : 0;
}

static int gen_nprompts(const pb_profile_opts *o)
{
    return o->prompts && o->nprompts > 0 ? o->nprompts : 1;
}

/* Request i of a text-to-image workload: prompt i mod nprompts, and with
 * lora_mix LoRA i / nprompts (every prompt with every LoRA). */
static const char *gen_prompt(const pb_profile_opts *o, int i)
{
    if (o->prompts && o->nprompts > 0) return o->prompts[i % o->nprompts];
    return o->prompt ? o->prompt : PB_SEED_PROMPT;
}

int pb_profile_add_lora(pb_profile_opts *o, const char *arg, char *err, size_t errlen)
{
    if (o->nloras == PB_MAX_LORAS)
        return px_errf(err, errlen, PX_EINVAL, "at most %d --lora", PB_MAX_LORAS);
    const char *colon = strrchr(arg, ':');
    double scale = 1.0;
    if (colon) {
        char *end;
        scale = strtod(colon + 1, &end);
        if (end == colon + 1 || *end || !isfinite(scale))
            return px_errf(err, errlen, PX_EINVAL, "'%s': the scale after ':' is not a number",
                           arg);
    }
    size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
    if (n == 0 || n >= sizeof o->loras[0].name)
        return px_errf(err, errlen, PX_EINVAL, "'%s': the name must be 1 to %zu characters",
                       arg, sizeof o->loras[0].name - 1);
    memcpy(o->loras[o->nloras].name, arg, n);
    o->loras[o->nloras].name[n] = 0;
    o->loras[o->nloras++].scale = scale;
    return 0;
}

/* ,"loras":[...] of request i (nothing without --lora). */
static int put_loras(const pb_profile_opts *o, int i, px_buf *b)
{
    if (!o->nloras) return 0;
    int first = 0, n = o->nloras;
    if (o->lora_mix) first = (i / gen_nprompts(o)) % o->nloras, n = 1;
    int rc = px_buf_puts(b, ",\"loras\":[");
    for (int k = first; !rc && k < first + n; k++) {
        rc = px_buf_puts(b, k > first ? ",{\"name\":" : "{\"name\":");
        if (!rc) rc = px_json_str(b, o->loras[k].name);
        if (!rc) rc = px_buf_puts(b, ",\"scale\":");
        if (!rc) rc = px_json_num(b, o->loras[k].scale);
        if (!rc) rc = px_buf_puts(b, "}");
    }
    return rc ? rc : px_buf_puts(b, "]");
}

static int body_for(const pb_profile_opts *o, const pb_payload *p, int i, px_buf *b, char *err,
                    size_t errlen)
{
    int rc = 0;
    const char *mime = px_format_mime(p ? p->fmt : PX_FMT_PNG);
    char url[64];
    switch (o->kind) {
    case PB_PROF_PIXSERVE:
        rc = px_buf_puts(b, "{");
        if (!rc) rc = b64_field(b, "image", &p->image, NULL);
        if (!rc) rc = px_buf_puts(b, ",");
        if (!rc) rc = b64_field(b, "mask", &p->mask, NULL);
        if (!rc) rc = px_buf_printf(b, ",\"seed\":%d", i);
        if (!rc && o->engine) {
            rc = px_buf_puts(b, ",\"engine\":");
            if (!rc) rc = px_json_str(b, o->engine);
        }
        if (!rc) rc = px_buf_puts(b, "}");
        break;
    case PB_PROF_SEED:
        rc = px_buf_puts(b, "{");
        if (!rc) rc = b64_field(b, "image", &p->image, NULL);
        if (!rc) rc = px_buf_puts(b, ",");
        if (!rc) rc = b64_field(b, "mask", &p->mask, NULL);
        if (!rc) rc = px_buf_puts(b, ",\"return_type\":");
        if (!rc) rc = px_json_str(b, o->return_type ? o->return_type : "image_url");
        if (!rc) rc = px_buf_puts(b, "}");
        break;
    case PB_PROF_IOPAINT:
        /* IOPaint's InpaintRequest: data URLs and its option fields (which
         * servers that do not know them ignore) */
        snprintf(url, sizeof url, "data:%s;base64,", mime);
        rc = px_buf_puts(b, "{");
        if (!rc) rc = b64_field(b, "image", &p->image, url);
        if (!rc) rc = px_buf_puts(b, ",");
        if (!rc) rc = b64_field(b, "mask", &p->mask, "data:image/png;base64,");
        if (!rc)
            rc = px_buf_printf(
                b, ",\"ldm_steps\":20,\"ldm_sampler\":\"plms\",\"hd_strategy\":\"Crop\","
                   "\"hd_strategy_crop_trigger_size\":800,\"hd_strategy_crop_margin\":128,"
                   "\"hd_strategy_resize_limit\":1280,\"prompt\":\"\",\"negative_prompt\":\"\","
                   "\"use_croper\":false,\"sd_seed\":%d,\"sd_steps\":50,"
                   "\"sd_guidance_scale\":7.5,\"sd_sampler\":\"uni_pc\",\"enable_controlnet\":false}",
                i);
        break;
    case PB_PROF_OPENAI:
        rc = px_buf_puts(b, "{\"prompt\":");
        if (!rc) rc = px_json_str(b, gen_prompt(o, i));
        if (!rc) rc = px_buf_puts(b, ",\"negative_prompt\":");
        if (!rc) rc = px_json_str(b, o->negative_prompt ? o->negative_prompt : PB_SEED_NEGATIVE);
        if (!rc)
            rc = px_buf_printf(b, ",\"n\":1,\"size\":\"%dx%d\",\"response_format\":\"b64_json\",\"steps\":%d,"
                                  "\"seed\":%lld,\"cfg_scale\":",
                               o->width ? o->width : 1024, o->height ? o->height : 1024, o->steps ? o->steps : 40,
                               o->gen_seed);
        if (!rc) rc = px_json_num(b, o->cfg_set ? o->cfg_scale : 7.5);
        if (!rc) rc = put_loras(o, i, b);
        if (!rc) rc = px_buf_puts(b, "}");
        break;
    case PB_PROF_GENERATE:
        rc = px_buf_puts(b, "{\"prompt\":");
        if (!rc) rc = px_json_str(b, gen_prompt(o, i));
        if (!rc) rc = px_buf_puts(b, ",\"negative_prompt\":");
        if (!rc) rc = px_json_str(b, o->negative_prompt ? o->negative_prompt : PB_SEED_NEGATIVE);
        if (!rc)
            rc = px_buf_printf(b, ",\"width\":%d,\"height\":%d,\"num_inference_steps\":%d,"
                                  "\"seed\":%lld,\"num_images\":1,\"cfg_scale\":",
                               o->width ? o->width : 1024, o->height ? o->height : 1024,
                               o->steps ? o->steps : 40, o->gen_seed);
        if (!rc) rc = px_json_num(b, o->cfg_set ? o->cfg_scale : 7.5);
        if (!rc) rc = put_loras(o, i, b);
        if (!rc) rc = px_buf_puts(b, "}");
        break;
    case PB_PROF_RAW:
        if (o->body_file) rc = read_file(o->body_file, b, err, errlen);
        break;
    }
    if (rc && !err[0]) px_errf(err, errlen, rc, "cannot build the request body");
    return rc;
}

int pb_workload_build(const pb_profile_opts *o, const pb_payload *payloads, int npayloads,
                      pb_workload *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen) err[0] = 0;
    int images = o->kind == PB_PROF_PIXSERVE || o->kind == PB_PROF_SEED || o->kind == PB_PROF_IOPAINT;
    if (images && npayloads < 1)
        return px_errf(err, errlen, PX_EINVAL, "profile %s needs images", pb_profile_name(o->kind));
    int n = images ? npayloads : PB_PROF_IS_GEN(o->kind) ? gen_nprompts(o) : 1;
    if (PB_PROF_IS_GEN(o->kind) && o->lora_mix && o->nloras > 1) n *= o->nloras;
    out->reqs = px_xcalloc((size_t)n, sizeof *out->reqs);
    out->nreqs = n;
    check_ctx *cc = px_xcalloc(1, sizeof *cc);
    cc->kind = o->kind;
    cc->level = o->check;
    out->check_ctx = cc;
    out->check = check;
    /* keep bodies only when the check reads them */
    if (o->check != PB_CHECK_NONE && o->kind != PB_PROF_RAW) out->body_max = (size_t)256 << 20;
    const char *path = o->path ? o->path : pb_profile_path(o->kind);
    for (int i = 0; i < n; i++) {
        const pb_payload *p = images ? &payloads[i] : NULL;
        px_buf body, head;
        px_buf_init(&body, (size_t)1 << 31);
        px_buf_init(&head, 1 << 16);
        int rc = body_for(o, p, i, &body, err, errlen);
        const char *method = o->method ? o->method : (o->kind == PB_PROF_RAW && !o->body_file ? "GET" : "POST");
        int has_body = body.len > 0 || strcmp(method, "GET") != 0;
        if (!rc) rc = px_buf_printf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pixbench/" PB_VERSION "\r\nAccept: */*\r\n",
                                    method, path, o->host_header ? o->host_header : "localhost");
        int has_ct = 0;
        for (int k = 0; !rc && k < o->nheaders; k++) {
            if (!strncasecmp(o->headers[k], "content-type:", 13)) has_ct = 1;
            rc = px_buf_printf(&head, "%s\r\n", o->headers[k]);
        }
        if (!rc && has_body && !has_ct && o->kind != PB_PROF_RAW)
            rc = px_buf_puts(&head, "Content-Type: application/json\r\n");
        if (!rc && has_body) rc = px_buf_printf(&head, "Content-Length: %zu\r\n", body.len);
        if (!rc) rc = px_buf_puts(&head, "\r\n");
        if (rc) {
            if (!err[0]) px_errf(err, errlen, rc, "cannot build the request");
            px_buf_free(&body);
            px_buf_free(&head);
            pb_workload_free(out);
            return rc;
        }
        pb_request *r = &out->reqs[i];
        r->head_len = head.len;
        r->body_len = body.len;
        r->head = keep(out, &head);
        r->body = keep(out, &body);
        r->is_head = !strcmp(method, "HEAD");
        if (p) {
            r->expect_w = p->w;
            r->expect_h = p->h;
        }
    }
    return 0;
}

void pb_workload_free(pb_workload *w)
{
    for (int i = 0; i < w->nowned; i++) free(w->owned[i]);
    free(w->owned);
    free(w->reqs);
    free(w->check_ctx);
    memset(w, 0, sizeof *w);
}
