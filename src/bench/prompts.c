/*
 * prompts.c — prompt sets from text or JSON files (see prompts.h). The file
 * is the user's but may be anything: sizes and counts are capped and JSON
 * goes through the bounded parser.
 */
#include "bench/prompts.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/jsonr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cat_index(pb_prompts *s, const char *name, size_t len, char *err, size_t errlen)
{
    if (len == 0) return px_errf(err, errlen, PX_EINVAL, "a category name is empty");
    if (len > 64) return px_errf(err, errlen, PX_EINVAL, "a category name is over 64 characters");
    for (int i = 0; i < s->ncats; i++)
        if (strlen(s->cats[i]) == len && !memcmp(s->cats[i], name, len)) return i;
    if (s->ncats == PB_PROMPTS_MAX_CATS)
        return px_errf(err, errlen, PX_ETOOBIG, "more than %d categories", PB_PROMPTS_MAX_CATS);
    char *c = px_xmalloc(len + 1);
    memcpy(c, name, len);
    c[len] = 0;
    s->cats[s->ncats] = c;
    return s->ncats++;
}

/* Adds one prompt (len bytes of text, trimmed here) under category cat. */
static int add(pb_prompts *s, const char *text, size_t len, int cat, char *err, size_t errlen)
{
    while (len && (*text == ' ' || *text == '\t')) text++, len--;
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\r')) len--;
    if (len == 0) return px_errf(err, errlen, PX_EINVAL, "prompt %d is empty", s->n + 1);
    if (len > PB_PROMPT_MAX_LEN)
        return px_errf(err, errlen, PX_ETOOBIG, "prompt %d is over %d bytes", s->n + 1, PB_PROMPT_MAX_LEN);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 && text[i] != '\t')
            return px_errf(err, errlen, PX_EINVAL, "prompt %d holds a control character", s->n + 1);
    if (s->n == PB_PROMPTS_MAX) return px_errf(err, errlen, PX_ETOOBIG, "more than %d prompts", PB_PROMPTS_MAX);
    if ((s->n & (s->n - 1)) == 0) { /* grow at powers of two */
        pb_prompt *np = realloc(s->p, (size_t)(s->n ? 2 * s->n : 1) * sizeof *s->p);
        if (!np) abort(); /* as px_xmalloc: a few KiB */
        s->p = np;
    }
    char *t = px_xmalloc(len + 1);
    memcpy(t, text, len);
    t[len] = 0;
    s->p[s->n].text = t;
    s->p[s->n].cat = cat;
    s->n++;
    return 0;
}

static int parse_text(const char *d, size_t n, pb_prompts *s, char *err, size_t errlen)
{
    int cat = -1;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && d[e] != '\n') e++;
        const char *line = d + i;
        size_t len = e - i;
        i = e + 1;
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t')) len--;
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t')) k++;
        if (k == len) continue;
        if (line[k] == '#') {
            static const char tag[] = "category:";
            size_t j = k + 1;
            while (j < len && line[j] == ' ') j++;
            if (len - j >= sizeof tag - 1 && !memcmp(line + j, tag, sizeof tag - 1)) {
                j += sizeof tag - 1;
                while (j < len && line[j] == ' ') j++;
                cat = cat_index(s, line + j, len - j, err, errlen);
                if (cat < 0) return cat;
            }
            continue;
        }
        if (cat < 0 && (cat = cat_index(s, "default", 7, err, errlen)) < 0) return cat;
        int rc = add(s, line + k, len - k, cat, err, errlen);
        if (rc) return rc;
    }
    return 0;
}

static int add_json_string(pb_prompts *s, const cJSON *v, int cat, char *err, size_t errlen)
{
    if (!cJSON_IsString(v))
        return px_errf(err, errlen, PX_EINVAL, "prompt %d is not a string", s->n + 1);
    return add(s, v->valuestring, strlen(v->valuestring), cat, err, errlen);
}

static int parse_json_array(const cJSON *a, pb_prompts *s, int cat, int objects_ok, char *err, size_t errlen)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, a) {
        int rc;
        if (cJSON_IsObject(v) && objects_ok) {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, "prompt");
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "category");
            int k = cat;
            if (c && !cJSON_IsString(c))
                return px_errf(err, errlen, PX_EINVAL, "prompt %d: category is not a string", s->n + 1);
            if (c) k = cat_index(s, c->valuestring, strlen(c->valuestring), err, errlen);
            else if (k < 0) k = cat_index(s, "default", 7, err, errlen);
            if (k < 0) return k;
            if (!p) return px_errf(err, errlen, PX_EINVAL, "entry %d has no \"prompt\"", s->n + 1);
            rc = add_json_string(s, p, k, err, errlen);
        } else {
            int k = cat >= 0 ? cat : cat_index(s, "default", 7, err, errlen);
            if (k < 0) return k;
            rc = add_json_string(s, v, k, err, errlen);
        }
        if (rc) return rc;
    }
    return 0;
}

static int parse_json(const char *d, size_t n, pb_prompts *s, char *err, size_t errlen)
{
    char e2[160];
    cJSON *j = px_json_parse(d, n, 8, 3 * PB_PROMPTS_MAX + 16, "the prompts file", NULL, e2, sizeof e2);
    if (!j) return px_errf(err, errlen, PX_ECORRUPT, "%s", e2);
    int rc = 0;
    if (cJSON_IsArray(j)) {
        rc = parse_json_array(j, s, -1, 1, err, errlen);
    } else if (cJSON_IsObject(j)) {
        const cJSON *c;
        cJSON_ArrayForEach(c, j) {
            if (!cJSON_IsArray(c)) {
                rc = px_errf(err, errlen, PX_EINVAL, "category \"%.64s\" is not a list of prompts", c->string);
                break;
            }
            int k = cat_index(s, c->string, strlen(c->string), err, errlen);
            if (k < 0 || (rc = parse_json_array(c, s, k, 0, err, errlen))) {
                if (k < 0) rc = k;
                break;
            }
        }
    } else {
        rc = px_errf(err, errlen, PX_EINVAL, "the prompts file is JSON but neither a list nor an object");
    }
    cJSON_Delete(j);
    return rc;
}

int pb_prompts_parse(const char *data, size_t n, pb_prompts *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (n > PB_PROMPTS_MAX_FILE)
        return px_errf(err, errlen, PX_ETOOBIG, "the prompts file is over %u bytes", PB_PROMPTS_MAX_FILE);
    if (memchr(data, 0, n)) return px_errf(err, errlen, PX_EINVAL, "the prompts file holds a NUL byte");
    size_t i = 0;
    if (n >= 3 && !memcmp(data, "\xef\xbb\xbf", 3)) i = 3; /* a UTF-8 byte order mark */
    size_t k = i;
    while (k < n && (data[k] == ' ' || data[k] == '\t' || data[k] == '\r' || data[k] == '\n')) k++;
    int json = k < n && (data[k] == '[' || data[k] == '{');
    int rc = json ? parse_json(data + i, n - i, out, err, errlen) : parse_text(data + i, n - i, out, err, errlen);
    if (!rc && out->n == 0) rc = px_errf(err, errlen, PX_EINVAL, "the prompts file has no prompt");
    if (rc) pb_prompts_free(out);
    return rc;
}

int pb_prompts_load(const char *path, pb_prompts *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return px_errf(err, errlen, PX_EIO, "cannot open %s", path);
    char *buf = px_xmalloc(PB_PROMPTS_MAX_FILE + 1);
    size_t n = fread(buf, 1, PB_PROMPTS_MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc = bad ? px_errf(err, errlen, PX_EIO, "cannot read %s", path)
                 : pb_prompts_parse(buf, n, out, err, errlen);
    free(buf);
    return rc;
}

void pb_prompts_default(pb_prompts *out)
{
    memset(out, 0, sizeof *out);
    out->cats[0] = px_xstrdup("seed");
    out->ncats = 1;
    out->p = px_xcalloc(1, sizeof *out->p);
    out->p[0].text = px_xstrdup(PB_SEED_PROMPT);
    out->n = 1;
}

void pb_prompts_free(pb_prompts *s)
{
    for (int i = 0; i < s->n; i++) free(s->p[i].text);
    free(s->p);
    for (int i = 0; i < s->ncats; i++) free(s->cats[i]);
    memset(s, 0, sizeof *s);
}
