/*
 * gguf.c — validating GGUF reader and the dequantizers of the block types
 * (see gguf.h). Block layouts (ggml's, little-endian, fp16 scales):
 *   Q4_0  32 elements: d, 16 bytes of 4-bit q; x = d·(q − 8), low nibbles
 *         are elements 0..15, high nibbles 16..31.
 *   Q8_0  32 elements: d, 32 int8 q; x = d·q.
 *   Q4_K  256 elements in 8 sub-blocks of 32: d, dmin, 12 bytes of packed
 *         6-bit sub-block scales and mins, 128 bytes of 4-bit q; each 64
 *         elements use 32 bytes, low nibbles first; x = d·sc·q − dmin·m.
 *   Q5_K  as Q4_K plus 32 bytes of high bits (bit 2k / 2k+1 of byte l is
 *         the fifth bit of element l / l+32 of the k-th 64-element group).
 *   Q6_K  256 elements: 128 bytes of low 4 bits, 64 bytes of high 2 bits,
 *         16 int8 sub-block scales (16 elements each), d; x = d·sc·(q − 32).
 *   Q4_1, Q5_0, Q5_1, Q2_K, Q3_K: at their decoders below.
 */
#include "engine/zimage/gguf.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/mapfile.h"
#include "engine/safetensors.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF data is read little-endian");

#define MAX_NAME      1024 /* tensor names and keys */
#define MAX_STRING    ((uint64_t)16 << 20)
#define DEFAULT_ALIGN 32

struct zi_gguf {
    void *map;
    size_t map_len;
    const uint8_t *base;
    int version;
    int n, nkv;
    zi_gguf_tensor *t; /* file order */
    int *by_name;      /* indices of t sorted by name */
    zi_gguf_kv *kv;
};

static const struct {
    const char *name;
    size_t block, size;
} g_types[] = {
    [ZI_GGUF_F32] = {"F32", 1, 4},       [ZI_GGUF_F16] = {"F16", 1, 2},
    [ZI_GGUF_Q4_0] = {"Q4_0", 32, 18},   [ZI_GGUF_Q4_1] = {"Q4_1", 32, 20},
    [ZI_GGUF_Q5_0] = {"Q5_0", 32, 22},   [ZI_GGUF_Q5_1] = {"Q5_1", 32, 24},
    [ZI_GGUF_Q8_0] = {"Q8_0", 32, 34},   [ZI_GGUF_Q8_1] = {"Q8_1", 32, 36},
    [ZI_GGUF_Q2_K] = {"Q2_K", 256, 84},  [ZI_GGUF_Q3_K] = {"Q3_K", 256, 110},
    [ZI_GGUF_Q4_K] = {"Q4_K", 256, 144}, [ZI_GGUF_Q5_K] = {"Q5_K", 256, 176},
    [ZI_GGUF_Q6_K] = {"Q6_K", 256, 210}, [ZI_GGUF_Q8_K] = {"Q8_K", 256, 292},
    [ZI_GGUF_I8] = {"I8", 1, 1},         [ZI_GGUF_I16] = {"I16", 1, 2},
    [ZI_GGUF_I32] = {"I32", 1, 4},       [ZI_GGUF_I64] = {"I64", 1, 8},
    [ZI_GGUF_F64] = {"F64", 1, 8},       [ZI_GGUF_BF16] = {"BF16", 1, 2},
};
#define N_TYPES ((int)(sizeof g_types / sizeof g_types[0]))

size_t zi_gguf_type_block(int type)
{
    return type >= 0 && type < N_TYPES ? g_types[type].block : 0;
}

size_t zi_gguf_type_size(int type)
{
    return type >= 0 && type < N_TYPES ? g_types[type].size : 0;
}

const char *zi_gguf_type_name(int type)
{
    static _Thread_local char buf[24];
    if (type >= 0 && type < N_TYPES && g_types[type].name) return g_types[type].name;
    snprintf(buf, sizeof buf, "type %d", type);
    return buf;
}

int zi_gguf_type_supported(int type)
{
    switch (type) {
    case ZI_GGUF_F32:
    case ZI_GGUF_F16:
    case ZI_GGUF_BF16:
    case ZI_GGUF_Q4_0:
    case ZI_GGUF_Q4_1:
    case ZI_GGUF_Q5_0:
    case ZI_GGUF_Q5_1:
    case ZI_GGUF_Q8_0:
    case ZI_GGUF_Q2_K:
    case ZI_GGUF_Q3_K:
    case ZI_GGUF_Q4_K:
    case ZI_GGUF_Q5_K:
    case ZI_GGUF_Q6_K:
        return 1;
    default:
        return 0;
    }
}

/* ---- reading ------------------------------------------------------------------- */

typedef struct rd {
    const uint8_t *p;
    size_t len, at;
    char *err;
    size_t errlen;
} rd;

static int truncated(rd *r, const char *what)
{
    return px_errf(r->err, r->errlen, PX_ETRUNC, "gguf: file ends inside %s (at byte %zu of %zu)",
                   what, r->at, r->len);
}

static int get(rd *r, void *dst, size_t n, const char *what)
{
    if (r->len - r->at < n) return truncated(r, what);
    memcpy(dst, r->p + r->at, n);
    r->at += n;
    return 0;
}

static int get_u32(rd *r, uint32_t *v, const char *what)
{
    return get(r, v, 4, what);
}

static int get_u64(rd *r, uint64_t *v, const char *what)
{
    return get(r, v, 8, what);
}

/* A string (u64 length + bytes). With out, a NUL-terminated copy of at most
 * max bytes without NULs; else skipped. */
static int get_str(rd *r, char **out, uint64_t max, const char *what)
{
    uint64_t n;
    int rc = get_u64(r, &n, what);
    if (rc) return rc;
    if (n > max)
        return px_errf(r->err, r->errlen, PX_ECORRUPT, "gguf: %s of %llu bytes (max %llu)", what,
                       (unsigned long long)n, (unsigned long long)max);
    if (r->len - r->at < n) return truncated(r, what);
    if (out) {
        if (memchr(r->p + r->at, 0, (size_t)n))
            return px_errf(r->err, r->errlen, PX_ECORRUPT, "gguf: %s holds a NUL byte", what);
        if (!(*out = malloc((size_t)n + 1)))
            return px_errf(r->err, r->errlen, PX_ENOMEM, "gguf: out of memory");
        memcpy(*out, r->p + r->at, (size_t)n);
        (*out)[n] = 0;
    }
    r->at += (size_t)n;
    return 0;
}

static size_t kv_size(int type)
{
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return type >= 0 && type <= ZI_GGUF_KV_F64 ? sz[type] : 0;
}

/* One scalar value of a kv (not string or array) into kv's fields. */
static int get_scalar(rd *r, int type, zi_gguf_kv *kv)
{
    uint8_t b[8] = {0};
    int rc = get(r, b, kv_size(type), "a key's value");
    if (rc) return rc;
    uint64_t u;
    memcpy(&u, b, 8);
    switch (type) {
    case ZI_GGUF_KV_I8:
        kv->i = (int8_t)b[0];
        break;
    case ZI_GGUF_KV_I16:
        kv->i = (int16_t)u;
        break;
    case ZI_GGUF_KV_I32:
        kv->i = (int32_t)u;
        break;
    case ZI_GGUF_KV_I64:
        kv->i = (int64_t)u;
        break;
    case ZI_GGUF_KV_F32: {
        float f;
        memcpy(&f, b, 4);
        kv->f = f;
        break;
    }
    case ZI_GGUF_KV_F64:
        memcpy(&kv->f, b, 8);
        break;
    case ZI_GGUF_KV_BOOL:
        if (b[0] > 1)
            return px_errf(r->err, r->errlen, PX_ECORRUPT, "gguf: key %.100s: bool value %u",
                           kv->key, b[0]);
        /* fall through */
    default:
        kv->u = u;
        break;
    }
    return 0;
}

static int get_kv(rd *r, zi_gguf_kv *kv)
{
    char *key = NULL;
    uint32_t type;
    int rc = get_str(r, &key, MAX_NAME, "a key");
    if (rc) return rc;
    kv->key = key;
    if ((rc = get_u32(r, &type, "a key's type"))) return rc;
    kv->type = (int)type;
    if (type == ZI_GGUF_KV_STRING)
        return get_str(r, (char **)&kv->str, MAX_STRING, "a string value");
    if (type == ZI_GGUF_KV_ARRAY) {
        uint32_t et;
        uint64_t n;
        if ((rc = get_u32(r, &et, "an array's type")) || (rc = get_u64(r, &n, "an array's length")))
            return rc;
        kv->elem_type = (int)et;
        kv->count = n;
        size_t es = et == ZI_GGUF_KV_STRING ? 8 : kv_size((int)et);
        if (!es)
            return px_errf(r->err, r->errlen, PX_ECORRUPT, "gguf: key %.100s: array of type %u",
                           key, et);
        if (n > (r->len - r->at) / es) return truncated(r, "an array");
        if (et != ZI_GGUF_KV_STRING) {
            r->at += (size_t)n * es;
            return 0;
        }
        for (uint64_t i = 0; i < n; i++)
            if ((rc = get_str(r, NULL, MAX_STRING, "an array's string"))) return rc;
        return 0;
    }
    if (!kv_size((int)type))
        return px_errf(r->err, r->errlen, PX_ECORRUPT, "gguf: key %.100s has unknown type %u", key,
                       type);
    return get_scalar(r, (int)type, kv);
}

static int get_tensor_info(rd *r, zi_gguf_tensor *t)
{
    char *name = NULL;
    uint32_t nd, type;
    int rc = get_str(r, &name, MAX_NAME, "a tensor name");
    if (rc) return rc;
    t->name = name;
    if ((rc = get_u32(r, &nd, "a tensor's dimension count"))) return rc;
    if (nd < 1 || nd > ZI_GGUF_MAX_DIMS)
        return px_errf(r->err, r->errlen, PX_ECORRUPT,
                       "gguf: tensor %.100s has %u dimensions (1 to %d)", name, nd,
                       ZI_GGUF_MAX_DIMS);
    t->ndim = (int)nd;
    size_t nelem = 1;
    for (uint32_t i = 0; i < nd; i++) {
        if ((rc = get_u64(r, &t->ne[i], "a tensor's dimensions"))) return rc;
        if (t->ne[i] > (uint64_t)INT64_MAX || !px_mul_size(nelem, (size_t)t->ne[i], &nelem))
            return px_errf(r->err, r->errlen, PX_ECORRUPT, "gguf: tensor %.100s: size overflows",
                           name);
    }
    t->nelem = nelem;
    if ((rc = get_u32(r, &type, "a tensor's type"))) return rc;
    t->type = (int)type;
    size_t bs = zi_gguf_type_block(t->type);
    if (!bs)
        return px_errf(r->err, r->errlen, PX_EUNSUP, "gguf: tensor %.100s has unknown type %u",
                       name, type);
    if (t->ne[0] % bs)
        return px_errf(
            r->err, r->errlen, PX_ECORRUPT,
            "gguf: tensor %.100s: row of %llu elements is not a multiple of %s's block of %zu",
            name, (unsigned long long)t->ne[0], zi_gguf_type_name(t->type), bs);
    t->nbytes = nelem / bs * zi_gguf_type_size(t->type); /* <= nelem * 4: no overflow */
    uint64_t off;
    if ((rc = get_u64(r, &off, "a tensor's offset"))) return rc;
    t->data = (const uint8_t *)(uintptr_t)off; /* relative until the data section is known */
    return 0;
}

static int cmp_by_offset(const void *a, const void *b, void *ctx)
{
    const zi_gguf_tensor *t = ctx;
    uintptr_t x = (uintptr_t)t[*(const int *)a].data, y = (uintptr_t)t[*(const int *)b].data;
    return x < y ? -1 : x > y;
}

static int cmp_by_name(const void *a, const void *b, void *ctx)
{
    const zi_gguf_tensor *t = ctx;
    return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}

void zi_gguf_close(zi_gguf *g)
{
    if (!g) return;
    for (int i = 0; i < g->n; i++) free((char *)g->t[i].name);
    for (int i = 0; i < g->nkv; i++) {
        free((char *)g->kv[i].key);
        free((char *)g->kv[i].str);
    }
    free(g->t);
    free(g->by_name);
    free(g->kv);
    px_unmap_file(g->map, g->map_len);
    free(g);
}

/* Places the tensors in the data section: offsets aligned, inside the
 * file, not overlapping; names unique. */
static int place(zi_gguf *g, rd *r, uint64_t align)
{
    size_t start = (r->at + (size_t)align - 1) / (size_t)align * (size_t)align;
    if (start < r->at) return px_errf(r->err, r->errlen, PX_ECORRUPT, "gguf: alignment overflows");
    if (g->n && start > r->len) return truncated(r, "the padding before the data");
    size_t dlen = g->n ? r->len - start : 0;
    for (int i = 0; i < g->n; i++) {
        zi_gguf_tensor *t = &g->t[i];
        uint64_t off = (uintptr_t)t->data;
        if (off % align)
            return px_errf(
                r->err, r->errlen, PX_ECORRUPT,
                "gguf: tensor %.100s: offset %llu is not a multiple of the alignment %llu", t->name,
                (unsigned long long)off, (unsigned long long)align);
        if (off > dlen || t->nbytes > dlen - off)
            return px_errf(
                r->err, r->errlen, PX_ETRUNC,
                "gguf: tensor %.100s: %zu bytes at offset %llu, but the data section has %zu",
                t->name, t->nbytes, (unsigned long long)off, dlen);
        g->by_name[i] = i;
    }
    qsort_r(g->by_name, (size_t)g->n, sizeof *g->by_name, cmp_by_offset, g->t);
    for (int i = 1; i < g->n; i++) {
        const zi_gguf_tensor *a = &g->t[g->by_name[i - 1]], *b = &g->t[g->by_name[i]];
        if ((uintptr_t)a->data + a->nbytes > (uintptr_t)b->data)
            return px_errf(r->err, r->errlen, PX_ECORRUPT,
                           "gguf: tensors %.100s and %.100s overlap", a->name, b->name);
    }
    qsort_r(g->by_name, (size_t)g->n, sizeof *g->by_name, cmp_by_name, g->t);
    for (int i = 1; i < g->n; i++)
        if (!strcmp(g->t[g->by_name[i - 1]].name, g->t[g->by_name[i]].name))
            return px_errf(r->err, r->errlen, PX_ECORRUPT, "gguf: tensor %.100s appears twice",
                           g->t[g->by_name[i]].name);
    for (int i = 0; i < g->n; i++) g->t[i].data = g->base + start + (uintptr_t)g->t[i].data;
    return 0;
}

int zi_gguf_parse(const uint8_t *buf, size_t len, zi_gguf **out, char *err, size_t errlen)
{
    *out = NULL;
    rd r = {.p = buf, .len = len, .err = err, .errlen = errlen};
    uint8_t magic[4];
    uint32_t version;
    uint64_t nt, nkv;
    int rc = get(&r, magic, 4, "the magic");
    if (rc) return rc;
    if (memcmp(magic, "GGUF", 4)) return px_errf(err, errlen, PX_ECORRUPT, "gguf: no GGUF magic");
    if ((rc = get_u32(&r, &version, "the version"))) return rc;
    if (version != 2 && version != 3)
        return px_errf(err, errlen, PX_EUNSUP, "gguf: version %u is not supported (2 and 3 are)%s",
                       version, version > 0xffff ? "; a big-endian file?" : "");
    if ((rc = get_u64(&r, &nt, "the tensor count")) || (rc = get_u64(&r, &nkv, "the key count")))
        return rc;
    /* Every kv takes at least 13 bytes and every tensor info 28: larger
     * counts cannot fit, so they cannot make us allocate much. */
    if (nkv > (len - r.at) / 13 || nt > (len - r.at) / 28)
        return px_errf(err, errlen, PX_ETRUNC,
                       "gguf: %llu tensors and %llu keys cannot fit in %zu bytes",
                       (unsigned long long)nt, (unsigned long long)nkv, len);
    zi_gguf *g = calloc(1, sizeof *g);
    if (!g) return px_errf(err, errlen, PX_ENOMEM, "gguf: out of memory");
    g->base = buf;
    g->version = (int)version;
    g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    g->t = calloc(nt ? (size_t)nt : 1, sizeof *g->t);
    g->by_name = calloc(nt ? (size_t)nt : 1, sizeof *g->by_name);
    if (!g->kv || !g->t || !g->by_name) {
        rc = px_errf(err, errlen, PX_ENOMEM, "gguf: out of memory");
        goto fail;
    }
    uint64_t align = DEFAULT_ALIGN;
    for (uint64_t i = 0; i < nkv; i++) {
        zi_gguf_kv *kv = &g->kv[g->nkv++];
        if ((rc = get_kv(&r, kv))) goto fail;
        if (strcmp(kv->key, "general.alignment")) continue;
        rc = PX_ECORRUPT;
        if (kv->type != ZI_GGUF_KV_U32 || !kv->u || (kv->u & (kv->u - 1)) || kv->u > (1u << 16)) {
            px_errf(err, errlen, rc,
                    "gguf: general.alignment is not a power of two up to 65536 (u32)");
            goto fail;
        }
        align = kv->u;
    }
    for (uint64_t i = 0; i < nt; i++)
        if ((rc = get_tensor_info(&r, &g->t[g->n++]))) goto fail;
    if ((rc = place(g, &r, align))) goto fail;
    *out = g;
    return 0;
fail:
    zi_gguf_close(g);
    return rc;
}

int zi_gguf_open(const char *path, zi_gguf **out, char *err, size_t errlen)
{
    *out = NULL;
    void *map;
    size_t len;
    int rc = px_map_file(path, 1, "GGUF", &map, &len, err, errlen);
    if (rc) return rc;
    char inner[256];
    rc = zi_gguf_parse(map, len, out, inner, sizeof inner);
    if (rc) {
        px_unmap_file(map, len);
        return px_errf(err, errlen, rc, "%s: %s", path, inner);
    }
    (*out)->map = map;
    (*out)->map_len = len;
    return 0;
}

int zi_gguf_version(const zi_gguf *g)
{
    return g->version;
}

int zi_gguf_count(const zi_gguf *g)
{
    return g->n;
}

const zi_gguf_tensor *zi_gguf_at(const zi_gguf *g, int i)
{
    return i >= 0 && i < g->n ? &g->t[i] : NULL;
}

const zi_gguf_tensor *zi_gguf_find(const zi_gguf *g, const char *name)
{
    for (int lo = 0, hi = g->n - 1; lo <= hi;) {
        int mid = (lo + hi) / 2, c = strcmp(name, g->t[g->by_name[mid]].name);
        if (!c) return &g->t[g->by_name[mid]];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

int zi_gguf_kv_count(const zi_gguf *g)
{
    return g->nkv;
}

const zi_gguf_kv *zi_gguf_kv_at(const zi_gguf *g, int i)
{
    return i >= 0 && i < g->nkv ? &g->kv[i] : NULL;
}

const zi_gguf_kv *zi_gguf_kv_find(const zi_gguf *g, const char *key)
{
    for (int i = 0; i < g->nkv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

void zi_gguf_release(const zi_gguf *g, const void *data, size_t nbytes)
{
    if (g->map) px_map_release(data, nbytes);
}

/* ---- dequantization --------------------------------------------------------------- */

static float h16(const uint8_t *p)
{
    return px_st_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

static void dq_q4_0(const uint8_t *b, float *y)
{
    float d = h16(b);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((b[2 + j] & 15) - 8);
        y[j + 16] = d * (float)((b[2 + j] >> 4) - 8);
    }
}

/* Q4_1 (d, m, 16 bytes of nibbles), Q5_0 (d, 32 high bits, nibbles) and
 * Q5_1 (d, m, high bits, nibbles): x = d·q + m, or d·(q − 16) for Q5_0;
 * element j < 16 is the low nibble of byte j, element j + 16 the high one,
 * their fifth bits are bits j and j + 16 of the high-bit word. */
static void dq_q4_1_q5(const uint8_t *b, int type, float *y)
{
    float d = h16(b), m = type == ZI_GGUF_Q5_0 ? 0 : h16(b + 2);
    const uint8_t *qh = type == ZI_GGUF_Q5_0 ? b + 2 : b + 4;
    const uint8_t *qs = type == ZI_GGUF_Q4_1 ? b + 4 : qh + 4;
    uint32_t h = type == ZI_GGUF_Q4_1 ? 0
                                      : (uint32_t)qh[0] | (uint32_t)qh[1] << 8 |
                                            (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 15) | (int)(h >> j & 1) << 4;
        int hi = (qs[j] >> 4) | (int)(h >> (j + 16) & 1) << 4;
        if (type == ZI_GGUF_Q5_0) {
            y[j] = d * (float)(lo - 16);
            y[j + 16] = d * (float)(hi - 16);
        } else {
            y[j] = d * (float)lo + m;
            y[j + 16] = d * (float)hi + m;
        }
    }
}

/* Q2_K: 16 scale bytes (low nibble scale, high nibble min, per 16
 * elements), 64 bytes of 2-bit q, d, dmin. Element 128n + 32j + l has its
 * q in bits 2j of byte 32n + l and scale byte 8n + 2j + l/16. */
static void dq_q2_k(const uint8_t *b, float *y)
{
    const uint8_t *sc = b, *qs = b + 16;
    float d = h16(b + 80), dmin = h16(b + 82);
    for (int e = 0; e < 256; e++) {
        int n = e / 128, j = e % 128 / 32, l = e % 32, s = sc[8 * n + 2 * j + l / 16];
        y[e] = d * (float)(s & 15) * (float)(qs[32 * n + l] >> 2 * j & 3) - dmin * (float)(s >> 4);
    }
}

/* The 6-bit scale is of a Q3_K block: low 4 bits in nibbles of bytes 0..7,
 * top 2 bits in bytes 8..11. */
static int q3_scale(const uint8_t *s, int is)
{
    int lo = is < 8 ? s[is] & 15 : s[is - 8] >> 4;
    return (lo | (s[8 + is % 4] >> 2 * (is / 4) & 3) << 4) - 32;
}

/* Q3_K: 32 bytes of high bits, 64 bytes of 2-bit q, 12 bytes of scales, d.
 * Element 128n + 32j + l: low bits 2j of byte 32n + l, high bit 4n + j of
 * hmask byte l (clear = subtract 4), scale 8n + 2j + l/16. */
static void dq_q3_k(const uint8_t *b, float *y)
{
    const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
    float d = h16(b + 108);
    for (int e = 0; e < 256; e++) {
        int n = e / 128, j = e % 128 / 32, l = e % 32;
        int q = (qs[32 * n + l] >> 2 * j & 3) - (hm[l] >> (4 * n + j) & 1 ? 0 : 4);
        y[e] = d * (float)q3_scale(sc, 8 * n + 2 * j + l / 16) * (float)q;
    }
}

static void dq_q8_0(const uint8_t *b, float *y)
{
    float d = h16(b);
    for (int j = 0; j < 32; j++) y[j] = d * (float)(int8_t)b[2 + j];
}

/* The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block: the first
 * four pairs are the low 6 bits of bytes 0..7; the last four take 4 bits
 * from bytes 8..11 and their top 2 bits from the top of bytes 0..7. */
static void k_scale_min(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Q4_K (qh NULL) and Q5_K. */
static void dq_q45_k(const uint8_t *b, const uint8_t *qh, const uint8_t *q, float *y)
{
    float d = h16(b), dmin = h16(b + 2);
    const uint8_t *sc = b + 4;
    for (int g = 0; g < 4; g++, q += 32, y += 64) {
        int s1, m1, s2, m2;
        k_scale_min(sc, 2 * g, &s1, &m1);
        k_scale_min(sc, 2 * g + 1, &s2, &m2);
        float d1 = d * (float)s1, o1 = dmin * (float)m1, d2 = d * (float)s2, o2 = dmin * (float)m2;
        for (int l = 0; l < 32; l++) {
            int lo = q[l] & 15, hi = q[l] >> 4;
            if (qh) {
                lo |= (qh[l] >> (2 * g) & 1) << 4;
                hi |= (qh[l] >> (2 * g + 1) & 1) << 4;
            }
            y[l] = d1 * (float)lo - o1;
            y[l + 32] = d2 * (float)hi - o2;
        }
    }
}

static void dq_q6_k(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = h16(b + 208);
    for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, y += 128)
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 15) | (qh[l] & 3) << 4) - 32;
            int q2 = ((ql[l + 32] & 15) | (qh[l] >> 2 & 3) << 4) - 32;
            int q3 = ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32;
            int q4 = ((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
}

int zi_gguf_dequant(int type, const uint8_t *src, size_t n, float *dst)
{
    if (!zi_gguf_type_supported(type) || n % zi_gguf_type_block(type)) return PX_EUNSUP;
    size_t bs = zi_gguf_type_block(type), sz = zi_gguf_type_size(type);
    if (type == ZI_GGUF_F32 || type == ZI_GGUF_F16 || type == ZI_GGUF_BF16) {
        px_st_tensor v = {.dtype = type == ZI_GGUF_F32   ? PX_ST_F32
                                   : type == ZI_GGUF_F16 ? PX_ST_F16
                                                         : PX_ST_BF16,
                          .nelem = n,
                          .data = src};
        return px_st_to_f32(&v, dst);
    }
    for (size_t i = 0; i < n / bs; i++, src += sz, dst += bs) {
        switch (type) {
        case ZI_GGUF_Q4_0:
            dq_q4_0(src, dst);
            break;
        case ZI_GGUF_Q8_0:
            dq_q8_0(src, dst);
            break;
        case ZI_GGUF_Q4_1:
        case ZI_GGUF_Q5_0:
        case ZI_GGUF_Q5_1:
            dq_q4_1_q5(src, type, dst);
            break;
        case ZI_GGUF_Q2_K:
            dq_q2_k(src, dst);
            break;
        case ZI_GGUF_Q3_K:
            dq_q3_k(src, dst);
            break;
        case ZI_GGUF_Q4_K:
            dq_q45_k(src, NULL, src + 16, dst);
            break;
        case ZI_GGUF_Q5_K:
            dq_q45_k(src, src + 16, src + 48, dst);
            break;
        case ZI_GGUF_Q6_K:
            dq_q6_k(src, dst);
            break;
        default:
            return PX_EUNSUP;
        }
    }
    return 0;
}
