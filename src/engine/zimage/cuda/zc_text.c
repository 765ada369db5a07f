/*
 * zc_text.c — the Qwen3 text encoder on the GPU (zc_text_encode): every
 * prompt of a batch (both halves of CFG, every request) as one padded
 * batch, so the GEMMs see all tokens at once. Per layer: RMSNorm -> one
 * q|k|v GEMM -> per-head q/k RMSNorm + half-split RoPE -> causal GQA flash
 * attention with each item's key length -> o_proj accumulated into the
 * fp32 residual -> RMSNorm -> one gate|up GEMM -> SwiGLU -> down_proj
 * accumulated. Layer 36's output is never needed (hidden_states[-2]).
 *
 * The RoPE table is zi_rope_table_f32's (the CPU encoder's rounding),
 * positions 0..Lmax-1 shared by every item.
 *
 * Ran on an H200 (2026-12-05): zimage_cuda_test passes, tiny and full size.
 */
#include "engine/zimage/cuda/zc_net.h"

#include "core/alloc.h"
#include "core/err.h"
#include "engine/cuda/cuda_check.h"
#include "engine/zimage/cuda/zattn.h"
#include "engine/zimage/cuda/zkernels.h"
#include "engine/zimage/cuda/zlayout.h"
#include "engine/zimage/zops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int gemm(zc_dev *d, const void *x, int ldx, int M, int K, const void *w, int N, void *y,
                int ldy, zc_type yt, int acc, char *err, size_t errlen)
{
    zc_gemm_args a = {.x = x, .ldx = ldx, .M = M, .K = K, .w = w, .N = N, .y = y, .ldy = ldy,
                      .yt = yt, .accumulate = acc};
    return zc_gemm_run(d->gemm, &a, err, errlen);
}

static int layer(zc_dev *d, const zc_qlayer *l, int n, int lmax, char *err, size_t errlen)
{
    const zi_qwen3_config *c = &d->qc;
    zc_text_bufs *b = &d->tb;
    cudaStream_t s = d->ctx->stream;
    int H = c->hidden, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    int ldqkv = qd + 2 * kvd, I = c->intermediate, rows = n * lmax, rc = 0;
    PX_CUDA_LAUNCH_CHECK(
        zc_rmsnorm_mod(s, b->x, 0, H, rows, H, l->in_norm, c->rms_eps, NULL, 0, 0, b->hb, H));
    if ((rc = gemm(d, b->hb, H, rows, H, l->qkv, ldqkv, b->qkv, ldqkv, ZC_BF16, 0, err, errlen)))
        goto fail;
    PX_CUDA_LAUNCH_CHECK(zc_qknorm_rope(s, b->qkv, ldqkv, 0, rows, c->n_heads, hd, l->q_norm,
                                        c->rms_eps, b->cs, lmax, 0));
    PX_CUDA_LAUNCH_CHECK(zc_qknorm_rope(s, b->qkv, ldqkv, qd, rows, c->n_kv_heads, hd, l->k_norm,
                                        c->rms_eps, b->cs, lmax, 0));
    zc_attn a = {.q = b->qkv, .k = (uint16_t *)b->qkv + qd, .v = (uint16_t *)b->qkv + qd + kvd,
                 .o = b->att, .ldq = ldqkv, .ldk = ldqkv, .ldv = ldqkv, .ldo = qd, .n_items = n,
                 .S_q = lmax, .S_kv = lmax, .n_q = lmax, .kv_len = b->kv_len,
                 .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads, .head_dim = hd,
                 .scale = 1.0f / sqrtf((float)hd), .causal = 1};
    PX_CUDA_LAUNCH_CHECK(zc_attention(s, &a));
    if ((rc = gemm(d, b->att, qd, rows, qd, l->o, H, b->x, H, ZC_F32, 1, err, errlen))) goto fail;
    PX_CUDA_LAUNCH_CHECK(
        zc_rmsnorm_mod(s, b->x, 0, H, rows, H, l->post_norm, c->rms_eps, NULL, 0, 0, b->hb, H));
    if ((rc = gemm(d, b->hb, H, rows, H, l->gu, 2 * I, b->ff, 2 * I, ZC_BF16, 0, err, errlen)))
        goto fail;
    PX_CUDA_LAUNCH_CHECK(zc_swiglu(s, b->ff, 2 * I, rows, I));
    rc = gemm(d, b->ff, 2 * I, rows, I, l->down, H, b->x, H, ZC_F32, 1, err, errlen);
fail:
    return rc;
}

/* Host side: ids padded per item (pad id 0: causal attention keeps it
 * away from the real tokens), and the RoPE table. */
static int upload(zc_dev *d, const int32_t *const *ids, const int *len, int n, int lmax,
                  char *err, size_t errlen)
{
    int rc = 0;
    const zi_qwen3_config *c = &d->qc;
    size_t rows = (size_t)n * lmax;
    int *hid = px_alloc_array(rows, sizeof *hid), *pos = px_alloc_array((size_t)lmax, sizeof *pos);
    float *cs = px_alloc_array((size_t)lmax * c->head_dim, sizeof *cs);
    if (!hid || !pos || !cs) {
        rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++)
        for (int t = 0; t < lmax; t++) {
            int v = t < len[i] ? ids[i][t] : 0;
            if (v < 0 || v >= c->vocab_size) {
                rc = px_errf(err, errlen, PX_EINVAL, "qwen3: token id %d outside 0..%d", v,
                             c->vocab_size - 1);
                goto fail;
            }
            hid[(size_t)i * lmax + t] = v;
        }
    for (int t = 0; t < lmax; t++) pos[t] = t;
    zi_rope_table_f32(pos, lmax, c->head_dim, c->rope_theta, cs);
    /* On the engine's stream, whose kernels read these buffers: a plain
     * cudaMemcpy runs on the legacy stream, which a non-blocking stream is
     * not ordered with. From pageable memory the copy has read the host
     * arrays when it returns (staged), so they are freed right after. */
    cudaStream_t s = d->ctx->stream;
    PX_CUDA_CHECK(cudaMemcpyAsync(d->tb.ids, hid, rows * sizeof *hid, cudaMemcpyHostToDevice, s));
    PX_CUDA_CHECK(
        cudaMemcpyAsync(d->tb.kv_len, len, (size_t)n * sizeof *len, cudaMemcpyHostToDevice, s));
    PX_CUDA_CHECK(cudaMemcpyAsync(d->tb.cs, cs, (size_t)lmax * c->head_dim * sizeof *cs,
                                  cudaMemcpyHostToDevice, s));
fail:
    free(hid);
    free(pos);
    free(cs);
    return rc;
}

int zc_text_encode(zc_dev *d, const int32_t *const *ids, const int *len, int n, int *lmax_out,
                   char *err, size_t errlen)
{
    int rc = 0, lmax = 0;
    if (n < 1 || n > ZC_MAX_ITEMS)
        return px_errf(err, errlen, PX_EINVAL, "qwen3: %d prompts in a batch (1..%d)", n,
                       ZC_MAX_ITEMS);
    for (int i = 0; i < n; i++) {
        if (len[i] < 1 || len[i] > d->qc.max_positions)
            return px_errf(err, errlen, PX_EINVAL, "qwen3: %d tokens", len[i]);
        if (len[i] > lmax) lmax = len[i];
    }
    /* Whole tiles of the attention kernel's 64 rows need not be padded:
     * it reads only the rows below each item's length. */
    if ((rc = zc_text_bufs_reserve(d, (size_t)n * lmax, lmax, err, errlen)) ||
        (rc = upload(d, ids, len, n, lmax, err, errlen)))
        return rc;
    PX_CUDA_LAUNCH_CHECK(zc_embed_rows(d->ctx->stream, d->embed, d->tb.ids, n * lmax,
                                       d->qc.hidden, d->tb.x));
    for (int i = 0; i < d->nqrun; i++)
        if ((rc = layer(d, &d->qlayers[i], n, lmax, err, errlen))) goto fail;
    PX_CUDA_CHECK(cudaStreamSynchronize(d->ctx->stream));
    *lmax_out = lmax;
fail:
    return rc;
}
