/*
 * base64.h — RFC 4648 base64, tolerant on input the way browser and Python
 * clients produce it: an optional data-URL prefix ("data:image/png;base64,"),
 * the standard or the URL-safe alphabet, optional padding, embedded
 * whitespace and line breaks.
 */
#ifndef PX_CORE_BASE64_H
#define PX_CORE_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Length of the encoding of n bytes, without the NUL (0 on overflow). */
size_t px_b64_encoded_len(size_t n);

/* Writes the padded standard-alphabet encoding of in[n] plus a NUL into out,
 * which must hold px_b64_encoded_len(n) + 1 bytes. Returns the length written. */
size_t px_b64_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decodes text[n]. On success returns 0 and sets *out (malloc'd, caller frees;
 * never NULL, even for empty output) and *outlen. Fails with PX_EINVAL (bad
 * character, with its offset, bad padding, dangling bits, non-base64 data
 * URL), PX_ETOOBIG (decoded size would exceed max_out) or PX_ENOMEM, with a
 * message in err.
 */
int px_b64_decode(const char *text, size_t n, size_t max_out, uint8_t **out, size_t *outlen,
                  char *err, size_t errlen);

/* Length of a data-URL prefix at the start of text ("data:...;base64,"), or 0.
 * Returns -1 for a data URL that is not base64 or has no comma. */
long px_b64_data_url_prefix(const char *text, size_t n);

#endif
