/*
 * zconfig.h — the Z-Image model's configuration: the shapes and constants of
 * the DiT, the Qwen3 text encoder, the VAE decoder and the sampler, parsed
 * from the Hugging Face config files (untrusted JSON: fuzzed) or, for single
 * files that come without them, inferred from the tensors' shapes. Nothing
 * here is hard-coded to the full-size model, so small random configurations
 * run through the same code.
 */
#ifndef PX_ENGINE_ZIMAGE_ZCONFIG_H
#define PX_ENGINE_ZIMAGE_ZCONFIG_H

#include "engine/zimage/zweights.h"

#include <stddef.h>

typedef struct zi_dit_config {
    int in_channels;      /* latent channels (16) */
    int patch;            /* 2 */
    int dim;              /* model width D (3840) */
    int n_heads;          /* 30; head_dim = dim / n_heads (128) */
    int n_layers;         /* joint blocks (30) */
    int n_refiner_layers; /* noise and context refiner blocks each (2) */
    int ffn_hidden;       /* SwiGLU hidden (10240), from w1's rows */
    int cap_feat_dim;     /* text feature width (2560) */
    int t_dim;            /* adaLN embedding width (256) */
    int t_hidden;         /* timestep MLP hidden (1024) */
    int t_freq;           /* sinusoid width (256) */
    float norm_eps;       /* 1e-5 */
    float rope_theta;     /* 256 */
    float t_scale;        /* 1000 */
    int axes_dims[3];     /* [32, 48, 48], sum = head_dim */
    int axes_lens[3];     /* [1024, 512, 512] */
} zi_dit_config;

typedef struct zi_qwen3_config {
    int vocab_size;       /* 151936 */
    int hidden;           /* 2560 */
    int n_layers;         /* 36 */
    int n_heads;          /* 32 */
    int n_kv_heads;       /* 8 */
    int head_dim;         /* 128 */
    int intermediate;     /* 9728 */
    float rms_eps;        /* 1e-6 */
    float rope_theta;     /* 1e6 */
    int max_positions;    /* 40960 */
} zi_qwen3_config;

typedef struct zi_vae_config {
    int latent_channels;  /* 16 */
    int nlevels;          /* 4 */
    int block_out[8];     /* [128, 256, 512, 512] */
    int layers_per_block; /* 2 (the decoder has one more per level) */
    int groups;           /* 32 */
    float eps;            /* 1e-6 */
    float scaling_factor; /* 0.3611 */
    float shift_factor;   /* 0.1159 */
} zi_vae_config;

typedef struct zi_sampler_config {
    float shift;          /* 3.0 */
    int num_train_timesteps; /* 1000 */
} zi_sampler_config;

/* Parsers of the config.json texts. Unknown keys are ignored; missing keys
 * keep the full-size model's value; wrong types or out-of-range values give
 * PX_EINVAL naming the key. */
int zi_dit_config_parse(const char *json, size_t len, zi_dit_config *c, char *err, size_t errlen);
int zi_qwen3_config_parse(const char *json, size_t len, zi_qwen3_config *c, char *err,
                          size_t errlen);
int zi_vae_config_parse(const char *json, size_t len, zi_vae_config *c, char *err, size_t errlen);
int zi_sampler_config_parse(const char *json, size_t len, zi_sampler_config *c, char *err,
                            size_t errlen);

/* The full-size Z-Image-Turbo values. */
void zi_dit_config_default(zi_dit_config *c);
void zi_qwen3_config_default(zi_qwen3_config *c);
void zi_vae_config_default(zi_vae_config *c);
void zi_sampler_config_default(zi_sampler_config *c);

/* Fill or check the shape fields from the tensors (for single files and
 * GGUF, which carry no config.json; and to catch a config that does not
 * match its weights). A shape field that is 0 is filled from the tensors; a
 * nonzero one (parsed or default) is checked against them. So: for a single
 * file start from a zeroed config (the constants that shapes do not show —
 * eps, RoPE θ, axes lengths, t_scale, VAE groups and scale/shift — then get
 * the full-size model's values, the RoPE axes its proportions [1/4, 3/8,
 * 3/8] of the head size); for a directory parse config.json and check.
 * Returns 0 or PX_ECORRUPT naming the file and tensor ("<file>: tensor
 * <name>: expected dim = 3840 (the config), found 64 (shape [64, 64])"). */
int zi_dit_config_from_weights(const zi_weights *w, zi_dit_config *c, char *err, size_t errlen);
int zi_qwen3_config_from_weights(const zi_weights *w, zi_qwen3_config *c, char *err,
                                 size_t errlen);
int zi_vae_config_from_weights(const zi_weights *w, zi_vae_config *c, char *err, size_t errlen);

#endif
