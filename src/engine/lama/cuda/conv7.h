/*
 * conv7.h — the LaMa CUDA backend's 7x7 stem and head (conv7.cu): the two
 * full-resolution convolutions whose channel counts (4 in, 3 out) suit
 * cuDNN badly, each fused with what surrounds it. `wtc` selects the
 * implementation: NULL, fp32 on the CUDA cores (from w32); else fp16 on
 * the tensor cores with fp32 sums, from the weights px_cu_*_tc_weights
 * arranged (3.3x faster; the inputs rounded to fp16 cost the accuracy gate
 * nothing measurable, emulated or on the GPU: docs/benchmarks/lama-cuda.md).
 * Launchers
 * enqueue on `s` and return 0 or the launch's CUDA error.
 */
#ifndef PX_ENGINE_LAMA_CUDA_CONV7_H
#define PX_ENGINE_LAMA_CUDA_CONV7_H

#include "engine/lama/cuda/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The stem, fused with building its input: for every output pixel of the
 * padded H x W image, the 7x7 convolution (weights w32: cout x 7 x 7 x 4,
 * fp32, BatchNorm folded; bias) over the masked image and mask, both
 * symmetric-padded to H x W and reflection-padded by 3, plus bias, ReLU,
 * into out (B x H x W x cout, act type et). cout a multiple of 8; on the
 * tensor cores 8, 16, 32 or 64. On the tensor cores only, pad 1 writes
 * instead the first down-sampling's input, out reflection-padded by 1,
 * (B x (H+2) x (W+2) x (cout + ext), ext the bias channel's width: a
 * multiple of 8) — the pass px_cu_reflect_pad would make of it.
 */
int px_cu_stem(px_cu_stream s, int et, const uint8_t *img, const uint8_t *mask, size_t img_stride,
               size_t mask_stride, const px_cu_item *items, int B, int H, int W, const float *w32,
               const void *wtc, const float *bias, int cout, int pad, int ext, void *out);

/*
 * The head, fused: reflection pad 3 of u (B x H x W x cin, act type), the
 * 7x7 convolution to RGB (w32: 3 x 7 x 7 x cin fp32; bias), sigmoid, then
 * quantised, composed with the input (the prediction in the hole, the
 * input elsewhere) and cropped to each item's size into out; the float
 * prediction into pred when not NULL. cin a multiple of 8 (of 4 on the
 * CUDA cores).
 */
int px_cu_head(px_cu_stream s, int et, const void *u, int B, int H, int W, int cin,
               const float *w32, const void *wtc, const float *bias, const uint8_t *img,
               const uint8_t *mask, size_t img_stride, size_t mask_stride, const px_cu_item *items,
               uint8_t *out, float *pred);

/* The tensor cores' weights: their size in bytes, and arranging them into
 * dst (device) from the fp32 weights w32 (device, the layouts above). */
size_t px_cu_stem_tc_bytes(int cout);
size_t px_cu_head_tc_bytes(int cin);
int px_cu_stem_tc_weights(px_cu_stream s, const float *w32, int cout, void *dst);
int px_cu_head_tc_weights(px_cu_stream s, const float *w32, int cin, void *dst);

#ifdef __cplusplus
}
#endif

#endif
