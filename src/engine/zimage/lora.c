/*
 * lora.c — LoRA files for the Z-Image DiT (lora.h): key spellings mapped
 * onto the model's linears through a table built from the configuration,
 * every key and shape checked before anything is converted (a file that
 * does not fit is refused whole, with the list of what did not match), then
 * the halves copied into one block (BF16 as stored, the rest widened to
 * F32) and indexed by (block, site). The values are copied, not pointed to
 * in the mapping: a file rewritten in place under a live mapping would
 * SIGBUS the server.
 *
 * The table holds each linear under its dotted module path
 * ("layers.3.attention.to_out.0") and under kohya's underscored one
 * ("layers_3_attention_to_out_0"): mapping underscored names back through
 * the model's own paths is what makes "feed_forward" or "adaLN_modulation"
 * unambiguous.
 */
#include "engine/zimage/lora.h"

#include "core/err.h"
#include "engine/safetensors.h"
#include "engine/zimage/znames.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_LISTED 6 /* problems named in a refusal before "and K more" */
#define NLINEARS 10  /* table entries per block (two names for the out projection) */

struct zi_lora {
    zi_lora_spelling spelling;
    int n, nblocks, max_rank;
    unsigned site_mask;
    size_t bytes;
    zi_lora_delta *d;  /* n, sorted by (block, site, row0) */
    int *first, *cnt;  /* [nblocks * ZI_LORA_NSITES] index into d */
    void *data;        /* every A and B, each 64-byte aligned */
};

/* One linear (or row slice) of the model a file may address. */
typedef struct module {
    int block, row0, rows, in;
    zi_lora_site site;
    int modulated;                /* 0: ADA of a context refiner (refused) */
    char path[64];                /* dotted, for messages */
    const px_st_tensor *A, *B, *alpha;
} module;

typedef struct name_ent {
    char name[64];
    int mod; /* index into the modules */
} name_ent;

typedef struct table {
    module *mods;
    int nmods;
    name_ent *names;
    int nnames;
} table;

/* Problems found, the first MAX_LISTED spelled out. */
typedef struct problems {
    char text[1024];
    size_t len;
    int n;
} problems;

static void problem(problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(problems *p, const char *fmt, ...)
{
    if (p->n++ >= MAX_LISTED || p->len >= sizeof p->text - 1) return;
    if (p->n > 1) p->len += (size_t)snprintf(p->text + p->len, sizeof p->text - p->len, "; ");
    if (p->len >= sizeof p->text - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(p->text + p->len, sizeof p->text - p->len, fmt, ap);
    va_end(ap);
    p->len += k > 0 ? (size_t)k : 0;
    if (p->len > sizeof p->text - 1) p->len = sizeof p->text - 1;
}

/* --- the table of the model's linears --------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const name_ent *)a)->name, ((const name_ent *)b)->name);
}

static void table_free(table *t)
{
    free(t->mods), free(t->names);
}

static void add_name(table *t, const char *dotted, int mod)
{
    name_ent *e = &t->names[t->nnames++];
    snprintf(e->name, sizeof e->name, "%s", dotted);
    e->mod = mod;
    e = &t->names[t->nnames++];
    snprintf(e->name, sizeof e->name, "%s", dotted);
    for (char *c = e->name; *c; c++)
        if (*c == '.') *c = '_';
    e->mod = mod;
}

static int table_build(const zi_dit_config *c, table *t)
{
    int D = c->dim, F = c->ffn_hidden, T = c->t_dim;
    int nb = 2 * c->n_refiner_layers + c->n_layers;
    memset(t, 0, sizeof *t);
    t->mods = calloc((size_t)nb * NLINEARS + 1, sizeof *t->mods);
    t->names = calloc((size_t)nb * NLINEARS * 2 + 1, sizeof *t->names);
    if (!t->mods || !t->names) return PX_ENOMEM;
    static const struct {
        const char *name, *alias;
        zi_lora_site site;
        int slot; /* q/k/v row slice, or -1 for all rows */
    } lin[] = {{"attention.to_q", NULL, ZI_LORA_QKV, 0},
               {"attention.to_k", NULL, ZI_LORA_QKV, 1},
               {"attention.to_v", NULL, ZI_LORA_QKV, 2},
               {"attention.qkv", NULL, ZI_LORA_QKV, -1},
               {"attention.to_out.0", "attention.out", ZI_LORA_OUT, -1},
               {"feed_forward.w1", NULL, ZI_LORA_W1, -1},
               {"feed_forward.w2", NULL, ZI_LORA_W2, -1},
               {"feed_forward.w3", NULL, ZI_LORA_W3, -1},
               {"adaLN_modulation.0", NULL, ZI_LORA_ADA, -1}};
    for (int b = 0; b < nb; b++) {
        char pre[40];
        int modulated = zi_names_dit_block(b, c->n_refiner_layers, pre, sizeof pre);
        for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
            module *m = &t->mods[t->nmods];
            m->block = b, m->site = lin[i].site, m->modulated = 1;
            m->in = lin[i].site == ZI_LORA_W2 ? F : lin[i].site == ZI_LORA_ADA ? T : D;
            m->rows = lin[i].site == ZI_LORA_QKV  ? (lin[i].slot < 0 ? 3 * D : D)
                      : lin[i].site == ZI_LORA_W1 || lin[i].site == ZI_LORA_W3 ? F
                      : lin[i].site == ZI_LORA_ADA                             ? 4 * D
                                                                               : D;
            m->row0 = lin[i].slot > 0 ? lin[i].slot * D : 0;
            if (lin[i].site == ZI_LORA_ADA) m->modulated = modulated;
            snprintf(m->path, sizeof m->path, "%s.%s", pre, lin[i].name);
            add_name(t, m->path, t->nmods);
            if (lin[i].alias) {
                char p[64];
                snprintf(p, sizeof p, "%s.%s", pre, lin[i].alias);
                add_name(t, p, t->nmods);
            }
            t->nmods++;
        }
    }
    qsort(t->names, (size_t)t->nnames, sizeof *t->names, cmp_name);
    return 0;
}

static module *table_find(const table *t, const char *path, size_t len)
{
    name_ent key;
    if (len >= sizeof key.name) return NULL;
    memcpy(key.name, path, len);
    key.name[len] = 0;
    const name_ent *e = bsearch(&key, t->names, (size_t)t->nnames, sizeof key, cmp_name);
    return e ? &t->mods[e->mod] : NULL;
}

/* --- keys ---------------------------------------------------------------------------- */

enum { HALF_A, HALF_B, HALF_ALPHA };

static int ends_with(const char *s, size_t n, const char *suf, size_t *stem)
{
    size_t k = strlen(suf);
    if (n <= k || memcmp(s + n - k, suf, k)) return 0;
    *stem = n - k;
    return 1;
}

/* Splits a key into its module path [*p, *p + *plen), half and spelling.
 * Returns 0, or -1 for a key of no spelling read here. */
static int parse_key(const char *s, const char **p, size_t *plen, int *half,
                     zi_lora_spelling *sp)
{
    static const char *const kohya[] = {"lora_unet_", "lora_transformer_", NULL};
    static const struct {
        const char *pre;
        zi_lora_spelling sp;
    } dotted[] = {{"diffusion_model.", ZI_LORA_COMFY}, {"transformer.", ZI_LORA_PEFT}};
    static const struct {
        const char *suf;
        int half;
    } sufs[] = {{".lora_A.weight", HALF_A},    {".lora_B.weight", HALF_B},
                {".lora_down.weight", HALF_A}, {".lora_up.weight", HALF_B},
                {".alpha", HALF_ALPHA}};
    *sp = ZI_LORA_PEFT;
    for (int i = 0; kohya[i]; i++)
        if (!strncmp(s, kohya[i], strlen(kohya[i]))) {
            s += strlen(kohya[i]);
            *sp = ZI_LORA_KOHYA;
            break;
        }
    for (size_t i = 0; *sp != ZI_LORA_KOHYA && i < sizeof dotted / sizeof dotted[0]; i++)
        if (!strncmp(s, dotted[i].pre, strlen(dotted[i].pre))) {
            s += strlen(dotted[i].pre);
            *sp = dotted[i].sp;
            break;
        }
    size_t n = strlen(s);
    for (size_t i = 0; i < sizeof sufs / sizeof sufs[0]; i++) {
        int lora_ab = sufs[i].suf[6] == 'A' || sufs[i].suf[6] == 'B';
        if (*sp == ZI_LORA_KOHYA && lora_ab) continue; /* kohya says down/up */
        if (ends_with(s, n, sufs[i].suf, plen)) {
            *p = s;
            *half = sufs[i].half;
            return 0;
        }
    }
    return -1;
}

static const char *half_name(int h, zi_lora_spelling sp)
{
    if (sp == ZI_LORA_KOHYA) return h == HALF_A ? "lora_down" : h == HALF_B ? "lora_up" : "alpha";
    return h == HALF_A ? "lora_A" : h == HALF_B ? "lora_B" : "alpha";
}

/* Assigns every tensor of st to its module; problems for the rest. */
static void assign(const px_st *st, const table *t, problems *pr, zi_lora_spelling *spelling)
{
    int known = 0;
    for (int i = 0; i < px_st_count(st); i++) {
        const px_st_tensor *x = px_st_at(st, i);
        const char *p;
        size_t plen;
        int half;
        zi_lora_spelling sp;
        module *m = NULL;
        if (parse_key(x->name, &p, &plen, &half, &sp) || !(m = table_find(t, p, plen))) {
            problem(pr, "unknown key %s", x->name);
            continue;
        }
        if (!known++) *spelling = sp; /* the first key's (names sort) */
        if (!m->modulated) {
            problem(pr, "%s: %s has no adaLN modulation", x->name, m->path);
            continue;
        }
        const px_st_tensor **slot = half == HALF_A ? &m->A : half == HALF_B ? &m->B : &m->alpha;
        if (*slot)
            problem(pr, "%s and %s are the same %s of %s", (*slot)->name, x->name,
                    half_name(half, sp), m->path);
        else
            *slot = x;
    }
}

static void shape_str(const px_st_tensor *x, char *buf, size_t n)
{
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < x->ndim && at < n; i++)
        at += (size_t)snprintf(buf + at, n - at, "%s%lld", i ? ", " : "", (long long)x->shape[i]);
    if (at < n) snprintf(buf + at, n - at, "]");
}

/* Checks one module's halves; its rank, or 0 after a problem. */
static int check_module(const module *m, problems *pr)
{
    if (!m->A || !m->B) {
        const px_st_tensor *have = m->A ? m->A : m->B ? m->B : m->alpha;
        problem(pr, "%s: %s without %s", m->path, have->name,
                !m->A && !m->B ? "its down and up halves"
                : !m->A        ? "its down half (lora_A / lora_down)"
                               : "its up half (lora_B / lora_up)");
        return 0;
    }
    char sa[80], sb[80];
    shape_str(m->A, sa, sizeof sa), shape_str(m->B, sb, sizeof sb);
    int64_t r = m->A->ndim == 2 ? m->A->shape[0] : -1;
    int lim = m->in < m->rows ? m->in : m->rows;
    if (m->A->ndim != 2 || m->B->ndim != 2 || m->A->shape[1] != m->in ||
        m->B->shape[0] != m->rows || m->B->shape[1] != r) {
        problem(pr, "%s: down %s and up %s, expected [r, %d] and [%d, r]", m->path, sa, sb, m->in,
                m->rows);
        return 0;
    }
    if (r < 1 || r > lim) {
        problem(pr, "%s: rank %lld (1..%d for this linear)", m->path, (long long)r, lim);
        return 0;
    }
    if (m->alpha && m->alpha->nelem != 1) {
        problem(pr, "%s: alpha holds %zu values", m->path, m->alpha->nelem);
        return 0;
    }
    return (int)r;
}

/* --- building ----------------------------------------------------------------------- */

static int cmp_delta(const void *a, const void *b)
{
    const zi_lora_delta *x = a, *y = b;
    if (x->block != y->block) return x->block < y->block ? -1 : 1;
    if (x->site != y->site) return x->site < y->site ? -1 : 1;
    if (x->row0 != y->row0) return x->row0 < y->row0 ? -1 : 1;
    return (x->rows > y->rows) - (x->rows < y->rows);
}

/* Whether n F32 values (4-byte words) or BF16 values (2-byte) are all
 * finite: branch-free over blocks that the compiler vectorizes at -O2 (a
 * 186 MB file is 93 M values). The exponent's bits all set (Inf, NaN)
 * carry into the word's top bit. */
static int all_finite_f32(const float *v, size_t n)
{
    uint32_t bad[8] = {0}, e = 0x7f800000u, any = 0, b[8];
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(b, v + i, sizeof b);
        for (int j = 0; j < 8; j++) bad[j] |= (b[j] & e) + 0x00800000u;
    }
    for (int j = 0; j < 8; j++) any |= bad[j] & 0x80000000u;
    for (; i < n; i++) any |= !isfinite(v[i]);
    return !any;
}

/* Copies n BF16 values and says whether all are finite, in one pass (the
 * values are read once: a second pass over a 186 MB copy cost a quarter of
 * the load). Four values to a 64-bit word: a lane's masked exponent plus
 * 0x80 reaches at most 0x8000, so no carry crosses into the next lane. */
static int copy_finite_bf16(uint16_t *dst, const uint8_t *src, size_t n)
{
    const uint64_t e = 0x7f807f807f807f80u, one = 0x0080008000800080u;
    uint64_t bad[8] = {0}, b[8], any = 0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        memcpy(b, src + 2 * i, sizeof b);
        for (int j = 0; j < 8; j++) bad[j] |= (b[j] & e) + one;
        memcpy(dst + i, b, sizeof b);
    }
    for (; i < n; i++) {
        memcpy(dst + i, src + 2 * i, 2);
        bad[0] |= (uint64_t)((dst[i] & 0x7f80u) + 0x0080u);
    }
    for (int j = 0; j < 8; j++) any |= bad[j] & 0x8000800080008000u;
    return !any;
}

/* The delta dtype of a module: BF16 kept only when both halves are BF16. */
static zi_dtype module_dtype(const module *m)
{
    return m->A->dtype == PX_ST_BF16 && m->B->dtype == PX_ST_BF16 ? ZI_BF16 : ZI_F32;
}

/* Bytes of a tensor held as dt, and that rounded up to the 64-byte
 * alignment each half starts at (BF16 rows fed to oneDNN, F32 likewise). */
static size_t held_bytes(const px_st_tensor *x, zi_dtype dt)
{
    return x->nelem * (dt == ZI_BF16 ? 2 : 4);
}

static size_t padded(size_t b)
{
    return (b + 63) / 64 * 64;
}

/* Copies (BF16 as is) or widens (to F32) a tensor into dst; 0, PX_EUNSUP
 * or PX_ECORRUPT (not finite). */
static int copy_values(const px_st *st, const px_st_tensor *x, zi_dtype dt, void *dst, char *err,
                       size_t errlen, const char *name)
{
    int finite;
    if (dt == ZI_BF16) {
        finite = copy_finite_bf16(dst, x->data, x->nelem);
    } else if (px_st_to_f32(x, dst)) {
        return px_errf(err, errlen, PX_EUNSUP, "%s: tensor %s is %s (F32, F16 or BF16 read)",
                       name, x->name, px_st_dtype_name(x->dtype));
    } else {
        finite = all_finite_f32(dst, x->nelem);
    }
    px_st_release(st, x);
    for (size_t i = 0; !finite && i < x->nelem; i++) {
        float v = zi_lora_value(dt, dst, i);
        if (!isfinite(v))
            return px_errf(err, errlen, PX_ECORRUPT, "%s: tensor %s holds %g", name, x->name,
                           (double)v);
    }
    return 0;
}

/* The block of every A and B: 2 MB aligned and, when large, in huge
 * pages (a 372 MB block in 4 KB pages spends most of a load in page
 * faults); else 64-byte aligned. NULL on failure; free() frees it. */
static void *alloc_values(size_t bytes)
{
    void *p = NULL;
    size_t huge = (size_t)2 << 20, align = bytes < 2 * huge ? 64 : huge;
    size_t len = (bytes ? bytes + align - 1 : 1) / align * align;
    if (!len) len = align;
    if (posix_memalign(&p, align, len)) return NULL;
    if (align == huge) madvise(p, len, MADV_HUGEPAGE); /* a hint: failure is fine */
    return p;
}

static int build(const px_st *st, const table *t, zi_lora *l, const char *name, char *err,
                 size_t errlen)
{
    size_t total = 0, values = 0, nelem = 0;
    for (int i = 0; i < t->nmods; i++) {
        const module *m = &t->mods[i];
        if (!m->A) continue;
        l->n++;
        zi_dtype dt = module_dtype(m);
        /* no overflow: each tensor is a distinct range of the file, at most
         * doubled (2-byte values widened), plus under 64 bytes of padding */
        nelem += m->A->nelem + m->B->nelem;
        values += held_bytes(m->A, dt) + held_bytes(m->B, dt);
        total += padded(held_bytes(m->A, dt)) + padded(held_bytes(m->B, dt));
    }
    if (!(l->d = calloc((size_t)l->n, sizeof *l->d)) || !(l->data = alloc_values(total)))
        return px_errf(err, errlen, PX_ENOMEM, "%s: out of memory for %zu LoRA values", name,
                       nelem);
    l->bytes = values;
    unsigned char *at = l->data;
    int k = 0, rc;
    for (int i = 0; i < t->nmods; i++) {
        const module *m = &t->mods[i];
        if (!m->A) continue;
        zi_lora_delta *d = &l->d[k++];
        *d = (zi_lora_delta){.block = m->block, .site = m->site, .row0 = m->row0,
                             .rows = m->rows, .rank = (int)m->A->shape[0], .in = m->in,
                             .dtype = module_dtype(m)};
        float alpha = (float)d->rank;
        if (m->alpha && (rc = copy_values(st, m->alpha, ZI_F32, &alpha, err, errlen, name)))
            return rc;
        d->alpha_over_rank = alpha / (float)d->rank;
        if ((rc = copy_values(st, m->A, d->dtype, at, err, errlen, name))) return rc;
        d->A = at, at += padded(held_bytes(m->A, d->dtype));
        if ((rc = copy_values(st, m->B, d->dtype, at, err, errlen, name))) return rc;
        d->B = at, at += padded(held_bytes(m->B, d->dtype));
        if (d->rank > l->max_rank) l->max_rank = d->rank;
        l->site_mask |= 1u << d->site;
    }
    qsort(l->d, (size_t)l->n, sizeof *l->d, cmp_delta);
    size_t ns = (size_t)l->nblocks * ZI_LORA_NSITES;
    if (!(l->first = calloc(ns + 1, sizeof *l->first)) || !(l->cnt = calloc(ns + 1, sizeof *l->cnt)))
        return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    for (int i = l->n - 1; i >= 0; i--) {
        size_t s = (size_t)l->d[i].block * ZI_LORA_NSITES + l->d[i].site;
        l->first[s] = i;
        l->cnt[s]++;
    }
    return 0;
}

static int open_st(const px_st *st, const char *name, const zi_dit_config *cfg, zi_lora **out,
                   char *err, size_t errlen)
{
    table t = {0};
    problems pr = {.len = 0};
    zi_lora *l = calloc(1, sizeof *l);
    int rc = l ? table_build(cfg, &t) : PX_ENOMEM;
    if (rc) {
        free(l);
        table_free(&t);
        return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    }
    l->nblocks = 2 * cfg->n_refiner_layers + cfg->n_layers;
    assign(st, &t, &pr, &l->spelling);
    int any = 0;
    for (int i = 0; i < t.nmods; i++) {
        module *m = &t.mods[i];
        if (!m->A && !m->B && !m->alpha) continue;
        any = 1;
        if (!check_module(m, &pr)) m->A = NULL; /* not counted by build (which never runs) */
    }
    if (pr.n) {
        rc = px_errf(err, errlen, PX_ECORRUPT, "%s: does not fit the model (%d problem%s): %s",
                     name, pr.n, pr.n > 1 ? "s" : "", pr.text);
        if (pr.n > MAX_LISTED) {
            size_t len = strlen(err);
            if (len < errlen)
                snprintf(err + len, errlen - len, "; and %d more", pr.n - MAX_LISTED);
        }
    } else if (!any) {
        rc = px_errf(err, errlen, PX_ECORRUPT, "%s: holds no LoRA weights", name);
    } else {
        rc = build(st, &t, l, name, err, errlen);
    }
    table_free(&t);
    if (rc) {
        zi_lora_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

static int check_cfg(const zi_dit_config *c, const char *name, char *err, size_t errlen)
{
    if (c->dim < 1 || c->ffn_hidden < 1 || c->t_dim < 1 || c->n_layers < 0 ||
        c->n_refiner_layers < 0 || c->n_layers > 4096 || c->n_refiner_layers > 4096 ||
        c->dim > (1 << 24) / 4 || c->ffn_hidden > (1 << 24) || c->t_dim > (1 << 24))
        return px_errf(err, errlen, PX_EINVAL, "%s: unusable model configuration", name);
    return 0;
}

int zi_lora_open(const char *path, const zi_dit_config *cfg, zi_lora **out, char *err,
                 size_t errlen)
{
    *out = NULL;
    int rc = check_cfg(cfg, path, err, errlen);
    if (rc) return rc;
    px_st *st = NULL;
    if ((rc = px_st_open(path, &st, err, errlen))) return rc;
    rc = open_st(st, path, cfg, out, err, errlen);
    px_st_close(st);
    return rc;
}

int zi_lora_open_mem(const void *data, size_t len, const char *name, const zi_dit_config *cfg,
                     zi_lora **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = check_cfg(cfg, name, err, errlen);
    if (rc) return rc;
    px_st *st = NULL;
    char inner[256];
    if ((rc = px_st_parse(data, len, &st, inner, sizeof inner)))
        return px_errf(err, errlen, rc, "%s: %s", name, inner);
    rc = open_st(st, name, cfg, out, err, errlen);
    px_st_close(st);
    return rc;
}

void zi_lora_free(zi_lora *l)
{
    if (!l) return;
    free(l->d), free(l->first), free(l->cnt), free(l->data);
    free(l);
}

zi_lora_spelling zi_lora_spelling_of(const zi_lora *l)
{
    return l->spelling;
}

const char *zi_lora_spelling_name(zi_lora_spelling s)
{
    return s == ZI_LORA_KOHYA ? "kohya" : s == ZI_LORA_COMFY ? "comfyui" : "peft";
}

int zi_lora_count(const zi_lora *l)
{
    return l->n;
}

const zi_lora_delta *zi_lora_at(const zi_lora *l, int i)
{
    return i >= 0 && i < l->n ? &l->d[i] : NULL;
}

const zi_lora_delta *zi_lora_find(const zi_lora *l, int block, zi_lora_site site, int *n)
{
    *n = 0;
    if (block < 0 || block >= l->nblocks || (int)site < 0 || site >= ZI_LORA_NSITES) return NULL;
    size_t s = (size_t)block * ZI_LORA_NSITES + site;
    if (!l->cnt[s]) return NULL;
    *n = l->cnt[s];
    return &l->d[l->first[s]];
}

int zi_lora_max_rank(const zi_lora *l)
{
    return l->max_rank;
}

size_t zi_lora_bytes(const zi_lora *l)
{
    return l->bytes;
}

unsigned zi_lora_site_mask(const zi_lora *l)
{
    return l->site_mask;
}

int zi_lora_merge(const zi_lora_use *u, int n, int block, zi_lora_site site, float *w,
                  int out_rows, int in)
{
    for (int k = 0; k < n; k++) {
        int nd;
        const zi_lora_delta *d = zi_lora_find(u[k].lora, block, site, &nd);
        for (int j = 0; j < nd; j++)
            if (d[j].in != in || d[j].row0 + d[j].rows > out_rows) return PX_EINVAL;
    }
    for (int k = 0; k < n; k++) {
        int nd;
        const zi_lora_delta *d = zi_lora_find(u[k].lora, block, site, &nd);
        for (int j = 0; j < nd; j++) {
            float s = u[k].scale * d[j].alpha_over_rank;
            zi_dtype dt = d[j].dtype;
            for (int r = 0; r < d[j].rows; r++) {
                float *wr = w + (size_t)(d[j].row0 + r) * in;
                for (int q = 0; q < d[j].rank; q++) {
                    float c = s * zi_lora_value(dt, d[j].B, (size_t)r * d[j].rank + q);
                    size_t a = (size_t)q * in;
                    if (dt == ZI_F32) /* hoisted: each loop vectorizes */
                        for (int i = 0; i < in; i++) wr[i] += c * ((const float *)d[j].A)[a + i];
                    else
                        for (int i = 0; i < in; i++) wr[i] += c * zi_lora_value(ZI_BF16, d[j].A, a + i);
                }
            }
        }
    }
    return 0;
}
