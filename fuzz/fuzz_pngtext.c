/*
 * fuzz_pngtext.c — libFuzzer target for the PNG text chunk reader and the
 * header probe (image/pngtext.h, image/probe.h): the input is a file as
 * uploaded to IOPaint's gen-info or listed by the file manager. The text
 * found must be NUL-terminated at its length; a probed size is positive.
 */
#include "core/err.h"
#include "image/pngtext.h"
#include "image/probe.h"
#include "serve/iopaint.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    if (px_pngtext_find(data, size, "parameters", &text, &len) == 0) {
        if (text[len] != 0 || len > PX_PNGTEXT_MAX) __builtin_trap();
        free(text);
    }
    char *prompt, *negative;
    if (px_iopaint_gen_info(data, size, &prompt, &negative) == 0) {
        free(prompt);
        free(negative);
    }
    enum px_format fmt;
    int w, h;
    if (px_image_probe(data, size, &fmt, &w, &h) == 0 && (w <= 0 || h <= 0)) __builtin_trap();
    return 0;
}
