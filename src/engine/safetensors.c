/*
 * safetensors.c — validating reader for safetensors files (see the header
 * for the format and what is checked). The JSON header goes through
 * px_json_parse, which bounds its nesting and value count first: a 100 MB
 * header of "[[[[..." or "1,1,1,..." must be refused, not parsed.
 */
#include "engine/safetensors.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/jsonr.h"
#include "core/mapfile.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

/* A header with one entry per tensor needs about 12 JSON values per tensor;
 * 1M values is 80k tensors, far beyond any model here, and bounds cJSON to
 * some 100 MB of nodes. Legitimate nesting is 3 ({ name: { shape: [ ] } }). */
#define MAX_VALUES (1u << 20)
#define MAX_DEPTH 4

struct px_st {
    void *map;
    size_t map_len;
    int n;
    px_st_tensor *t; /* sorted by name */
    int nmeta;
    struct meta {
        char *key, *value;
    } *meta; /* sorted by key */
};

static const struct {
    const char *name;
    size_t size;
} g_dtypes[] = {
    [PX_ST_BOOL] = {"BOOL", 1}, [PX_ST_U8] = {"U8", 1},     [PX_ST_I8] = {"I8", 1},
    [PX_ST_I16] = {"I16", 2},   [PX_ST_U16] = {"U16", 2},   [PX_ST_F16] = {"F16", 2},
    [PX_ST_BF16] = {"BF16", 2}, [PX_ST_I32] = {"I32", 4},   [PX_ST_U32] = {"U32", 4},
    [PX_ST_F32] = {"F32", 4},   [PX_ST_I64] = {"I64", 8},   [PX_ST_U64] = {"U64", 8},
    [PX_ST_F64] = {"F64", 8},
};
#define N_DTYPES ((int)(sizeof g_dtypes / sizeof g_dtypes[0]))

size_t px_st_dtype_size(px_st_dtype t)
{
    return (int)t >= 0 && (int)t < N_DTYPES ? g_dtypes[t].size : 0;
}

const char *px_st_dtype_name(px_st_dtype t)
{
    return (int)t >= 0 && (int)t < N_DTYPES ? g_dtypes[t].name : "?";
}

/* A JSON number that is a non-negative integer below 2^53 (exact in a double). */
static bool get_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d)) return false;
    *out = (uint64_t)d;
    return true;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const px_st_tensor *)a)->name, ((const px_st_tensor *)b)->name);
}

typedef struct {
    uint64_t begin, end;
    const char *name;
} range;

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(((const struct meta *)a)->key, ((const struct meta *)b)->key);
}

void px_st_close(px_st *st)
{
    if (!st) return;
    for (int i = 0; i < st->n; i++) free((char *)st->t[i].name);
    free(st->t);
    for (int i = 0; i < st->nmeta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->meta);
    px_unmap_file(st->map, st->map_len);
    free(st);
}

/* Parses one tensor entry into t (name already set). */
static int parse_entry(const cJSON *e, const uint8_t *data, uint64_t dlen, px_st_tensor *t,
                       range *r, char *err, size_t errlen)
{
    const char *nm = t->name;
    if (!cJSON_IsObject(e))
        return px_errf(err, errlen, PX_ECORRUPT, "safetensors: entry \"%.80s\" is not an object", nm);
    const cJSON *dt = NULL, *shape = NULL, *off = NULL;
    for (const cJSON *f = e->child; f; f = f->next) {
        const cJSON **slot = !strcmp(f->string, "dtype")          ? &dt
                             : !strcmp(f->string, "shape")        ? &shape
                             : !strcmp(f->string, "data_offsets") ? &off
                                                                  : NULL;
        if (!slot)
            return px_errf(err, errlen, PX_ECORRUPT, "safetensors: \"%.80s\" has unknown field \"%.40s\"",
                           nm, f->string);
        if (*slot)
            return px_errf(err, errlen, PX_ECORRUPT, "safetensors: \"%.80s\" repeats field \"%s\"",
                           nm, f->string);
        *slot = f;
    }
    if (!dt || !shape || !off)
        return px_errf(err, errlen, PX_ECORRUPT,
                       "safetensors: \"%.80s\" lacks %s", nm,
                       !dt ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!cJSON_IsString(dt))
        return px_errf(err, errlen, PX_ECORRUPT, "safetensors: \"%.80s\" dtype is not a string", nm);
    int k = 0;
    while (k < N_DTYPES && strcmp(g_dtypes[k].name, dt->valuestring) != 0) k++;
    if (k == N_DTYPES)
        return px_errf(err, errlen, PX_ECORRUPT, "safetensors: \"%.80s\" has unknown dtype \"%.20s\"",
                       nm, dt->valuestring);
    t->dtype = (px_st_dtype)k;
    if (!cJSON_IsArray(shape))
        return px_errf(err, errlen, PX_ECORRUPT, "safetensors: \"%.80s\" shape is not an array", nm);
    int nd = cJSON_GetArraySize(shape);
    if (nd > PX_ST_MAX_DIMS)
        return px_errf(err, errlen, PX_ECORRUPT, "safetensors: \"%.80s\" has %d dimensions (max %d)",
                       nm, nd, PX_ST_MAX_DIMS);
    t->ndim = nd;
    size_t nelem = 1;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        uint64_t v;
        if (!get_uint(d, &v))
            return px_errf(err, errlen, PX_ECORRUPT,
                           "safetensors: \"%.80s\" shape[%d] is not a non-negative integer", nm, i);
        t->shape[i] = (int64_t)v;
        if (!px_mul_size(nelem, (size_t)v, &nelem))
            return px_errf(err, errlen, PX_ECORRUPT, "safetensors: \"%.80s\" shape overflows", nm);
    }
    t->nelem = nelem;
    if (!px_mul_size(nelem, g_dtypes[k].size, &t->nbytes))
        return px_errf(err, errlen, PX_ECORRUPT, "safetensors: \"%.80s\" byte size overflows", nm);
    uint64_t b, en;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !get_uint(off->child, &b) ||
        !get_uint(off->child->next, &en))
        return px_errf(err, errlen, PX_ECORRUPT,
                       "safetensors: \"%.80s\" data_offsets is not [begin, end]", nm);
    if (b > en || en > dlen)
        return px_errf(err, errlen, PX_ECORRUPT,
                       "safetensors: \"%.80s\" data_offsets [%llu, %llu] outside the %llu data bytes",
                       nm, (unsigned long long)b, (unsigned long long)en, (unsigned long long)dlen);
    if (en - b != t->nbytes)
        return px_errf(err, errlen, PX_ECORRUPT,
                       "safetensors: \"%.80s\" holds %llu bytes but %s%s needs %zu", nm,
                       (unsigned long long)(en - b), g_dtypes[k].name, nd ? " of its shape" : "",
                       t->nbytes);
    t->data = data + b;
    r->begin = b;
    r->end = en;
    r->name = nm;
    return 0;
}

/* Counts the tensors and metadata entries of the header object, checking
 * that there is at most one __metadata__, an object of strings. Returns 0 or
 * PX_ECORRUPT. */
static int count_entries(const cJSON *root, int *n, int *nmeta, char *err, size_t errlen)
{
    bool seen_meta = false;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") != 0) {
            (*n)++;
            continue;
        }
        if (seen_meta)
            return px_errf(err, errlen, PX_ECORRUPT, "safetensors: two __metadata__ entries");
        seen_meta = true;
        if (!cJSON_IsObject(e))
            return px_errf(err, errlen, PX_ECORRUPT, "safetensors: __metadata__ is not an object");
        for (const cJSON *m = e->child; m; m = m->next) {
            if (!cJSON_IsString(m))
                return px_errf(err, errlen, PX_ECORRUPT,
                               "safetensors: metadata \"%.40s\" is not a string", m->string);
            (*nmeta)++;
        }
    }
    return 0;
}

/* Sorts the tensors and the metadata by name for bsearch, refusing a name
 * twice. Returns 0 or PX_ECORRUPT. */
static int sort_unique(px_st *st, char *err, size_t errlen)
{
    qsort(st->t, (size_t)st->n, sizeof *st->t, cmp_name);
    for (int i = 1; i < st->n; i++)
        if (!strcmp(st->t[i - 1].name, st->t[i].name))
            return px_errf(err, errlen, PX_ECORRUPT, "safetensors: tensor \"%.80s\" appears twice",
                           st->t[i].name);
    qsort(st->meta, (size_t)st->nmeta, sizeof *st->meta, cmp_meta);
    for (int i = 1; i < st->nmeta; i++)
        if (!strcmp(st->meta[i - 1].key, st->meta[i].key))
            return px_errf(err, errlen, PX_ECORRUPT,
                           "safetensors: metadata key \"%.40s\" appears twice", st->meta[i].key);
    return 0;
}

/* The data ranges must tile the data section: sorted by offset, each
 * starts where the previous ended and the last ends at the file's end.
 * Returns 0 or PX_ECORRUPT. */
static int check_tiling(range *ranges, int n, uint64_t dlen, char *err, size_t errlen)
{
    qsort(ranges, (size_t)n, sizeof *ranges, cmp_range);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (ranges[i].begin < at)
            return px_errf(err, errlen, PX_ECORRUPT,
                           "safetensors: \"%.80s\" overlaps another tensor's data", ranges[i].name);
        if (ranges[i].begin > at)
            return px_errf(err, errlen, PX_ECORRUPT,
                           "safetensors: %llu unused bytes before \"%.80s\"",
                           (unsigned long long)(ranges[i].begin - at), ranges[i].name);
        at = ranges[i].end;
    }
    if (at != dlen)
        return px_errf(err, errlen, PX_ECORRUPT,
                       "safetensors: %llu bytes after the last tensor's data",
                       (unsigned long long)(dlen - at));
    return 0;
}

int px_st_parse(const uint8_t *buf, size_t len, px_st **out, char *err, size_t errlen)
{
    *out = NULL;
    if (len < 8) return px_errf(err, errlen, PX_ETRUNC, "safetensors: %zu bytes, shorter than the 8-byte header length", len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
    if (hlen > PX_ST_MAX_HEADER)
        return px_errf(err, errlen, PX_ETOOBIG, "safetensors: header of %llu bytes is above the %llu-byte limit",
                       (unsigned long long)hlen, (unsigned long long)PX_ST_MAX_HEADER);
    if (hlen > len - 8)
        return px_errf(err, errlen, PX_ETRUNC, "safetensors: header of %llu bytes but only %zu follow",
                       (unsigned long long)hlen, len - 8);
    const char *hdr = (const char *)buf + 8;
    const uint8_t *data = buf + 8 + hlen;
    uint64_t dlen = len - 8 - hlen;
    if (hlen < 2 || hdr[0] != '{')
        return px_errf(err, errlen, PX_ECORRUPT, "safetensors: header is not a JSON object");
    const char *end = NULL;
    cJSON *root = px_json_parse(hdr, (size_t)hlen, MAX_DEPTH, MAX_VALUES, "safetensors header",
                                &end, err, errlen);
    if (!root) return PX_ECORRUPT;
    int rc;
    px_st *st = NULL;
    range *ranges = NULL;
    rc = PX_ECORRUPT;
    /* Only spaces may follow the object (the format pads the header). */
    for (const char *p = end; p && p < hdr + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            px_errf(err, errlen, PX_ECORRUPT, "safetensors: bytes after the header's JSON object");
            goto fail;
        }
    if (!cJSON_IsObject(root)) {
        px_errf(err, errlen, PX_ECORRUPT, "safetensors: header is not a JSON object");
        goto fail;
    }
    int n = 0, nmeta = 0;
    if (count_entries(root, &n, &nmeta, err, errlen)) goto fail;
    if (!(st = calloc(1, sizeof *st))) goto nomem;
    st->t = calloc(n ? (size_t)n : 1, sizeof *st->t);
    st->meta = calloc(nmeta ? (size_t)nmeta : 1, sizeof *st->meta);
    ranges = calloc(n ? (size_t)n : 1, sizeof *ranges);
    if (!st->t || !st->meta || !ranges) goto nomem;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            for (const cJSON *m = e->child; m; m = m->next) {
                struct meta *mt = &st->meta[st->nmeta++];
                mt->key = strdup(m->string);
                mt->value = strdup(m->valuestring);
                if (!mt->key || !mt->value) goto nomem;
            }
            continue;
        }
        px_st_tensor *t = &st->t[st->n];
        if (!(t->name = strdup(e->string))) goto nomem;
        st->n++;
        if ((rc = parse_entry(e, data, dlen, t, &ranges[st->n - 1], err, errlen))) goto fail;
    }
    if ((rc = sort_unique(st, err, errlen)) ||
        (rc = check_tiling(ranges, st->n, dlen, err, errlen)))
        goto fail;
    free(ranges);
    cJSON_Delete(root);
    *out = st;
    return 0;
nomem:
    rc = px_errf(err, errlen, PX_ENOMEM, "safetensors: out of memory");
fail:
    free(ranges);
    px_st_close(st);
    cJSON_Delete(root);
    return rc;
}

int px_st_open(const char *path, px_st **out, char *err, size_t errlen)
{
    *out = NULL;
    void *map;
    size_t len;
    int rc = px_map_file(path, 8, "safetensors", &map, &len, err, errlen);
    if (rc) return rc;
    char inner[200];
    rc = px_st_parse(map, len, out, inner, sizeof inner);
    if (rc) {
        px_unmap_file(map, len);
        return px_errf(err, errlen, rc, "%s: %s", path, inner);
    }
    (*out)->map = map;
    (*out)->map_len = len;
    return 0;
}

void px_st_release(const px_st *st, const px_st_tensor *t)
{
    if (st->map) px_map_release(t->data, t->nbytes);
}

int px_st_count(const px_st *st)
{
    return st->n;
}

const px_st_tensor *px_st_at(const px_st *st, int i)
{
    return i >= 0 && i < st->n ? &st->t[i] : NULL;
}

const px_st_tensor *px_st_find(const px_st *st, const char *name)
{
    px_st_tensor key = {.name = name};
    return bsearch(&key, st->t, (size_t)st->n, sizeof *st->t, cmp_name);
}

const char *px_st_meta(const px_st *st, const char *key)
{
    for (int lo = 0, hi = st->nmeta - 1; lo <= hi;) {
        int mid = (lo + hi) / 2, c = strcmp(key, st->meta[mid].key);
        if (!c) return st->meta[mid].value;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

float px_st_f16_to_f32(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, bits;
    if (e == 31) bits = s | 0x7f800000u | m << 13; /* inf / nan */
    else if (e) bits = s | (e + 112) << 23 | m << 13;
    else if (!m) bits = s;
    else { /* subnormal: normalise */
        e = 113;
        while (!(m & 1024)) {
            m <<= 1;
            e--;
        }
        bits = s | e << 23 | (m & 1023) << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int px_st_to_f32(const px_st_tensor *t, float *dst)
{
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case PX_ST_F32: memcpy(dst, p, t->nelem * 4); return 0;
    case PX_ST_F64:
        for (size_t i = 0; i < t->nelem; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 0;
    case PX_ST_F16:
        for (size_t i = 0; i < t->nelem; i++)
            dst[i] = px_st_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return 0;
    case PX_ST_BF16: /* a loop of its own: the compiler vectorizes it */
        for (size_t i = 0; i < t->nelem; i++) {
            uint32_t bits = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return 0;
    default: return PX_EUNSUP;
    }
}
