/*
 * zimage_tokenizer_fixtures.h — what the two tokenizer tests
 * (zimage_tokenizer_test.c against the real tokenizer and its reference,
 * zimage_tokenizer_tiny_test.c on hand-written ones) share: writing a
 * fixture file, and comparing id sequences with the first difference
 * printed. Static inline: each test is its own program.
 */
#ifndef PX_TESTS_ZIMAGE_TOKENIZER_FIXTURES_H
#define PX_TESTS_ZIMAGE_TOKENIZER_FIXTURES_H

#include "harness.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static inline void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) px_tfail(PX_TLOC_, "cannot create %s", path);
    fputs(text, f);
    fclose(f);
}

/* Prints where two sequences differ; returns whether they are equal. */
static inline bool same_ids(const char *what, const char *name, const int32_t *a, size_t na,
                            const int32_t *b, size_t nb)
{
    if (na == nb && (!na || !memcmp(a, b, na * sizeof *a))) return true;
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    fprintf(stderr,
            "  MISMATCH %s %s: %zu vs %zu reference ids, first difference at %zu: %d vs %d\n", name,
            what, na, nb, i, i < na ? a[i] : -1, i < nb ? b[i] : -1);
    return false;
}

#endif
