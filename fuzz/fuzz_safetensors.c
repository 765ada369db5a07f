/*
 * fuzz_safetensors.c — libFuzzer target for the safetensors reader (the LaMa
 * weights file is untrusted input) and the weights loader behind it: any
 * bytes must parse or fail with a message, never crash or read outside the
 * buffer; a parsed file's tensors must lie inside it; the loader must accept
 * or reject whatever the reader accepted.
 */
#include "engine/safetensors.h"
#include "engine/lama/weights.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    px_st *st = NULL;
    char err[256];
    err[0] = 0;
    /* A private copy so that ASan sees reads past the end of the input. */
    uint8_t *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    int rc = px_st_parse(buf, size, &st, err, sizeof err);
    if (rc) {
        if (!err[0] || st) __builtin_trap(); /* every failure says why */
        free(buf);
        return 0;
    }
    for (int i = 0; i < px_st_count(st); i++) {
        const px_st_tensor *t = px_st_at(st, i);
        if (t->data < buf || t->data + t->nbytes > buf + size) __builtin_trap();
        if (t->nbytes != t->nelem * px_st_dtype_size(t->dtype)) __builtin_trap();
        if (px_st_find(st, t->name) != t) __builtin_trap();
        if (t->nelem <= 4096) {
            float *f = malloc((t->nelem ? t->nelem : 1) * sizeof *f);
            px_st_to_f32(t, f);
            free(f);
        }
    }
    (void)px_st_meta(st, "format");
    px_lama_weights w;
    if (px_lama_weights_load(st, &w, err, sizeof err) == 0) px_lama_weights_free(&w);
    else if (!err[0]) __builtin_trap();
    px_st_close(st);
    free(buf);
    return 0;
}
