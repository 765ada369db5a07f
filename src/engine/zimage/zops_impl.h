/*
 * zops_impl.h — what the two halves of the Z-Image CPU ops share: the
 * context's layout and the cached oneDNN matmul (zops.c), used by the
 * attention in zops_elem.c. Not for other modules.
 */
#ifndef PX_ENGINE_ZIMAGE_ZOPS_IMPL_H
#define PX_ENGINE_ZIMAGE_ZOPS_IMPL_H

#include "engine/zimage/zops.h"

#include <dnnl.h>
#include <stddef.h>
#include <stdint.h>

/* Primitives kept per context: a batched DiT forward uses a few dozen
 * shapes (three row counts, per-item attention, BF16 blocks); oneDNN's own
 * global cache makes a rebuilt one cheap anyway. */
#define CACHE_N 128

typedef struct zo_prim {
    dnnl_memory_desc_t src, wei, dst, bias;
    int has_bias, accum;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    dnnl_memory_t m_src, m_wei, m_dst, m_bias, m_scratch;
    size_t scratch_bytes;
    unsigned long used;
} zo_prim;

struct zi_ctx {
    px_pool *pool;
    dnnl_stream_t stream;
    zo_prim cache[CACHE_N];
    int ncache;
    unsigned long tick;
    zi_buf scratch; /* oneDNN's scratchpad, shared by every primitive */
    zi_buf wblock;  /* widened BF16 weight rows */
    zi_buf scores;  /* attention scores of one query chunk */
    size_t score_floats;
    zi_buf slot[ZI_CTX_SLOTS];
};

/* Whether the CPU has AVX2 and FMA (the build's baseline is x86-64, so
 * kernels for them are compiled apart and chosen at run time). */
int zo_have_avx2(void);

/* A plain strided f32 descriptor of nd dims. Returns 0 or -1. */
int zo_md_strided(dnnl_memory_desc_t *md, int nd, const int64_t *dims, const int64_t *strides);

/* The matmul primitive for these descriptors (bias NULL: none; accum: a sum
 * post-op), cached in c or built now; NULL with *rc and err on failure. */
zo_prim *zo_matmul_get(zi_ctx *c, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
                       const dnnl_memory_desc_t *bias, const dnnl_memory_desc_t *dst, int accum,
                       int *rc, char *err, size_t errlen);

/* Runs it on these buffers with the context's scratchpad and stream.
 * Returns 0, PX_ENOMEM or PX_EUNSUP. */
int zo_matmul_run(zi_ctx *c, zo_prim *e, const void *src, const void *wei, const void *bias,
                  void *dst, char *err, size_t errlen);

#endif
