/*
 * webp.c — still WebP decode and encode through libwebp.
 *
 * The header is read with WebPGetFeatures first, so animated files and
 * oversized canvases are refused before anything is allocated; pixels are
 * then decoded straight into our own buffer.
 */
#include "image/webp.h"

#include "core/err.h"
#include "image/codec_impl.h"

#include <stdlib.h>
#include <string.h>
#include <webp/decode.h>
#include <webp/encode.h>

/* --- decode ------------------------------------------------------------------ */

static int status_error(VP8StatusCode st, char *err, size_t errlen)
{
    switch (st) {
    case VP8_STATUS_NOT_ENOUGH_DATA:
        return px_errf(err, errlen, PX_ETRUNC, "WebP data is truncated");
    case VP8_STATUS_OUT_OF_MEMORY:
        return px_errf(err, errlen, PX_ENOMEM, "out of memory decoding WebP");
    case VP8_STATUS_UNSUPPORTED_FEATURE:
        return px_errf(err, errlen, PX_EUNSUP, "WebP uses a feature that is not supported");
    case VP8_STATUS_BITSTREAM_ERROR:
        return px_errf(err, errlen, PX_ECORRUPT, "WebP data is corrupt: bitstream error");
    default:
        return px_errf(err, errlen, PX_ECORRUPT, "WebP data is corrupt (libwebp status %d)",
                       (int)st);
    }
}

int px_webp_decode(const uint8_t *data, size_t n, const px_img_limits *lim, px_image *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* The RIFF header states the file size. Checked first, so that a cut
     * file reads as truncated whatever libwebp would make of the rest, and
     * one cut in trailing chunks (which libwebp never reads) is caught. */
    if (n >= 8 && memcmp(data, "RIFF", 4) == 0) {
        uint64_t riff = (uint64_t)data[4] | (uint64_t)data[5] << 8 | (uint64_t)data[6] << 16 |
                        (uint64_t)data[7] << 24;
        if (riff + 8 > n)
            return px_errf(err, errlen, PX_ETRUNC, "WebP data is truncated (%zu of %llu bytes)", n,
                           (unsigned long long)(riff + 8));
    }
    WebPBitstreamFeatures f;
    VP8StatusCode st = WebPGetFeatures(data, n, &f);
    if (st != VP8_STATUS_OK) return status_error(st, err, errlen);
    if (f.has_animation) return px_errf(err, errlen, PX_EUNSUP, "animated WebP is not supported");
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg))
        return px_errf(err, errlen, PX_EINVAL, "libwebp version mismatch");
    /* The header's size is checked against lim before anything is allocated. */
    int c = f.has_alpha ? 4 : 3;
    px_image img;
    int rc = px_codec_alloc("WebP", &img, f.width, f.height, c, lim, err, errlen);
    if (rc) return rc;
    cfg.output.colorspace = c == 4 ? MODE_RGBA : MODE_RGB; /* not premultiplied */
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = img.px;
    cfg.output.u.RGBA.stride = img.w * c;
    cfg.output.u.RGBA.size = (size_t)img.w * (size_t)img.h * (size_t)c;
    st = WebPDecode(data, n, &cfg);
    WebPFreeDecBuffer(&cfg.output); /* frees nothing of ours: memory is external */
    if (st != VP8_STATUS_OK) {
        px_image_free(&img);
        return status_error(st, err, errlen);
    }
    *out = img;
    return 0;
}

/* --- encode ------------------------------------------------------------------ */

struct webp_sink {
    px_buf *out;
    int rc;
};

static int write_fn(const uint8_t *data, size_t size, const WebPPicture *pic)
{
    struct webp_sink *s = pic->custom_ptr;
    s->rc = px_buf_append(s->out, data, size);
    return s->rc == 0; /* 0 makes WebPEncode stop */
}

/* WebP has no gray mode: gray is replicated into a temporary RGB copy. */
static int import_pixels(WebPPicture *pic, const px_image *img)
{
    int stride = img->w * img->c;
    if (img->c == 4) return WebPPictureImportRGBA(pic, img->px, stride);
    if (img->c == 3) return WebPPictureImportRGB(pic, img->px, stride);
    size_t n = (size_t)img->w * (size_t)img->h;
    uint8_t *rgb = malloc(n * 3);
    if (!rgb) return 0;
    for (size_t i = 0; i < n; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = img->px[i];
    int ok = WebPPictureImportRGB(pic, rgb, img->w * 3);
    free(rgb);
    return ok;
}

int px_webp_encode(const px_image *img, int quality, px_buf *out, char *err, size_t errlen)
{
    if (quality < 1 || quality > 100)
        return px_errf(err, errlen, PX_EINVAL, "WebP quality %d is not in 1..100", quality);
    if (img->w > WEBP_MAX_DIMENSION || img->h > WEBP_MAX_DIMENSION)
        return px_errf(err, errlen, PX_ETOOBIG, "WebP cannot store %dx%d: above %d px a side",
                       img->w, img->h, WEBP_MAX_DIMENSION);
    WebPConfig cfg;
    if (!WebPConfigInit(&cfg)) return px_errf(err, errlen, PX_EINVAL, "libwebp version mismatch");
    if (quality == 100) {
        /* The fastest preset: on a 512x512 photo it takes ~20 ms against
         * ~250 ms for preset 3, for 11% more bytes (still below PNG level 1),
         * the same trade as our PNG default. */
        WebPConfigLosslessPreset(&cfg, 0);
        cfg.exact = 1;
    } else {
        cfg.quality = (float)quality;
    }
    WebPPicture pic;
    if (!WebPPictureInit(&pic)) return px_errf(err, errlen, PX_EINVAL, "libwebp version mismatch");
    pic.width = img->w;
    pic.height = img->h;
    pic.use_argb = cfg.lossless; /* lossless works on ARGB, lossy on YUV */
    struct webp_sink sink = {.out = out};
    pic.writer = write_fn;
    pic.custom_ptr = &sink;

    int rc = 0;
    if (!import_pixels(&pic, img))
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory encoding WebP");
    else if (!WebPEncode(&cfg, &pic)) {
        if (sink.rc == PX_ETOOBIG)
            rc = px_errf(err, errlen, PX_ETOOBIG,
                         "encoded WebP is larger than the output limit of %zu bytes", out->max);
        else if (sink.rc || pic.error_code == VP8_ENC_ERROR_OUT_OF_MEMORY ||
                 pic.error_code == VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY)
            rc = px_errf(err, errlen, PX_ENOMEM, "out of memory encoding WebP");
        else
            rc = px_errf(err, errlen, PX_EINVAL, "WebP encoder failed (libwebp error %d)",
                         (int)pic.error_code);
    }
    WebPPictureFree(&pic);
    return rc;
}
