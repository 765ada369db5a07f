/*
 * probe.h — an image's size from its first bytes, without decoding it: the
 * file manager lists folders of photographs with their width and height, and
 * decoding each would cost a full decode per file. The bytes are untrusted
 * (fuzz/fuzz_probe.c): every read is bounds-checked.
 */
#ifndef PX_IMAGE_PROBE_H
#define PX_IMAGE_PROBE_H

#include "image/codec.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Reads the format and the stored width and height (a JPEG's EXIF rotation
 * is not applied) from data[0..n), which may be just the file's start (64
 * KiB holds every header but a JPEG's with large EXIF or ICC segments
 * first). Returns 0, PX_EUNSUP (not PNG, JPEG or WebP) or PX_ETRUNC (the
 * size is not in these bytes).
 */
int px_image_probe(const uint8_t *data, size_t n, enum px_format *fmt, int *w, int *h);

#endif
