/*
 * zweights.c — the Z-Image weight store (see zweights.h): takes the source
 * tensors that zweights_sources.c reads from a Hugging Face component
 * directory (one safetensors file, or shards with their validated index), a
 * single safetensors file or a GGUF file, maps every source name to the
 * canonical layout (znames.c), and converts data at load time. F32 (and
 * BF16 when kept) that is 64-byte aligned in the mapped file is used in
 * place; everything else is converted into aligned memory, one tensor at a
 * time in small chunks, and the source pages of each converted tensor are
 * dropped right after, so loading a 24 GB checkpoint never holds the file
 * and its converted copy at once.
 */
#include "engine/zimage/zweights.h"
#include "engine/zimage/zweights_impl.h"

#include "core/alloc.h"
#include "core/err.h"
#include "engine/safetensors.h"
#include "engine/zimage/gguf.h"
#include "engine/zimage/znames.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 64
#define CHUNK 4096 /* elements per conversion step; a multiple of every GGUF block */
#define SLAB  ((size_t)CHUNK << 10) /* elements between drops of source pages */

static size_t dtype_size(zi_dtype d)
{
    return d == ZI_BF16 ? 2 : 4;
}

void zi_weights_close(zi_weights *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) free((char *)w->t[i].name);
    for (int i = 0; i < w->n; i++)
        if (w->owned[i]) free((void *)w->t[i].data);
    free(w->t);
    free(w->file);
    free(w->owned);
    for (int i = 0; i < w->nfiles; i++) {
        px_st_close(w->files[i].st);
        zi_gguf_close(w->files[i].gg);
        free(w->files[i].path);
    }
    free(w->path);
    free(w);
}

int zi_weights_count(const zi_weights *w)
{
    return w->n;
}

const zi_tensor *zi_weights_at(const zi_weights *w, int i)
{
    return i >= 0 && i < w->n ? &w->t[i] : NULL;
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp(((const zi_tensor *)a)->name, ((const zi_tensor *)b)->name);
}

const zi_tensor *zi_weights_find(const zi_weights *w, const char *name)
{
    zi_tensor key = {.name = name};
    return bsearch(&key, w->t, (size_t)w->n, sizeof *w->t, cmp_tensor);
}

const char *zi_weights_source(const zi_weights *w, const zi_tensor *t)
{
    if (!t || t < w->t || t >= w->t + w->n) return w->path;
    ptrdiff_t i = t - w->t;
    return w->files[w->file[i]].path;
}

size_t zi_weights_bytes(const zi_weights *w)
{
    return w->bytes;
}

static void fmt_shape(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t at = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && at < len; i++) {
        if (shape[i] < 0)
            at += (size_t)snprintf(buf + at, len - at, "%s*", i ? ", " : "");
        else
            at +=
                (size_t)snprintf(buf + at, len - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (at < len) snprintf(buf + at, len - at, "]");
}

int zi_weights_get(const zi_weights *w, const char *name, int ndim, const int64_t *shape,
                   const zi_tensor **out, char *err, size_t errlen)
{
    *out = NULL;
    const zi_tensor *t = zi_weights_find(w, name);
    if (!t) return px_errf(err, errlen, PX_ENOTFOUND, "%s: tensor %s is missing", w->path, name);
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        if (shape[i] >= 0 && shape[i] != t->shape[i]) ok = false;
    if (!ok) {
        char a[96], b[96];
        fmt_shape(a, sizeof a, ndim, shape);
        fmt_shape(b, sizeof b, t->ndim, t->shape);
        return px_errf(err, errlen, PX_ECORRUPT, "%s: tensor %s: expected %s, found %s",
                       zi_weights_source(w, t), name, a, b);
    }
    *out = t;
    return 0;
}

/* ---- conversion ------------------------------------------------------------ */

static uint16_t f32_to_bf16(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(b >> 16 | 0x40); /* quiet NaN */
    return (uint16_t)((b + 0x7fffu + (b >> 16 & 1)) >> 16);
}

/* Bytes of n elements of s starting at element i (i a multiple of the
 * block size). */
static size_t enc_offset(const src_tensor *s, size_t i)
{
    switch (s->enc) {
    case ENC_F32:
        return i * 4;
    case ENC_BF16:
    case ENC_F16:
        return i * 2;
    case ENC_F64:
        return i * 8;
    case ENC_QUANT:
        return i / zi_gguf_type_block(s->gtype) * zi_gguf_type_size(s->gtype);
    case ENC_BAD:
        break;
    }
    return 0;
}

/* Decodes n elements of s from element i into f. */
static void decode(const src_tensor *s, size_t i, size_t n, float *f)
{
    const uint8_t *p = s->data + enc_offset(s, i);
    if (s->enc == ENC_QUANT) {
        zi_gguf_dequant(s->gtype, p, n, f);
        return;
    }
    px_st_tensor v = {.dtype = s->enc == ENC_F32    ? PX_ST_F32
                               : s->enc == ENC_BF16 ? PX_ST_BF16
                               : s->enc == ENC_F16  ? PX_ST_F16
                                                    : PX_ST_F64,
                      .nelem = n,
                      .data = p};
    px_st_to_f32(&v, f);
}

/* Drops the mapped pages wholly inside elements [e0, e1) of s. */
static void release(const zi_weights *w, const src_tensor *s, size_t e0, size_t e1)
{
    const src_file *f = &w->files[s->file];
    const uint8_t *p = s->data + enc_offset(s, e0);
    size_t nbytes = enc_offset(s, e1) - enc_offset(s, e0);
    if (f->st) {
        px_st_tensor v = {.data = p, .nbytes = nbytes};
        px_st_release(f->st, &v);
    } else if (f->gg) {
        zi_gguf_release(f->gg, p, nbytes);
    }
}

/* Writes s's elements as dtype `to` into dst, dropping the source pages
 * slab by slab behind it: the peak is the store plus one slab, not plus
 * the largest source tensor (a 778 MB embedding table). */
static void convert(const zi_weights *w, const src_tensor *s, zi_dtype to, void *dst)
{
    bool copy = (s->enc == ENC_F32 && to == ZI_F32) || (s->enc == ENC_BF16 && to == ZI_BF16);
    size_t es = dtype_size(to);
    float f[CHUNK];
    for (size_t i0 = 0; i0 < s->nelem; i0 += SLAB) {
        size_t i1 = s->nelem - i0 < SLAB ? s->nelem : i0 + SLAB;
        if (copy) memcpy((uint8_t *)dst + i0 * es, s->data + i0 * es, (i1 - i0) * es);
        for (size_t i = i0; !copy && i < i1; i += CHUNK) {
            size_t n = i1 - i < CHUNK ? i1 - i : CHUNK;
            decode(s, i, n, f);
            if (to == ZI_F32)
                memcpy((float *)dst + i, f, n * 4);
            else
                for (size_t k = 0; k < n; k++) ((uint16_t *)dst)[i + k] = f32_to_bf16(f[k]);
        }
        release(w, s, i0, i1);
    }
    release(w, s, 0, s->nelem); /* the pages straddling slab borders */
}

static zi_dtype target(const loader *L, const src_tensor *s)
{
    if (s->enc == ENC_F32) return ZI_F32;
    if (s->enc == ENC_BF16) return L->keep_bf16 ? ZI_BF16 : ZI_F32;
    return L->to_other;
}

static void *alloc_aligned(size_t bytes)
{
    size_t r = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    return aligned_alloc(ALIGN, r ? r : ALIGN);
}

/* ---- mapping and loading ----------------------------------------------------- */

typedef struct mapped {
    char name[ZI_NAME_MAX];
    int slot; /* -1, or 0..2 of a fused qkv */
    int squeeze;
    int src;
} mapped;

static int cmp_mapped(const void *a, const void *b)
{
    const mapped *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->slot - y->slot;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->t.name, ((const entry *)b)->t.name);
}

/* Maps all source names; refuses unknown ones, listing them. */
static int map_all(loader *L, mapped **out, int *nout, char *err, size_t errlen)
{
    int levels = 0;
    for (int i = 0; i < L->ns; i++) {
        int k = L->part == ZI_PART_VAE ? zi_names_bfl_up_level(L->s[i].name) : -1;
        if (k + 1 > levels) levels = k + 1;
    }
    mapped *m = calloc(L->ns ? (size_t)L->ns : 1, sizeof *m);
    if (!m) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    int n = 0, nunk = 0;
    char list[400];
    size_t at = 0;
    list[0] = 0;
    for (int i = 0; i < L->ns; i++) {
        zi_name_map nm;
        zi_name_kind k = zi_names_map(L->part, L->s[i].name, levels, &nm);
        if (k == ZI_NAME_SKIP) continue;
        if (k == ZI_NAME_UNKNOWN) {
            if (nunk++ < 8 && at < sizeof list)
                at += (size_t)snprintf(list + at, sizeof list - at, "%s%.100s",
                                       nunk > 1 ? ", " : "", L->s[i].name);
            continue;
        }
        memcpy(m[n].name, nm.name, sizeof nm.name);
        m[n].slot = nm.qkv_slot;
        m[n].squeeze = nm.squeeze;
        m[n].src = i;
        n++;
    }
    if (nunk) {
        free(m);
        return px_errf(err, errlen, PX_EUNSUP, "%s: %d tensor%s unknown to the Z-Image %s: %s%s",
                       L->w->path, nunk, nunk > 1 ? "s" : "", zi_names_part(L->part), list,
                       nunk > 8 ? ", ..." : "");
    }
    qsort(m, (size_t)n, sizeof *m, cmp_mapped);
    *out = m;
    *nout = n;
    return 0;
}

const char *zw_src_path(const loader *L, const src_tensor *s)
{
    return L->w->files[s->file].path;
}

/* Loads one canonical tensor from parts[0..np) (np 3 for a fused qkv). */
static int load_one(loader *L, const mapped *m, int np, char *err, size_t errlen)
{
    const src_tensor *s0 = &L->s[m[0].src];
    for (int i = 0; i < np; i++) {
        const src_tensor *s = &L->s[m[i].src];
        if (s->enc == ENC_BAD && s->ndim > ZI_MAX_DIMS)
            return px_errf(err, errlen, PX_EUNSUP, "%s: tensor %s has %d dimensions (at most %d)",
                           zw_src_path(L, s), s->name, s->ndim, ZI_MAX_DIMS);
        if (s->enc == ENC_BAD)
            return px_errf(err, errlen, PX_EUNSUP,
                           "%s: tensor %s has type %s, which is not loaded (F32, F16, BF16, F64, "
                           "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K are)",
                           zw_src_path(L, s), s->name, s->type);
        if (np > 1 && (s->ndim != 2 || s->shape[0] != s0->shape[0] || s->shape[1] != s0->shape[1]))
            return px_errf(err, errlen, PX_ECORRUPT,
                           "%s: tensor %s: expected a 2-D [%lld, %lld] like %s, found %d-D",
                           zw_src_path(L, s), s->name, (long long)s0->shape[0],
                           (long long)(s0->ndim > 1 ? s0->shape[1] : 0), s0->name, s->ndim);
    }
    entry *e = &L->e[L->ne];
    memset(e, 0, sizeof *e);
    e->file = s0->file;
    e->t.dtype = target(L, s0);
    e->t.ndim = s0->ndim;
    memcpy(e->t.shape, s0->shape, sizeof e->t.shape);
    e->t.nelem = s0->nelem * (size_t)np;
    e->t.shape[0] *= np;
    if (m[0].squeeze && e->t.ndim == 4 && e->t.shape[2] == 1 && e->t.shape[3] == 1) e->t.ndim = 2;
    if (!(e->t.name = strdup(m[0].name))) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    L->ne++;
    if (np == 1 &&
        ((s0->enc == ENC_F32 && e->t.dtype == ZI_F32) ||
         (s0->enc == ENC_BF16 && e->t.dtype == ZI_BF16)) &&
        (uintptr_t)s0->data % ALIGN == 0) {
        e->t.data = s0->data;
        L->w->files[s0->file].in_place = true;
    } else {
        size_t bytes;
        if (!px_mul_size(e->t.nelem, dtype_size(e->t.dtype), &bytes))
            return px_errf(err, errlen, PX_ENOMEM, "%s: tensor %s is too large", zw_src_path(L, s0),
                           m[0].name);
        uint8_t *d = alloc_aligned(bytes);
        if (!d)
            return px_errf(err, errlen, PX_ENOMEM, "%s: out of memory for tensor %s (%zu bytes)",
                           zw_src_path(L, s0), m[0].name, bytes);
        e->t.data = d;
        e->owned = true;
        for (int i = 0; i < np; i++) {
            const src_tensor *s = &L->s[m[i].src];
            convert(L->w, s, e->t.dtype, d + (size_t)i * s->nelem * dtype_size(e->t.dtype));
        }
    }
    L->w->bytes += e->t.nelem * dtype_size(e->t.dtype);
    return 0;
}

/* Maps, checks and loads every source tensor into the store. */
static int load_all(loader *L, char *err, size_t errlen)
{
    mapped *m = NULL;
    int n = 0;
    int rc = map_all(L, &m, &n, err, errlen);
    if (rc) return rc;
    L->e = calloc(n ? (size_t)n : 1, sizeof *L->e);
    if (!L->e) {
        free(m);
        return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n && !rc;) {
        int j = i + 1;
        while (j < n && !strcmp(m[j].name, m[i].name)) j++;
        const src_tensor *a = &L->s[m[i].src];
        if (m[i].slot < 0 && j > i + 1) {
            const src_tensor *b = &L->s[m[i + 1].src];
            rc = px_errf(err, errlen, PX_ECORRUPT,
                         "%s: tensor %s appears twice (as %s in %s and %s in %s)", L->w->path,
                         m[i].name, a->name, zw_src_path(L, a), b->name, zw_src_path(L, b));
        } else if (m[i].slot >= 0 &&
                   (j - i != 3 || m[i].slot != 0 || m[i + 1].slot != 1 || m[i + 2].slot != 2)) {
            static const char *const qkv[] = {"to_q", "to_k", "to_v"};
            int have[3] = {0, 0, 0};
            for (int k = i; k < j; k++) have[m[k].slot]++;
            int bad = !have[0]      ? 0
                      : !have[1]    ? 1
                      : !have[2]    ? 2
                      : have[0] > 1 ? 0
                      : have[1] > 1 ? 1
                                    : 2;
            rc = px_errf(err, errlen, PX_ECORRUPT, "%s: tensor %s: the attention's %s weight is %s",
                         zw_src_path(L, a), m[i].name, qkv[bad],
                         have[bad] ? "there twice" : "missing");
        } else {
            rc = load_one(L, &m[i], j - i, err, errlen);
        }
        i = j;
    }
    free(m);
    return rc;
}

/* Moves the loaded entries into the store, sorted, and unmaps the files no
 * tensor points into. */
static int finish(loader *L, char *err, size_t errlen)
{
    zi_weights *w = L->w;
    qsort(L->e, (size_t)L->ne, sizeof *L->e, cmp_entry);
    size_t n = L->ne ? (size_t)L->ne : 1;
    w->t = calloc(n, sizeof *w->t);
    w->file = calloc(n, sizeof *w->file);
    w->owned = calloc(n, sizeof *w->owned);
    if (!w->t || !w->file || !w->owned) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    for (int i = 0; i < L->ne; i++) {
        w->t[i] = L->e[i].t;
        w->file[i] = L->e[i].file;
        w->owned[i] = L->e[i].owned;
    }
    w->n = L->ne;
    L->ne = 0;
    for (int i = 0; i < w->nfiles; i++)
        if (!w->files[i].in_place) {
            px_st_close(w->files[i].st);
            zi_gguf_close(w->files[i].gg);
            w->files[i].st = NULL;
            w->files[i].gg = NULL;
        }
    return 0;
}

int zi_weights_open(const char *path, zi_part part, const zi_load_opts *opts, zi_weights **out,
                    char *err, size_t errlen)
{
    *out = NULL;
    loader L = {.part = part,
                .to_other = opts ? opts->convert_to : ZI_F32,
                .keep_bf16 = opts && opts->keep_bf16};
    if ((int)part < ZI_PART_DIT || (int)part > ZI_PART_VAE ||
        (L.to_other != ZI_F32 && L.to_other != ZI_BF16))
        return px_errf(err, errlen, PX_EINVAL, "zi_weights_open: bad part or dtype");
    zi_weights *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    }
    L.w = w;
    int rc = zw_open_sources(&L, path, err, errlen);
    if (!rc) rc = load_all(&L, err, errlen);
    if (!rc) rc = finish(&L, err, errlen);
    for (int i = 0; i < L.ne; i++) {
        free((char *)L.e[i].t.name);
        if (L.e[i].owned) free((void *)L.e[i].t.data);
    }
    free(L.e);
    free(L.s);
    if (rc) {
        zi_weights_close(w);
        return rc;
    }
    *out = w;
    return 0;
}
