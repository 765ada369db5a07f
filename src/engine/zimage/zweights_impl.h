/*
 * zweights_impl.h — what the two halves of the Z-Image weight store share:
 * the store's layout, the source tensors the readers collect and the loader
 * state. zweights_sources.c opens the containers (a component directory, an
 * index with its shards, a safetensors or GGUF file) and lists their tensors;
 * zweights.c maps the names, converts the data and keeps the store. Not for
 * other modules.
 */
#ifndef PX_ENGINE_ZIMAGE_ZWEIGHTS_IMPL_H
#define PX_ENGINE_ZIMAGE_ZWEIGHTS_IMPL_H

#include "engine/safetensors.h"
#include "engine/zimage/gguf.h"
#include "engine/zimage/zweights.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_FILES 256

typedef struct src_file {
    char *path;
    px_st *st;
    zi_gguf *gg;
    bool in_place; /* some tensor points into its mapping: keep it open */
} src_file;

/* One source tensor, whatever the container. */
typedef enum enc { ENC_F32, ENC_BF16, ENC_F16, ENC_F64, ENC_QUANT, ENC_BAD } enc;

typedef struct src_tensor {
    const char *name; /* owned by the container */
    enc enc;
    int gtype;        /* GGUF type for ENC_QUANT */
    const char *type; /* the source's type name, for messages */
    int ndim;
    int64_t shape[ZI_MAX_DIMS];
    size_t nelem;
    const uint8_t *data;
    int file;
} src_tensor;

struct zi_weights {
    char *path;
    int n;
    zi_tensor *t; /* sorted by name */
    int *file;    /* per tensor: index into files */
    bool *owned;  /* per tensor: data is ours to free (else in a mapping) */
    src_file files[MAX_FILES];
    int nfiles;
    size_t bytes;
};

/* Tensors while loading: the sort by name carries file and ownership along. */
typedef struct entry {
    zi_tensor t;
    int file;
    bool owned;
} entry;

typedef struct loader {
    zi_weights *w;
    zi_part part;
    entry *e;
    int ne;
    src_tensor *s;
    int ns, caps;
    zi_dtype to_other;
    bool keep_bf16;
} loader;

/* Opens path (a component directory or a single file) and appends its
 * tensors to L->s, its files to L->w->files. Returns 0 or a PX_E* code with
 * err naming the file (zweights_sources.c). */
int zw_open_sources(loader *L, const char *path, char *err, size_t errlen);

/* The file a source tensor lies in, for messages (zweights.c). */
const char *zw_src_path(const loader *L, const src_tensor *s);

#endif
