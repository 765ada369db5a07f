/*
 * request.h — an inpainting request as the service understands it, parsed
 * from either dialect:
 *
 *  - PX_DIALECT_V1, POST /api/v1/inpaint (IOPaint-compatible) and POST
 *    /api/v1/jobs: JSON {image, mask, engine?, method?, output_format?,
 *    quality?, return?, seed?, timeout_ms?, priority?, hd_strategy?,
 *    hd_strategy_crop_trigger_size?, hd_strategy_crop_margin?,
 *    hd_strategy_resize_limit?} with base64 images, or multipart/form-data with `image` and
 *    `mask` file parts and the same options as text parts. Unknown JSON fields
 *    are ignored (IOPaint clients send many).
 *  - PX_DIALECT_SEED, POST /inpaint (the seed documents' API): JSON
 *    {image, mask, return_type: "image_url" | "base64"} plus the same options.
 *
 * Parsing validates everything that can be checked without decoding the
 * images, so a malformed request is refused before it takes a queue slot.
 */
#ifndef PX_SERVE_REQUEST_H
#define PX_SERVE_REQUEST_H

#include "image/codec.h"
#include "serve/routes.h"

#include <stddef.h>
#include <stdint.h>

enum px_return { PX_RETURN_IMAGE, PX_RETURN_BASE64, PX_RETURN_URL };

typedef struct px_inpaint_req {
    uint8_t *image; /* encoded image bytes, malloc'd */
    size_t image_len;
    uint8_t *mask; /* encoded mask bytes, malloc'd */
    size_t mask_len;
    char engine[32];         /* "" = the server's default engine */
    char method[32];         /* "" = the engine's default method */
    enum px_format out_fmt;  /* PX_FMT_UNKNOWN = the input's format */
    int quality;             /* 0 = codec default */
    enum px_return ret;
    uint64_t seed;
    int64_t timeout_ms; /* 0 = the server's default */
    int priority;       /* enum px_priority, -1 = normal */
    int hd_strategy;    /* enum px_hd_strategy, -1 = the server's default */
    int hd_crop_trigger, hd_crop_margin, hd_resize_limit; /* -1 = default */
} px_inpaint_req;

/* Limits on what a JSON body may contain, besides its byte size. */
#define PX_JSON_MAX_DEPTH 32
#define PX_JSON_MAX_TOKENS 4096

/*
 * Parses a JSON body. max_image caps each decoded image. Returns 0, or
 * PX_EINVAL (malformed JSON, too deep or too many values, missing or
 * mistyped field, bad base64, bad option value), PX_ETOOBIG (an image above
 * max_image), PX_ENOMEM — each with a message naming the field. On error
 * nothing needs freeing; on success the caller calls px_req_free.
 */
int px_req_parse_json(const char *body, size_t n, enum px_dialect d, size_t max_image,
                      px_inpaint_req *req, char *err, size_t errlen);

/* Parses a multipart/form-data body (content_type is the header value). Same
 * contract as px_req_parse_json; PX_EUNSUP if content_type is not multipart. */
int px_req_parse_multipart(const char *content_type, const uint8_t *body, size_t n,
                           enum px_dialect d, size_t max_image, px_inpaint_req *req, char *err,
                           size_t errlen);

/* Frees the image buffers and zeroes the request. */
void px_req_free(px_inpaint_req *req);

/* Frees only the image buffers (once decoded they are not needed), keeping
 * the options. */
void px_req_free_images(px_inpaint_req *req);

#endif
