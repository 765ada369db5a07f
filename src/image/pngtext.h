/*
 * pngtext.h — reads a PNG's text chunks (tEXt, zTXt, iTXt) without decoding
 * its pixels: generation tools (AUTOMATIC1111, IOPaint) store the prompt in a
 * "parameters" chunk, which IOPaint's gen-info call shows. The bytes are
 * untrusted (any upload): every length is checked against the data, chunk
 * CRCs are not needed for text and not checked, and compressed text is
 * inflated into a bounded buffer (fuzz/fuzz_pngtext.c).
 */
#ifndef PX_IMAGE_PNGTEXT_H
#define PX_IMAGE_PNGTEXT_H

#include <stddef.h>
#include <stdint.h>

/* The largest text a chunk may inflate to (a zip bomb stops here). */
#define PX_PNGTEXT_MAX (1u << 20)

/*
 * Finds the first text chunk of data[0..n) whose keyword is `keyword` and
 * copies its text into *out (malloc'd, NUL-terminated, caller frees; tEXt's
 * Latin-1 bytes are copied as they are). Returns 0, PX_ENOTFOUND (not a PNG,
 * no such chunk before IDAT's end, or the data ends early), PX_ECORRUPT (a
 * compressed text that does not inflate), PX_ETOOBIG (inflates past
 * PX_PNGTEXT_MAX) or PX_ENOMEM.
 */
int px_pngtext_find(const uint8_t *data, size_t n, const char *keyword, char **out, size_t *outlen);

#endif
