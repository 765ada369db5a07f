/*
 * classic.h — the weights-free "classic" engine: PatchMatch completion for
 * object removal, Telea fast marching for thin masks, and "auto" choosing by
 * mask thickness. Registered as px_engine_classic_ops (engine_impl.h).
 *
 * Methods: "auto" (the default) fills each blob of the mask by the method
 * its thickness calls for — Telea first on the thin blobs, then PatchMatch on
 * the rest, which may copy from the Telea-filled strokes; "patchmatch" and
 * "telea" use one method for the whole mask.
 */
#ifndef PX_ENGINE_CLASSIC_CLASSIC_H
#define PX_ENGINE_CLASSIC_CLASSIC_H

#include "image/image.h"
#include "image/mask.h"

#include <stdint.h>

/* Holes whose distance transform stays at or below this many pixels (strokes
 * up to about twice as wide) count as thin and go to Telea under "auto". */
#define PX_CLASSIC_THIN_RADIUS 4.0f

enum px_classic_choice { PX_CLASSIC_TELEA = 1, PX_CLASSIC_PATCHMATCH = 2 };

/*
 * The plan "auto" follows for mask (c = 1, non-zero = hole): its blobs (as
 * px_mask_blobs gives them), their label map when labels is not NULL, and in
 * (*choice)[i] the method for blob i — PX_CLASSIC_TELEA when the blob's
 * largest distance-transform value is at most PX_CLASSIC_THIN_RADIUS, else
 * PX_CLASSIC_PATCHMATCH. Every output is malloc'd and owned by the caller
 * (NULL when the mask is empty). Returns 0, PX_EINVAL or PX_ENOMEM.
 */
int px_classic_plan(const px_image *mask, px_blob **blobs, int *nblobs, int **labels,
                    uint8_t **choice);

#endif
