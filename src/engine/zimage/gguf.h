/*
 * gguf.h — a reader for GGUF files (the container of llama.cpp and
 * stable-diffusion.cpp): magic "GGUF", u32 version (2 or 3), u64 tensor
 * count, u64 key-value count, the key-value pairs (scalars, strings,
 * arrays), the tensor infos (name, n_dims, dims innermost first, ggml type,
 * offset), then the tensor data aligned to `general.alignment` (default 32),
 * all little-endian. Dequantizes the block formats users ship Z-Image in:
 * F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K,
 * Q6_K.
 *
 * The file is untrusted input: everything is validated before a tensor is
 * handed out — counts and lengths bounded, sizes overflow-checked, every
 * tensor's bytes inside the file and not overlapping another's, the row
 * length a multiple of the type's block — so a caller may read any tensor's
 * nbytes bytes without further checks.
 */
#ifndef PX_ENGINE_ZIMAGE_GGUF_H
#define PX_ENGINE_ZIMAGE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#define ZI_GGUF_MAX_DIMS 4

/* ggml type numbers (as stored in the file). */
enum {
    ZI_GGUF_F32 = 0,
    ZI_GGUF_F16 = 1,
    ZI_GGUF_Q4_0 = 2,
    ZI_GGUF_Q4_1 = 3,
    ZI_GGUF_Q5_0 = 6,
    ZI_GGUF_Q5_1 = 7,
    ZI_GGUF_Q8_0 = 8,
    ZI_GGUF_Q8_1 = 9,
    ZI_GGUF_Q2_K = 10,
    ZI_GGUF_Q3_K = 11,
    ZI_GGUF_Q4_K = 12,
    ZI_GGUF_Q5_K = 13,
    ZI_GGUF_Q6_K = 14,
    ZI_GGUF_Q8_K = 15,
    ZI_GGUF_I8 = 24,
    ZI_GGUF_I16 = 25,
    ZI_GGUF_I32 = 26,
    ZI_GGUF_I64 = 27,
    ZI_GGUF_F64 = 28,
    ZI_GGUF_BF16 = 30
};

/* Key-value types. */
enum {
    ZI_GGUF_KV_U8 = 0,
    ZI_GGUF_KV_I8,
    ZI_GGUF_KV_U16,
    ZI_GGUF_KV_I16,
    ZI_GGUF_KV_U32,
    ZI_GGUF_KV_I32,
    ZI_GGUF_KV_F32,
    ZI_GGUF_KV_BOOL,
    ZI_GGUF_KV_STRING,
    ZI_GGUF_KV_ARRAY,
    ZI_GGUF_KV_U64,
    ZI_GGUF_KV_I64,
    ZI_GGUF_KV_F64
};

typedef struct zi_gguf_tensor {
    const char *name;              /* NUL-terminated, owned by the zi_gguf */
    int type;                      /* ggml type */
    int ndim;                      /* 1 .. ZI_GGUF_MAX_DIMS */
    uint64_t ne[ZI_GGUF_MAX_DIMS]; /* innermost first, as stored */
    size_t nelem;
    size_t nbytes;
    const uint8_t *data; /* aligned to the file's alignment relative to its start */
} zi_gguf_tensor;

typedef struct zi_gguf_kv {
    const char *key; /* owned by the zi_gguf */
    int type;        /* ZI_GGUF_KV_* */
    int elem_type;   /* for arrays */
    uint64_t count;  /* for arrays */
    uint64_t u;      /* unsigned and bool values */
    int64_t i;       /* signed values */
    double f;        /* float values */
    const char *str; /* string value (NUL-terminated copy), else NULL */
} zi_gguf_kv;

typedef struct zi_gguf zi_gguf; /* opaque */

/* Parses a GGUF image in memory (borrowed: it must outlive the result).
 * Returns 0, PX_ETRUNC, PX_EUNSUP (version or type not known) or
 * PX_ECORRUPT with the reason in err, or PX_ENOMEM. Caller closes *out. */
int zi_gguf_parse(const uint8_t *buf, size_t len, zi_gguf **out, char *err, size_t errlen);

/* Maps a file read-only and parses it (messages name the file; PX_EIO for
 * an unreadable file). The mapping lives until zi_gguf_close. */
int zi_gguf_open(const char *path, zi_gguf **out, char *err, size_t errlen);

/* NULL is allowed. */
void zi_gguf_close(zi_gguf *g);

int zi_gguf_version(const zi_gguf *g);
int zi_gguf_count(const zi_gguf *g);
const zi_gguf_tensor *zi_gguf_at(const zi_gguf *g, int i); /* file order; NULL out of range */
const zi_gguf_tensor *zi_gguf_find(const zi_gguf *g, const char *name);
int zi_gguf_kv_count(const zi_gguf *g);
const zi_gguf_kv *zi_gguf_kv_at(const zi_gguf *g, int i);
const zi_gguf_kv *zi_gguf_kv_find(const zi_gguf *g, const char *key);

/* Drops the mapped pages wholly inside [data, data+nbytes) (see
 * px_st_release); a no-op for zi_gguf_parse buffers. */
void zi_gguf_release(const zi_gguf *g, const void *data, size_t nbytes);

/* Elements per block and bytes per block of a type (0 for unknown types),
 * its name ("Q4_K", or "type 99"; the string is static for known types and
 * a per-thread buffer otherwise), and whether zi_gguf_dequant decodes it. */
size_t zi_gguf_type_block(int type);
size_t zi_gguf_type_size(int type);
const char *zi_gguf_type_name(int type);
int zi_gguf_type_supported(int type);

/* Decodes n elements (a multiple of the block size) of a supported type
 * from src into dst. Returns 0 or PX_EUNSUP. */
int zi_gguf_dequant(int type, const uint8_t *src, size_t n, float *dst);

#endif
