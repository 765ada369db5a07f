/*
 * fft2.h — the Fourier unit's 2-D real transforms, one kernel pass per
 * plane (PX_LAMA_CUDA_FFT=own, lama_cuda_net.c; for measuring, not yet
 * run on a GPU).
 *
 * Why: cuFFT's 2-D R2C and C2R over the unit's B*cs planes of 128x128
 * moved each plane through memory about twice (0.158 ms a transform at
 * 1024² batch 8: 1.3 TB/s of useful traffic on an H100, where a transpose
 * pass runs at 2.2), 11.4 ms of an 81 ms pass. Here one block holds a whole
 * plane's spectrum in shared memory (66.5 KB at 128x128), so a transform
 * reads and writes each plane once; the inverse can also read the 1x1
 * convolution's planar output and make columns 0 and w/2 Hermitian on
 * its way in (what px_cu_hermitian_planar does as a pass of its own).
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

/* Inverse C2R of `planes` spectra to real planes (out). in is the spectra,
 * or with gp != 0 the convolution's planes [plane][2][h][w/2 + 1] (real
 * parts, then imaginary parts), made Hermitian in columns 0 and w/2 along
 * h on the way in (px_cu_hermitian_planar's rule). */
int px_cu_irfft2(px_cu_stream s, const float *in, int gp, int planes, int h, int w, float *out);

/* Where px_cu_irfft2_to puts plane p (channel p % c of image p / c):
 * plane (p / c) * oc + p % c of out, elements of type et (PX_CU_*), each
 * add's element (planar fp32, in's layout; NULL: none) + scale times the
 * transform's; planes c .. oc-1 of each image get the bias channel (1,
 * then 0s: kernels.h). px_cu_irfft2 is {out, PX_CU_F32, NULL, 1, 1, 1}. */
typedef struct px_cu_fft2_out {
    void *out;
    int et;
    const float *add;
    float scale;
    int c, oc;
} px_cu_fft2_out;

/* The inverse with the Fourier unit's last step fused: u = s + scale *
 * irfft2(...) written as NCHW activations with the bias channel
 * (PX_LAMA_CUDA_FU_FUSE). */
int px_cu_irfft2_to(px_cu_stream s, const float *in, int gp, int planes, int h, int w,
                    const px_cu_fft2_out *o);

#ifdef __cplusplus
}
#endif

#endif
