/*
 * weights.h — LaMa generator weights from a safetensors file: the
 * architecture from its metadata, every tensor found under its original
 * name ("model.N...", optionally prefixed "generator.") with its shape
 * checked, and each BatchNorm (eval mode, eps 1e-5) folded into the
 * convolution before it, so the graph runs convolutions with a bias only.
 *
 * How the folding maps onto the graph (per output channel, s = gamma /
 * sqrt(var + eps), t = beta - mean * s):
 *   FFC local:   bn_l(l2l(l) + g2l(g))  -> l2l gets s_l and bias t_l, g2l gets s_l
 *   FFC global:  bn_g(l2g(l) + st2(..)) -> st2 gets s_g and bias t_g, l2g gets s_g
 *   spectral conv1 + BN, Fourier unit conv + BN, transposed conv + BN: folded in place.
 */
#ifndef PX_ENGINE_LAMA_WEIGHTS_H
#define PX_ENGINE_LAMA_WEIGHTS_H

#include "core/buf.h"
#include "engine/safetensors.h"

#include <stdbool.h>
#include <stddef.h>

#define PX_LAMA_MAX_DOWN 5
#define PX_LAMA_MAX_BLOCKS 64
#define PX_LAMA_IN_CH 4  /* masked RGB + mask */
#define PX_LAMA_OUT_CH 3

typedef struct px_lama_arch {
    int ngf;      /* channels after the stem */
    int n_down;   /* stride-2 downsamplings (and as many upsamplings) */
    int n_blocks; /* FFC residual blocks */
    double ratio; /* global share of the trunk's channels */
    int ch[PX_LAMA_MAX_DOWN + 1]; /* channels at level i: min(1024, ngf << i) */
    int dim, cl, cg; /* trunk channels, local, global (cg = int(dim * ratio)) */
    int cs;          /* spectral channels inside SpectralTransform: cg / 2 */
} px_lama_arch;

/* One convolution after folding: weights in PyTorch's layout, (cout, cin, k,
 * k), or (cin, cout, k, k) for a transposed one; bias NULL or cout values. */
typedef struct px_lama_conv {
    int cout, cin, k, stride;
    bool transposed;
    float *w;
    float *b;
} px_lama_conv;

/* One FFC + BN + ReLU of a residual block. */
typedef struct px_lama_ffc {
    px_lama_conv l2l, g2l, l2g; /* 3x3 */
    px_lama_conv st1, fu, st2;  /* spectral transform: 1x1 in, Fourier unit 1x1, 1x1 out */
} px_lama_ffc;

typedef struct px_lama_weights {
    px_lama_arch arch;
    px_lama_conv stem;                   /* 7x7, 4 -> ngf */
    px_lama_conv down[PX_LAMA_MAX_DOWN]; /* 3x3 s2; the last is its local (l2l) part */
    px_lama_conv down_g;                 /* the last downsampling's l2g part */
    px_lama_ffc (*blocks)[2];            /* n_blocks x (conv1, conv2) */
    px_lama_conv up[PX_LAMA_MAX_DOWN];   /* transposed 3x3 s2 */
    px_lama_conv out;                    /* 7x7, ngf -> 3, then sigmoid */
    size_t nparams;                      /* elements read from the file */
} px_lama_weights;

/*
 * Reads and folds every tensor. Returns 0, PX_EUNSUP (metadata names another
 * architecture or an unsupported configuration), PX_ECORRUPT (a tensor is
 * missing, has the wrong shape or dtype, or is not part of the architecture;
 * err names it) or PX_ENOMEM. On success the caller frees w with
 * px_lama_weights_free; on failure w holds nothing.
 */
int px_lama_weights_load(const px_st *st, px_lama_weights *w, char *err, size_t errlen);

/* Frees every buffer (safe on a zeroed or already freed struct). */
void px_lama_weights_free(px_lama_weights *w);

/* The architecture of a configuration (no file): fills a from the four
 * numbers. Returns 0 or PX_EUNSUP with the reason. */
int px_lama_arch_init(px_lama_arch *a, int ngf, int n_down, int n_blocks, double ratio, char *err,
                      size_t errlen);

/* Appends the description fields every lama engine shares (CPU and CUDA):
 * "weights":PATH,"arch":"ffc_resnet","ngf":..,"n_downsampling":..,
 * "n_blocks":..,"ratio_g":.. (no leading comma). 0 or PX_ENOMEM. */
int px_lama_arch_describe(px_buf *out, const char *weights, const px_lama_arch *a);

#endif
