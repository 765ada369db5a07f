/*
 * zattn_cudnn_graph.h — the DiT's attention (zattn.h's operands) as a cuDNN
 * backend operation graph in one of several spellings, and the first
 * execution plan an engine finalizes for it, or one of a configuration
 * named by hand (zattn_cuda_bench's `engines` survey), and its execution.
 * No CUDA memory, no stream (zattn_cudnn.c caches the plans, allocates
 * their buffers and sets the handle's stream). Given device properties
 * instead of a handle, heuristics and the plan build run without the GPU
 * (cuDNN 9.8+ deviceless builds), which is how zattn_cuda_bench's
 * `spellings` asks, from a machine without a GPU, which spellings a GPU's
 * engines take.
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZATTN_CUDNN_GRAPH_H
#define PX_ENGINE_ZIMAGE_CUDA_ZATTN_CUDNN_GRAPH_H

#include "engine/zimage/cuda/zattn.h"

#include <cudnn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Unique ids of the tensors an execution's variant pack names. */
enum {
    ZCG_U_Q = 1,
    ZCG_U_K,
    ZCG_U_V,
    ZCG_U_O,
    ZCG_U_SCALE,  /* float: by value (a host pointer) or, with sdev, on the device */
    ZCG_U_NEG,    /* float by value: the masked scores' value (pattern only) */
    ZCG_U_SEQ_Q,  /* int32 [b]: query rows per item */
    ZCG_U_SEQ_KV, /* int32 [b]: keys per item (zattn.h's kv_len) */
    ZCG_U_STATS,  /* float [b,h,s_q]: the training form's statistics */
    /* fp8 spellings only: float [1,1,1,1] device scalars (ZCG_FP8_*) */
    ZCG_U_DESCALE_Q,
    ZCG_U_DESCALE_K,
    ZCG_U_DESCALE_V,
    ZCG_U_DESCALE_S,
    ZCG_U_SCALE_S,
    ZCG_U_SCALE_O,
    ZCG_U_AMAX_S, /* outputs: the largest |P| and |O| (unused, but the pattern has them) */
    ZCG_U_AMAX_O
};

/* The fp8 spellings' scalars, in the order of their ids above (8 floats
 * in device memory, the last two written by the plan). */
enum { ZCG_FP8_N_SCALARS = 8 };

enum { ZCG_STATS_NONE, ZCG_STATS_VIRTUAL, ZCG_STATS_OUTPUT };

/* One spelling of the graph (zattn_cudnn_graph.c's top says what varies). */
typedef struct zcg_spell {
    const char *name;
    bool sdpa;   /* cuDNN's one-node SDPA operation (9.15+), not the pattern */
    bool sdev;   /* (sdpa) the scale as a device tensor, not by value */
    int stats;   /* ZCG_STATS_* */
    bool cmp_b;  /* comparisons computed as boolean (else int32 in and out) */
    bool fp8;    /* Q, K, V, O in e4m3 with descales and scales, P in e4m3 */
} zcg_spell;

/* The spellings, in the order they are tried. */
extern const zcg_spell zcg_spells[];
extern const int zcg_n_spells;

typedef struct zcg zcg;

/* An engine configuration: cuDNN's engine (by global index) and its knob
 * choices; zcg_configs also gives the engine's knobs and their ranges. */
enum { ZCG_MAX_KNOBS = 16 };
typedef struct zcg_knob {
    int64_t type, value; /* cudnnBackendKnobType_t, its value */
} zcg_knob;
typedef struct zcg_knob_range {
    int64_t type, min, max, stride;
} zcg_knob_range;
typedef struct zcg_cfg {
    int64_t engine;
    int n_knobs;
    zcg_knob knob[ZCG_MAX_KNOBS];
    int n_ranges;
    zcg_knob_range range[ZCG_MAX_KNOBS];
} zcg_cfg;

/*
 * a's attention (its shapes and strides; no pointer is read) in spelling
 * sp, and the first plan an engine finalizes with at most 256 MiB of
 * workspace (more would be an unfused engine): for the GPU of handle h, or
 * (h NULL) of the device properties devprop. The graph or NULL, with the
 * cuDNN status in *st and in *what the step that failed (a static string).
 */
zcg *zcg_build(cudnnHandle_t h, cudnnBackendDescriptor_t devprop, const zc_attn *a,
               const zcg_spell *sp, cudnnStatus_t *st, const char **what);

/* zcg_build with configuration cfg's plan instead of the heuristics'
 * first (cfg NULL: zcg_build); NULL when that engine or a knob value does
 * not take the graph. */
zcg *zcg_build_cfg(cudnnHandle_t h, cudnnBackendDescriptor_t devprop, const zc_attn *a,
                   const zcg_spell *sp, const zcg_cfg *cfg, cudnnStatus_t *st,
                   const char **what);

/* Heuristics mode `mode`'s (cudnnBackendHeurMode_t) configurations for a
 * in spelling sp, in its order, up to max (at most 8) into out: how many,
 * or -1 (with *st, *what) when the graph or the heuristics failed. */
int zcg_configs(cudnnHandle_t h, cudnnBackendDescriptor_t devprop, const zc_attn *a,
                const zcg_spell *sp, int mode, zcg_cfg *out, int max, cudnnStatus_t *st,
                const char **what);

/* cuDNN's name of a knob type ("tile_m", ...; "?" for an unknown one). */
const char *zcg_knob_name(int64_t type);

/* c as text, "ENGINE[:knob=value,knob=value...]" (the survey's rows and
 * PX_ZIMAGE_CUDA_ATTN_CFG / ATTN8_CFG), and back: 0, or -1 for text not
 * of that form (a knob name cuDNN does not have included). */
void zcg_cfg_str(const zcg_cfg *c, char *buf, size_t len);
int zcg_cfg_parse(const char *s, zcg_cfg *c);

/* A plan's operands, device pointers except where said. */
typedef struct zcg_io {
    const void *q, *k, *v;
    void *o;
    const void *scale;         /* float: host (by value) or device (the spelling's sdev) */
    const int *seq_q, *seq_kv; /* int32 per item */
    const float *neg;          /* host float: the masked scores' value (patterns) */
    float *stats;              /* the training form's statistics */
    const float *descale_qk;   /* fp8: Q's and K's descales (2 floats) */
    const float *f8;           /* fp8: ZCG_FP8_N_SCALARS floats (the first two unused) */
    void *ws;                  /* zcg_workspace bytes */
} zcg_io;

/* Enqueues z's plan on h's stream (no allocation, no sync: safe under
 * stream capture). */
cudnnStatus_t zcg_execute(cudnnHandle_t h, const zcg *z, const zcg_io *io);

/* The execution plan and its workspace bytes (valid until zcg_free). */
cudnnBackendDescriptor_t zcg_plan(const zcg *z);
int64_t zcg_workspace(const zcg *z);
/* The plan's engine configuration (its knob values as built), or NULL
 * when cuDNN did not say. */
const zcg_cfg *zcg_config(const zcg *z);
void zcg_free(zcg *z); /* NULL is a no-op */

/* A device-properties descriptor from the JSON cuDNN serialized on the GPU
 * (zattn_cuda_bench deviceprop); the caller destroys it. */
cudnnStatus_t zcg_deviceprop(const char *json, size_t len, cudnnBackendDescriptor_t *out);

#ifdef __cplusplus
}
#endif

#endif
