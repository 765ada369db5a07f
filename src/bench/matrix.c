/*
 * matrix.c — parameter matrix cells from --matrix (see matrix.h).
 */
#include "bench/matrix.h"

#include "bench/spec.h"
#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AXIS_MAX 16 /* values per axis */

typedef struct axis {
    int present, n;
    double v[AXIS_MAX]; /* steps, cfg */
    int w[AXIS_MAX], h[AXIS_MAX];
} axis;

const char *pb_axis_name(int a)
{
    return a == PB_AXIS_STEPS ? "steps" : a == PB_AXIS_CFG ? "CFG" : a == PB_AXIS_SIZE ? "resolution" : "baseline";
}

static int parse_axis(const char *tok, axis *ax, char *err, size_t errlen)
{
    const char *eq = strchr(tok, '=');
    if (!eq || !eq[1]) return px_errf(err, errlen, PX_EINVAL, "--matrix: '%s' is not axis=v1,v2,...", tok);
    size_t kl = (size_t)(eq - tok);
    int k = kl == 5 && !strncmp(tok, "steps", 5) ? PB_AXIS_STEPS
          : kl == 3 && !strncmp(tok, "cfg", 3)   ? PB_AXIS_CFG
          : kl == 4 && !strncmp(tok, "size", 4)  ? PB_AXIS_SIZE
                                                 : -1;
    if (k < 0) return px_errf(err, errlen, PX_EINVAL, "--matrix: unknown axis in '%s' (steps, cfg, size)", tok);
    axis *a = &ax[k];
    if (a->present) return px_errf(err, errlen, PX_EINVAL, "--matrix: axis %.*s given twice", (int)kl, tok);
    a->present = 1;
    char list[512];
    snprintf(list, sizeof list, "%s", eq + 1);
    char *save = NULL;
    for (char *it = strtok_r(list, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        if (a->n == AXIS_MAX) return px_errf(err, errlen, PX_ETOOBIG, "--matrix: more than %d values of an axis", AXIS_MAX);
        if (k == PB_AXIS_SIZE) {
            if (pb_parse_size(it, &a->w[a->n], &a->h[a->n], err, errlen)) return PX_EINVAL;
        } else {
            char *end;
            double v = strtod(it, &end);
            if (*end || !(v >= 0) || (k == PB_AXIS_STEPS && (v < 1 || v > 1000 || v != floor(v))))
                return px_errf(err, errlen, PX_EINVAL, "--matrix: bad %s value '%s'", k == PB_AXIS_STEPS ? "steps" : "cfg", it);
            a->v[a->n] = v;
        }
        a->n++;
    }
    if (!a->n) return px_errf(err, errlen, PX_EINVAL, "--matrix: axis '%.*s' has no value", (int)kl, tok);
    return 0;
}

/* The cell from base with axis k set to its value i. */
static void set(pb_gen_cell *c, const axis *ax, int k, int i)
{
    if (k == PB_AXIS_STEPS) c->steps = (int)ax[k].v[i];
    else if (k == PB_AXIS_CFG) c->cfg = ax[k].v[i];
    else {
        c->w = ax[k].w[i];
        c->h = ax[k].h[i];
    }
}

static int same(const pb_gen_cell *a, const pb_gen_cell *b)
{
    return a->steps == b->steps && fabs(a->cfg - b->cfg) < 1e-9 && a->w == b->w && a->h == b->h;
}

static void label(pb_gen_cell *c, const axis *ax, int only)
{
    size_t l = 0;
    c->label[0] = 0;
    for (int k = 0; k < PB_AXIS_N; k++) {
        if (!ax[k].present || (only >= 0 && k != only)) continue;
        l += (size_t)(k == PB_AXIS_STEPS ? snprintf(c->label + l, sizeof c->label - l, "%ssteps=%d", l ? " " : "", c->steps)
                    : k == PB_AXIS_CFG   ? snprintf(c->label + l, sizeof c->label - l, "%scfg=%g", l ? " " : "", c->cfg)
                                         : snprintf(c->label + l, sizeof c->label - l, "%ssize=%dx%d", l ? " " : "", c->w, c->h));
        if (l >= sizeof c->label) l = sizeof c->label - 1;
    }
    if (!c->label[0]) snprintf(c->label, sizeof c->label, "baseline");
}

int pb_matrix_build(const char *spec, const pb_gen_cell *base, int one_at_a_time, pb_gen_cell *cells,
                    int *ncells, int *baseline, char *err, size_t errlen)
{
    axis ax[PB_AXIS_N];
    memset(ax, 0, sizeof ax);
    *ncells = 0;
    *baseline = 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    int naxes = 0;
    for (char *tok = strtok_r(buf, " ;\t", &save); tok; tok = strtok_r(NULL, " ;\t", &save)) {
        int rc = parse_axis(tok, ax, err, errlen);
        if (rc) return rc;
        naxes++;
    }
    if (!naxes) return px_errf(err, errlen, PX_EINVAL, "--matrix: no axis (steps=..., cfg=..., size=...)");
    int n = 0;
    if (one_at_a_time) {
        cells[n] = *base;
        cells[n].axis = -1;
        snprintf(cells[n++].label, sizeof cells[0].label, "steps=%d cfg=%g size=%dx%d", base->steps, base->cfg,
                 base->w, base->h);
        for (int k = 0; k < PB_AXIS_N; k++)
            for (int i = 0; ax[k].present && i < ax[k].n; i++) {
                pb_gen_cell c = *base;
                set(&c, ax, k, i);
                if (same(&c, base)) continue;
                if (n == PB_MATRIX_MAX) return px_errf(err, errlen, PX_ETOOBIG, "--matrix: more than %d cells", PB_MATRIX_MAX);
                c.axis = k;
                label(&c, ax, k);
                cells[n++] = c;
            }
    } else {
        long total = 1;
        for (int k = 0; k < PB_AXIS_N; k++)
            if (ax[k].present) total *= ax[k].n;
        if (total > PB_MATRIX_MAX)
            return px_errf(err, errlen, PX_ETOOBIG, "--matrix: %ld cells, at most %d", total, PB_MATRIX_MAX);
        for (long idx = 0; idx < total; idx++) {
            pb_gen_cell c = *base;
            long r = idx;
            for (int k = PB_AXIS_N - 1; k >= 0; k--) { /* the first axis varies slowest */
                if (!ax[k].present) continue;
                set(&c, ax, k, (int)(r % ax[k].n));
                r /= ax[k].n;
            }
            c.axis = -1;
            label(&c, ax, -1);
            if (same(&c, base)) *baseline = n;
            cells[n++] = c;
        }
    }
    *ncells = n;
    return 0;
}
