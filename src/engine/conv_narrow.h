/*
 * conv_narrow.h — a direct convolution for layers with very few output
 * channels, part of the CPU convolution backend (conv_dnnl.c uses it).
 *
 * LaMa's last layer is a 7x7 convolution from 64 channels to 3 (RGB). With
 * so few outputs oneDNN's kernels cannot fill their vector registers along
 * the output channels and ran at about a tenth of their usual rate (230-270
 * ms at 512x512 on the development VM, more than the whole trunk's spectral
 * transforms). This kernel vectorises along the input channels instead: per
 * output pixel and output channel, one dot product of kh*kw*cin values read
 * contiguously from the NHWC input. (cout is 3 only: the one layer it is for.) It needs AVX-512F (checked at run time);
 * without it the backend keeps using oneDNN.
 */
#ifndef PX_ENGINE_CONV_NARROW_H
#define PX_ENGINE_CONV_NARROW_H

#include "core/pool.h"

#include <stdbool.h>

#define PX_NARROW_MAX_CIN 1024

/* Whether this CPU and layer shape can use the kernel: stride 1, no padding,
 * cout = 3, cin a multiple of 16 up to PX_NARROW_MAX_CIN. */
bool px_narrow_supported(int cout, int cin, int stride, int pad_b, int pad_r);

/* dst (oh x ow x cout, oh = h-kh+1, ow = w-kw+1) = [relu](conv(src) + bias
 * [+ dst if accumulate]). src h x w x cin; wt (cout, kh, kw, cin); bias NULL
 * or cout values. Rows are spread over the pool. */
void px_narrow_conv(px_pool *pool, const float *src, int h, int w, int cin, const float *wt,
                    const float *bias, int cout, int kh, int kw, float *dst, bool accumulate,
                    bool relu);

#endif
