/*
 * znames.c — source-name to canonical-name mapping of the Z-Image
 * components (see znames.h). Canonical names are checked against patterns
 * in which '#' stands for a decimal block index, so a renamed source name
 * that lands outside the canonical set is still refused as unknown.
 */
#include "engine/zimage/znames.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* If s starts with pat ('#' matching one or more digits), returns the rest
 * of s; else NULL. */
static const char *match_prefix(const char *pat, const char *s)
{
    while (*pat) {
        if (*pat == '#') {
            if (*s < '0' || *s > '9') return NULL;
            while (*s >= '0' && *s <= '9') s++;
            pat++;
        } else if (*pat++ != *s++) {
            return NULL;
        }
    }
    return s;
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list)) return true;
    return false;
}

/* Whether s is one of prefixes followed by one of suffixes. */
static bool match_any(const char *s, const char *const *prefixes, const char *const *suffixes)
{
    for (; *prefixes; prefixes++) {
        const char *rest = match_prefix(*prefixes, s);
        if (rest && in_list(rest, suffixes)) return true;
    }
    return false;
}

static const char *const k_wb[] = {"weight", "bias", NULL};

static const char *const k_dit_top[] = {"x_embedder.weight",
                                        "x_embedder.bias",
                                        "final_layer.linear.weight",
                                        "final_layer.linear.bias",
                                        "final_layer.adaLN_modulation.1.weight",
                                        "final_layer.adaLN_modulation.1.bias",
                                        "t_embedder.mlp.0.weight",
                                        "t_embedder.mlp.0.bias",
                                        "t_embedder.mlp.2.weight",
                                        "t_embedder.mlp.2.bias",
                                        "cap_embedder.0.weight",
                                        "cap_embedder.1.weight",
                                        "cap_embedder.1.bias",
                                        "x_pad_token",
                                        "cap_pad_token",
                                        NULL};
static const char *const k_dit_block_pre[] = {"noise_refiner.#.", "context_refiner.#.", "layers.#.",
                                              NULL};
static const char *const k_dit_block[] = {
    "attention.qkv.weight",    "attention.out.weight",   "attention.q_norm.weight",
    "attention.k_norm.weight", "feed_forward.w1.weight", "feed_forward.w2.weight",
    "feed_forward.w3.weight",  "attention_norm1.weight", "attention_norm2.weight",
    "ffn_norm1.weight",        "ffn_norm2.weight",       NULL};
static const char *const k_dit_mod_pre[] = {"noise_refiner.#.", "layers.#.", NULL};
static const char *const k_dit_mod[] = {"adaLN_modulation.0.weight", "adaLN_modulation.0.bias",
                                        NULL};

static const char *const k_text_top[] = {"embed_tokens.weight", "norm.weight", NULL};
static const char *const k_text_pre[] = {"layers.#.", NULL};
static const char *const k_text_layer[] = {"self_attn.q_proj.weight",
                                           "self_attn.k_proj.weight",
                                           "self_attn.v_proj.weight",
                                           "self_attn.o_proj.weight",
                                           "self_attn.q_norm.weight",
                                           "self_attn.k_norm.weight",
                                           "mlp.gate_proj.weight",
                                           "mlp.up_proj.weight",
                                           "mlp.down_proj.weight",
                                           "input_layernorm.weight",
                                           "post_attention_layernorm.weight",
                                           NULL};

static const char *const k_vae_top[] = {"decoder.conv_in.", "decoder.conv_out.",
                                        "decoder.conv_norm_out.", NULL};
static const char *const k_vae_res_pre[] = {"decoder.mid_block.resnets.#.norm1.",
                                            "decoder.mid_block.resnets.#.conv1.",
                                            "decoder.mid_block.resnets.#.norm2.",
                                            "decoder.mid_block.resnets.#.conv2.",
                                            "decoder.mid_block.resnets.#.conv_shortcut.",
                                            "decoder.up_blocks.#.resnets.#.norm1.",
                                            "decoder.up_blocks.#.resnets.#.conv1.",
                                            "decoder.up_blocks.#.resnets.#.norm2.",
                                            "decoder.up_blocks.#.resnets.#.conv2.",
                                            "decoder.up_blocks.#.resnets.#.conv_shortcut.",
                                            "decoder.up_blocks.#.upsamplers.0.conv.",
                                            "decoder.mid_block.attentions.0.group_norm.",
                                            "decoder.mid_block.attentions.0.to_q.",
                                            "decoder.mid_block.attentions.0.to_k.",
                                            "decoder.mid_block.attentions.0.to_v.",
                                            "decoder.mid_block.attentions.0.to_out.0.",
                                            NULL};

int zi_names_is_canonical(zi_part part, const char *name)
{
    switch (part) {
    case ZI_PART_DIT:
        return in_list(name, k_dit_top) || match_any(name, k_dit_block_pre, k_dit_block) ||
               match_any(name, k_dit_mod_pre, k_dit_mod);
    case ZI_PART_TEXT:
        return in_list(name, k_text_top) || match_any(name, k_text_pre, k_text_layer);
    case ZI_PART_VAE:
        return match_any(name, k_vae_top, k_wb) || match_any(name, k_vae_res_pre, k_wb);
    }
    return 0;
}

const char *zi_names_part(zi_part part)
{
    return part == ZI_PART_DIT ? "DiT" : part == ZI_PART_TEXT ? "text encoder" : "VAE";
}

static const char *strip(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(s, prefix, n) ? s : s + n;
}

/* Copies a block prefix "X.N." of s into pre (returns its length) if s
 * starts with one of the DiT's block prefixes, else 0. */
static size_t block_prefix(const char *s, char *pre, size_t prelen)
{
    for (const char *const *p = k_dit_block_pre; *p; p++) {
        const char *rest = match_prefix(*p, s);
        if (rest && (size_t)(rest - s) < prelen) {
            memcpy(pre, s, (size_t)(rest - s));
            pre[rest - s] = 0;
            return (size_t)(rest - s);
        }
    }
    return 0;
}

static zi_name_kind map_dit(const char *s, zi_name_map *out)
{
    s = strip(strip(s, "model."), "diffusion_model.");
    if (!strcmp(s, "norm_final.weight")) return ZI_NAME_SKIP;
    const char *r;
    if ((r = match_prefix("all_x_embedder.2-1.", s)))
        snprintf(out->name, sizeof out->name, "x_embedder.%s", r);
    else if ((r = match_prefix("all_final_layer.2-1.", s)))
        snprintf(out->name, sizeof out->name, "final_layer.%s", r);
    else
        snprintf(out->name, sizeof out->name, "%s", s);
    char pre[64];
    size_t np = block_prefix(s, pre, sizeof pre);
    if (np) {
        static const struct {
            const char *from, *to;
            int slot;
        } ren[] = {
            {"attention.to_q.weight", "attention.qkv.weight", 0},
            {"attention.to_k.weight", "attention.qkv.weight", 1},
            {"attention.to_v.weight", "attention.qkv.weight", 2},
            {"attention.to_out.0.weight", "attention.out.weight", -1},
            {"attention.norm_q.weight", "attention.q_norm.weight", -1},
            {"attention.norm_k.weight", "attention.k_norm.weight", -1},
        };
        for (size_t i = 0; i < sizeof ren / sizeof ren[0]; i++)
            if (!strcmp(s + np, ren[i].from)) {
                snprintf(out->name, sizeof out->name, "%s%s", pre, ren[i].to);
                out->qkv_slot = ren[i].slot;
            }
    }
    return ZI_NAME_KEEP;
}

static zi_name_kind map_text(const char *s, zi_name_map *out)
{
    s = strip(s, "model.");
    if (!strcmp(s, "lm_head.weight") || !strcmp(s, "output.weight")) return ZI_NAME_SKIP;
    /* llama.cpp's GGUF names of the same tensors (Qwen3 is stored without
     * the q/k row permutation llama-style models get). */
    static const struct {
        const char *from, *to;
    } top[] = {{"token_embd.weight", "embed_tokens.weight"}, {"output_norm.weight", "norm.weight"}},
      blk[] = {{"attn_q.weight", "self_attn.q_proj.weight"},
               {"attn_k.weight", "self_attn.k_proj.weight"},
               {"attn_v.weight", "self_attn.v_proj.weight"},
               {"attn_output.weight", "self_attn.o_proj.weight"},
               {"attn_q_norm.weight", "self_attn.q_norm.weight"},
               {"attn_k_norm.weight", "self_attn.k_norm.weight"},
               {"ffn_gate.weight", "mlp.gate_proj.weight"},
               {"ffn_up.weight", "mlp.up_proj.weight"},
               {"ffn_down.weight", "mlp.down_proj.weight"},
               {"attn_norm.weight", "input_layernorm.weight"},
               {"ffn_norm.weight", "post_attention_layernorm.weight"}};
    snprintf(out->name, sizeof out->name, "%s", s);
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (!strcmp(s, top[i].from)) snprintf(out->name, sizeof out->name, "%s", top[i].to);
    const char *r = match_prefix("blk.#.", s);
    if (r) {
        int n = (int)(r - s) - 5;
        for (size_t i = 0; i < sizeof blk / sizeof blk[0]; i++)
            if (!strcmp(r, blk[i].from))
                snprintf(out->name, sizeof out->name, "layers.%.*s.%s", n, s + 4, blk[i].to);
    }
    return ZI_NAME_KEEP;
}

int zi_names_bfl_up_level(const char *src)
{
    const char *r = match_prefix("decoder.up.#.", src);
    if (!r) return -1;
    int k = 0;
    for (const char *p = src + 11; *p >= '0' && *p <= '9' && k < 100000; p++) k = k * 10 + *p - '0';
    return k;
}

/* BFL `ae.safetensors` decoder names to diffusers'. */
static void map_bfl(const char *s, int levels, zi_name_map *out)
{
    static const struct {
        const char *from, *to;
    } ren[] = {{"decoder.mid.block_1.", "decoder.mid_block.resnets.0."},
               {"decoder.mid.block_2.", "decoder.mid_block.resnets.1."},
               {"decoder.mid.attn_1.norm.", "decoder.mid_block.attentions.0.group_norm."},
               {"decoder.mid.attn_1.q.", "decoder.mid_block.attentions.0.to_q."},
               {"decoder.mid.attn_1.k.", "decoder.mid_block.attentions.0.to_k."},
               {"decoder.mid.attn_1.v.", "decoder.mid_block.attentions.0.to_v."},
               {"decoder.mid.attn_1.proj_out.", "decoder.mid_block.attentions.0.to_out.0."},
               {"decoder.norm_out.", "decoder.conv_norm_out."}};
    for (size_t i = 0; i < sizeof ren / sizeof ren[0]; i++) {
        const char *r = match_prefix(ren[i].from, s);
        if (r) {
            snprintf(out->name, sizeof out->name, "%s%s", ren[i].to, r);
            return;
        }
    }
    int k = zi_names_bfl_up_level(s);
    if (k < 0 || k >= levels) return;
    const char *r = match_prefix("decoder.up.#.", s), *q;
    if ((q = match_prefix("block.#.", r))) {
        int nj = (int)(q - r) - 7;
        const char *leaf = q;
        if ((q = match_prefix("nin_shortcut.", leaf)))
            snprintf(out->name, sizeof out->name,
                     "decoder.up_blocks.%d.resnets.%.*s.conv_shortcut.%s", levels - 1 - k, nj,
                     r + 6, q);
        else
            snprintf(out->name, sizeof out->name, "decoder.up_blocks.%d.resnets.%.*s.%s",
                     levels - 1 - k, nj, r + 6, leaf);
    } else if ((q = match_prefix("upsample.conv.", r))) {
        snprintf(out->name, sizeof out->name, "decoder.up_blocks.%d.upsamplers.0.conv.%s",
                 levels - 1 - k, q);
    }
}

static zi_name_kind map_vae(const char *s, int levels, zi_name_map *out)
{
    if (match_prefix("encoder.", s) || match_prefix("quant_conv.", s)) return ZI_NAME_SKIP;
    snprintf(out->name, sizeof out->name, "%s", s);
    map_bfl(s, levels, out);
    static const char *const attn_w[] = {"decoder.mid_block.attentions.0.to_q.weight",
                                         "decoder.mid_block.attentions.0.to_k.weight",
                                         "decoder.mid_block.attentions.0.to_v.weight",
                                         "decoder.mid_block.attentions.0.to_out.0.weight", NULL};
    out->squeeze = in_list(out->name, attn_w);
    return ZI_NAME_KEEP;
}

zi_name_kind zi_names_map(zi_part part, const char *src, int vae_levels, zi_name_map *out)
{
    out->name[0] = 0;
    out->qkv_slot = -1;
    out->squeeze = 0;
    if (strlen(src) >= ZI_NAME_MAX - 16) return ZI_NAME_UNKNOWN;
    zi_name_kind k = part == ZI_PART_DIT    ? map_dit(src, out)
                     : part == ZI_PART_TEXT ? map_text(src, out)
                                            : map_vae(src, vae_levels, out);
    if (k == ZI_NAME_KEEP && !zi_names_is_canonical(part, out->name)) return ZI_NAME_UNKNOWN;
    return k;
}

int zi_names_dit_block(int i, int n_refiner, char *buf, size_t n)
{
    if (i < n_refiner) {
        snprintf(buf, n, "noise_refiner.%d", i);
        return 1;
    }
    if (i < 2 * n_refiner) {
        snprintf(buf, n, "context_refiner.%d", i - n_refiner);
        return 0;
    }
    snprintf(buf, n, "layers.%d", i - 2 * n_refiner);
    return 1;
}
