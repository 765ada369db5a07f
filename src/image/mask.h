/*
 * mask.h — inpainting masks: binarisation and the geometry helpers the
 * engines and the large-image strategies use.
 *
 * A binary mask is a px_image with c = 1 whose pixels are 0 (keep) or 255
 * (hole).
 */
#ifndef PX_IMAGE_MASK_H
#define PX_IMAGE_MASK_H

#include "image/image.h"

#include <stddef.h>

/*
 * Turns any decoded mask into a binary one (newly allocated, caller frees).
 * Gray or RGB: a pixel is a hole when any channel is non-zero. With alpha:
 * if the alpha channel is not fully opaque it carries the mask (hole where
 * alpha > 0: strokes painted on a transparent layer); a fully opaque alpha is
 * ignored and the colour channels decide. Returns 0 or PX_ENOMEM.
 */
int px_mask_binarise(const px_image *src, px_image *out);

/* Number of hole pixels in a binary mask. */
size_t px_mask_count(const px_image *mask);

/* Grows the holes by `radius` pixels (Euclidean disc) into out (newly
 * allocated). radius <= 0 copies. Returns 0 or PX_ENOMEM. */
int px_mask_dilate(const px_image *mask, int radius, px_image *out);

/*
 * Exact Euclidean distance transform: for each pixel, the distance to the
 * nearest non-hole pixel (0 outside the holes). *dist is malloc'd w*h floats,
 * caller frees. A mask with no known pixel at all gets distances to the
 * image border instead (so "all hole" stays finite). Returns 0 or PX_ENOMEM.
 */
int px_mask_distance(const px_image *mask, float **dist);

typedef struct px_blob {
    int x0, y0, x1, y1; /* bounding box, x1/y1 exclusive */
    int area;           /* hole pixels */
    int label;          /* 1-based label in the label map */
} px_blob;

/*
 * Connected components (8-connected) of the holes. *blobs is malloc'd (caller
 * frees; NULL when there are none) and sorted by label, in raster order of each
 * blob's first pixel. If labels is not NULL, *labels receives a malloc'd w*h
 * int map (0 = keep, else the blob label). Returns 0 or PX_ENOMEM.
 */
int px_mask_blobs(const px_image *mask, px_blob **blobs, int *nblobs, int **labels);

/* Largest distance-transform value inside the holes: twice this is the
 * thickness of the thickest stroke. 0 for an empty mask. -1 on PX_ENOMEM. */
float px_mask_thickness(const px_image *mask);

#endif
