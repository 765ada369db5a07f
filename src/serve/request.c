/*
 * request.c — parsing inpaint requests (JSON and multipart) into
 * px_inpaint_req. Both body kinds funnel every option through apply_option()
 * so they accept exactly the same names and values.
 */
#include "serve/request.h"

#include "core/base64.h"
#include "core/err.h"
#include "serve/hd.h"
#include "serve/multipart.h"
#include "serve/sched.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void px_req_free(px_inpaint_req *req)
{
    free(req->image);
    free(req->mask);
    memset(req, 0, sizeof *req);
}

void px_req_free_images(px_inpaint_req *req)
{
    free(req->image);
    free(req->mask);
    req->image = req->mask = NULL;
    req->image_len = req->mask_len = 0;
}

static void req_defaults(px_inpaint_req *req, enum px_dialect d)
{
    memset(req, 0, sizeof *req);
    req->out_fmt = PX_FMT_UNKNOWN; /* the input's format */
    req->priority = req->hd_strategy = -1;
    req->hd_crop_trigger = req->hd_crop_margin = req->hd_resize_limit = -1;
    req->ret = d == PX_DIALECT_SEED ? PX_RETURN_BASE64 : PX_RETURN_IMAGE;
}

/*
 * One linear pass over the JSON text that bounds nesting depth and the number
 * of values before cJSON builds its tree: cJSON allocates a node per value, so
 * a 60 MB body of "[1,1,1,...]" would otherwise cost gigabytes.
 */
static int json_prescan(const char *s, size_t n, char *err, size_t errlen)
{
    int depth = 0, tokens = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
            continue;
        }
        switch (c) {
        case '"': in_str = 1; tokens++; break;
        case '{':
        case '[':
            if (++depth > PX_JSON_MAX_DEPTH)
                return px_errf(err, errlen, PX_EINVAL, "JSON nested deeper than %d levels",
                               PX_JSON_MAX_DEPTH);
            tokens++;
            break;
        case '}':
        case ']': depth--; break;
        case ',': tokens++; break;
        default: break;
        }
        if (tokens > PX_JSON_MAX_TOKENS)
            return px_errf(err, errlen, PX_EINVAL, "JSON has more than %d values",
                           PX_JSON_MAX_TOKENS);
    }
    return 0;
}

/* Parses an integer option given as text (multipart) into [lo, hi]. */
static int parse_int_text(const char *key, const char *s, long long lo, long long hi,
                          long long *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return px_errf(err, errlen, PX_EINVAL, "field '%s' must be an integer from %lld to %lld",
                       key, lo, hi);
    *out = v;
    return 0;
}

/*
 * Applies one option. sval is the value as text (NULL if the JSON value was
 * not a string); has_num/nval carry a JSON number. Unknown keys are ignored.
 */
static int apply_option(px_inpaint_req *req, enum px_dialect d, const char *key, const char *sval,
                        int has_num, double nval, char *err, size_t errlen)
{
    long long iv;
    int rc;
#define NEED_STRING()                                                                       \
    if (!sval) return px_errf(err, errlen, PX_EINVAL, "field '%s' must be a string", key)
#define GET_INT(lo, hi)                                                                     \
    do {                                                                                    \
        if (has_num) {                                                                      \
            if (nval != floor(nval) || nval < (double)(lo) || nval > (double)(hi))          \
                return px_errf(err, errlen, PX_EINVAL,                                      \
                               "field '%s' must be an integer from %lld to %lld", key,      \
                               (long long)(lo), (long long)(hi));                           \
            iv = (long long)nval;                                                           \
        } else if (sval) {                                                                  \
            if ((rc = parse_int_text(key, sval, lo, hi, &iv, err, errlen))) return rc;      \
        } else {                                                                            \
            return px_errf(err, errlen, PX_EINVAL, "field '%s' must be an integer", key);   \
        }                                                                                   \
    } while (0)

    if (strcmp(key, "engine") == 0 || strcmp(key, "method") == 0) {
        NEED_STRING();
        char *dst = key[0] == 'e' ? req->engine : req->method;
        size_t len = strlen(sval);
        if (len >= sizeof req->engine)
            return px_errf(err, errlen, PX_EINVAL, "field '%s' is too long", key);
        memcpy(dst, sval, len + 1);
    } else if (strcmp(key, "output_format") == 0) {
        NEED_STRING();
        req->out_fmt = px_format_parse(sval);
        if (req->out_fmt == PX_FMT_UNKNOWN)
            return px_errf(err, errlen, PX_EINVAL,
                           "field 'output_format' must be one of png, jpeg, webp");
    } else if (strcmp(key, "quality") == 0) {
        GET_INT(1, 100);
        req->quality = (int)iv;
    } else if (strcmp(key, "seed") == 0) {
        /* 2^53: the largest integer every JSON client represents exactly. */
        GET_INT(0, 9007199254740992LL);
        req->seed = (uint64_t)iv;
    } else if (strcmp(key, "timeout_ms") == 0) {
        GET_INT(1, 3600000);
        req->timeout_ms = iv;
    } else if (strcmp(key, "priority") == 0) {
        NEED_STRING();
        if ((req->priority = px_priority_parse(sval)) < 0)
            return px_errf(err, errlen, PX_EINVAL, "field 'priority' must be one of high, normal, low");
    } else if (strcmp(key, "hd_strategy") == 0) {
        NEED_STRING();
        if ((req->hd_strategy = px_hd_parse(sval)) < 0)
            return px_errf(err, errlen, PX_EINVAL,
                           "field 'hd_strategy' must be one of Original, Resize, Crop");
    } else if (strcmp(key, "hd_strategy_crop_trigger_size") == 0) {
        GET_INT(1, 1 << 20);
        req->hd_crop_trigger = (int)iv;
    } else if (strcmp(key, "hd_strategy_crop_margin") == 0) {
        GET_INT(0, 1 << 16);
        req->hd_crop_margin = (int)iv;
    } else if (strcmp(key, "hd_strategy_resize_limit") == 0) {
        GET_INT(8, 1 << 20);
        req->hd_resize_limit = (int)iv;
    } else if (d == PX_DIALECT_V1 && strcmp(key, "return") == 0) {
        NEED_STRING();
        if (strcmp(sval, "image") == 0) req->ret = PX_RETURN_IMAGE;
        else if (strcmp(sval, "base64") == 0) req->ret = PX_RETURN_BASE64;
        else if (strcmp(sval, "url") == 0) req->ret = PX_RETURN_URL;
        else return px_errf(err, errlen, PX_EINVAL, "field 'return' must be one of image, base64, url");
    } else if (d == PX_DIALECT_SEED && strcmp(key, "return_type") == 0) {
        NEED_STRING();
        if (strcmp(sval, "image_url") == 0) req->ret = PX_RETURN_URL;
        else if (strcmp(sval, "base64") == 0) req->ret = PX_RETURN_BASE64;
        else return px_errf(err, errlen, PX_EINVAL,
                            "field 'return_type' must be one of image_url, base64");
    }
    return 0;
#undef NEED_STRING
#undef GET_INT
}

static int decode_image_field(const cJSON *root, const char *key, size_t max_image, uint8_t **out,
                              size_t *outlen, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return px_errf(err, errlen, PX_EINVAL, "missing field '%s' (base64-encoded image)", key);
    if (!cJSON_IsString(v))
        return px_errf(err, errlen, PX_EINVAL, "field '%s' must be a base64 string", key);
    char inner[160];
    const char *s = v->valuestring;
    int rc = px_b64_decode(s, strlen(s), max_image, out, outlen, inner, sizeof inner);
    if (rc) return px_errf(err, errlen, rc, "field '%s': %s", key, inner);
    if (*outlen == 0) {
        free(*out);
        *out = NULL;
        return px_errf(err, errlen, PX_EINVAL, "field '%s' is empty", key);
    }
    return 0;
}

int px_req_parse_json(const char *body, size_t n, enum px_dialect d, size_t max_image,
                      px_inpaint_req *req, char *err, size_t errlen)
{
    req_defaults(req, d);
    int rc = json_prescan(body, n, err, errlen);
    if (rc) return rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, n, &end, 0);
    if (!root) {
        size_t off = end && end >= body ? (size_t)(end - body) : 0;
        return px_errf(err, errlen, PX_EINVAL, "malformed JSON near byte %zu", off);
    }
    while (end < body + n && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')) end++;
    if (end < body + n) {
        rc = px_errf(err, errlen, PX_EINVAL, "unexpected data after the JSON value at byte %zu",
                     (size_t)(end - body));
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        rc = px_errf(err, errlen, PX_EINVAL, "request body must be a JSON object");
        goto fail;
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!it->string || !strcmp(it->string, "image") || !strcmp(it->string, "mask")) continue;
        if (cJSON_IsNull(it)) continue; /* clients send null for "use the default" */
        rc = apply_option(req, d, it->string, cJSON_IsString(it) ? it->valuestring : NULL,
                          cJSON_IsNumber(it), it->valuedouble, err, errlen);
        if (rc) goto fail;
    }
    if ((rc = decode_image_field(root, "image", max_image, &req->image, &req->image_len, err,
                                 errlen)))
        goto fail;
    if ((rc = decode_image_field(root, "mask", max_image, &req->mask, &req->mask_len, err,
                                 errlen)))
        goto fail;
    cJSON_Delete(root);
    return 0;
fail:
    cJSON_Delete(root);
    px_req_free(req);
    return rc;
}

/* lama-cleaner's form field names for the options both dialects share. */
static const char *legacy_name(const char *key)
{
    static const char *const map[][2] = {
        {"hdStrategy", "hd_strategy"},
        {"hdStrategyCropMargin", "hd_strategy_crop_margin"},
        {"hdStrategyCropTrigerSize", "hd_strategy_crop_trigger_size"}, /* its spelling */
        {"hdStrategyCropTriggerSize", "hd_strategy_crop_trigger_size"},
        {"hdStrategyResizeLimit", "hd_strategy_resize_limit"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(key, map[i][0])) return map[i][1];
    return key;
}

/* Whether apply_option knows the name (long values of other fields, such as
 * a lama-cleaner client's prompt, are skipped rather than refused). */
static int known_option(const char *key)
{
    static const char *const names[] = {
        "engine", "method", "output_format", "quality", "seed", "timeout_ms", "priority",
        "hd_strategy", "hd_strategy_crop_trigger_size", "hd_strategy_crop_margin",
        "hd_strategy_resize_limit", "return", "return_type"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(key, names[i])) return 1;
    return 0;
}

static int copy_part(const px_part *p, const char *name, uint8_t **out, size_t *outlen,
                     size_t max_image, char *err, size_t errlen)
{
    if (!p) return px_errf(err, errlen, PX_EINVAL, "missing multipart part '%s'", name);
    if (p->len == 0) return px_errf(err, errlen, PX_EINVAL, "multipart part '%s' is empty", name);
    if (p->len > max_image)
        return px_errf(err, errlen, PX_ETOOBIG, "multipart part '%s' exceeds %zu bytes", name,
                       max_image);
    *out = malloc(p->len);
    if (!*out) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    memcpy(*out, p->data, p->len);
    *outlen = p->len;
    return 0;
}

int px_req_parse_multipart(const char *content_type, const uint8_t *body, size_t n,
                           enum px_dialect d, size_t max_image, px_inpaint_req *req, char *err,
                           size_t errlen)
{
    req_defaults(req, d);
    req->ret = PX_RETURN_IMAGE; /* a form's reply is the image (lama-cleaner's too) */
    char boundary[PX_MULTIPART_MAX_BOUNDARY + 1];
    int rc = px_multipart_boundary(content_type, boundary, err, errlen);
    if (rc) return rc;
    enum { MAX_PARTS = 32 };
    px_part parts[MAX_PARTS];
    int np = 0;
    if ((rc = px_multipart_parse(body, n, boundary, parts, MAX_PARTS, &np, err, errlen))) return rc;
    for (int i = 0; i < np; i++) {
        const px_part *p = &parts[i];
        if (!strcmp(p->name, "image") || !strcmp(p->name, "mask") || !p->name[0]) continue;
        const char *key = legacy_name(p->name);
        if (!known_option(key)) continue;
        char val[64];
        if (p->len >= sizeof val)
            return px_errf(err, errlen, PX_EINVAL, "multipart field '%s' is too long", p->name);
        memcpy(val, p->data, p->len);
        val[p->len] = 0;
        if ((rc = apply_option(req, d, key, val, 0, 0, err, errlen))) goto fail;
    }
    if ((rc = copy_part(px_multipart_find(parts, np, "image"), "image", &req->image,
                        &req->image_len, max_image, err, errlen)))
        goto fail;
    if ((rc = copy_part(px_multipart_find(parts, np, "mask"), "mask", &req->mask, &req->mask_len,
                        max_image, err, errlen)))
        goto fail;
    return 0;
fail:
    px_req_free(req);
    return rc;
}
