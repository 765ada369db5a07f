/*
 * fuzz_base64.c — libFuzzer target for the tolerant base64 decoder: any input
 * must decode or fail cleanly, and whatever decodes must re-encode to text
 * that decodes to the same bytes.
 */
#include "core/base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out = NULL;
    size_t n = 0;
    char err[160];
    if (px_b64_decode((const char *)data, size, 1 << 20, &out, &n, err, sizeof err) == 0) {
        char *enc = malloc(px_b64_encoded_len(n) + 1);
        size_t m = px_b64_encode(out, n, enc);
        uint8_t *back = NULL;
        size_t bn = 0;
        if (px_b64_decode(enc, m, 1 << 20, &back, &bn, err, sizeof err) != 0 || bn != n ||
            memcmp(back, out, n) != 0)
            abort();
        free(back);
        free(enc);
    }
    free(out);
    return 0;
}
