/*
 * patchmatch_impl.h — what the three parts of PatchMatch (patchmatch.h)
 * share: a pyramid level's layout, the state of the parallel passes over one
 * level and the fixed split into bands of rows. patchmatch.c builds the
 * pyramid and runs the EM iterations, patchmatch_nnf.c searches the
 * nearest-neighbour field, patchmatch_vote.c weighs the matches and votes
 * the hole's pixels. Not for other modules.
 */
#ifndef PX_ENGINE_CLASSIC_PATCHMATCH_IMPL_H
#define PX_ENGINE_CLASSIC_PATCHMATCH_IMPL_H

#include "engine/classic/patchmatch.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HALF (PX_PM_PATCH / 2)
/* Rows of target centres per unit of parallel work. Fixed, so the split (and
 * with it every random stream) is the same for any number of threads. */
#define BAND_ROWS 16
/* Readable bytes after each level image: a patch row load reads 32 bytes
 * where the patch covers 28. */
#define IMG_PAD 16

/* Pixel states of a level. */
enum { LV_KNOWN = 0, LV_HOLE = 1, LV_PARTIAL = 2 };

typedef struct {
    int16_t x, y;
} pt;

typedef struct {
    int w, h;
    uint8_t *img;  /* w*h*4 + IMG_PAD bytes: R, G, B, S (1 = a source patch is centred here) */
    uint8_t *hole; /* LV_KNOWN, LV_HOLE or LV_PARTIAL (see level_down) */
    uint8_t *tgt;  /* 1 = the patch centred here is inside and overlaps the hole */
    int32_t *srcs; /* indices of the source centres */
    int nsrc, ntgt;
    int blind;      /* targets lying entirely in the hole: nothing known to match on */
    pt *nnf, *prev; /* match per target centre; prev = copy from before the sweep */
    uint32_t *dist; /* SSD of each target to its match */
    float *wt;      /* voting weight of each target */
} level;

/* State shared by the parallel passes over one level. */
typedef struct {
    level *l;
    uint64_t seed;
    int lvl, iter, sweep;
    int backward; /* scan direction of this sweep */
    int fresh;    /* recompute each target's current distance first */
    const level *coarse; /* for the upsampling pass */
    float inv_2sigma2;   /* voting: weight = exp(-dist * inv_2sigma2) */
    int max_radius;      /* random search starts at this radius */
    const atomic_int *cancel;
} pass;

static inline bool is_cancelled(const atomic_int *cancel)
{
    return cancel && atomic_load_explicit(cancel, memory_order_relaxed);
}

/* Bands of rows of a level; every pass splits a level the same way. */
static inline int nbands_of(const level *l)
{
    return (l->h + BAND_ROWS - 1) / BAND_ROWS;
}

static inline int band_end(const level *l, int b)
{
    return (b + 1) * BAND_ROWS < l->h ? (b + 1) * BAND_ROWS : l->h;
}

/* The passes over one level, each run as px_pool_parallel_for(pool,
 * nbands_of(l), 1, fn, &pass) over bands; each stops early once cancel is
 * set (the caller checks after). */

/* patchmatch_nnf.c: a random initial field (the coarsest level); the hole
 * and field seeded from p->coarse (every finer level); one PatchMatch sweep
 * (propagation, then random search) in direction p->backward. */
void pm_init_band(void *ctx, int begin, int end);
void pm_upsample_band(void *ctx, int begin, int end);
void pm_search_band(void *ctx, int begin, int end);

/* patchmatch_vote.c: each target's voting weight from its match distance
 * and p->inv_2sigma2; each hole pixel from the weighted votes. */
void pm_weight_band(void *ctx, int begin, int end);
void pm_vote_band(void *ctx, int begin, int end);

/* The inv_2sigma2 for level l's current distances (0 = uniform weights). */
float pm_weight_scale(const level *l);

#endif
