/*
 * zimage_cuda.h — the zimage engine's CUDA backend, as zimage_engine.c
 * and the tests see it. Built with `make CUDA=1` (src/engine/zimage/cuda/);
 * otherwise zimage_cuda_none.c answers every call with PX_EUNSUP and a
 * message saying how to build it.
 */
#ifndef PX_ENGINE_ZIMAGE_ZIMAGE_CUDA_H
#define PX_ENGINE_ZIMAGE_ZIMAGE_CUDA_H

#include "engine/engine_impl.h"
#include "engine/zimage/lora.h"

#include <stddef.h>
#include <stdint.h>

/* 0 if the backend is built and a GPU is visible; else PX_EUNSUP with
 * the reason (tests skip on it). */
int zi_cuda_probe(char *err, size_t errlen);

/* The engine on the GPUs cfg->device names ("cuda" = every visible one):
 * the model (cfg->weights, a Hugging Face directory) opened once, its
 * weights uploaded once per GPU. Returns 0, PX_EUNSUP (no CUDA build or
 * no GPU), or the model's / device's errors. Caller closes *out. */
int zi_cuda_engine_create(const px_engine_config *cfg, px_engine **out, char *err, size_t errlen);

/* ----------------------------------------- stages, for tests and benches */

/* Text features (hidden_states[-2]) of ids[n] on the engine's first GPU,
 * into feat [n, hidden] (host). */
int zi_cuda_encode(px_engine *e, const int32_t *ids, int n, float *feat, char *err, size_t errlen);

/* One DiT forward at sigma of n items sharing lat_h x lat_w: item i reads
 * latent lat[i] ([C, lat_h, lat_w], host) and text features text[i]
 * ([text_len[i], hidden], host) and applies the LoRAs loras[i][0 ..
 * nloras[i]) (loras NULL: none; opened with zi_lora_open for this model:
 * zi_cuda_lora_forget each before freeing it); out[i] gets the
 * model output (host, [C, lat_h, lat_w]), as zi_dit_forward's. */
int zi_cuda_dit_forward(px_engine *e, const float *const *lat, const float *const *text,
                        const int *text_len, const zi_lora_use *const *loras, const int *nloras,
                        int n, int lat_h, int lat_w, float sigma, float *const *out, char *err,
                        size_t errlen);

/* The GPU VAE (fp32) on latent ([C, lat_h, lat_w], host) into rgb (host,
 * 8·lat_h x 8·lat_w x 3 bytes). */
int zi_cuda_vae_decode(px_engine *e, const float *latent, int lat_h, int lat_w, uint8_t *rgb,
                       char *err, size_t errlen);

/* One fp8 GEMM (zc_gemm's e4m3 path, as the DiT's linears run it) on the
 * first GPU, for tests: w and x (bf16 bits) quantized per row on the
 * device, then y = alpha·x·wᵀ (+ bias) (+ y's value before, with
 * accumulate). The quantized operands come back too, so that a test can
 * check them against the host rule (zc_fp8.h) and compute its reference
 * from them. Returns 0, PX_EUNSUP (no CUDA build, no GPU, or one or a
 * cuBLASLt without e4m3 GEMMs: tests skip on it), PX_EINVAL (a shape the
 * fp8 path refuses) or a CUDA error. */
typedef struct zi_cuda_fp8_case {
    int M, N, K, ldx;         /* N % 16 == 0; ldx >= K */
    const uint16_t *x, *w;    /* bf16: [M, ldx], [N, K] */
    const float *bias;        /* NULL or N floats */
    float alpha;              /* 0 means 1 */
    int accumulate, y_f32;    /* y fp32, else bf16 */
    void *y;                  /* [M, N]: the value before (accumulate), the result */
    uint8_t *x8, *w8;         /* out: [M, ld], [N, ld] e4m3, ld = K rounded up to 16 */
    float *x_scale, *w_scale; /* out: M and N row scales */
} zi_cuda_fp8_case;

int zi_cuda_fp8_gemm_check(zi_cuda_fp8_case *c, char *err, size_t errlen);

/* The fused element-wise kernels against the ones they replace, on the
 * first GPU, for zimage_cuda_test: zc_gated_residual_norm against
 * zc_gated_residual then zc_rmsnorm_mod (rows x n fp32, gate and
 * modulation per item of rows_per_item rows), zc_swiglu's 8-wide path
 * against its per-element one (rows x 2n bf16, n a multiple of 8), and
 * zc_qknorm_rope's 8-wide path (a block a row) against its per-element one (the k third of
 * rows x 3n bf16, heads of 128, or one head of n when n is not a multiple
 * of 128; RoPE table rows modulo 7 for odd seeds, one per row for even), on
 * values from seed, and the VAE's 16-byte zc_gn_apply, zc_bias_add and
 * zc_upsample2 against their per-value paths in fp32 and bf16, bf16
 * GroupNorm statistics against fp32 ones and zc_vae_convert against the
 * host's rounding, and the mid attention's bf16 softmax against the fp32
 * one rounded (within a bf16 step; at most 16,384 x 512 values, rows >= 4:
 * vae_diff). The residual is compared with
 * and without gate and modulation, these as the DiT passes them (rows of a 4n-wide buffer); the
 * fused residual + norm also through its wide (16-byte) and per-value kernels (row_far: x apart by
 * more than 1e-5 · (1 + |x|) or y by more than one bf16 step; row_near: apart by less). Returns 0
 * with the counts of values that differ (in any bit; for q/k norm, whose sum of squares adds in
 * another order: by more than one bf16 step of the larger output of the value's RoPE pair, and by
 * at most that), or PX_EUNSUP without the backend or a GPU, or a CUDA error. */
typedef struct zi_cuda_kernels_case {
    int rows, n, rows_per_item;
    unsigned seed;
    long x_diff, y_diff, swiglu_diff, qk_far, qk_near, vae_diff; /* out */
    long row_far, row_near; /* out: the wide residual + norm against the per-value one */
    long q8_diff; /* out: bytes where the fused fp8 outputs differ from the quantized bf16 */
} zi_cuda_kernels_case;

int zi_cuda_kernels_check(zi_cuda_kernels_case *c, char *err, size_t errlen);

/* Forgets LoRA l in the LoRA cache of every GPU of every open zimage CUDA
 * engine (the uploaded copy is freed now, or when the batch using it
 * ends), so that a LoRA allocated later at l's address is never served
 * l's deltas: whoever frees a zi_lora that a CUDA engine may have run
 * calls it first (the CUDA engine's lora_close does). Thread-safe; a
 * no-op without the CUDA build. */
void zi_cuda_lora_forget(const zi_lora *l);

/* px_engine_run, also writing each item's final latents (before the VAE)
 * into lat_out (n x C x height/8 x width/8, host) when not NULL. Items
 * must share one size. */
int zi_cuda_run_latents(px_engine *e, px_engine_item *items, int n, float *lat_out, char *err,
                        size_t errlen);

#endif
