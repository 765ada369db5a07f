/*
 * zlayout.h — the Z-Image CUDA backend's per-step and layout kernels
 * (zlayout.cu): everything the DiT and the text encoder do to rows
 * besides the row kernels of zkernels.h — the timestep sinusoid and
 * modulation, patchify and the sampler's unpatchify + Euler step, the text
 * rows' padding, copies and embedding. Enqueued on stream s; each returns
 * 0 or the CUDA error of the launch.
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZLAYOUT_H
#define PX_ENGINE_ZIMAGE_CUDA_ZLAYOUT_H

#include "engine/zimage/cuda/zkernels.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The timestep sinusoid of each item's t_in (device, n values): out[b] =
 * [cos(t·f_i), sin(t·f_i)], f_i = exp(−ln(10⁴)·i/half), i < half, as the
 * CPU engine rounds it; bf16 [n, 2·half].
 */
int zc_timestep_freq(zc_stream s, const float *t_in, int n, int half, void *out);

/* DiT modulation, in place on [n, 4D] fp32: (1 + scale, tanh gate, 1 +
 * scale, tanh gate). */
int zc_modulation(zc_stream s, float *mod, int n, int D);

/* x[i] = 1 + x[i] over n floats (the final layer's scale). */
int zc_one_plus(zc_stream s, float *x, size_t n);

/*
 * Patchify: item b's latent lat + lat_of[b]·C·H·W (fp32 [C, H, W], H = ht·p)
 * into rows [b·ni, b·ni + ht·wt) of out (bf16 [., p·p·C], features ordered
 * (ph, pw, c)); rows [ht·wt, ni) of each item become zeros.
 */
int zc_patchify(zc_stream s, const float *lat, const int *lat_of, int n, int C, int ht, int wt,
                int p, int ni, void *out);

/*
 * Rows of x ([n·S, D], bf16 when x_bf else fp32): for item b, rows
 * [len[b], pad_end[b]) become the pad token `pad` (D floats) and rows
 * [pad_end[b], S) zeros (dead). len, pad_end: device arrays of n ints.
 */
int zc_pad_rows(zc_stream s, void *x, int x_bf, int n, int S, int D, const int *len,
                const int *pad_end, const float *pad);

/* Copies rows: dst item b rows [dst_off, dst_off + rows) (items of
 * dst_S rows) = src item b rows [0, rows) (items of src_S rows); rows of w
 * elements, bf16 when x_bf (w % 8 == 0) else fp32 (w % 4 == 0). */
int zc_copy_rows(zc_stream s, void *dst, int dst_S, int dst_off, const void *src, int src_S,
                 int rows, int n, int w, int x_bf);

/* x rows (fp32 [rows, n]) = the bf16 embedding rows table[ids[r]]. */
int zc_embed_rows(zc_stream s, const void *table, const int *ids, int rows, int n, float *x);

/*
 * The sampler step of every image, after the final linear: pred (fp32,
 * DiT item rows [b·ni, b·ni + ht·wt) of pf = p·p·C features) unpatchified,
 * v = pos + w·(pos − neg) when neg_of[i] >= 0 (else v = pos), and
 * lat_i += dt[i] · (−v). pos_of/neg_of: DiT items of image i; dt, w:
 * per image (device). out_pred (NULL or fp32 [nimg, C, H, W]) gets the
 * unpatchified positive prediction of each image (tests).
 */
int zc_unpatchify_step(zc_stream s, const float *pred, int ni, int C, int ht, int wt, int p,
                       int nimg, const int *pos_of, const int *neg_of, const float *dt,
                       const float *w, float *lat, float *out_pred);

#ifdef __cplusplus
}
#endif

#endif
