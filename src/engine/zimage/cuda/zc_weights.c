/*
 * zc_weights.c — the Z-Image weights on one GPU (zc_dev_create): GEMM
 * weights as bf16 (BF16 tensors copied as they are, F32 ones rounded to
 * nearest even on the host, block by block), the pairs that share an input
 * fused on the device (the DiT's w1|w3, Qwen3's q|k|v and gate|up) so one
 * GEMM reads the activations once; norms, biases and pad tokens as fp32.
 * The CPU engine (zi_model_open) has already checked every shape against
 * the configs; the shapes are checked again here since the device copy
 * trusts them for its sizes.
 *
 * On an fp8 device the DiT blocks' four big linears are quantized on the
 * GPU right after their bf16 upload (zc_fp8_quant_rows: e4m3 + a scale per
 * output row) and their bf16 copies freed, one linear at a time, so the
 * upload never holds more than one extra bf16 weight.
 *
 * Ran on an H200 (2026-12-05): zimage_cuda_test passes, tiny and full size
 * (bf16 and fp8: the fp8 tests passed on H200 and H100s the same day).
 */
#include "engine/zimage/cuda/zc_net.h"

#include "core/alloc.h"
#include "core/env.h"
#include "core/err.h"
#include "engine/cuda/cuda_check.h"
#include "engine/zimage/cuda/zattn.h"
#include "engine/zimage/cuda/zattn_q8.h"
#include "engine/zimage/cuda/zc_fp8.h"
#include "engine/zimage/cuda/zhgemm.h"
#include "engine/zimage/cuda/zkernels.h"
#include "engine/zimage/zops.h"
#include "engine/zimage/znames.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAGE_ELEMS ((size_t)1 << 24) /* host rounding block: 32 MB of bf16 */

static int dev_alloc(zc_dev *d, size_t bytes, void **p, char *err, size_t errlen)
{
    int rc = 0;
    *p = NULL;
    if (d->nalloc == d->capalloc) {
        int cap = d->capalloc ? 2 * d->capalloc : 256;
        void **n = realloc(d->allocs, (size_t)cap * sizeof *n);
        if (!n) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
        d->allocs = n, d->capalloc = cap;
    }
    PX_CUDA_CHECK(cudaMalloc(p, bytes ? bytes : 16));
    d->allocs[d->nalloc++] = *p;
    d->weight_bytes += bytes;
fail:
    return rc;
}

/* Frees allocation p (one of the last made: searched from the end) and
 * takes its bytes off the device's weights. */
static void dev_release(zc_dev *d, void *p, size_t bytes)
{
    for (int i = d->nalloc - 1; i >= 0; i--)
        if (d->allocs[i] == p) {
            d->allocs[i] = d->allocs[--d->nalloc];
            cudaFree(p);
            d->weight_bytes -= bytes;
            return;
        }
}

/* Copies t as bf16 into dst (device): as is, or rounded from F32. */
static int put_bf16(const zi_tensor *t, void *dst, char *err, size_t errlen)
{
    int rc = 0;
    uint16_t *stage = NULL;
    if (t->dtype == ZI_BF16) {
        PX_CUDA_CHECK(cudaMemcpy(dst, t->data, t->nelem * 2, cudaMemcpyHostToDevice));
        return 0;
    }
    size_t blk = t->nelem < STAGE_ELEMS ? t->nelem : STAGE_ELEMS;
    if (!(stage = px_alloc_array(blk ? blk : 1, sizeof *stage)))
        return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    const float *src = t->data;
    for (size_t o = 0; o < t->nelem; o += blk) {
        size_t n = t->nelem - o < blk ? t->nelem - o : blk;
        for (size_t i = 0; i < n; i++) stage[i] = zi_f32_to_bf16(src[o + i]);
        PX_CUDA_CHECK(cudaMemcpy((uint16_t *)dst + o, stage, n * 2, cudaMemcpyHostToDevice));
    }
fail:
    free(stage);
    return rc;
}

static int find(const zi_weights *w, const char *name, int64_t a, int64_t b, const zi_tensor **t,
                char *err, size_t errlen)
{
    int64_t shape[2] = {a, b};
    return zi_weights_get(w, name, b < 0 ? 1 : 2, shape, t, err, errlen);
}

/* Tensors names[0..n) (each [rows_i, cols]) stacked on rows into one bf16
 * device matrix. */
static int up_cat(zc_dev *d, const zi_weights *w, const char *const *names, const int64_t *rows,
                  int n, int64_t cols, void **dst, char *err, size_t errlen)
{
    const zi_tensor *t[4];
    int64_t total = 0;
    int rc;
    for (int i = 0; i < n; i++) {
        if ((rc = find(w, names[i], rows[i], cols, &t[i], err, errlen))) return rc;
        total += rows[i];
    }
    if ((rc = dev_alloc(d, (size_t)total * (size_t)cols * 2, dst, err, errlen))) return rc;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if ((rc = put_bf16(t[i], (uint16_t *)*dst + off, err, errlen))) return rc;
        off += t[i]->nelem;
    }
    return 0;
}

static int up_bf16(zc_dev *d, const zi_weights *w, const char *name, int64_t a, int64_t b,
                   void **dst, char *err, size_t errlen)
{
    const char *names[1] = {name};
    return up_cat(d, w, names, &a, 1, b, dst, err, errlen);
}

/* A small tensor (a or [a, b] elements) as fp32 on the device. */
static int up_f32(zc_dev *d, const zi_weights *w, const char *name, int64_t a, int64_t b,
                  float **dst, char *err, size_t errlen)
{
    const zi_tensor *t;
    int rc = find(w, name, a, b, &t, err, errlen);
    if (rc) return rc;
    float *h = zi_tensor_dup_f32(t);
    if (!h) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    if (!(rc = dev_alloc(d, t->nelem * sizeof(float), (void **)dst, err, errlen))) {
        PX_CUDA_CHECK(cudaMemcpy(*dst, h, t->nelem * sizeof(float), cudaMemcpyHostToDevice));
    }
fail:
    free(h);
    return rc;
}

/* The static q and k scales of a block's fp8 attention from its q_norm
 * and k_norm weights (names qn, kn: zattn_q8_qk_scale), and their
 * inverses on the device. */
static int up_qk8(zc_dev *d, const zi_weights *w, const char *qn, const char *kn, int hd,
                  zc_dblock *b, char *err, size_t errlen)
{
    const zi_tensor *t[2];
    int rc = find(w, qn, hd, -1, &t[0], err, errlen);
    if (!rc) rc = find(w, kn, hd, -1, &t[1], err, errlen);
    if (rc) return rc;
    float inv[2];
    for (int i = 0; i < 2; i++) {
        float *h = zi_tensor_dup_f32(t[i]);
        if (!h) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
        b->qk8[i] = zattn_q8_qk_scale(h, hd);
        inv[i] = 1.0f / b->qk8[i];
        free(h);
    }
    if ((rc = dev_alloc(d, sizeof inv, (void **)&b->qk8_dev, err, errlen))) return rc;
    PX_CUDA_CHECK(cudaMemcpy(b->qk8_dev, inv, sizeof inv, cudaMemcpyHostToDevice));
fail:
    return rc;
}

/* A block linear: tensors names[0..n) ([rows_i, cols]) stacked into l->w
 * (bf16), then, on an fp8 device and where the output width allows,
 * quantized into l->w8 + l->scale and the bf16 copy freed. */
static int up_lin(zc_dev *d, const zi_weights *w, const char *const *names, const int64_t *rows,
                  int n, int64_t cols, zc_lin *l, char *err, size_t errlen)
{
    int rc = up_cat(d, w, names, rows, n, cols, &l->w, err, errlen);
    int N = 0, K = (int)cols;
    for (int i = 0; i < n; i++) N += (int)rows[i];
    if (rc || !d->fp8 || !zc_fp8_fits(N)) return rc;
    int ld = zc_fp8_ld(K);
    cudaStream_t s = d->ctx->stream;
    if ((rc = dev_alloc(d, (size_t)N * ld, &l->w8, err, errlen)) ||
        (rc = dev_alloc(d, (size_t)N * sizeof(float), (void **)&l->scale, err, errlen)))
        return rc;
    /* up_cat's cudaMemcpy runs on the legacy stream, which s (non-blocking)
     * is not ordered with: the upload must have landed (load time only). */
    PX_CUDA_CHECK(cudaDeviceSynchronize());
    PX_CUDA_LAUNCH_CHECK(zc_fp8_quant_rows(s, l->w, K, N, K, ld, l->w8, l->scale));
    PX_CUDA_CHECK(cudaStreamSynchronize(s));
    dev_release(d, l->w, (size_t)N * K * 2);
    l->w = NULL;
    d->nlin_fp8++;
fail:
    return rc;
}

static int up_dit_block(zc_dev *d, const zi_weights *w, const char *p, int modulated,
                        zc_dblock *b, char *err, size_t errlen)
{
    int64_t D = d->dc.dim, F = d->dc.ffn_hidden, T = d->dc.t_dim, hd = d->hd;
    char n[8][160];
    const char *what[8] = {"attention.qkv.weight",    "attention.out.weight",
                           "feed_forward.w1.weight",  "feed_forward.w3.weight",
                           "feed_forward.w2.weight",  "adaLN_modulation.0.weight",
                           "adaLN_modulation.0.bias", "attention.q_norm.weight"};
    for (int i = 0; i < 8; i++) snprintf(n[i], sizeof n[i], "%s.%s", p, what[i]);
    /* qkv, out, w1|w3, w2 */
    const char *ln[4][2] = {{n[0], NULL}, {n[1], NULL}, {n[2], n[3]}, {n[4], NULL}};
    const int64_t lr[4][2] = {{3 * D, 0}, {D, 0}, {F, F}, {D, 0}}, lc[4] = {D, D, D, F};
    zc_lin *lin[4] = {&b->qkv, &b->out, &b->w13, &b->w2};
    char q[6][160];
    const char *nw[6] = {"attention.q_norm.weight", "attention.k_norm.weight",
                         "attention_norm1.weight",  "attention_norm2.weight",
                         "ffn_norm1.weight",        "ffn_norm2.weight"};
    for (int i = 0; i < 6; i++) snprintf(q[i], sizeof q[i], "%s.%s", p, nw[i]);
    int rc;
    for (int i = 0; i < 4; i++)
        if ((rc = up_lin(d, w, ln[i], lr[i], ln[i][1] ? 2 : 1, lc[i], lin[i], err, errlen)))
            return rc;
    if ((rc = up_f32(d, w, q[0], hd, -1, &b->q_norm, err, errlen)) ||
        (rc = up_f32(d, w, q[1], hd, -1, &b->k_norm, err, errlen)) ||
        (rc = up_f32(d, w, q[2], D, -1, &b->n1, err, errlen)) ||
        (rc = up_f32(d, w, q[3], D, -1, &b->n2, err, errlen)) ||
        (rc = up_f32(d, w, q[4], D, -1, &b->f1, err, errlen)) ||
        (rc = up_f32(d, w, q[5], D, -1, &b->f2, err, errlen)))
        return rc;
    if (d->fp8 && (rc = up_qk8(d, w, q[0], q[1], (int)hd, b, err, errlen))) return rc;
    if (!modulated) return 0;
    if ((rc = up_bf16(d, w, n[5], 4 * D, T, &b->ada_w, err, errlen)) ||
        (rc = up_f32(d, w, n[6], 4 * D, -1, &b->ada_b, err, errlen)))
        return rc;
    return 0;
}

static int up_dit(zc_dev *d, const zi_weights *w, char *err, size_t errlen)
{
    const zi_dit_config *c = &d->dc;
    int64_t D = c->dim, P = d->pf;
    int rc;
    if ((rc = up_bf16(d, w, "x_embedder.weight", D, P, &d->x_w, err, errlen)) ||
        (rc = up_f32(d, w, "x_embedder.bias", D, -1, &d->x_b, err, errlen)) ||
        (rc = up_f32(d, w, "cap_embedder.0.weight", c->cap_feat_dim, -1, &d->cap_norm, err,
                     errlen)) ||
        (rc = up_bf16(d, w, "cap_embedder.1.weight", D, c->cap_feat_dim, &d->cap_w, err,
                      errlen)) ||
        (rc = up_f32(d, w, "cap_embedder.1.bias", D, -1, &d->cap_b, err, errlen)) ||
        (rc = up_bf16(d, w, "t_embedder.mlp.0.weight", c->t_hidden, c->t_freq, &d->t0_w, err,
                      errlen)) ||
        (rc = up_f32(d, w, "t_embedder.mlp.0.bias", c->t_hidden, -1, &d->t0_b, err, errlen)) ||
        (rc = up_bf16(d, w, "t_embedder.mlp.2.weight", c->t_dim, c->t_hidden, &d->t2_w, err,
                      errlen)) ||
        (rc = up_f32(d, w, "t_embedder.mlp.2.bias", c->t_dim, -1, &d->t2_b, err, errlen)) ||
        (rc = up_f32(d, w, "x_pad_token", 1, D, &d->x_pad, err, errlen)) ||
        (rc = up_f32(d, w, "cap_pad_token", 1, D, &d->cap_pad, err, errlen)) ||
        (rc = up_bf16(d, w, "final_layer.linear.weight", P, D, &d->fin_w, err, errlen)) ||
        (rc = up_f32(d, w, "final_layer.linear.bias", P, -1, &d->fin_b, err, errlen)) ||
        (rc = up_bf16(d, w, "final_layer.adaLN_modulation.1.weight", D, c->t_dim, &d->fin_ada_w,
                      err, errlen)) ||
        (rc = up_f32(d, w, "final_layer.adaLN_modulation.1.bias", D, -1, &d->fin_ada_b, err,
                     errlen)))
        return rc;
    d->blocks = px_xcalloc(d->nblocks ? (size_t)d->nblocks : 1, sizeof *d->blocks);
    for (int i = 0; i < d->nblocks; i++) {
        char p[64];
        int modulated = zi_names_dit_block(i, c->n_refiner_layers, p, sizeof p);
        if ((rc = up_dit_block(d, w, p, modulated, &d->blocks[i], err, errlen)))
            return rc;
    }
    return 0;
}

static int up_qlayer(zc_dev *d, const zi_weights *w, int i, zc_qlayer *l, char *err,
                     size_t errlen)
{
    const zi_qwen3_config *c = &d->qc;
    int64_t H = c->hidden, hd = c->head_dim, qd = (int64_t)c->n_heads * hd;
    int64_t kvd = (int64_t)c->n_kv_heads * hd, I = c->intermediate;
    char n[11][160];
    const char *what[11] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                            "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                            "mlp.gate_proj.weight",    "mlp.up_proj.weight",
                            "mlp.down_proj.weight",    "input_layernorm.weight",
                            "post_attention_layernorm.weight", "self_attn.q_norm.weight",
                            "self_attn.k_norm.weight"};
    for (int k = 0; k < 11; k++) snprintf(n[k], sizeof n[k], "layers.%d.%s", i, what[k]);
    const char *qkv[3] = {n[0], n[1], n[2]}, *gu[2] = {n[4], n[5]};
    int64_t rq[3] = {qd, kvd, kvd}, rg[2] = {I, I};
    int rc;
    if ((rc = up_cat(d, w, qkv, rq, 3, H, &l->qkv, err, errlen)) ||
        (rc = up_bf16(d, w, n[3], H, qd, &l->o, err, errlen)) ||
        (rc = up_cat(d, w, gu, rg, 2, H, &l->gu, err, errlen)) ||
        (rc = up_bf16(d, w, n[6], H, I, &l->down, err, errlen)) ||
        (rc = up_f32(d, w, n[7], H, -1, &l->in_norm, err, errlen)) ||
        (rc = up_f32(d, w, n[8], H, -1, &l->post_norm, err, errlen)) ||
        (rc = up_f32(d, w, n[9], hd, -1, &l->q_norm, err, errlen)) ||
        (rc = up_f32(d, w, n[10], hd, -1, &l->k_norm, err, errlen)))
        return rc;
    return 0;
}

static int up_text(zc_dev *d, const zi_weights *w, char *err, size_t errlen)
{
    const zi_qwen3_config *c = &d->qc;
    int rc = up_bf16(d, w, "embed_tokens.weight", c->vocab_size, c->hidden, &d->embed, err,
                     errlen);
    if (rc) return rc;
    d->qlayers = px_xcalloc(d->nqrun ? (size_t)d->nqrun : 1, sizeof *d->qlayers);
    for (int i = 0; i < d->nqrun; i++)
        if ((rc = up_qlayer(d, w, i, &d->qlayers[i], err, errlen))) return rc;
    return 0;
}

/* The residual streams (XI, XT, U) in bf16, as PyTorch's bf16 model keeps
 * them, unless PX_ZIMAGE_CUDA_RESID=fp32: every gated residual and norm
 * then moves 8 bytes an element instead of 12, at the cost of a bf16
 * rounding per residual add. Measured on an H100 (2026-12-06,
 * zimage-cuda.md): -1.2 ms a 1024² step in bf16 and in fp8 (0.811 ->
 * 0.807 s, 0.503 -> 0.494 s an image, alternated); its gate against the
 * fp32 stream (12 prompts, 8 steps) min 51.96 dB, worst step 7.8e-3; the
 * full-size stage test 1.8e-2 (dit.out0) under its 3e-2 bar; fp8's gate
 * unchanged (min 38.32 dB). Read when a device is made (zc_dev.xbf), so a
 * bench can hold one engine against another. */
int zc_resid_bf16(void)
{
    return !px_env_is("PX_ZIMAGE_CUDA_RESID", "fp32");
}

/* Fused, the w1|w3 output (2F columns) is never written nor read back:
 * the kernel's first version, measured on an H100 (2026-12-07,
 * bench/zgemm_cuda_bench.c) at 1024² batch 1, took 0.885 ms against
 * cuBLASLt's 0.839 + the SwiGLU pass. Opt-in until the present kernel
 * (persistent, TMA stores, the LoRA addend) has passed its checks and its
 * gate on a GPU (docs/benchmarks/zimage-cuda.md, "Thirty-fourth session"). */
int zc_glu_fused(int dev)
{
    return px_env_is("PX_ZIMAGE_CUDA_HGEMM", "1") && zc_hgemm_available(dev);
}

int zc_dev_create(px_cuda_ctx *c, const zi_weights *dit, const zi_dit_config *dc,
                  const zi_weights *text, const zi_qwen3_config *qc, int fp8, zc_dev **out,
                  char *err, size_t errlen)
{
    int rc = 0;
    zc_dev *d = px_xcalloc(1, sizeof *d);
    *out = d;
    d->ctx = c;
    d->dc = *dc;
    d->qc = *qc;
    d->hd = dc->dim / dc->n_heads;
    d->pf = dc->patch * dc->patch * dc->in_channels;
    d->nblocks = 2 * dc->n_refiner_layers + dc->n_layers;
    d->nqrun = qc->n_layers - 1;
    d->fp8 = fp8 != 0;
    d->xbf = zc_resid_bf16();
    bool hd_ok = false, qhd_ok = false;
    for (int k = 16; k <= 128; k *= 2) hd_ok |= d->hd == k, qhd_ok |= qc->head_dim == k;
    if (!hd_ok || !qhd_ok || dc->dim % 8 || dc->cap_feat_dim % 8)
        return px_errf(err, errlen, PX_EUNSUP,
                       "zimage-cuda: the kernels take heads of 16, 32, 64 or 128 and widths "
                       "that are multiples of 8 (DiT heads %d, Qwen3 heads %d, dim %d)",
                       d->hd, qc->head_dim, dc->dim);
    PX_CUDA_CHECK(cudaSetDevice(c->dev));
    PX_CUDA_LAUNCH_CHECK(zc_attn_init());
    d->glu = zc_glu_fused(c->dev);
    /* fp8: refused before any upload where the GPU or cuBLASLt lacks it. */
    if ((rc = zc_gemm_create(c, (size_t)32 << 20, &d->gemm, err, errlen)) ||
        (d->fp8 && (rc = zc_gemm_fp8_probe(d->gemm, err, errlen))) ||
        (rc = up_dit(d, dit, err, errlen)) || (rc = up_text(d, text, err, errlen)))
        goto fail;
    d->plans = zc_plans_create(d);
fail:
    return rc;
}

static void text_bufs_free(zc_text_bufs *b)
{
    void *p[8] = {b->x, b->hb, b->qkv, b->att, b->ff, b->cs, b->ids, b->kv_len};
    for (int i = 0; i < 8; i++)
        if (p[i]) cudaFree(p[i]);
    memset(b, 0, sizeof *b);
}

void zc_dev_free(zc_dev *d)
{
    if (!d) return;
    cudaSetDevice(d->ctx->dev);
    px_cuda_plans_destroy(d->plans); /* before the LoRA cache: plans pin its entries */
    zc_lora_dev_free(d->lora);
    text_bufs_free(&d->tb);
    for (int i = 0; i < d->nalloc; i++) cudaFree(d->allocs[i]);
    free(d->allocs);
    free(d->blocks);
    free(d->qlayers);
    zc_gemm_free(d->gemm);
    free(d);
}

int zc_text_bufs_reserve(zc_dev *d, size_t rows, int cs_rows, char *err, size_t errlen)
{
    int rc = 0;
    zc_text_bufs *b = &d->tb;
    if (b->rows >= rows && b->cs_rows >= cs_rows) return 0;
    text_bufs_free(b);
    const zi_qwen3_config *c = &d->qc;
    size_t H = (size_t)c->hidden, hd = (size_t)c->head_dim, qd = (size_t)c->n_heads * hd;
    size_t kvd = (size_t)c->n_kv_heads * hd, I = (size_t)c->intermediate;
    PX_CUDA_CHECK(cudaMalloc((void **)&b->x, rows * H * 4));
    PX_CUDA_CHECK(cudaMalloc(&b->hb, rows * H * 2));
    PX_CUDA_CHECK(cudaMalloc(&b->qkv, rows * (qd + 2 * kvd) * 2));
    PX_CUDA_CHECK(cudaMalloc(&b->att, rows * qd * 2));
    PX_CUDA_CHECK(cudaMalloc(&b->ff, rows * 2 * I * 2));
    PX_CUDA_CHECK(cudaMalloc((void **)&b->cs, (size_t)cs_rows * hd * 4));
    PX_CUDA_CHECK(cudaMalloc((void **)&b->ids, rows * sizeof(int)));
    PX_CUDA_CHECK(cudaMalloc((void **)&b->kv_len, ZC_MAX_ITEMS * sizeof(int)));
    b->rows = rows;
    b->cs_rows = cs_rows;
    return 0;
fail:
    text_bufs_free(b);
    return rc;
}
