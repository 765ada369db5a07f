/*
 * patchmatch.h — multi-scale PatchMatch image completion for holes too wide
 * for diffusion (object removal), after Wexler, Shechtman & Irani, "Space-Time
 * Completion of Video" (PAMI 2007) with the nearest-neighbour field of Barnes
 * et al., "PatchMatch" (SIGGRAPH 2009), in the form described by Newson et
 * al., "Video Inpainting of Complex Scenes" (SIAM J. Imaging Sci. 2014).
 *
 * An image+mask pyramid is built; the coarsest level is seeded by Telea; at
 * each level EM iterations alternate a PatchMatch search (each 7×7 patch that
 * overlaps the hole looks for its most similar fully known patch) with a
 * weighted vote of all overlapping matches for every hole pixel. The field is
 * upsampled to seed the next finer level.
 *
 * Deterministic for a given seed and independent of the number of threads:
 * work is split into fixed bands of rows, each with its own random stream,
 * and a band reads its neighbours' matches from the previous sweep.
 */
#ifndef PX_ENGINE_CLASSIC_PATCHMATCH_H
#define PX_ENGINE_CLASSIC_PATCHMATCH_H

#include "core/pool.h"
#include "image/image.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Patch side in pixels (odd). Fixed: the distance kernel is written for it. */
#define PX_PM_PATCH 7

typedef struct px_pm_params {
    uint64_t seed;    /* random streams derive from it */
    int em_coarsest;  /* EM iterations at the coarsest level */
    int em_finest;    /* EM iterations at full resolution; levels between interpolate */
    int sweeps;       /* PatchMatch sweeps (propagation + random search) per EM iteration */
    int min_side;     /* no pyramid level gets smaller than this on its short side */
} px_pm_params;

/* The defaults (seed 0): see patchmatch.c for the values and why. */
void px_pm_defaults(px_pm_params *p);

/* Bytes of working memory px_patchmatch_inpaint needs for a w×h image. */
size_t px_pm_mem_estimate(int w, int h);

/*
 * Fills the holes of mask (c = 1, non-zero = hole) in img (RGB) into out (RGB,
 * same size, allocated by the caller; out may be img itself). Pixels outside
 * the mask are copied unchanged. Images smaller than the patch, and masks
 * that leave no fully known patch, fall back to Telea. prm NULL means the
 * defaults; pool NULL runs on the caller; cancel may be NULL and is polled
 * between bands of work, so cancellation returns within milliseconds.
 * Returns 0, PX_EINVAL, PX_ENOMEM or PX_ECANCELED (out then holds a partial
 * result), with a message in err.
 */
int px_patchmatch_inpaint(const px_image *img, const px_image *mask, const px_pm_params *prm,
                          px_pool *pool, const atomic_int *cancel, px_image *out, char *err,
                          size_t errlen);

#endif
