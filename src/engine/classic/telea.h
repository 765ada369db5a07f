/*
 * telea.h — Telea's fast-marching inpainting (A. Telea, "An Image Inpainting
 * Technique Based on the Fast Marching Method", JGT 2004), used by the
 * classic engine for thin holes (scratches, strokes, text) and to seed the
 * coarsest level of PatchMatch.
 *
 * Each hole pixel is filled once, in order of its distance T from the hole
 * boundary (a narrow band kept in a min-heap), as a weighted mean of the
 * already known pixels within `radius`, each extrapolated along its image
 * gradient. Independent blobs run in parallel on the pool; the result does
 * not depend on the number of threads.
 */
#ifndef PX_ENGINE_CLASSIC_TELEA_H
#define PX_ENGINE_CLASSIC_TELEA_H

#include "core/pool.h"
#include "image/image.h"
#include "image/mask.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Default neighbourhood radius in pixels (OpenCV's examples use 3..5). */
#define PX_TELEA_RADIUS 5

/*
 * Fills every hole of mask (c = 1, non-zero = hole) in img (RGB) into out
 * (RGB, same size, allocated by the caller; out may be img itself). Pixels
 * outside the mask are copied unchanged. If the image has no known pixel at
 * all the holes become mid-gray. radius < 1 is taken as 1. pool may be NULL
 * (runs on the caller), cancel may be NULL.
 * Returns 0, PX_EINVAL (sizes or channels wrong), PX_ENOMEM or PX_ECANCELED
 * (out then holds a partial result), with a message in err.
 */
int px_telea_inpaint(const px_image *img, const px_image *mask, int radius, px_pool *pool,
                     const atomic_int *cancel, px_image *out, char *err, size_t errlen);

/*
 * As px_telea_inpaint, but fills only the blobs i (of px_mask_blobs(mask),
 * whose label map is `labels`) with select[i] != 0. Every hole pixel of mask
 * counts as unknown, filled or not, so unselected blobs are left for another
 * method and never used as a source. select NULL selects every blob.
 */
int px_telea_inpaint_blobs(const px_image *img, const px_image *mask, const int *labels,
                           const px_blob *blobs, int nblobs, const uint8_t *select, int radius,
                           px_pool *pool, const atomic_int *cancel, px_image *out, char *err,
                           size_t errlen);

#endif
