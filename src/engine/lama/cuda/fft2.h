/*
 * fft2.h — the Fourier unit's 2-D real transforms, one kernel pass per
 * plane (PX_LAMA_CUDA_FFT=own, lama_cuda_net.c; opt-in, for measuring).
 *
 * Why: cuFFT's 2-D R2C and C2R over the unit's B*cs planes of 128x128
 * move each plane through memory about twice (0.158 ms a transform at
 * 1024² batch 8: 1.3 TB/s of useful traffic on an H100, where a transpose
 * pass runs at 2.2), 11.4 ms of an 81 ms pass. Here one block holds a
 * whole plane's spectrum in shared memory (66.5 KB at 128x128), so a
 * transform reads and writes each plane once. Measured (H100, 2026-12-07,
 * lama-cuda.md): correct (lama_cuda_test, the photo gate) but slower than
 * cuFFT as written, since the second step's 16-point transforms read
 * shared memory with 8-way bank conflicts and 126 registers leave two
 * blocks an SM; both are what to fix before it can pay.
 *
 * Same conventions as cuFFT: unnormalised, forward e^-i, inverse e^+i,
 * spectra [plane][h][w/2 + 1] complex (interleaved), real planes
 * [plane][h][w] fp32. The inverse, like a 2-D C2R, reads columns 0 and w/2
 * as Hermitian along h (their imaginary parts after the transform along h
 * are dropped). Sides: 32, 64 or 128 each (the crop windows' 256², 512²,
 * 1024² at 1/8 scale); other sizes stay with cuFFT.
 */
#ifndef PX_ENGINE_LAMA_CUDA_FFT2_H
#define PX_ENGINE_LAMA_CUDA_FFT2_H

#include "engine/lama/cuda/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Whether these kernels take h x w planes. */
int px_cu_fft2_fits(int h, int w);

/* Raises the kernels' shared-memory limit on the current device: once per
 * device before the first launch (outside a graph capture). Returns a CUDA
 * error code or 0. */
int px_cu_fft2_init(void);

/* Forward R2C of `planes` real planes (in) to spectra (out). */
int px_cu_rfft2(px_cu_stream s, const float *in, int planes, int h, int w, float *out);

/* Inverse C2R of `planes` spectra (in) to real planes (out). */
int px_cu_irfft2(px_cu_stream s, const float *in, int planes, int h, int w, float *out);

#ifdef __cplusplus
}
#endif

#endif
