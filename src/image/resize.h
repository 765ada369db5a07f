/*
 * resize.h — resampling for image pyramids and the large-image strategies.
 */
#ifndef PX_IMAGE_RESIZE_H
#define PX_IMAGE_RESIZE_H

#include "image/image.h"

/*
 * Resizes src to w×h (same channel count) into dst (newly allocated, caller
 * frees). Shrinking averages the covered source area (no aliasing);
 * enlarging interpolates bilinearly. Returns 0, PX_EINVAL or PX_ENOMEM.
 */
int px_resize(const px_image *src, int w, int h, px_image *dst);

/* Resizes a binary mask: a destination pixel is a hole if any source pixel it
 * covers is (so holes never shrink away). Returns 0, PX_EINVAL or PX_ENOMEM. */
int px_resize_mask(const px_image *mask, int w, int h, px_image *dst);

#endif
