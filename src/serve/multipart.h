/*
 * multipart.h — multipart/form-data (RFC 7578) parsing over a fully received
 * body. Parts are returned as slices of the body: nothing is copied.
 */
#ifndef PX_SERVE_MULTIPART_H
#define PX_SERVE_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#define PX_MULTIPART_MAX_BOUNDARY 70 /* RFC 2046 */

typedef struct px_part {
    const uint8_t *data; /* into the body; not NUL-terminated */
    size_t len;
    char name[64];          /* form field name ("" if absent) */
    char filename[256];     /* "" if the part is not a file */
    char content_type[128]; /* "" if absent */
} px_part;

/*
 * Extracts the boundary parameter from a Content-Type value such as
 * `multipart/form-data; boundary="xyz"` into boundary[PX_MULTIPART_MAX_BOUNDARY+1].
 * Returns 0, PX_EUNSUP (not multipart/form-data) or PX_EINVAL (missing or bad
 * boundary), with a message.
 */
int px_multipart_boundary(const char *content_type, char *boundary, char *err, size_t errlen);

/*
 * Splits body[n] into at most max_parts parts. Returns 0 and *nparts, or
 * PX_EINVAL for a malformed body (no opening delimiter, unterminated part,
 * header block too long, missing closing delimiter, too many parts) with a
 * message. Part headers other than Content-Disposition and Content-Type are
 * ignored.
 */
int px_multipart_parse(const uint8_t *body, size_t n, const char *boundary, px_part *parts,
                       int max_parts, int *nparts, char *err, size_t errlen);

/* The first part named `name`, or NULL. */
const px_part *px_multipart_find(const px_part *parts, int nparts, const char *name);

#endif
