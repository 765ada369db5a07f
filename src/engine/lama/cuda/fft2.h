/*
 * fft2.h — the Fourier unit's 2-D real transforms straight from and to the
 * network's NHWC tensors (lama_cuda_net.c's fourier_unit(): the default
 * where they fit; PX_LAMA_CUDA_FFT=cufft uses cuFFT everywhere).
 *
 * Why: with cuFFT the unit moves every activation through six passes per
 * direction (NHWC to planar, cuFFT's two, planar to NHWC complex; back:
 * the Hermitian transpose, cuFFT's two, planar to NHWC plus the add): 14.2
 * ms of layout kernels and 11.4 ms of transforms in an 81 ms fp16 pass at
 * 1024² batch 8 (H100, 2026-12-07, lama-cuda.md). Here each direction is
 * two passes, each reading and writing every value once, coalesced: a
 * block transforms one image row (or one spectrum column) for a group of
 * channels, which lie next to each other in NHWC. Measured (H100,
 * 2026-12-07, lama-cuda.md): the unit's 25.2 ms of layout kernels and
 * cuFFT became 13.6 ms, the engine 17 % faster. A first try that held a
 * whole plane per block (one channel, read at the channels' stride) was
 * slower than cuFFT and is gone.
 *
 * Same conventions as cuFFT: unnormalised, forward e^-i, inverse e^+i.
 * Spectra are NHWC complex, [B][h][w/2 + 1][c] (float re, im), the 1x1
 * convolution's layout (channel 2k = Re, 2k + 1 = Im). The inverse gives
 * what a 2-D C2R gives after columns 0 and w/2 are made Hermitian along h
 * (px_cu_hermitian_transpose's rule): their imaginary parts after the
 * transform along h are dropped. Sides: 32, 64 or 128 (the crop windows'
 * 256², 512², 1024² at 1/8 scale) with an even channel count; other
 * shapes stay with cuFFT.
 */
#ifndef PX_ENGINE_LAMA_CUDA_FFT2_H
#define PX_ENGINE_LAMA_CUDA_FFT2_H

#include "engine/lama/cuda/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Whether these kernels take B x h x w x c activations. */
int px_cu_fu_fits(int h, int w, int c);

/* Forward: x (B x h x w x c, element type et) to spec (NHWC complex). */
int px_cu_fu_rfft2(px_cu_stream s, int et, const void *x, int B, int h, int w, int c, float *spec);

/*
 * Inverse, and the unit's end: out = scale * C2R(g) + add, out of type et
 * with c + ext channels (the last ext the bias channel, kernels.h), add
 * (B x h x w x c) of type eta. g is overwritten (the transforms along h
 * run in place).
 */
int px_cu_fu_irfft2(px_cu_stream s, float *g, float scale, int eta, const void *add, int et, int B,
                    int h, int w, int c, int ext, void *out);

#ifdef __cplusplus
}
#endif

#endif
