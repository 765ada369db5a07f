/*
 * fuzz_gguf.c — libFuzzer target for the GGUF reader (Z-Image weights in
 * GGUF are untrusted input), its dequantizers and the tensor-name mapping
 * the loader applies: any bytes must parse or fail with a message, never
 * crash or read outside the buffer; a parsed file's tensors must lie inside
 * it and not overlap; every supported tensor must dequantize. Seeds in
 * fuzz/corpus/gguf/ (written by fuzz/make_corpus_zimage.py).
 */
#include "engine/zimage/gguf.h"
#include "engine/zimage/znames.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zi_gguf *g = NULL;
    char err[256];
    err[0] = 0;
    /* A private copy so that ASan sees reads past the end of the input. */
    uint8_t *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    int rc = zi_gguf_parse(buf, size, &g, err, sizeof err);
    if (rc) {
        if (!err[0] || g) __builtin_trap(); /* every failure says why */
        free(buf);
        return 0;
    }
    for (int i = 0; i < zi_gguf_count(g); i++) {
        const zi_gguf_tensor *t = zi_gguf_at(g, i);
        if (t->data < buf || t->nbytes > size || t->data + t->nbytes > buf + size) __builtin_trap();
        if (zi_gguf_find(g, t->name) != t) __builtin_trap();
        if (t->nelem % zi_gguf_type_block(t->type)) __builtin_trap();
        if (zi_gguf_type_supported(t->type) && t->nelem <= 65536) {
            float *f = malloc((t->nelem ? t->nelem : 1) * sizeof *f);
            if (zi_gguf_dequant(t->type, t->data, t->nelem, f)) __builtin_trap();
            free(f);
        }
        for (int p = ZI_PART_DIT; p <= ZI_PART_VAE; p++) {
            zi_name_map m;
            int lv = zi_names_bfl_up_level(t->name);
            if (zi_names_map((zi_part)p, t->name, lv < 0 ? 4 : lv + 1, &m) == ZI_NAME_KEEP &&
                (strnlen(m.name, ZI_NAME_MAX) == ZI_NAME_MAX ||
                 (m.qkv_slot < -1 || m.qkv_slot > 2)))
                __builtin_trap();
        }
    }
    for (int i = 0; i < zi_gguf_kv_count(g); i++) {
        const zi_gguf_kv *kv = zi_gguf_kv_at(g, i);
        if (!kv->key || zi_gguf_kv_find(g, kv->key) == NULL) __builtin_trap();
        if (kv->type == ZI_GGUF_KV_STRING && !kv->str) __builtin_trap();
    }
    zi_gguf_close(g);
    free(buf);
    return 0;
}
