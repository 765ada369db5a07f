/*
 * mask.c — binarisation and geometry of inpainting masks (see mask.h).
 *
 * Distances use the exact separable algorithm of Felzenszwalb & Huttenlocher
 * ("Distance Transforms of Sampled Functions", 2012): a 1-D pass down each
 * column, then the lower envelope of parabolas along each row. Dilation is a
 * threshold on the distance to the nearest hole, so it costs the same for any
 * radius. Connected components use two raster passes with union-find, which
 * needs no recursion and so cannot overflow the stack on huge blobs.
 */
#include "image/mask.h"

#include "core/alloc.h"
#include "core/err.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Larger than any squared distance inside a 2^16-sided image, small enough
 * that sums of two of them stay exact in a double. */
#define EDT_INF 1e20

/* Allocates a w×h single-channel mask (uninitialised). */
static int mask_alloc(int w, int h, px_image *out)
{
    out->w = w;
    out->h = h;
    out->c = 1;
    out->px = px_alloc_array((size_t)w, (size_t)h);
    return out->px ? 0 : PX_ENOMEM;
}

static bool valid_image(const px_image *m)
{
    return m && m->px && m->w > 0 && m->h > 0 && m->c >= 1 && m->c <= 4;
}

int px_mask_binarise(const px_image *src, px_image *out)
{
    memset(out, 0, sizeof *out);
    if (!valid_image(src)) return PX_EINVAL;
    size_t n = (size_t)src->w * (size_t)src->h;
    int c = src->c;
    int rc = mask_alloc(src->w, src->h, out);
    if (rc) return rc;
    const uint8_t *p = src->px;
    /* Gray+alpha (c = 2) and RGBA carry alpha last. */
    bool has_alpha = c == 2 || c == 4;
    int ncolour = has_alpha ? c - 1 : c;
    bool alpha_decides = false;
    if (has_alpha)
        for (size_t i = 0; i < n; i++)
            if (p[i * (size_t)c + (size_t)(c - 1)] != 255) {
                alpha_decides = true;
                break;
            }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *q = p + i * (size_t)c;
        bool hole;
        if (alpha_decides) {
            hole = q[c - 1] > 0;
        } else {
            hole = false;
            for (int k = 0; k < ncolour; k++) hole |= q[k] != 0;
        }
        out->px[i] = hole ? 255 : 0;
    }
    return 0;
}

size_t px_mask_count(const px_image *mask)
{
    if (!valid_image(mask)) return 0;
    size_t n = (size_t)mask->w * (size_t)mask->h, k = 0;
    for (size_t i = 0; i < n; i++) k += mask->px[i] != 0;
    return k;
}

/*
 * Lower envelope of parabolas (Felzenszwalb & Huttenlocher): d[q] =
 * min_p (q - p)^2 + f[p] for q in [0, n). v and z are scratch of n and n+1.
 */
static void edt_1d(const double *f, int n, double *d, int *v, double *z)
{
    int k = 0;
    /* Samples at EDT_INF never form part of the envelope; skipping them keeps
     * the intersections finite and exact. */
    int first = 0;
    while (first < n && f[first] >= EDT_INF) first++;
    if (first == n) {
        for (int q = 0; q < n; q++) d[q] = EDT_INF;
        return;
    }
    v[0] = first;
    z[0] = -HUGE_VAL;
    z[1] = HUGE_VAL;
    for (int q = first + 1; q < n; q++) {
        if (f[q] >= EDT_INF) continue;
        double s;
        /* z[0] is -inf, so this stops at k = 0 at the latest. */
        for (;;) {
            int p = v[k];
            s = ((f[q] + (double)q * q) - (f[p] + (double)p * p)) / (2.0 * (q - p));
            if (s > z[k]) break;
            k--;
        }
        k++;
        v[k] = q;
        z[k] = s;
        z[k + 1] = HUGE_VAL;
    }
    k = 0;
    for (int q = 0; q < n; q++) {
        while (z[k + 1] < q) k++;
        double dq = q - v[k];
        d[q] = dq * dq + f[v[k]];
    }
}

/*
 * Squared Euclidean distance from every pixel to the nearest pixel whose
 * feature flag is set (mask value != 0 when `to_holes`, == 0 otherwise), into
 * out[w*h]. Pixels with no feature anywhere get EDT_INF. Returns 0 or
 * PX_ENOMEM.
 */
static int edt_squared(const px_image *mask, bool to_holes, double *out)
{
    int w = mask->w, h = mask->h;
    int n = w > h ? w : h;
    double *f = px_alloc_array((size_t)n, sizeof *f);
    double *d = px_alloc_array((size_t)n, sizeof *d);
    int *v = px_alloc_array((size_t)n, sizeof *v);
    double *z = px_alloc_array((size_t)n + 1, sizeof *z);
    if (!f || !d || !v || !z) {
        free(f);
        free(d);
        free(v);
        free(z);
        return PX_ENOMEM;
    }
    /* Columns: plain 1-D distance to the nearest feature (two sweeps). */
    for (int x = 0; x < w; x++) {
        double last = -1;
        for (int y = 0; y < h; y++) {
            bool feat = (mask->px[(size_t)y * w + x] != 0) == to_holes;
            if (feat) last = y;
            f[y] = last < 0 ? EDT_INF : (y - last) * (y - last);
        }
        last = -1;
        for (int y = h - 1; y >= 0; y--) {
            bool feat = (mask->px[(size_t)y * w + x] != 0) == to_holes;
            if (feat) last = y;
            if (last >= 0) {
                double dd = (last - y) * (last - y);
                if (dd < f[y]) f[y] = dd;
            }
            out[(size_t)y * w + x] = f[y];
        }
    }
    /* Rows: exact envelope over the column distances. */
    for (int y = 0; y < h; y++) {
        double *row = out + (size_t)y * w;
        memcpy(f, row, (size_t)w * sizeof *f);
        edt_1d(f, w, d, v, z);
        memcpy(row, d, (size_t)w * sizeof *d);
    }
    free(f);
    free(d);
    free(v);
    free(z);
    return 0;
}

int px_mask_dilate(const px_image *mask, int radius, px_image *out)
{
    memset(out, 0, sizeof *out);
    if (!valid_image(mask) || mask->c != 1) return PX_EINVAL;
    int rc = mask_alloc(mask->w, mask->h, out);
    if (rc) return rc;
    size_t n = (size_t)mask->w * (size_t)mask->h;
    if (radius <= 0) {
        for (size_t i = 0; i < n; i++) out->px[i] = mask->px[i] ? 255 : 0;
        return 0;
    }
    double *sq = px_alloc_array(n, sizeof *sq);
    if (!sq || edt_squared(mask, true, sq) != 0) {
        free(sq);
        free(out->px);
        out->px = NULL;
        return PX_ENOMEM;
    }
    /* Integer squared distances compare exactly against r^2: the disc holds
     * every offset with dx^2 + dy^2 <= r^2. */
    double r2 = (double)radius * radius;
    for (size_t i = 0; i < n; i++) out->px[i] = sq[i] <= r2 ? 255 : 0;
    free(sq);
    return 0;
}

int px_mask_distance(const px_image *mask, float **dist)
{
    *dist = NULL;
    if (!valid_image(mask) || mask->c != 1) return PX_EINVAL;
    int w = mask->w, h = mask->h;
    size_t n = (size_t)w * (size_t)h;
    float *out = px_alloc_array(n, sizeof *out);
    double *sq = px_alloc_array(n, sizeof *sq);
    if (!out || !sq || edt_squared(mask, false, sq) != 0) {
        free(out);
        free(sq);
        return PX_ENOMEM;
    }
    if (sq[0] >= EDT_INF) {
        /* No known pixel at all: measure to the frame just outside the image,
         * as if the image were surrounded by known pixels. */
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int m = x + 1;
                if (y + 1 < m) m = y + 1;
                if (w - x < m) m = w - x;
                if (h - y < m) m = h - y;
                out[(size_t)y * w + x] = (float)m;
            }
    } else {
        for (size_t i = 0; i < n; i++) out[i] = (float)sqrt(sq[i]);
    }
    free(sq);
    *dist = out;
    return 0;
}

/* Union-find root with path halving. */
static int uf_find(int *parent, int a)
{
    while (parent[a] != a) {
        parent[a] = parent[parent[a]];
        a = parent[a];
    }
    return a;
}

static void uf_union(int *parent, int a, int b)
{
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    /* The smaller label stays root, so roots are the first-seen provisional
     * label of each component. */
    if (a < b) parent[b] = a;
    else if (b < a) parent[a] = b;
}

/* Pass 1: provisional labels, a run of hole pixels at a time, into lab,
 * recording equivalences in parent; returns the next unused provisional
 * label. A run [x0, x1) of row y touches (8-connected) the pixels of row
 * y - 1 in [x0 - 1, x1]; every run there already has one label, so the
 * run takes the first label it touches and unites the others with it.
 * (Pixel by pixel, uniting all four seen neighbours, was 1.6-2x slower:
 * bench/hd_plan_bench, docs/benchmarks/serving.md.) */
static int provisional_labels(const px_image *mask, int *lab, int *parent)
{
    int w = mask->w, h = mask->h;
    int next = 1;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = mask->px + (size_t)y * w;
        int *lr = lab + (size_t)y * w;
        const int *lu = y > 0 ? lr - w : NULL;
        int x = 0;
        while (x < w) {
            if (!row[x]) {
                lr[x++] = 0;
                continue;
            }
            int x0 = x;
            while (x < w && row[x]) x++;
            int l = 0;
            if (lu)
                for (int u = x0 > 0 ? x0 - 1 : 0, ue = x < w ? x : w - 1; u <= ue; u++) {
                    int v = lu[u];
                    if (!v) continue;
                    if (!l) l = v;
                    else if (v != l) uf_union(parent, l, v);
                    while (u < ue && lu[u + 1] == v) u++; /* the rest of that run */
                }
            if (!l) {
                parent[next] = next;
                l = next++;
            }
            for (int i = x0; i < x; i++) lr[i] = l;
        }
    }
    return next;
}

/* Pass 2: final labels in raster order of each component's first pixel,
 * written over lab, and the blobs (*out, malloc'd, *count of them), a run
 * at a time. Returns 0 or PX_ENOMEM. */
static int final_labels(int w, int h, int *lab, int *parent, int next, px_blob **out, int *count)
{
    int *final = px_alloc_array((size_t)next, sizeof *final);
    if (!final) return PX_ENOMEM;
    for (int i = 0; i < next; i++) final[i] = 0;
    /* Every label points at a smaller one or itself (uf_union keeps the
     * smaller root), so one pass in increasing order leaves each pointing
     * at its root: a lookup per pixel below instead of a search. */
    for (int i = 1; i < next; i++) parent[i] = parent[parent[i]];
    int cnt = 0, cap = 0;
    px_blob *bl = NULL;
    for (int y = 0; y < h; y++) {
        int *lr = lab + (size_t)y * w;
        int x = 0;
        while (x < w) {
            if (!lr[x]) {
                x++;
                continue;
            }
            /* A run of one provisional label (pass 1 gives each run one). */
            int x0 = x, v = lr[x], r = parent[v];
            while (x < w && lr[x] == v) x++;
            if (!final[r]) {
                if (cnt == cap) {
                    int ncap = cap ? cap * 2 : 16;
                    px_blob *nb = realloc(bl, (size_t)ncap * sizeof *nb);
                    if (!nb) {
                        free(bl);
                        free(final);
                        return PX_ENOMEM;
                    }
                    bl = nb;
                    cap = ncap;
                }
                final[r] = ++cnt;
                bl[cnt - 1] = (px_blob){x0, y, x, y + 1, 0, cnt};
            }
            int l = final[r];
            px_blob *b = &bl[l - 1];
            for (int i = x0; i < x; i++) lr[i] = l;
            b->area += x - x0;
            if (x0 < b->x0) b->x0 = x0;
            if (x > b->x1) b->x1 = x;
            b->y1 = y + 1;
        }
    }
    free(final);
    *out = bl;
    *count = cnt;
    return 0;
}

int px_mask_blobs(const px_image *mask, px_blob **blobs, int *nblobs, int **labels)
{
    *blobs = NULL;
    *nblobs = 0;
    if (labels) *labels = NULL;
    if (!valid_image(mask) || mask->c != 1) return PX_EINVAL;
    size_t n = (size_t)mask->w * (size_t)mask->h;
    if (n > (size_t)1 << 30) return PX_ENOMEM; /* labels are ints */
    int *lab = px_alloc_array(n, sizeof *lab);
    /* Provisional labels: at most one per pixel (+1 for the unused 0). */
    int *parent = px_alloc_array(n + 1, sizeof *parent);
    if (!lab || !parent) goto fail;
    int next = provisional_labels(mask, lab, parent);
    if (final_labels(mask->w, mask->h, lab, parent, next, blobs, nblobs)) goto fail;
    free(parent);
    if (labels) *labels = lab;
    else free(lab);
    return 0;
fail:
    free(lab);
    free(parent);
    return PX_ENOMEM;
}

float px_mask_thickness(const px_image *mask)
{
    float *d;
    if (px_mask_count(mask) == 0) return 0.0f;
    if (px_mask_distance(mask, &d) != 0) return -1.0f;
    size_t n = (size_t)mask->w * (size_t)mask->h;
    float m = 0;
    for (size_t i = 0; i < n; i++) m = d[i] > m ? d[i] : m;
    free(d);
    return m;
}
