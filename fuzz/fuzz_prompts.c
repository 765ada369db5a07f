/*
 * fuzz_prompts.c — libFuzzer target for pixbench's prompts-file parser
 * (src/bench/prompts.c): text or JSON of any bytes, given without a
 * terminating NUL. A parsed set must hold at least one prompt, each
 * non-empty, within the length cap, free of control characters, filed
 * under an existing category.
 */
#include "bench/prompts.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *t = malloc(size ? size : 1);
    memcpy(t, data, size);
    pb_prompts p;
    char err[256];
    if (pb_prompts_parse(t, size, &p, err, sizeof err) == 0) {
        if (p.n < 1 || p.n > PB_PROMPTS_MAX || p.ncats < 1 || p.ncats > PB_PROMPTS_MAX_CATS) abort();
        for (int i = 0; i < p.n; i++) {
            size_t l = strlen(p.p[i].text);
            if (l == 0 || l > PB_PROMPT_MAX_LEN || p.p[i].cat < 0 || p.p[i].cat >= p.ncats) abort();
            for (size_t k = 0; k < l; k++)
                if ((unsigned char)p.p[i].text[k] < 0x20 && p.p[i].text[k] != '\t') abort();
        }
        pb_prompts_free(&p);
    } else if (p.n != 0 || p.p) {
        abort(); /* a refused file leaves nothing behind */
    }
    free(t);
    return 0;
}
