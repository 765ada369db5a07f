/*
 * payload.h — the images and masks pixbench sends: generated photo-like
 * images at given sizes with masks covering a random fraction of the image,
 * or the user's own images with generated masks. Everything is derived from
 * (seed, index), so the same command sends the same bytes every time.
 */
#ifndef PB_PAYLOAD_H
#define PB_PAYLOAD_H

#include "core/buf.h"
#include "image/codec.h"

#include <stdint.h>

typedef struct pb_payload {
    int w, h;
    double coverage;  /* fraction of mask pixels that are holes */
    enum px_format fmt; /* of image */
    px_buf image;     /* encoded image (owned) */
    px_buf mask;      /* encoded PNG mask, 0/255 gray (owned) */
} pb_payload;

/* Makes a w×h photo-like image (smooth light, textured regions, objects,
 * sensor noise: it compresses like a photograph) encoded as fmt (PNG or
 * JPEG), and a mask whose hole fraction is drawn uniformly from [lo, hi] and
 * lands inside [lo, hi] (brush strokes; see payload.c). Returns 0 or
 * PX_EINVAL/PX_ENOMEM with a message; out is owned by the caller
 * (pb_payload_free). */
int pb_payload_generate(int w, int h, double lo, double hi, uint64_t seed, uint64_t index,
                        enum px_format fmt, pb_payload *out, char *err, size_t errlen);

/* Uses the image file at path as it is (its bytes are sent unchanged) and
 * generates a mask for its size as above. */
int pb_payload_from_file(const char *path, double lo, double hi, uint64_t seed, uint64_t index,
                         pb_payload *out, char *err, size_t errlen);

/* Draws the mask alone into a w×h c=1 image (0/255, caller frees pixels);
 * returns the achieved coverage or a negative PX_E* code. */
int pb_mask_generate(int w, int h, double lo, double hi, uint64_t seed, uint64_t index,
                     px_image *mask, double *coverage);

void pb_payload_free(pb_payload *p);

#endif
