/*
 * exif.h — the one EXIF fact pixserve needs: the orientation tag of a JPEG
 * APP1 segment. A small parser of our own (not libexif) because only one
 * tag matters and the bytes are untrusted.
 */
#ifndef PX_IMAGE_EXIF_H
#define PX_IMAGE_EXIF_H

#include <stddef.h>
#include <stdint.h>

/*
 * Orientation (1..8, tag 0x0112 of IFD0) from the payload of an APP1 segment
 * (the bytes after the length field: "Exif\0\0", then a TIFF header in either
 * byte order). Returns 0 when the payload is not Exif, is malformed, or has
 * no valid orientation: EXIF is optional metadata, so a broken one is
 * ignored rather than failing the image. Never reads outside data[0..n) and
 * does work bounded by n.
 */
int px_exif_orientation(const uint8_t *data, size_t n);

#endif
