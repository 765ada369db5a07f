/*
 * outputs.h — the directory where results requested as URLs are stored, and
 * the only way files are read back out of it (GET /outputs/<name>).
 *
 * Names are generated here and validated on the way back: only
 * [A-Za-z0-9_-] plus one extension, no slashes or dots elsewhere, so a
 * request can never reach outside the directory; files are opened relative
 * to a directory descriptor with O_NOFOLLOW.
 */
#ifndef PX_SERVE_OUTPUTS_H
#define PX_SERVE_OUTPUTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct px_outputs px_outputs;

#define PX_OUTPUT_NAME_MAX 64

/* Opens (creating if needed, mode 0755) the directory. Returns 0 or PX_EIO
 * with a message. Caller closes *out. */
int px_outputs_open(const char *dir, px_outputs **out, char *err, size_t errlen);
void px_outputs_close(px_outputs *o);

/* The directory path given to px_outputs_open. */
const char *px_outputs_dir(const px_outputs *o);

/*
 * Writes data under a new unique name with extension ext ("png", ...) and
 * copies the name into name[PX_OUTPUT_NAME_MAX]. The file appears atomically
 * (written to a temporary name, then renamed). Returns 0 or PX_EIO.
 */
int px_outputs_save(px_outputs *o, const void *data, size_t n, const char *ext, char *name,
                    char *err, size_t errlen);

/* Whether name has the shape of a generated name (no path tricks). */
int px_outputs_name_ok(const char *name);

/* Opens a stored file for reading. Returns an fd (caller closes) and its size,
 * or PX_EINVAL (bad name) / PX_ENOTFOUND. */
int px_outputs_open_file(px_outputs *o, const char *name, uint64_t *size);

#endif
