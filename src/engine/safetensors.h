/*
 * safetensors.h — a reader for the safetensors format (8-byte little-endian
 * header length, a JSON header naming each tensor's dtype, shape and byte
 * range, then the raw little-endian data), shared by the engines: LaMa
 * weights, the Z-Image components (through engine/zimage/zweights.c) and the
 * test cases the reference tools write.
 *
 * The file is untrusted input: the header is validated completely before any
 * tensor is handed out — known dtypes, shapes whose byte size matches the
 * range, ranges inside the data section that tile it exactly (no overlaps,
 * no gaps, as the reference implementation requires), unique names, string
 * metadata — so a caller may read any tensor's bytes without further checks.
 * Tensor data is not aligned in general: read it with memcpy (px_st_to_f32).
 */
#ifndef PX_ENGINE_SAFETENSORS_H
#define PX_ENGINE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define PX_ST_MAX_DIMS 8
#define PX_ST_MAX_HEADER ((uint64_t)100 << 20) /* as the reference implementation */

typedef enum px_st_dtype {
    PX_ST_BOOL, PX_ST_U8, PX_ST_I8, PX_ST_I16, PX_ST_U16, PX_ST_F16, PX_ST_BF16,
    PX_ST_I32, PX_ST_U32, PX_ST_F32, PX_ST_I64, PX_ST_U64, PX_ST_F64
} px_st_dtype;

typedef struct px_st_tensor {
    const char *name;      /* NUL-terminated, owned by the px_st */
    px_st_dtype dtype;
    int ndim;              /* 0 (scalar) .. PX_ST_MAX_DIMS */
    int64_t shape[PX_ST_MAX_DIMS];
    size_t nelem;          /* product of shape (1 for a scalar) */
    size_t nbytes;         /* nelem * element size */
    const uint8_t *data;   /* nbytes bytes inside the file; unaligned */
} px_st_tensor;

typedef struct px_st px_st; /* opaque */

/* Parses a safetensors image in memory. The buffer is borrowed: it must
 * outlive the result. Returns 0, PX_ETRUNC (shorter than its header says),
 * PX_ETOOBIG (header above PX_ST_MAX_HEADER), PX_ECORRUPT (anything not
 * valid, with the reason in err) or PX_ENOMEM. Caller closes *out. */
int px_st_parse(const uint8_t *buf, size_t len, px_st **out, char *err, size_t errlen);

/* Maps a file read-only and parses it (errors as px_st_parse, plus PX_EIO
 * naming the file). The mapping lives until px_st_close. */
int px_st_open(const char *path, px_st **out, char *err, size_t errlen);

/* Unmaps/frees. NULL is allowed. */
void px_st_close(px_st *st);

/* Number of tensors, and the i-th in name order (NULL out of range). */
int px_st_count(const px_st *st);
const px_st_tensor *px_st_at(const px_st *st, int i);

/* Tensor by exact name, or NULL. */
const px_st_tensor *px_st_find(const px_st *st, const char *name);

/* Value of a "__metadata__" entry, or NULL. Owned by the px_st. */
const char *px_st_meta(const px_st *st, const char *key);

/* Tells the reader that t's bytes will not be read again: for a mapped file
 * its whole pages are dropped from memory (they would be read back from the
 * file if touched), so loading big weights does not hold the file and its
 * converted copy at once. A no-op for px_st_parse buffers. */
void px_st_release(const px_st *st, const px_st_tensor *t);

/* Bytes per element, and the format's name ("F32", ...). */
size_t px_st_dtype_size(px_st_dtype t);
const char *px_st_dtype_name(px_st_dtype t);

/* An IEEE half's value (subnormals, infinities and NaNs included). */
float px_st_f16_to_f32(uint16_t h);

/* Copies a tensor's elements into dst as float (F32, F16, BF16 and F64;
 * nelem floats). Returns 0 or PX_EUNSUP for other dtypes. */
int px_st_to_f32(const px_st_tensor *t, float *dst);

#endif
