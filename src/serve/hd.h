/*
 * hd.h — the large-image strategies of IOPaint, as engine work plans.
 *
 *  ORIGINAL  the whole image is one engine input.
 *  RESIZE    if the longest side exceeds resize_limit, a copy scaled to fit
 *            is inpainted, scaled back, and only the masked pixels pasted.
 *  CROP      if the longest side exceeds crop_trigger, one window per mask
 *            blob: its bounding box plus crop_margin on each side, shifted
 *            inward at the image borders (so it keeps its size and gains
 *            context from the other side); each window is inpainted with the
 *            mask inside it and only its own blob's pixels are pasted back.
 *            With crop_bucket > 0 every window is a square whose side is
 *            the larger wanted side rounded up to a multiple of crop_bucket
 *            (each side capped at the image's): a 1024x1024 image at bucket
 *            256 has four window shapes (256², 512², 768², 1024²), so GPU
 *            engines reuse a few plans, built at start-up, instead of one
 *            per blob size. More context, same rule for what is pasted.
 *            With crop_merge, blobs whose windows together cost no more
 *            pixels as one window (their union's) than apart share one, and
 *            if one window around all of them costs no more than the rest,
 *            that one runs: a brush mask of many strokes on a 1024² image
 *            is one run of the image, not five overlapping windows.
 *
 * Below the trigger sizes both RESIZE and CROP fall back to ORIGINAL. The
 * windows of a plan are independent engine inputs, so a scheduler can run
 * them (and those of other requests) in one batch.
 */
#ifndef PX_SERVE_HD_H
#define PX_SERVE_HD_H

#include "image/image.h"

#include <stddef.h>

enum px_hd_strategy { PX_HD_ORIGINAL = 0, PX_HD_RESIZE = 1, PX_HD_CROP = 2 };

/* "Original", "Resize", "Crop" (IOPaint's spelling). */
const char *px_hd_name(enum px_hd_strategy s);

/* Parses the names case-insensitively; -1 if unknown. */
int px_hd_parse(const char *s);

typedef struct px_hd_params {
    enum px_hd_strategy strategy;
    int crop_trigger; /* CROP only when max(w, h) > this (IOPaint: 800) */
    int crop_margin;  /* pixels of context around each blob (IOPaint: 128) */
    int resize_limit; /* RESIZE only when max(w, h) > this (IOPaint: 1280) */
    int crop_bucket;  /* CROP windows: squares of a multiple of this; 0 = exact
                         (IOPaint's); the server picks per engine (kind_inpaint.c) */
    int crop_merge;   /* CROP: 1 = one window for blobs whose windows cost no more
                         pixels together than apart (default); 0 = one per blob
                         (IOPaint's) */
} px_hd_params;

/* IOPaint's defaults: CROP, trigger 800, margin 128, resize limit 1280,
 * no bucket; plus merging of CROP windows (IOPaint has none). */
void px_hd_defaults(px_hd_params *p);

/*
 * The window shapes CROP with p's bucket can give a w x h image, smallest
 * first, into ws/hs (at most max): what GPU engines warm up for. 0 when p
 * does not crop such an image or has no bucket.
 */
int px_hd_window_shapes(const px_hd_params *p, int w, int h, int *ws, int *hs, int max);

typedef struct px_hd_window {
    int x, y, w, h;   /* region of the original image (CROP), else the whole image */
    px_image image;   /* engine input: RGB crop or scaled copy (owned) */
    px_image mask;    /* binary mask of that input (owned) */
    px_image out;     /* engine output, same size (owned, allocated by the plan) */
    int label;        /* CROP: the blob whose pixels this window pastes; else 0 */
} px_hd_window;

typedef struct px_hd_plan {
    enum px_hd_strategy used; /* what applies to this image (ORIGINAL below triggers) */
    px_hd_window *win;
    int nwin;
    int *labels;              /* CROP: blob label per pixel of the original (owned) */
} px_hd_plan;

/*
 * Plans the engine inputs for rgb (c = 3) and its binary mask. An empty mask
 * gives zero windows. Returns 0, PX_EINVAL for bad parameters, or PX_ENOMEM
 * (plan then empty). The caller frees the plan with px_hd_free.
 */
int px_hd_plan_make(const px_image *rgb, const px_image *mask, const px_hd_params *p,
                    px_hd_plan *plan, char *err, size_t errlen);

/*
 * Writes the final image into out (RGB, same size as rgb, allocated by the
 * caller): rgb everywhere, with the inpainted pixels of every window pasted
 * into the hole. Pixels outside the mask are rgb's, byte for byte. Returns 0
 * or PX_ENOMEM (RESIZE scales back through a temporary image).
 */
int px_hd_assemble(const px_hd_plan *plan, const px_image *rgb, const px_image *mask,
                   px_image *out);

void px_hd_free(px_hd_plan *plan);

#endif
