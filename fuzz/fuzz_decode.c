/*
 * fuzz_decode.c — libFuzzer target for px_decode, the entry point for
 * untrusted image bytes: any input must decode or fail cleanly (no crash,
 * leak, or sanitizer report) within small caps, and whatever decodes must
 * survive a lossless PNG round trip bit for bit.
 *
 * The codec libraries are not instrumented, so libFuzzer cannot learn to get
 * past libpng's chunk CRCs; PNG inputs are therefore also decoded with every
 * CRC recomputed, which lets mutations reach IHDR, zlib and filter handling.
 * PNG inputs also go through both PNG decoders (png_fast.c and libpng),
 * which must agree.
 */
#include "core/buf.h"
#include "core/err.h"
#include "image/codec.h"
#include "image/png.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The CRC of PNG chunks is zlib's CRC-32. */
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    return (uint32_t)crc32(0L, p, (uInt)n);
}

/* Rewrites the CRC of every complete chunk; returns whether any changed. */
static int fix_png_crcs(uint8_t *p, size_t n)
{
    int changed = 0;
    for (size_t i = 8; i + 12 <= n;) {
        uint32_t len =
            (uint32_t)p[i] << 24 | (uint32_t)p[i + 1] << 16 | (uint32_t)p[i + 2] << 8 | p[i + 3];
        if (len > n - i - 12) break;
        uint32_t crc = crc32_of(p + i + 4, (size_t)len + 4);
        uint8_t *c = p + i + 8 + len;
        uint8_t want[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8),
                           (uint8_t)crc};
        if (memcmp(c, want, 4) != 0) memcpy(c, want, 4), changed = 1;
        i += (size_t)len + 12;
    }
    return changed;
}

/* PNG: the fast decoder (png_fast.c, tried first) and libpng alone must
 * agree: the same result and, on success, the same pixels. The one
 * difference allowed: a deflate stream that zlib refuses (its message, in
 * libpng's, names IDAT) but libdeflate decodes, e.g. a code-length repeat
 * running past the end of the table (png_fast.h). */
static void check_png_decoders(const uint8_t *data, size_t size, const px_img_limits *lim)
{
    px_image a, b;
    char err[256], errb[256] = "";
    int ra = px_png_decode(data, size, lim, &a, err, sizeof err);
    int rb = px_png_decode_libpng(data, size, lim, &b, errb, sizeof errb);
    if (ra == 0 && rb == PX_ECORRUPT && strstr(errb, "IDAT")) {
        px_image_free(&a);
        return;
    }
    if (ra != rb) abort();
    if (!ra && (a.w != b.w || a.h != b.h || a.c != b.c ||
                memcmp(a.px, b.px, (size_t)a.w * (size_t)a.h * (size_t)a.c) != 0))
        abort();
    if (!ra) {
        px_image_free(&a);
        px_image_free(&b);
    }
}

static void check_one(const uint8_t *data, size_t size)
{
    /* Small caps keep each run fast; the limit logic is the same at any size. */
    const px_img_limits lim = {.max_pixels = 4u << 20, .max_side = 4096};
    px_image img;
    char err[256];
    if (px_format_sniff(data, size) == PX_FMT_PNG) check_png_decoders(data, size, &lim);
    int rc = px_decode(data, size, &lim, &img, err, sizeof err);
    if (rc != 0) {
        /* A failure leaves nothing behind and always says why. */
        if (rc > 0 || img.px || err[0] == 0) abort();
        return;
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(data, size);
    if (px_format_sniff(data, size) == PX_FMT_PNG) {
        uint8_t *copy = malloc(size);
        if (!copy) return 0;
        memcpy(copy, data, size);
        if (fix_png_crcs(copy, size)) check_one(copy, size);
        free(copy);
    }
    return 0;
}
