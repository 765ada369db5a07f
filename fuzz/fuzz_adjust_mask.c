/*
 * fuzz_adjust_mask.c — libFuzzer target for IOPaint's adjust_mask body
 * (serve/iopaint.h): JSON with a base64 mask, an operation and a kernel
 * size. Small limits keep each run cheap; a result is a PNG.
 */
#include "core/buf.h"
#include "serve/iopaint.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    px_img_limits lim = {.max_pixels = 256 * 256, .max_side = 512};
    px_buf png;
    px_buf_init(&png, 8u << 20);
    char err[256];
    if (px_iopaint_adjust_mask(data, size, &lim, &png, err, sizeof err) == 0 &&
        (png.len < 8 || memcmp(png.data, "\x89PNG", 4)))
        __builtin_trap();
    px_buf_free(&png);
    return 0;
}
