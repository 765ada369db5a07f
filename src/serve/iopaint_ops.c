/*
 * iopaint_ops.c — the IOPaint calls' work on untrusted bytes, without HTTP
 * (see iopaint.h): gen-info's prompt from a PNG text chunk, adjust_mask's
 * JSON and mask operations. Fuzzed by fuzz/fuzz_iopaint.c.
 */
#include "serve/iopaint.h"

#include "core/base64.h"
#include "core/err.h"
#include "core/jsonr.h"
#include "image/codec.h"
#include "image/mask.h"
#include "image/pngtext.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ gen-info */

/* A new string of s[0..n) without surrounding whitespace. */
static char *trimmed(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t')) n--;
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, s, n);
        out[n] = 0;
    }
    return out;
}

/* Where the line starting with `label` begins in text (at the start or after
 * a newline; the last such line when last is set), or NULL. */
static const char *line_with(const char *text, const char *label, int last)
{
    size_t n = strlen(label);
    const char *found = NULL;
    for (const char *p = text; p; p = strchr(p, '\n')) {
        if (*p == '\n') p++;
        if (!strncmp(p, label, n)) {
            found = p;
            if (!last) break;
        }
    }
    return found;
}

int px_iopaint_gen_info(const uint8_t *file, size_t n, char **prompt, char **negative)
{
    char *params = NULL;
    size_t plen = 0;
    *prompt = *negative = NULL;
    if (px_pngtext_find(file, n, "parameters", &params, &plen) != 0) params = NULL;
    const char *text = params ? params : "";
    /* AUTOMATIC1111: the prompt, then "Negative prompt: ..." (which may run
     * over lines), then the settings line "Steps: ...". */
    const char *neg = line_with(text, "Negative prompt:", 0);
    const char *steps = line_with(neg ? neg : text, "Steps:", 1);
    const char *prompt_end = neg ? neg : steps ? steps : text + strlen(text);
    *prompt = trimmed(text, (size_t)(prompt_end - text));
    if (neg) {
        const char *from = neg + strlen("Negative prompt:");
        const char *to = steps && steps > from ? steps : from + strlen(from);
        *negative = trimmed(from, (size_t)(to - from));
    } else {
        *negative = trimmed("", 0);
    }
    free(params);
    if (!*prompt || !*negative) {
        free(*prompt);
        free(*negative);
        *prompt = *negative = NULL;
        return PX_ENOMEM;
    }
    return 0;
}

/* ------------------------------------------------------------ adjust_mask */

enum mask_op { OP_EXPAND, OP_SHRINK, OP_REVERSE };

static int parse_adjust(const uint8_t *body, size_t n, size_t max_bytes, uint8_t **mask,
                        size_t *mask_len, enum mask_op *op, int *kernel, char *err, size_t errlen)
{
    char inner[200];
    cJSON *root =
        px_json_parse((const char *)body, n, 4, 64, "the request body", NULL, inner, sizeof inner);
    if (!root) return px_errf(err, errlen, PX_EINVAL, "%s", inner);
    int rc = 0;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "mask");
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "operate");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "kernel_size");
    if (!cJSON_IsObject(root) || !cJSON_IsString(m)) {
        rc = px_errf(err, errlen, PX_EINVAL, "field 'mask' must be a base64 image");
        goto done;
    }
    if (!cJSON_IsString(o) ||
        (strcmp(o->valuestring, "expand") && strcmp(o->valuestring, "shrink") &&
         strcmp(o->valuestring, "reverse"))) {
        rc = px_errf(err, errlen, PX_EINVAL, "field 'operate' must be expand, shrink or reverse");
        goto done;
    }
    *op = o->valuestring[0] == 'e' ? OP_EXPAND : o->valuestring[0] == 's' ? OP_SHRINK : OP_REVERSE;
    double kv = cJSON_IsNumber(k) ? k->valuedouble : (k && !cJSON_IsNull(k)) ? -1 : 0;
    if (!(kv >= 0 && kv <= 256) || kv != floor(kv)) {
        rc =
            px_errf(err, errlen, PX_EINVAL, "field 'kernel_size' must be an integer from 0 to 256");
        goto done;
    }
    *kernel = (int)kv;
    rc = px_b64_decode(m->valuestring, strlen(m->valuestring), max_bytes, mask, mask_len, inner,
                       sizeof inner);
    if (rc) px_errf(err, errlen, rc, "field 'mask': %s", inner);
done:
    cJSON_Delete(root);
    return rc;
}

/* Turns hole pixels (255) of a binary mask into the brush colour on an RGBA
 * image; keep pixels become transparent. */
static int paint_brush(const px_image *bin, px_image *rgba)
{
    int rc = px_image_alloc(rgba, bin->w, bin->h, 4, NULL, NULL, 0);
    if (rc) return rc;
    size_t npx = (size_t)bin->w * (size_t)bin->h;
    for (size_t i = 0; i < npx; i++) {
        if (!bin->px[i]) continue;
        uint8_t *d = rgba->px + i * 4;
        d[0] = PX_IOPAINT_BRUSH_R, d[1] = PX_IOPAINT_BRUSH_G, d[2] = PX_IOPAINT_BRUSH_B;
        d[3] = PX_IOPAINT_BRUSH_A;
    }
    return 0;
}

static void invert(px_image *bin)
{
    size_t npx = (size_t)bin->w * (size_t)bin->h;
    for (size_t i = 0; i < npx; i++) bin->px[i] = bin->px[i] ? 0 : 255;
}

int px_iopaint_adjust_mask(const uint8_t *body, size_t n, const px_img_limits *lim, px_buf *png,
                           char *err, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    enum mask_op op = OP_EXPAND;
    int kernel = 0;
    px_image raw = {0}, bin = {0}, grown = {0}, rgba = {0};
    int rc = parse_adjust(body, n, n, &data, &len, &op, &kernel, err, errlen);
    if (rc) return rc;
    char inner[200];
    if ((rc = px_decode(data, len, lim, &raw, inner, sizeof inner))) {
        px_errf(err, errlen, rc, "mask: %s", inner);
        goto done;
    }
    if ((rc = px_mask_binarise(&raw, &bin))) goto oom;
    if (op == OP_SHRINK) invert(&bin); /* shrinking the holes grows the rest */
    if (op != OP_REVERSE) {
        if ((rc = px_mask_dilate(&bin, kernel, &grown))) goto oom;
        px_image_free(&bin);
        bin = grown;
        grown = (px_image){0};
    }
    if (op != OP_EXPAND) invert(&bin);
    if ((rc = paint_brush(&bin, &rgba))) goto oom;
    px_encode_opts eo = {.fmt = PX_FMT_PNG, .png_level = 1};
    rc = px_encode(&rgba, &eo, png, err, errlen);
    goto done;
oom:
    px_errf(err, errlen, rc, "out of memory adjusting a %dx%d mask", raw.w, raw.h);
done:
    free(data);
    px_image_free(&raw);
    px_image_free(&bin);
    px_image_free(&grown);
    px_image_free(&rgba);
    return rc;
}
