/*
 * zc_lora.c — LoRAs on the GPU for the Z-Image DiT (zc_lora.h): the
 * upload of a LoRA into one device allocation (per block and group the
 * stacked A's, then each delta's B, bf16, 256-byte aligned), the cache
 * callbacks, a batch's binding and the two GEMMs per delta.
 *
 * Checked by tests/unit/zimage_cuda_test.c against the CPU engine and solo
 * runs (passed on an H200, 2026-12-05); costs in docs/benchmarks/lora.md.
 */
#include "engine/zimage/cuda/zc_lora.h"

#include "core/alloc.h"
#include "core/err.h"
#include "engine/cuda/cuda_check.h"
#include "engine/zimage/cuda/zc_net.h"
#include "engine/zimage/zops.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One delta on the device: B at b_off, its columns of T at roff. */
typedef struct ldelta {
    size_t b_off;
    int hi; /* the group's second linear (w3 of W13) */
    int row0, rows, r, roff;
    float aor; /* α / r */
} ldelta;

/* One (block, group): the stacked A [rsum, in] at a_off; deltas [d0, d0 +
 * nd); T's row stride ldt (rsum rounded up to 8: 16-byte rows). */
typedef struct lgroup {
    size_t a_off;
    int rsum, in, nd, d0, ldt;
} lgroup;

/* One LoRA on one device (the cache's value). */
typedef struct lentry {
    int dev;
    char *mem; /* device */
    size_t bytes;
    lgroup *g; /* [nblocks][ZC_LORA_NGROUPS] */
    ldelta *d;
    int nd, max_ldt;
} lentry;

struct zc_lora_dev {
    px_cuda_ctx *ctx;
    zi_dit_config dc;
    int nblocks;
    zi_lora_cache *cache;
    void *T; /* bf16 scratch */
    size_t t_elems;
};

#define MAX_BOUND (ZC_MAX_ITEMS * ZI_MAX_LORAS)

typedef struct job {
    const lentry *e;
    float scale;
    int b0, b1; /* items [b0, b1) */
} job;

struct zc_lora_bind {
    int njobs, nrefs;
    job jobs[MAX_BOUND];
    const zi_lora *keys[MAX_BOUND];
    zi_lora_cache_ref *refs[MAX_BOUND];
};

static size_t round256(size_t n)
{
    return (n + 255) / 256 * 256;
}

/* Whether delta t fits this model's linear (a LoRA opened for another
 * configuration must not reach a GEMM out of bounds). */
static int delta_fits(const zc_lora_dev *ld, const zi_lora_delta *t)
{
    const zi_dit_config *c = &ld->dc;
    int D = c->dim, F = c->ffn_hidden, nr = c->n_refiner_layers;
    int in[ZI_LORA_NSITES] = {D, D, D, F, D, c->t_dim};
    int out[ZI_LORA_NSITES] = {3 * D, D, F, D, F, 4 * D};
    if (t->block < 0 || t->block >= ld->nblocks || (int)t->site < 0 || t->site >= ZI_LORA_NSITES ||
        t->rank < 1)
        return 0;
    if (t->site == ZI_LORA_ADA && t->block >= nr && t->block < 2 * nr) return 0; /* unmodulated */
    return t->in == in[t->site] && t->row0 >= 0 && t->rows >= 1 &&
           t->row0 + t->rows <= out[t->site];
}

/* The linears of each group, in the order their A's are stacked. */
static const zi_lora_site k_sites[ZC_LORA_NGROUPS][2] = {{ZI_LORA_QKV, ZI_LORA_NSITES},
                                                         {ZI_LORA_OUT, ZI_LORA_NSITES},
                                                         {ZI_LORA_W1, ZI_LORA_W3},
                                                         {ZI_LORA_W2, ZI_LORA_NSITES},
                                                         {ZI_LORA_ADA, ZI_LORA_NSITES}};

static void entry_meta_free(lentry *e)
{
    free(e->g);
    free(e->d);
    e->g = NULL, e->d = NULL;
}

/* The deltas of (block, group) into e->d from index nd on, their stacked
 * A at *off, their B's after it; returns the new delta count. */
static int layout_group(const zi_lora *l, int b, int g, lentry *e, int nd, size_t *off)
{
    int rsum = 0, in = 0, d0 = nd;
    for (int s = 0; s < 2 && k_sites[g][s] != ZI_LORA_NSITES; s++) {
        int n = 0;
        const zi_lora_delta *t = zi_lora_find(l, b, k_sites[g][s], &n);
        for (int k = 0; k < n; k++, nd++) {
            e->d[nd] = (ldelta){0,    k_sites[g][s] == ZI_LORA_W3, t[k].row0, t[k].rows, t[k].rank,
                                rsum, t[k].alpha_over_rank};
            rsum += t[k].rank, in = t[k].in;
        }
    }
    if (!rsum) return nd;
    int ldt = (rsum + 7) / 8 * 8;
    e->g[b * ZC_LORA_NGROUPS + g] = (lgroup){*off, rsum, in, nd - d0, d0, ldt};
    *off += round256((size_t)rsum * in * 2);
    for (int k = d0; k < nd; k++) {
        e->d[k].b_off = *off;
        *off += round256((size_t)e->d[k].rows * e->d[k].r * 2);
    }
    if (ldt > e->max_ldt) e->max_ldt = ldt;
    return nd;
}

/* The layout of l on the device into e (offsets; e->g and e->d allocated:
 * entry_meta_free). Returns 0, or PX_EINVAL when a delta does not fit. */
static int layout(const zc_lora_dev *ld, const zi_lora *l, lentry *e, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    for (int i = 0; i < zi_lora_count(l); i++) {
        const zi_lora_delta *t = zi_lora_at(l, i);
        if (!delta_fits(ld, t))
            return px_errf(err, errlen, PX_EINVAL,
                           "zimage-cuda: a LoRA delta (block %d, linear %d, rows %d+%d, in %d) "
                           "does not fit this model: the LoRA was opened for another one",
                           t->block, (int)t->site, t->row0, t->rows, t->in);
    }
    e->g = px_xcalloc((size_t)ld->nblocks * ZC_LORA_NGROUPS, sizeof *e->g);
    e->d = px_xcalloc((size_t)zi_lora_count(l) + 1, sizeof *e->d);
    size_t off = 0;
    for (int b = 0; b < ld->nblocks; b++)
        for (int g = 0; g < ZC_LORA_NGROUPS; g++) e->nd = layout_group(l, b, g, e, e->nd, &off);
    e->bytes = off ? off : 256; /* a LoRA without deltas still takes an entry */
    return 0;
}

size_t zc_lora_bytes(const zc_lora_dev *ld, const zi_lora *l)
{
    lentry e;
    char err[8];
    size_t n = layout(ld, l, &e, err, sizeof err) ? 0 : e.bytes;
    entry_meta_free(&e);
    return n;
}

/* ---------------------------------------------------- cache callbacks */

static size_t cb_size(void *arg, const void *key)
{
    return zc_lora_bytes(arg, key);
}

/* n values of a delta's half as bf16: BF16 copied as is, F32 rounded. */
static void to_bf16(const zi_lora_delta *t, const void *src, size_t n, uint16_t *dst)
{
    if (t->dtype == ZI_BF16) {
        memcpy(dst, src, n * sizeof *dst);
        return;
    }
    const float *f = src;
    for (size_t i = 0; i < n; i++) dst[i] = zi_f32_to_bf16(f[i]);
}

/* The host image of the entry's device memory: A's stacked, B's. */
static void stage(const zi_lora *l, const lentry *e, int nblocks, uint16_t *h)
{
    for (int b = 0; b < nblocks; b++)
        for (int g = 0; g < ZC_LORA_NGROUPS; g++) {
            const lgroup *lg = &e->g[b * ZC_LORA_NGROUPS + g];
            int k = lg->d0;
            for (int s = 0; lg->nd && s < 2 && k_sites[g][s] != ZI_LORA_NSITES; s++) {
                int n = 0;
                const zi_lora_delta *t = zi_lora_find(l, b, k_sites[g][s], &n);
                for (int j = 0; j < n; j++, k++) {
                    const ldelta *dl = &e->d[k];
                    uint16_t *a = h + lg->a_off / 2 + (size_t)dl->roff * lg->in;
                    uint16_t *bb = h + dl->b_off / 2;
                    to_bf16(&t[j], t[j].A, (size_t)t[j].rank * t[j].in, a);
                    to_bf16(&t[j], t[j].B, (size_t)t[j].rows * t[j].rank, bb);
                }
            }
        }
}

static int cb_load(void *arg, const void *key, void **val, char *err, size_t errlen)
{
    zc_lora_dev *ld = arg;
    const zi_lora *l = key;
    int rc = 0;
    uint16_t *h = NULL;
    lentry *e = px_xcalloc(1, sizeof *e);
    if ((rc = layout(ld, l, e, err, errlen))) goto fail;
    e->dev = ld->ctx->dev;
    if (!(h = calloc(1, e->bytes))) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory (LoRA staging, %zu bytes)", e->bytes);
        goto fail;
    }
    stage(l, e, ld->nblocks, h);
    PX_CUDA_CHECK(cudaSetDevice(e->dev));
    PX_CUDA_CHECK(cudaMalloc((void **)&e->mem, e->bytes));
    /* On the stream whose GEMMs read it (a plain cudaMemcpy's legacy stream
     * is not ordered with it); h is staged (pageable) when this returns. */
    PX_CUDA_CHECK(
        cudaMemcpyAsync(e->mem, h, e->bytes, cudaMemcpyHostToDevice, ld->ctx->stream));
    free(h);
    *val = e;
    return 0;
fail:
    free(h);
    if (e->mem) cudaFree(e->mem);
    entry_meta_free(e);
    free(e);
    return rc;
}

/* May run on any thread (an evict when the engine closes a LoRA). */
static void cb_unload(void *arg, void *val)
{
    (void)arg;
    lentry *e = val;
    if (e->mem && cudaSetDevice(e->dev) == cudaSuccess) cudaFree(e->mem);
    entry_meta_free(e);
    free(e);
}

/* ------------------------------------------------------------- device */

zc_lora_dev *zc_lora_dev_create(px_cuda_ctx *c, const zi_dit_config *dc, size_t cap_bytes)
{
    zc_lora_dev *ld = px_xcalloc(1, sizeof *ld);
    ld->ctx = c;
    ld->dc = *dc;
    ld->nblocks = 2 * dc->n_refiner_layers + dc->n_layers;
    zi_lora_cache_ops ops = {cb_size, cb_load, cb_unload, ld};
    ld->cache = zi_lora_cache_create(cap_bytes, &ops);
    return ld;
}

void zc_lora_dev_free(zc_lora_dev *ld)
{
    if (!ld) return;
    zi_lora_cache_destroy(ld->cache);
    if (ld->T) cudaFree(ld->T);
    free(ld);
}

void zc_lora_dev_evict(zc_lora_dev *ld, const zi_lora *l)
{
    zi_lora_cache_evict(ld->cache, l);
}

void zc_lora_dev_stats(zc_lora_dev *ld, zi_lora_cache_stats *s)
{
    zi_lora_cache_get_stats(ld->cache, s);
}

/* -------------------------------------------------------------- binding */

/* The scratch for T: rows x cols bf16. */
static int reserve_t(zc_lora_dev *ld, size_t elems, char *err, size_t errlen)
{
    int rc = 0;
    if (elems <= ld->t_elems) return 0;
    PX_CUDA_CHECK(cudaStreamSynchronize(ld->ctx->stream)); /* the old one may be in use */
    if (ld->T) cudaFree(ld->T);
    ld->T = NULL, ld->t_elems = 0;
    PX_CUDA_CHECK(cudaMalloc(&ld->T, elems * 2));
    ld->t_elems = elems;
fail:
    return rc;
}

/* The entry of key, acquired once per binding. */
static int bind_key(zc_lora_dev *ld, zc_lora_bind *b, const zi_lora *key, const lentry **e,
                    char *err, size_t errlen)
{
    for (int i = 0; i < b->nrefs; i++)
        if (b->keys[i] == key) {
            *e = zi_lora_cache_value(b->refs[i]);
            return 0;
        }
    int rc = zi_lora_cache_acquire(ld->cache, key, &b->refs[b->nrefs], err, errlen);
    if (rc) return rc;
    b->keys[b->nrefs] = key;
    *e = zi_lora_cache_value(b->refs[b->nrefs++]);
    return 0;
}

static int job_cmp(const void *pa, const void *pb)
{
    const job *a = pa, *b = pb;
    if (a->e != b->e) return (uintptr_t)a->e < (uintptr_t)b->e ? -1 : 1;
    if (a->scale != b->scale) return a->scale < b->scale ? -1 : 1;
    return a->b0 - b->b0;
}

/* Jobs sorted by (LoRA, scale, item); consecutive items merged. */
static void merge_jobs(zc_lora_bind *b)
{
    qsort(b->jobs, (size_t)b->njobs, sizeof *b->jobs, job_cmp);
    int n = 0;
    for (int i = 0; i < b->njobs; i++) {
        job *last = n ? &b->jobs[n - 1] : NULL;
        if (last && last->e == b->jobs[i].e && last->scale == b->jobs[i].scale &&
            last->b1 == b->jobs[i].b0)
            last->b1 = b->jobs[i].b1;
        else
            b->jobs[n++] = b->jobs[i];
    }
    b->njobs = n;
}

int zc_lora_bind_create(zc_lora_dev *ld, const zi_lora_use *const *uses, const int *nuses, int n,
                        size_t max_rows, zc_lora_bind **out, char *err, size_t errlen)
{
    int rc = 0, max_ldt = 0;
    *out = NULL;
    zc_lora_bind *b = NULL;
    if (n > ZC_MAX_ITEMS)
        return px_errf(err, errlen, PX_EINVAL, "zimage-cuda: %d LoRA items (at most %d)", n,
                       ZC_MAX_ITEMS);
    for (int i = 0; uses && i < n; i++)
        for (int k = 0; k < nuses[i] && k < ZI_MAX_LORAS; k++) {
            const zi_lora_use *u = &uses[i][k];
            if (!u->lora || u->scale == 0.0f) continue;
            if (!b) b = px_xcalloc(1, sizeof *b);
            const lentry *e;
            if ((rc = bind_key(ld, b, u->lora, &e, err, errlen))) goto fail;
            b->jobs[b->njobs++] = (job){e, u->scale, i, i + 1};
            if (e->max_ldt > max_ldt) max_ldt = e->max_ldt;
        }
    if (!b) return 0;
    merge_jobs(b);
    if ((rc = reserve_t(ld, max_rows * (size_t)max_ldt, err, errlen))) goto fail;
    *out = b;
    return 0;
fail:
    zc_lora_bind_free(ld, b);
    return rc;
}

void zc_lora_bind_free(zc_lora_dev *ld, zc_lora_bind *b)
{
    if (!b) return;
    cudaStreamSynchronize(ld->ctx->stream);
    for (int i = 0; i < b->nrefs; i++) zi_lora_cache_release(ld->cache, b->refs[i]);
    free(b);
}

/* ---------------------------------------------------------- application */

int zc_lora_gemms(const zc_lora_bind *b, int block, zc_lora_group grp)
{
    int n = 0;
    for (int j = 0; b && j < b->njobs; j++) {
        const lgroup *lg = &b->jobs[j].e->g[block * ZC_LORA_NGROUPS + grp];
        n += lg->nd ? 1 + lg->nd : 0;
    }
    return n;
}

int zc_lora_apply(zc_lora_dev *ld, zc_gemm *g, const zc_lora_bind *b, int block, zc_lora_group grp,
                  const void *x, int ldx, int S, void *y, int ldy, zc_type yt, int col_hi,
                  char *err, size_t errlen)
{
    int rc = 0;
    size_t ey = yt == ZC_F32 ? 4 : 2;
    for (int j = 0; b && j < b->njobs; j++) {
        const job *jb = &b->jobs[j];
        const lentry *e = jb->e;
        const lgroup *lg = &e->g[block * ZC_LORA_NGROUPS + grp];
        if (!lg->nd) continue;
        size_t r0 = (size_t)jb->b0 * S;
        int M = (jb->b1 - jb->b0) * S;
        zc_gemm_args t = {.x = (const uint16_t *)x + r0 * ldx,
                          .ldx = ldx,
                          .M = M,
                          .K = lg->in,
                          .w = e->mem + lg->a_off,
                          .N = lg->rsum,
                          .y = ld->T,
                          .ldy = lg->ldt,
                          .yt = ZC_BF16};
        if ((rc = zc_gemm_run(g, &t, err, errlen))) return rc;
        for (int k = lg->d0; k < lg->d0 + lg->nd; k++) {
            const ldelta *dl = &e->d[k];
            float alpha = jb->scale * dl->aor;
            if (alpha == 0.0f) continue; /* 0 would read as 1 */
            size_t col = (size_t)(dl->hi ? col_hi : 0) + (size_t)dl->row0;
            zc_gemm_args u = {.x = (const uint16_t *)ld->T + dl->roff,
                              .ldx = lg->ldt,
                              .M = M,
                              .K = dl->r,
                              .w = e->mem + dl->b_off,
                              .N = dl->rows,
                              .y = (char *)y + (r0 * (size_t)ldy + col) * ey,
                              .ldy = ldy,
                              .yt = yt,
                              .accumulate = 1,
                              .alpha = alpha};
            if ((rc = zc_gemm_run(g, &u, err, errlen))) return rc;
        }
    }
    return rc;
}
