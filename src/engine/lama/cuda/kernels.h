/*
 * kernels.h — the LaMa CUDA backend's own kernels, callable from C.
 *
 * cuDNN does most convolutions and cuFFT the transforms; these kernels do
 * what those libraries do badly or not at all, each in one pass over
 * memory (the 7x7 stem and head: conv7.h): reflection
 * padding (fused with the residual add and with gathering the trunk's two
 * channel groups), bias + ReLU epilogues, and the Fourier unit's transposes
 * (with the explicit inverse-FFT semantics).
 *
 * Tensors are NHWC. `et` selects the element type of activation tensors
 * (PX_CU_F32, PX_CU_BF16, PX_CU_F16; FFT buffers are always float). Every
 * launcher enqueues on `stream` and returns 0 or the CUDA error code of the
 * launch.
 */
#ifndef PX_ENGINE_LAMA_CUDA_KERNELS_H
#define PX_ENGINE_LAMA_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CUstream_st *px_cu_stream;

/* Element types of activation tensors (the `et` arguments). */
enum { PX_CU_F32 = 0, PX_CU_BF16 = 1, PX_CU_F16 = 2 };

/* Per batch item: the size of the image it carries (<= the padded size). */
typedef struct px_cu_item {
    int h, w;
} px_cu_item;

/*
 * The bias channel (lama_cuda_weights.h): ext (0 or a multiple of 8) more
 * channels after an activation's c, 1 then 0s, which a 16-bit
 * convolution's weights read to add the part of its bias that 16 bits
 * cannot hold. px_cu_bias_channel writes them into buf (rows x (c + ext));
 * the kernels below that take ext write them as they go.
 */
int px_cu_bias_channel(px_cu_stream s, int et, void *buf, size_t rows, int c, int ext);

/*
 * Reflection padding by p of src[B][h][w][c] into dst[B][h+2p][w+2p][c +
 * ext] (torch "reflect": the edge is not repeated; p < h, w).
 */
int px_cu_reflect_pad(px_cu_stream s, int et, const void *src, int B, int h, int w, int c, int ext,
                      int p, void *dst);

/*
 * The trunk's step before an FFC: v = x + r (the residual add of the block
 * that just ended; rl/rg NULL: v = x), written unpadded to nxl/nxg when the
 * add is made (they must not alias x: other threads still read it), and the
 * reflection-padded concatenation [v_l | v_g] (cl + cg channels, then ext
 * of the bias channel) written to pcat and the padded local group alone to pl; gw, when not NULL, receives
 * v_g unpadded in fp32 (FP16's st1 input). xl: B x h x w x cl, xg: cg.
 * Types: x and nx etx (the residual stream's), r, pcat and pl et.
 */
int px_cu_trunk_pad(px_cu_stream s, int etx, int et, const void *xl, const void *xg, const void *rl,
                    const void *rg, void *nxl, void *nxg, int B, int h, int w, int cl, int cg,
                    int ext, int p, void *pcat, void *pl, float *gw);

/* The trunk's end: xl + rl and xg + rg concatenated into out (B x h x w x
 * (cl+cg)); x of type etx, r and out et. */
int px_cu_trunk_concat(px_cu_stream s, int etx, int et, const void *xl, const void *xg,
                       const void *rl, const void *rg, int B, int h, int w, int cl, int cg,
                       void *out);

/* y[n][c] = act(y[n][c] + bias[c]) over rows x c elements; relu 0/1. */
int px_cu_bias_act(px_cu_stream s, int et, void *y, const float *bias, size_t rows, int c,
                   int relu);

/*
 * The Fourier unit's spectrum g, NHWC complex [B][h][wf][c], transposed to
 * planar [B][c][h][wf] for the inverse, with columns 0 and (even w) w/2
 * made Hermitian along H: a 2D C2R over [B*c][h][wf] then gives what
 * PyTorch CPU's (pocketfft's) inverse real FFT gives a spectrum that is
 * not Hermitian.
 */
int px_cu_hermitian_transpose(px_cu_stream s, const float *g, int B, int c, int h, int wf, int w,
                              float *dst);

/*
 * The planar Fourier unit's layouts: activations [B][np][c] (act type) to
 * planar fp32 [B][c][np]; a planar complex spectrum [B][c][np] back to NHWC
 * complex [B][np][c] (the 1x1 convolution's input).
 */
int px_cu_to_planar(px_cu_stream s, int et, const void *src, int B, int np, int c, float *dst);
int px_cu_planar_to_nhwc_c(px_cu_stream s, const float *src, int B, int np, int c, float *dst);

/*
 * The Fourier unit's end: planar real [B][c][h][w] times scale, back to
 * NHWC and added to add (B x h x w x c, type eta), into out (type et; c +
 * ext channels, the last ext the bias channel).
 */
int px_cu_planar_add(px_cu_stream s, int eta, int et, const float *planar, float scale,
                     const void *add, int B, int h, int w, int c, int ext, void *out);

/* Converts n floats to the activation type (weights upload). */
int px_cu_convert(px_cu_stream s, int et, const float *src, size_t n, void *dst);

/* Widens n activations of type et to fp32 (n a multiple of 8). */
int px_cu_widen(px_cu_stream s, int et, const void *src, size_t n, float *dst);

#ifdef __cplusplus
}
#endif

#endif
