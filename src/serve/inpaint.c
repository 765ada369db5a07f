/*
 * inpaint.c — the decode → engine → encode pipeline of one request.
 */
#include "serve/inpaint.h"

#include "core/clock.h"
#include "core/err.h"
#include "image/mask.h"

#include <string.h>

static int cancelled(const px_inpaint_params *p)
{
    return p->cancel && atomic_load(p->cancel);
}

int px_inpaint_bytes(const px_inpaint_params *p, const uint8_t *image, size_t image_len,
                     const uint8_t *mask, size_t mask_len, px_inpaint_result *res, char *err,
                     size_t errlen)
{
    px_image src = {0}, rgb = {0}, alpha = {0}, mraw = {0}, mbin = {0}, out = {0}, merged = {0};
    char inner[200];
    int rc;
    memset(res, 0, sizeof *res);
    px_buf_init(&res->encoded, p->max_output);

    int64_t t0 = px_now_ns();
    if ((rc = px_decode(image, image_len, p->limits, &src, inner, sizeof inner))) {
        px_errf(err, errlen, rc, "image: %s", inner);
        goto fail;
    }
    if ((rc = px_decode(mask, mask_len, p->limits, &mraw, inner, sizeof inner))) {
        px_errf(err, errlen, rc, "mask: %s", inner);
        goto fail;
    }
    if (mraw.w != src.w || mraw.h != src.h) {
        rc = px_errf(err, errlen, PX_EINVAL, "mask is %dx%d but the image is %dx%d", mraw.w,
                     mraw.h, src.w, src.h);
        goto fail;
    }
    if ((rc = px_image_split_alpha(&src, &rgb, &alpha)) || (rc = px_mask_binarise(&mraw, &mbin)) ||
        (rc = px_image_alloc(&out, rgb.w, rgb.h, 3, p->limits, inner, sizeof inner))) {
        px_errf(err, errlen, rc, "out of memory preparing a %dx%d image", src.w, src.h);
        goto fail;
    }
    px_image_free(&src);
    px_image_free(&mraw);
    res->hole_pixels = px_mask_count(&mbin);
    int64_t t1 = px_now_ns();
    res->decode_ns = t1 - t0;
    if (cancelled(p)) {
        rc = px_errf(err, errlen, PX_ECANCELED, "cancelled");
        goto fail;
    }

    px_engine_item item = {.image = &rgb, .mask = &mbin, .out = &out, .seed = p->seed,
                           .method = p->method, .cancel = p->cancel};
    if ((rc = px_engine_run(p->engine, &item, 1))) {
        px_errf(err, errlen, rc, "%s", item.err);
        goto fail;
    }
    int64_t t2 = px_now_ns();
    res->infer_ns = t2 - t1;

    if ((rc = px_image_merge_alpha(&out, alpha.px ? &alpha : NULL, &merged))) {
        px_errf(err, errlen, rc, "out of memory merging alpha");
        goto fail;
    }
    px_encode_opts eo = {.fmt = p->out_fmt ? p->out_fmt : PX_FMT_PNG, .quality = p->quality,
                         .png_level = p->png_level};
    if ((rc = px_encode(&merged, &eo, &res->encoded, inner, sizeof inner))) {
        px_errf(err, errlen, rc, "encoding the result: %s", inner);
        goto fail;
    }
    res->encode_ns = px_now_ns() - t2;
    res->fmt = eo.fmt;
    res->width = merged.w;
    res->height = merged.h;
    rc = 0;
    goto done;
fail:
    px_buf_free(&res->encoded);
done:
    px_image_free(&src);
    px_image_free(&rgb);
    px_image_free(&alpha);
    px_image_free(&mraw);
    px_image_free(&mbin);
    px_image_free(&out);
    px_image_free(&merged);
    return rc;
}
