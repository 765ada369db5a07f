/*
 * zvae_kernels.h — the Z-Image VAE decoder's CUDA kernels (zc_vae.c): NHWC
 * activations of one image, in fp32 (the mid block, and everything in the
 * fp32 and TF32 decoders) or bf16 (the up path of the bf16 decoder: `bf`
 * non-zero). Arithmetic in fp32 either way; GroupNorm statistics in
 * double. Every function enqueues on stream s and returns 0 or a
 * cudaError_t value.
 *
 * GroupNorm apply, bias and upsample take 16 bytes a thread (4 fp32 or 8
 * bf16 channels, 32-bit index arithmetic) where zc_vae_kernels4
 * says the tensors allow it, else a value a thread with a 64-bit index;
 * both give the same values (zc_kernels_check.c compares them). The mid
 * attention's fp32 row softmax is zkernels.h's; its bf16 one is here.
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZVAE_KERNELS_H
#define PX_ENGINE_ZIMAGE_CUDA_ZVAE_KERNELS_H

#include "engine/zimage/cuda/zkernels.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* GroupNorm statistics of x [hw, C] in G groups (C % G == 0, C <= 1024):
 * partial sums per (slice of pixels, channel) in double into part
 * (room for part_pairs (slice, channel) pairs of 2 doubles, >= C), then
 * mean and 1/sqrt(var + eps) per group into stats (G x 2 floats), a block
 * a group. Deterministic (fixed summation order for a given hw, C and
 * part_pairs). 8 channels a thread (16-byte loads) when zc_wide_kernels()
 * and x allows (aligned, C % 8 == 0, C / 8 dividing 256), else one.
 * xb: NULL, or the bias x has not had added yet (C floats):
 * the statistics are x[p, c] + xb[c]'s (summed in fp32 first, as
 * zc_gn_apply does), so the convolution before needs no bias pass. */
int zc_gn_stats(zc_stream s, const void *x, const float *xb, int bf, int hw, int C, int G,
                float eps, int part_pairs, double *part, float *stats);

/* y = GN(x + xb)·gamma + beta (xb as above, or NULL), then SiLU when
 * silu (with the fast exp and division where y is bf16:
 * PX_ZIMAGE_CUDA_GN_FAST, zvae_kernels.cu); x and y of one type (bf), y
 * may be x. */
int zc_gn_apply(zc_stream s, const void *x, const float *xb, int bf, int hw, int C, int G,
                const float *stats, const float *gamma, const float *beta, int silu, void *y);

/* y[p, c] = x[p, c] + b[c] over rows x C (b fp32); y may be x (a bias
 * pass), or another buffer (a residual copy with a bias added on the way). */
int zc_bias_add(zc_stream s, const void *x, void *y, int bf, const float *b, size_t rows, int C);

/* Whether zc_gn_apply, zc_bias_add and zc_upsample2 take 16 bytes a
 * thread for their input a and output b of type bf (both 16-byte aligned,
 * C a multiple of the values in 16 bytes, n values indexable in 32 bits by
 * the 16 bytes, PX_ZIMAGE_CUDA_FUSE not 0). */
int zc_vae_kernels4(const void *a, const void *b, int bf, size_t n, int C);

/* Nearest x2: x [h, w, C] -> y [2h, 2w, C]. */
int zc_upsample2(zc_stream s, const void *x, int bf, int h, int w, int C, void *y);

/* y = x converted from fp32 to bf16 (round to nearest even) or back
 * (x_bf != y_bf), n values. */
int zc_vae_convert(zc_stream s, const void *x, int x_bf, void *y, int y_bf, size_t n);

/* Row softmax of x [rows, n] scaled by `scale` (fp32), the probabilities
 * into y [rows, n] as bf16; x is scratch (it may be left changed). Rows of
 * up to 16,384 scores a multiple of 4 (16-byte aligned x and y) take one
 * read and one write; others zc_softmax_rows and a conversion. */
int zc_vae_softmax_bf16(zc_stream s, float *x, int rows, int n, float scale, void *y);

/* z[p, c] = lat[c, p] / scale + shift (NCHW latent to NHWC, fp32). */
int zc_vae_in(zc_stream s, const float *lat, int C, int hw, float scale, float shift, float *z);

/* rgb8[p, c] = lrint(255·clamp((x[p, c] + 1)/2, 0, 1)), x [hw, 3] fp32. */
int zc_vae_out(zc_stream s, const float *x, int hw, uint8_t *rgb8);

#ifdef __cplusplus
}
#endif

#endif
