/*
 * zimage_engine.c — the `zimage` engine: Z-Image-Turbo text to image
 * (zimage.h) behind the engine vtable (engine_impl.h), kind
 * PX_ENGINE_GENERATE.
 *
 * Configuration: weights = the model (a Hugging Face directory; see
 * zi_model_paths), device = cpu (here) or cuda / cuda:N,... (the CUDA
 * backend, zimage_cuda.h: one engine over the named GPUs, one context per
 * GPU; builds without CUDA refuse it with a message saying how to build
 * it). BF16 files stay BF16 in memory (exact, half the size).
 *
 * A batch runs its items one after another. On the CPU every GEMM already
 * uses all cores at batch 1 (a 1024² image is ~4600 tokens), so stacking
 * requests gains little and would make every request wait for the slowest;
 * step-level batching across requests belongs to the GPU backend.
 */
#include "engine/engine_impl.h"

#include "core/err.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "engine/zimage/zimage.h"
#include "engine/zimage/zimage_cuda.h"
#include "engine/zimage/zimage_lora_engine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct zimage_engine {
    px_engine base;
    zi_model *model;
    char path[1024];
    /* One reusable workspace (keeps its buffers between requests); a run
     * that finds it taken makes a temporary one. */
    pthread_mutex_t ctx_mu;
    zi_ctx *ctx;
} zimage_engine;

static int zimage_create(const px_engine_config *cfg, px_engine **out, char *err, size_t errlen)
{
    const char *dev = cfg->device;
    if (dev && strcmp(dev, "cpu") != 0) {
        if (!strncmp(dev, "cuda", 4)) return zi_cuda_engine_create(cfg, out, err, errlen);
        return px_errf(err, errlen, PX_EINVAL, "unknown device '%s' (zimage runs on cpu)", dev);
    }
    if (!cfg->weights || !cfg->weights[0])
        return px_errf(err, errlen, PX_EINVAL,
                       "zimage needs its model: --engine zimage:model=DIR (a Hugging Face "
                       "Z-Image directory)");
    zimage_engine *z = calloc(1, sizeof *z);
    if (!z) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    snprintf(z->path, sizeof z->path, "%s", cfg->weights);
    pthread_mutex_init(&z->ctx_mu, NULL);
    zi_model_paths paths = {.dir = cfg->weights};
    zi_model_opts opts = {.keep_bf16 = 1, .pool = cfg->pool};
    int rc = zi_model_open(&paths, &opts, &z->model, err, errlen);
    if (!rc) rc = zi_ctx_create(cfg->pool, &z->ctx, err, errlen);
    if (rc) {
        zi_model_close(z->model);
        pthread_mutex_destroy(&z->ctx_mu);
        free(z);
        return rc;
    }
    *out = &z->base;
    return 0;
}

static void zimage_destroy(px_engine *e)
{
    zimage_engine *z = (zimage_engine *)e;
    zi_ctx_destroy(z->ctx);
    zi_model_close(z->model);
    pthread_mutex_destroy(&z->ctx_mu);
    free(z);
}

/*
 * Working memory of one generation, from the configurations: the DiT's
 * activations over image + text tokens (residual, qkv, attention output,
 * the SwiGLU hidden, score blocks of the attention), the text encoder's
 * over the 512-token cap, and the VAE decoder's widest level at full
 * resolution. The stages run one after another, so the largest counts.
 * Without guidance; with it the DiT stage doubles (batch of 2). Rough by
 * design: it gates admission, it does not allocate.
 */
static size_t zimage_mem(const px_engine *e, int n, const px_engine_shape *s)
{
    const zimage_engine *z = (const zimage_engine *)e;
    const zi_dit_config *d = zi_model_dit_config(z->model);
    const zi_vae_config *v = zi_model_vae_config(z->model);
    double tokens = (double)(s->w / 16) * (s->h / 16) + 512;
    double dit = tokens * (6.0 * d->dim + 2.0 * d->ffn_hidden) * 4 +
                 (double)d->n_heads * (tokens < 1024 ? tokens : 1024) * tokens * 4;
    double text = 512.0 * d->cap_feat_dim * 12 * 4;
    int wide = 0;
    for (int i = 0; i < v->nlevels; i++)
        if (v->block_out[i] > wide) wide = v->block_out[i];
    double vae = (double)s->w * s->h * (v->block_out[0] > 0 ? v->block_out[0] : wide) * 3 * 4 +
                 (double)s->w * s->h / 4 * wide * 3 * 4;
    if (s->guided) dit *= 2, text *= 2; /* the negative items */
    double one = dit > text ? dit : text;
    if (vae > one) one = vae;
    return (size_t)(one * n) + ((size_t)64 << 20);
}

/* zi_generate's progress: keeps the step's time and reports the step. */
static void on_step(void *user, int step, int steps, double step_ms)
{
    px_engine_item *it = user;
    if (step >= 1 && step <= PX_ENGINE_GEN_MAX_STEPS) {
        it->gen.step_ms[step - 1] = (float)step_ms;
        if (step > it->gen.nstep_ms) it->gen.nstep_ms = step;
    }
    px_engine_progress(it, step, steps);
}

static int run_one(zimage_engine *z, zi_ctx *ctx, px_engine_item *it)
{
    px_engine_gen *g = &it->gen;
    zi_lora_use uses[PX_ENGINE_MAX_LORAS];
    int nl = zi_engine_lora_uses(g, uses, it->err, sizeof it->err);
    if (nl < 0) return it->status = nl;
    zi_gen_params p = {.prompt = g->prompt, .negative_prompt = g->negative_prompt,
                       .width = g->width, .height = g->height, .steps = g->steps,
                       .seed = (int64_t)(it->seed & ((UINT64_C(1) << 62) - 1)),
                       .cfg_scale = g->cfg_scale > 0 ? g->cfg_scale : 0, .latents = g->latents,
                       .loras = nl ? uses : NULL, .nloras = nl,
                       .progress = on_step, .progress_user = it, .cancel = it->cancel};
    zi_gen_result r = {0};
    g->nstep_ms = 0;
    int rc = zi_generate(z->model, ctx, &p, &r, it->err, sizeof it->err);
    if (rc) return it->status = rc;
    const zi_gen_stats *st = &r.stats;
    g->encode_ns = (int64_t)(st->text_ms * 1e6);
    g->denoise_ns = (int64_t)(st->denoise_ms * 1e6);
    g->decode_ns = (int64_t)(st->vae_ms * 1e6);
    g->encode_peak_bytes = st->peak_rss_text;
    g->denoise_peak_bytes = st->peak_rss_denoise;
    g->decode_peak_bytes = st->peak_rss_vae;
    g->mem_source = PX_GEN_MEM_HOST_RSS;
    g->prompt_tokens = st->prompt_tokens;
    g->prompt_truncated = st->prompt_truncated;
    memcpy(it->out->px, r.image.px, (size_t)g->width * g->height * 3);
    zi_gen_result_free(&r);
    return it->status = 0;
}

static int zimage_run(px_engine *e, px_engine_item *items, int n)
{
    zimage_engine *z = (zimage_engine *)e;
    int own = pthread_mutex_trylock(&z->ctx_mu) == 0;
    zi_ctx *ctx = own ? z->ctx : NULL;
    int first = 0;
    for (int i = 0; i < n; i++) {
        if (items[i].cancel && atomic_load(items[i].cancel)) {
            items[i].status = px_errf(items[i].err, sizeof items[i].err, PX_ECANCELED, "cancelled");
        } else {
            run_one(z, ctx, &items[i]);
        }
        if (items[i].status && !first) first = items[i].status;
    }
    if (own) pthread_mutex_unlock(&z->ctx_mu);
    return first;
}

/* The smallest generation the model takes (one patch of latents, 1 step):
 * the first request then does not pay for page faults and workspace. */
static int zimage_warmup(px_engine *e, const px_engine_warmup *wu, char *err, size_t errlen)
{
    (void)wu;
    zimage_engine *z = (zimage_engine *)e;
    int side = zi_model_size_multiple(z->model);
    px_image out = {0};
    int rc = px_image_alloc(&out, side, side, 3, NULL, NULL, 0);
    if (rc) return px_errf(err, errlen, rc, "out of memory warming up");
    px_engine_item it = {.out = &out, .seed = 1,
                         .gen = {.prompt = "warm-up", .width = side, .height = side, .steps = 1}};
    rc = px_engine_run(e, &it, 1);
    if (rc) px_errf(err, errlen, rc, "warm-up of engine zimage failed: %s", it.err);
    px_image_free(&out);
    return rc;
}

static int zimage_describe(const px_engine *e, px_buf *out)
{
    const zimage_engine *z = (const zimage_engine *)e;
    const zi_dit_config *d = zi_model_dit_config(z->model);
    const zi_vae_config *v = zi_model_vae_config(z->model);
    int rc = px_buf_puts(out, "\"model\":");
    if (!rc) rc = px_json_str(out, z->path);
    if (!rc)
        rc = px_buf_printf(out,
                           ",\"weight_bytes\":%zu,\"size_multiple\":%d,\"keep_bf16\":true,"
                           "\"dit\":{\"dim\":%d,\"heads\":%d,\"layers\":%d,\"refiner_layers\":%d,"
                           "\"ffn_hidden\":%d,\"text_dim\":%d},\"vae\":{\"latent_channels\":%d,"
                           "\"levels\":%d}",
                           zi_model_weight_bytes(z->model), zi_model_size_multiple(z->model),
                           d->dim, d->n_heads, d->n_layers, d->n_refiner_layers, d->ffn_hidden,
                           d->cap_feat_dim, v->latent_channels, v->nlevels);
    return rc;
}

static int zimage_lora_open(px_engine *e, const char *path, px_engine_lora **out, char *err,
                            size_t errlen)
{
    const zimage_engine *z = (const zimage_engine *)e;
    return zi_engine_lora_open(zi_model_dit_config(z->model), path, out, err, errlen);
}

const px_engine_ops px_engine_zimage_ops = {
    .name = "zimage",
    .description = "Z-Image-Turbo text to image (DiT + Qwen3 text encoder + VAE) on the CPU",
    .caps = PX_ENGINE_CAP_ANY_SIZE | PX_ENGINE_CAP_DETERMINISTIC | PX_ENGINE_CAP_WEIGHTS |
            PX_ENGINE_CAP_DEVICES,
    .kind = PX_ENGINE_GENERATE,
    .methods = NULL,
    .create = zimage_create,
    .destroy = zimage_destroy,
    .mem_estimate = zimage_mem,
    .run = zimage_run,
    .warmup = zimage_warmup,
    .describe_config = zimage_describe,
    .lora_open = zimage_lora_open,
    .lora_close = zi_engine_lora_close,
    .lora_describe = zi_engine_lora_describe,
};
