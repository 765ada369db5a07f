/*
 * inpaint.h — one inpainting job from encoded bytes to encoded bytes:
 * decode image and mask, validate, strip alpha, binarise the mask, run the
 * engine, put alpha back, encode. The server's workers and the CLI both use
 * this, so they behave identically.
 */
#ifndef PX_SERVE_INPAINT_H
#define PX_SERVE_INPAINT_H

#include "core/buf.h"
#include "engine/engine.h"
#include "image/codec.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct px_inpaint_params {
    px_engine *engine;
    const char *method;          /* NULL = engine default */
    uint64_t seed;
    enum px_format out_fmt;      /* PX_FMT_UNKNOWN = PNG */
    int quality;                 /* 0 = codec default */
    int png_level;               /* < 0 = codec default (fast) */
    const px_img_limits *limits; /* NULL = defaults */
    size_t max_output;           /* cap on the encoded result, bytes */
    const atomic_int *cancel;    /* may be NULL */
} px_inpaint_params;

typedef struct px_inpaint_result {
    px_buf encoded;        /* the output file's bytes; caller frees with px_buf_free */
    enum px_format fmt;
    int width, height;
    size_t hole_pixels;
    int64_t decode_ns, infer_ns, encode_ns;
} px_inpaint_result;

/*
 * Runs the whole job. Returns 0 (res filled), or the first failure with a
 * message: decode errors (PX_EUNSUP, PX_ETOOBIG, PX_ETRUNC, PX_ECORRUPT,
 * prefixed "image: " or "mask: "), PX_EINVAL for a mask whose size differs
 * from the image, the engine's error, PX_ECANCELED, or an encode error. On
 * failure res holds nothing to free.
 */
int px_inpaint_bytes(const px_inpaint_params *p, const uint8_t *image, size_t image_len,
                     const uint8_t *mask, size_t mask_len, px_inpaint_result *res, char *err,
                     size_t errlen);

#endif
