/*
 * zkernels.h — the Z-Image CUDA backend's own kernels, callable from C:
 * the fused element-wise steps between cuBLASLt GEMMs (norms with their
 * modulation, the gated residual with its post-norm, q/k norm + RoPE,
 * SwiGLU) and the row softmax of the VAE's attention. The timestep
 * sinusoid, patchify / unpatchify + the Euler step and the text rows:
 * zlayout.h; attention: zattn.h; the VAE's other kernels: zvae_kernels.h.
 *
 * Layouts: activations are row-major, a token per row. The batch is "padded
 * items": item b owns rows [b*S, (b+1)*S) of a buffer (S = rows per item);
 * an item's valid rows are a prefix of them, the rest are dead rows whose
 * content is never read as a key. bf16 tensors are passed as void * (the C
 * side has no bf16 type), float ones as float *. The residual stream and
 * every norm's arithmetic are fp32; only GEMM and attention operands are
 * bf16.
 *
 * Every launcher enqueues on `s` and returns 0 or the launch's cudaError_t
 * as an int (see PX_CUDA_LAUNCH_CHECK).
 *
 * Checked through zimage_cuda_test's stages (passed on an H200, 2026-12-05;
 * docs/benchmarks/zimage-cuda.md).
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZKERNELS_H
#define PX_ENGINE_ZIMAGE_CUDA_ZKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CUstream_st *zc_stream;

/* Whether the wide and fused element-wise kernels run (PX_ZIMAGE_CUDA_FUSE
 * is not "0"; read once): also the VAE kernels' (zvae_kernels.h), the
 * DiT projections' bf16 outputs (zc_dit.c) and the VAE's folded biases
 * (zc_vae.c). =0 runs what came before them, for comparing. */
int zc_wide_kernels(void);

/* float -> bf16 (round to nearest even), n elements. */
int zc_f32_to_bf16(zc_stream s, const float *x, void *y, size_t n);

/*
 * y[r] = RMSNorm(x[r]) · w · mul[item(r)] over n columns, fp32 statistics;
 * x (ldx) bf16 when x_bf else fp32, y bf16 (ldy). w NULL = no weight; mul
 * NULL = no modulation, else mul + item*ldmul is a row of n factors
 * (already 1 + scale) and item(r) = r / rows_per_item.
 */
int zc_rmsnorm_mod(zc_stream s, const void *x, int x_bf, int ldx, int rows, int n, const float *w,
                   float eps, const float *mul, int ldmul, int rows_per_item, void *y, int ldy);

/* The same with LayerNorm without affine (the DiT's final layer). */
int zc_layernorm_mod(zc_stream s, const void *x, int x_bf, int ldx, int rows, int n, float eps,
                     const float *mul, int ldmul, int rows_per_item, void *y, int ldy);

/*
 * x[r] += gate[item(r)] · RMSNorm(h[r]) · w (the DiT's sandwich post-norm
 * and tanh gate; gate NULL = 1), computed in fp32 and stored in x's type
 * (bf16 when x_bf: the default residual stream, fp32 under
 * PX_ZIMAGE_CUDA_RESID=fp32; ldx), h (ldh) bf16 when h_bf else fp32, n columns.
 */
int zc_gated_residual(zc_stream s, void *x, int x_bf, int ldx, const void *h, int h_bf, int ldh,
                      int rows, int n, const float *w, float eps, const float *gate, int ldgate,
                      int rows_per_item);

/* An e4m3 copy of a kernel's bf16 output rows, for the fp8 GEMM that
 * reads them (zc_fp8.h's rule on the bf16 values: the bits
 * zc_fp8_quant_rows would give of the bf16 output): q rows of ld =
 * zc_fp8_ld(n) bytes, zeros past n, 16-byte aligned; one scale a row. */
typedef struct zc_q8 {
    uint8_t *q;
    float *scale;
    int ld;
} zc_q8;

/*
 * zc_gated_residual (wh: its norm weight), then y[r] = RMSNorm(x[r]) · w ·
 * mul[item(r)] of the updated x as zc_rmsnorm_mod: the same values as the
 * two calls, one pass over x fewer (the DiT's attention residual and its
 * feed-forward norm; the norm reads x as stored, so bf16 x rounds as the
 * two calls do). q8 (NULL: none): y's fp8 copy too, in the same pass
 * where the wide kernel runs (zc_q8_fusable(n)); y may then be NULL (the
 * fp8 GEMM reads only q8). Elsewhere y is needed and is quantized after.
 */
int zc_gated_residual_norm(zc_stream s, void *x, int x_bf, int ldx, const void *h, int h_bf,
                           int ldh, int rows, int n, const float *wh, float eps, const float *gate,
                           int ldgate, int rows_per_item, const float *w, const float *mul,
                           int ldmul, void *y, int ldy, const zc_q8 *q8);

/* Whether zc_gated_residual_norm writes a q8 copy of n-wide rows in its
 * own pass (the wide kernels run and the rows are 16-byte aligned, as a
 * plan's buffers are). */
int zc_q8_fusable(int n);

/*
 * Per-head RMSNorm (weight w[head_dim]) then RoPE, in place on bf16 heads:
 * heads [0, n_heads) of each row of x (ld elements) starting at column
 * col0. cs: fp32 table [., head_dim] of (cos, sin) pairs (zi_rope_table's
 * layout); the row r uses cs row (period ? r % period : r). interleaved:
 * pairs (2i, 2i+1) (the DiT), else (i, i + head_dim/2) (Qwen3).
 */
int zc_qknorm_rope(zc_stream s, void *x, int ld, int col0, int rows, int n_heads, int head_dim,
                   const float *w, float eps, const float *cs, int period, int interleaved);

/* The same (interleaved pairs) with the result as e4m3 codes of value · s8
 * (saturating) into o8 (row stride ld8 bytes, the same columns), x left
 * as it was: the fp8 attention's Q and K. Only where the wide kernel runs
 * (head_dim / 8 a power of two <= 32, x, w, cs 16-byte aligned, ld and col0
 * multiples of 8, o8 8-byte aligned, ld8 % 8 == 0); else
 * cudaErrorInvalidValue. */
int zc_qknorm_rope_q8(zc_stream s, const void *x, int ld, int col0, int rows, int n_heads,
                      int head_dim, const float *w, float eps, const float *cs, int period,
                      uint8_t *o8, int ld8, float s8);

/* In place on bf16 rows of ld elements: x[r, i] = silu(x[r, i]) · x[r, n + i],
 * i < n (gate | up side by side, the output over the gate). */
int zc_swiglu(zc_stream s, void *x, int ld, int rows, int n);

/* x = silu(x) in place; bf16 (bf16 = 1) or fp32 (0), n elements. */
int zc_silu(zc_stream s, void *x, int bf16, size_t n);

/* Row softmax of x [rows, n] scaled by `scale`, in place (fp32). */
int zc_softmax_rows(zc_stream s, float *x, int rows, int n, float scale);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
/* One gate/up pair's SwiGLU, silu(g) · u: the one expression of every
 * SwiGLU kernel (bf16, per value, with the fp8 copy), whose outputs the
 * kernels check compares bit for bit. __fdividef (a reciprocal and a
 * multiply, within 2 ulps of fp32) instead of an IEEE division: the fp8
 * kernel, which also converts, was partly bound by its instructions
 * (2026-12-06); its result is rounded to bf16 (2^-8) at once. */
static __device__ __forceinline__ float zc_swiglu1(float g, float u)
{
    return __fdividef(g, 1.0f + __expf(-g)) * u;
}
#endif

#endif
