/*
 * resize.h — resampling for image pyramids and the large-image strategies.
 */
#ifndef PX_IMAGE_RESIZE_H
#define PX_IMAGE_RESIZE_H

#include "image/image.h"

/*
 * Resizes src to w×h (same channel count) into dst (newly allocated, caller
 * frees). Each axis on its own: shrinking averages the covered source area
 * (no aliasing, any ratio), enlarging interpolates bilinearly between pixel
 * centres. Weights are exact integers, so an integer-ratio shrink gives the
 * rounded mean of each block exactly. Returns 0, PX_EINVAL (no pixels, a
 * side < 1 or above 2^22, c not 1/3/4) or PX_ENOMEM; dst is zeroed on error.
 */
int px_resize(const px_image *src, int w, int h, px_image *dst);

/* Resizes a mask (c=1, non-zero = hole) to a binary one (0/255): a
 * destination pixel is a hole if any source pixel its area overlaps is, in
 * both directions, so holes never shrink away. Returns 0, PX_EINVAL or
 * PX_ENOMEM; dst (newly allocated, caller frees) is zeroed on error. */
int px_resize_mask(const px_image *mask, int w, int h, px_image *dst);

#endif
