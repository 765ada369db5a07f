/*
 * inpaint.h — the steps of one inpainting job around the engine: decode and
 * validate the inputs, plan the engine inputs (large-image strategy), and
 * put the result back together and encode it. The server's inpaint request kind (kind_inpaint.c) runs
 * these steps on its CPU pool with the scheduler in between; the CLI runs
 * them in a row through px_inpaint_bytes, so both behave identically.
 */
#ifndef PX_SERVE_INPAINT_H
#define PX_SERVE_INPAINT_H

#include "core/buf.h"
#include "engine/engine.h"
#include "image/codec.h"
#include "serve/hd.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Decoded, validated inputs of one job. */
typedef struct px_inpaint_input {
    px_image rgb;       /* the image without alpha, c = 3 */
    px_image alpha;     /* its alpha plane (c = 1), px NULL when it had none */
    px_image mask;      /* binary mask, same size */
    size_t hole_pixels;
} px_inpaint_input;

/*
 * Decodes image and mask, checks the mask has the image's size, splits off
 * alpha and binarises the mask. Returns 0, or a decode error (PX_EUNSUP,
 * PX_ETOOBIG, PX_ETRUNC, PX_ECORRUPT; message prefixed "image: " or "mask: "),
 * PX_EINVAL for a mask of another size, or PX_ENOMEM. On failure in holds
 * nothing to free; on success the caller frees it with px_inpaint_input_free.
 */
int px_inpaint_decode(const uint8_t *image, size_t image_len, const uint8_t *mask,
                      size_t mask_len, const px_img_limits *lim, px_inpaint_input *in,
                      char *err, size_t errlen);

void px_inpaint_input_free(px_inpaint_input *in);

/* Puts alpha (may be NULL or empty) back on the RGB result and encodes it,
 * appending to out. Returns 0 or the codec's error with a message. */
int px_inpaint_encode(const px_image *rgb, const px_image *alpha, const px_encode_opts *eo,
                      px_buf *out, char *err, size_t errlen);

typedef struct px_inpaint_params {
    px_engine *engine;
    const char *method;          /* NULL = engine default */
    uint64_t seed;
    const px_hd_params *hd;      /* NULL = ORIGINAL */
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
    enum px_hd_strategy hd_used; /* the large-image strategy that applied */
    int windows;           /* engine inputs it made */
    int64_t decode_ns, infer_ns, encode_ns;
} px_inpaint_result;

/*
 * The whole job in the calling thread: decode, plan, run every window on the
 * engine, assemble, encode. Returns 0 (res filled) or the first failure with
 * a message (decode errors, the engine's error, PX_ECANCELED, encode
 * errors). On failure res holds nothing to free.
 */
int px_inpaint_bytes(const px_inpaint_params *p, const uint8_t *image, size_t image_len,
                     const uint8_t *mask, size_t mask_len, px_inpaint_result *res, char *err,
                     size_t errlen);

#endif
