/*
 * inpaint.c — decode/validate, encode, and the one-shot job (see inpaint.h).
 */
#include "serve/inpaint.h"

#include "core/clock.h"
#include "core/err.h"
#include "image/mask.h"

#include <stdio.h>
#include <string.h>

void px_inpaint_input_free(px_inpaint_input *in)
{
    px_image_free(&in->rgb);
    px_image_free(&in->alpha);
    px_image_free(&in->mask);
    in->hole_pixels = 0;
}

int px_inpaint_decode(const uint8_t *image, size_t image_len, const uint8_t *mask,
                      size_t mask_len, const px_img_limits *lim, px_inpaint_input *in,
                      char *err, size_t errlen)
{
    px_image src = {0}, mraw = {0};
    char inner[200];
    int rc;
    memset(in, 0, sizeof *in);
    if ((rc = px_decode(image, image_len, lim, &src, inner, sizeof inner))) {
        px_errf(err, errlen, rc, "image: %s", inner);
        goto fail;
    }
    if ((rc = px_decode(mask, mask_len, lim, &mraw, inner, sizeof inner))) {
        px_errf(err, errlen, rc, "mask: %s", inner);
        goto fail;
    }
    if (mraw.w != src.w || mraw.h != src.h) {
        rc = px_errf(err, errlen, PX_EINVAL, "mask is %dx%d but the image is %dx%d", mraw.w,
                     mraw.h, src.w, src.h);
        goto fail;
    }
    if ((rc = px_image_split_alpha(&src, &in->rgb, &in->alpha)) ||
        (rc = px_mask_binarise(&mraw, &in->mask))) {
        px_errf(err, errlen, rc, "out of memory preparing a %dx%d image", src.w, src.h);
        goto fail;
    }
    in->hole_pixels = px_mask_count(&in->mask);
    px_image_free(&src);
    px_image_free(&mraw);
    return 0;
fail:
    px_image_free(&src);
    px_image_free(&mraw);
    px_inpaint_input_free(in);
    return rc;
}

int px_inpaint_encode(const px_image *rgb, const px_image *alpha, const px_encode_opts *eo,
                      px_buf *out, char *err, size_t errlen)
{
    px_image merged = {0};
    char inner[200];
    int rc = px_image_merge_alpha(rgb, alpha && alpha->px ? alpha : NULL, &merged);
    if (rc) return px_errf(err, errlen, rc, "out of memory merging alpha");
    rc = px_encode(&merged, eo, out, inner, sizeof inner);
    px_image_free(&merged);
    if (rc) return px_errf(err, errlen, rc, "encoding the result: %s", inner);
    return 0;
}

int px_inpaint_bytes(const px_inpaint_params *p, const uint8_t *image, size_t image_len,
                     const uint8_t *mask, size_t mask_len, px_inpaint_result *res, char *err,
                     size_t errlen)
{
    px_inpaint_input in;
    px_hd_plan plan = {0};
    px_image out = {0};
    px_hd_params orig = {.strategy = PX_HD_ORIGINAL, .crop_trigger = 1, .resize_limit = 8};
    int rc;
    memset(res, 0, sizeof *res);
    px_buf_init(&res->encoded, p->max_output);

    int64_t t0 = px_now_ns();
    if ((rc = px_inpaint_decode(image, image_len, mask, mask_len, p->limits, &in, err, errlen)))
        return rc;
    res->hole_pixels = in.hole_pixels;
    if ((rc = px_hd_plan_make(&in.rgb, &in.mask, p->hd ? p->hd : &orig, &plan, err, errlen)) ||
        (rc = px_image_alloc(&out, in.rgb.w, in.rgb.h, 3, NULL, NULL, 0)))
        goto fail;
    res->windows = plan.nwin;
    int64_t t1 = px_now_ns();
    res->decode_ns = t1 - t0;

    for (int i = 0; i < plan.nwin; i++) {
        if (p->cancel && atomic_load(p->cancel)) {
            rc = px_errf(err, errlen, PX_ECANCELED, "cancelled");
            goto fail;
        }
        px_hd_window *w = &plan.win[i];
        px_engine_item item = {.image = &w->image, .mask = &w->mask, .out = &w->out,
                               .seed = p->seed, .method = p->method, .cancel = p->cancel};
        if ((rc = px_engine_run(p->engine, &item, 1))) {
            px_errf(err, errlen, rc, "%s", item.err);
            goto fail;
        }
    }
    if ((rc = px_hd_assemble(&plan, &in.rgb, &in.mask, &out))) {
        px_errf(err, errlen, rc, "out of memory assembling the result");
        goto fail;
    }
    int64_t t2 = px_now_ns();
    res->infer_ns = t2 - t1;

    px_encode_opts eo = {.fmt = p->out_fmt ? p->out_fmt : PX_FMT_PNG, .quality = p->quality,
                         .png_level = p->png_level};
    if ((rc = px_inpaint_encode(&out, &in.alpha, &eo, &res->encoded, err, errlen))) goto fail;
    res->encode_ns = px_now_ns() - t2;
    res->fmt = eo.fmt;
    res->width = in.rgb.w;
    res->height = in.rgb.h;
    rc = 0;
    goto done;
fail:
    px_buf_free(&res->encoded);
done:
    px_hd_free(&plan);
    px_image_free(&out);
    px_inpaint_input_free(&in);
    return rc;
}
