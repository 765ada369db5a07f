/*
 * fuzz_decode.c — libFuzzer target for px_decode, the entry point for
 * untrusted image bytes: any input must decode or fail cleanly (no crash,
 * leak, or sanitizer report) within small caps, and whatever decodes must
 * survive a lossless PNG round trip bit for bit.
 */
#include "core/buf.h"
#include "image/codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Small caps keep each run fast; the limit logic is the same at any size. */
    const px_img_limits lim = {.max_pixels = 4u << 20, .max_side = 4096};
    px_image img;
    char err[256];
    int rc = px_decode(data, size, &lim, &img, err, sizeof err);
    if (rc != 0) {
        /* A failure leaves nothing behind and always says why. */
        if (rc > 0 || img.px || err[0] == 0) abort();
        return 0;
    }
    if (img.w <= 0 || img.h <= 0 || img.w > 4096 || img.h > 4096 ||
        (uint64_t)img.w * (uint64_t)img.h > lim.max_pixels ||
        (img.c != 1 && img.c != 3 && img.c != 4))
        abort();

    px_buf png;
    px_buf_init(&png, 64u << 20);
    px_encode_opts opts = {.fmt = PX_FMT_PNG, .png_level = 0};
    if (px_encode(&img, &opts, &png, err, sizeof err) != 0) abort();
    px_image back;
    if (px_decode(png.data, png.len, &lim, &back, err, sizeof err) != 0) abort();
    if (back.w != img.w || back.h != img.h || back.c != img.c ||
        memcmp(back.px, img.px, (size_t)img.w * (size_t)img.h * (size_t)img.c) != 0)
        abort();
    px_image_free(&back);
    px_buf_free(&png);
    px_image_free(&img);
    return 0;
}
