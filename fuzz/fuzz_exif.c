/*
 * fuzz_exif.c — libFuzzer target for the EXIF orientation parser: any bytes
 * must give 0..8 without reading outside the input (ASan watches), and the
 * answer must not depend on bytes past the input (checked by parsing a copy
 * followed by different padding).
 */
#include "image/exif.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int o = px_exif_orientation(data, size);
    if (o < 0 || o > 8) abort();
    /* The same bytes with junk after them: junk past n must not matter. */
    uint8_t *copy = malloc(size + 64);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    memset(copy + size, 0xa5, 64);
    if (px_exif_orientation(copy, size) != o) abort();
    free(copy);
    return 0;
}
