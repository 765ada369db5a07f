/*
 * fft.h — the 2-D real FFTs of LaMa's Fourier units, on NHWC tensors
 * (FFTW single precision; plans made once per shape).
 *
 * Forward: x (h x w x c real) -> spectrum (h x wf x c complex, wf = w/2+1),
 * which as floats is h x wf x 2c with channel 2k = Re and 2k+1 = Im of
 * channel k: exactly the interleaving LaMa's 1x1 convolution expects, so
 * no copy is needed between the FFT and the convolution.
 *
 * Inverse, with explicit semantics for spectra that are not Hermitian (after
 * the ReLU in the frequency domain they are not, and "irfft2" of such input
 * is not unique): the complex inverse FFT along H, then the real-output
 * inverse along W, which uses only the real part of bins 0 and w/2 (even w).
 * This is what PyTorch's CPU irfftn computes (pocketfft); a single 2-D
 * complex-to-real plan would be undefined on such input.
 *
 * Neither direction is normalised: LaMa's "ortho" scaling (1/sqrt(h*w) each
 * way) is the caller's.
 */
#ifndef PX_ENGINE_LAMA_FFT_H
#define PX_ENGINE_LAMA_FFT_H

#include <stddef.h>

typedef struct px_fft px_fft;

/* Plans for one shape, using up to nthreads threads per transform. Returns
 * 0, PX_EINVAL (a size < 1) or PX_ENOMEM. Caller destroys *out. Safe to call
 * from several threads (planning is serialised inside). */
int px_fft_create(int h, int w, int c, int nthreads, px_fft **out, char *err, size_t errlen);
void px_fft_destroy(px_fft *f);

/* x: h*w*c floats (kept); spec: h*(w/2+1)*2c floats. Arrays must be 64-byte
 * aligned. Several threads may run one px_fft on different arrays. */
void px_fft_forward(const px_fft *f, float *x, float *spec);

/* spec: h*(w/2+1)*2c floats (destroyed); y: h*w*c floats. */
void px_fft_inverse(const px_fft *f, float *spec, float *y);

#endif
