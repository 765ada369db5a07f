/*
 * mapfile.h — read-only memory maps of weight files. The safetensors and
 * GGUF readers both map a whole file, parse it in place and, while a model
 * loads, hand back the pages of tensors they have converted, so that a big
 * file and its converted copy are not resident at once.
 */
#ifndef PX_CORE_MAPFILE_H
#define PX_CORE_MAPFILE_H

#include <stddef.h>

/*
 * Maps path read-only (private). Returns 0 with *map and *len, PX_EIO (the
 * file cannot be opened or mapped, or is not a regular file: err names it)
 * or PX_ETRUNC (shorter than min_len bytes; what names the format in the
 * message). Unmap with px_unmap_file.
 */
int px_map_file(const char *path, size_t min_len, const char *what, void **map, size_t *len,
                char *err, size_t errlen);

/* Unmaps a px_map_file mapping. NULL is allowed. */
void px_unmap_file(void *map, size_t len);

/* Drops the whole pages inside [data, data + nbytes) of a mapping from
 * memory (they are read back from the file if touched again). */
void px_map_release(const void *data, size_t nbytes);

#endif
