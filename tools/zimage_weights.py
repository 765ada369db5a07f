#!/usr/bin/python3
"""zimage_weights.py — the random Z-Image-Turbo models of zimage_reference.py:
configurations (tiny and full), the tensor lists with their Hugging Face
(diffusers / transformers) names and shapes, deterministic per-tensor random
initialisation, the maps to the single-file names (fused qkv with the
`model.diffusion_model.` prefix; FLUX BFL VAE names), safetensors reading and
streamed writing (Debian 12 has no python3-safetensors), `make` and loading an
HF directory back. Imported by zimage_reference.py, which re-exports it all;
see that file's docstring for the CLI and the choices made.
"""
import collections
import json
import math
import os
import re
import shutil
import zlib

import numpy as np
import torch

from safetensors_io import (ST_DTYPES, ST_SIZE, ST_TORCH, load_safetensors,  # noqa: F401
                            save_safetensors, write_safetensors_stream)

# --- configurations -----------------------------------------------------------

FULL = dict(
    dit=dict(all_patch_size=[2], all_f_patch_size=[1], in_channels=16, dim=3840, n_layers=30,
             n_refiner_layers=2, n_heads=30, n_kv_heads=30, norm_eps=1e-5, qk_norm=True,
             cap_feat_dim=2560, rope_theta=256.0, t_scale=1000.0, axes_dims=[32, 48, 48],
             axes_lens=[1024, 512, 512]),
    text=dict(vocab_size=151936, hidden_size=2560, num_hidden_layers=36, num_attention_heads=32,
              num_key_value_heads=8, head_dim=128, intermediate_size=9728, rms_norm_eps=1e-6,
              rope_theta=1000000.0, max_position_embeddings=40960),
    vae=dict(latent_channels=16, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
             norm_num_groups=32, scaling_factor=0.3611, shift_factor=0.1159),
    scheduler=dict(shift=3.0, num_train_timesteps=1000),
)

TINY = dict(
    dit=dict(FULL["dit"], dim=64, n_layers=2, n_refiner_layers=1, n_heads=2, n_kv_heads=2,
             cap_feat_dim=32, axes_dims=[8, 12, 12]),
    text=dict(FULL["text"], hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
              num_key_value_heads=2, head_dim=16, intermediate_size=96),
    vae=dict(FULL["vae"], block_out_channels=[16, 32, 32, 32], norm_num_groups=8),
    scheduler=dict(FULL["scheduler"]),
)

CONFIGS = {"tiny": TINY, "full": FULL}

ADALN_MAX = 256     # t_dim = min(dim, 256)
T_HIDDEN = 1024     # timestep MLP hidden
T_FREQ = 256        # sinusoid width
SEQ_MULTI = 32      # text and image tokens padded to a multiple of this
VAE_EPS = 1e-6


def config(name, dit_layers=None, refiner_layers=None, text_layers=None):
    c = json.loads(json.dumps(CONFIGS[name]))  # deep copy
    if dit_layers is not None:
        c["dit"]["n_layers"] = dit_layers
    if refiner_layers is not None:
        c["dit"]["n_refiner_layers"] = refiner_layers
    if text_layers is not None:
        c["text"]["num_hidden_layers"] = text_layers
    return c


def dit_dims(dc):
    dim = dc["dim"]
    p, pf, cin = dc["all_patch_size"][0], dc["all_f_patch_size"][0], dc["in_channels"]
    return dict(dim=dim, t_dim=min(dim, ADALN_MAX), ffn=int(dim / 3 * 8), patch=p, fpatch=pf,
                pfeat=pf * p * p * cin, head_dim=dim // dc["n_heads"])


# --- tensor lists (HF names, shapes, how to initialise) ---------------------------

def dit_entries(dc):
    """[(name, shape, kind)] of the DiT in diffusers names."""
    d = dit_dims(dc)
    D, T, FF, P, hd = d["dim"], d["t_dim"], d["ffn"], d["pfeat"], d["head_dim"]
    key = "%d-%d" % (d["patch"], d["fpatch"])
    e = [("all_x_embedder.%s.weight" % key, [D, P], "lin"),
         ("all_x_embedder.%s.bias" % key, [D], "bias"),
         ("cap_embedder.0.weight", [dc["cap_feat_dim"]], "norm"),
         ("cap_embedder.1.weight", [D, dc["cap_feat_dim"]], "lin"),
         ("cap_embedder.1.bias", [D], "bias"),
         ("t_embedder.mlp.0.weight", [T_HIDDEN, T_FREQ], "lin"),
         ("t_embedder.mlp.0.bias", [T_HIDDEN], "bias"),
         ("t_embedder.mlp.2.weight", [T, T_HIDDEN], "lin"),
         ("t_embedder.mlp.2.bias", [T], "bias"),
         ("x_pad_token", [1, D], "pad"),
         ("cap_pad_token", [1, D], "pad")]

    def block(prefix, modulated):
        b = []
        for n in ("to_q", "to_k", "to_v", "to_out.0"):
            b.append(("%s.attention.%s.weight" % (prefix, n), [D, D], "lin"))
        b.append(("%s.attention.norm_q.weight" % prefix, [hd], "norm"))
        b.append(("%s.attention.norm_k.weight" % prefix, [hd], "norm"))
        b.append(("%s.feed_forward.w1.weight" % prefix, [FF, D], "lin"))
        b.append(("%s.feed_forward.w2.weight" % prefix, [D, FF], "lin"))
        b.append(("%s.feed_forward.w3.weight" % prefix, [FF, D], "lin"))
        for n in ("attention_norm1", "attention_norm2", "ffn_norm1", "ffn_norm2"):
            b.append(("%s.%s.weight" % (prefix, n), [D], "norm"))
        if modulated:
            b.append(("%s.adaLN_modulation.0.weight" % prefix, [4 * D, T], "ada"))
            b.append(("%s.adaLN_modulation.0.bias" % prefix, [4 * D], "adabias"))
        return b

    for i in range(dc["n_refiner_layers"]):
        e += block("noise_refiner.%d" % i, True)
    for i in range(dc["n_refiner_layers"]):
        e += block("context_refiner.%d" % i, False)
    for i in range(dc["n_layers"]):
        e += block("layers.%d" % i, True)
    e += [("all_final_layer.%s.linear.weight" % key, [P, D], "lin"),
          ("all_final_layer.%s.linear.bias" % key, [P], "bias"),
          ("all_final_layer.%s.adaLN_modulation.1.weight" % key, [D, T], "ada"),
          ("all_final_layer.%s.adaLN_modulation.1.bias" % key, [D], "adabias")]
    return e


def text_entries(tc):
    """[(name, shape, kind)] of the Qwen3 encoder in HF names (`model.` prefix)."""
    H, hd, I = tc["hidden_size"], tc["head_dim"], tc["intermediate_size"]
    nh, nkv = tc["num_attention_heads"], tc["num_key_value_heads"]
    e = [("model.embed_tokens.weight", [tc["vocab_size"], H], "embed")]
    for i in range(tc["num_hidden_layers"]):
        p = "model.layers.%d." % i
        e += [(p + "input_layernorm.weight", [H], "norm"),
              (p + "self_attn.q_proj.weight", [nh * hd, H], "lin"),
              (p + "self_attn.k_proj.weight", [nkv * hd, H], "lin"),
              (p + "self_attn.v_proj.weight", [nkv * hd, H], "lin"),
              (p + "self_attn.o_proj.weight", [H, nh * hd], "lin"),
              (p + "self_attn.q_norm.weight", [hd], "norm"),
              (p + "self_attn.k_norm.weight", [hd], "norm"),
              (p + "post_attention_layernorm.weight", [H], "norm"),
              (p + "mlp.gate_proj.weight", [I, H], "lin"),
              (p + "mlp.up_proj.weight", [I, H], "lin"),
              (p + "mlp.down_proj.weight", [H, I], "lin")]
    e.append(("model.norm.weight", [H], "norm"))
    return e


def vae_levels(vc):
    """[(cin of the first resnet, cout)] per diffusers up block (i = 0 first)."""
    rev = list(reversed(vc["block_out_channels"]))
    out, prev = [], rev[0]
    for c in rev:
        out.append((prev, c))
        prev = c
    return out


def vae_entries(vc):
    """[(name, shape, kind)] of the VAE decoder in diffusers names."""
    top = vc["block_out_channels"][-1]
    e = []

    def conv(name, cout, cin, k, kind="conv"):
        e.append((name + ".weight", [cout, cin, k, k], kind))
        e.append((name + ".bias", [cout], "bias"))

    def gn(name, c):
        e.append((name + ".weight", [c], "norm"))
        e.append((name + ".bias", [c], "bias"))

    def resnet(p, cin, cout):
        gn(p + ".norm1", cin)
        conv(p + ".conv1", cout, cin, 3)
        gn(p + ".norm2", cout)
        conv(p + ".conv2", cout, cout, 3)
        if cin != cout:
            conv(p + ".conv_shortcut", cout, cin, 1)

    conv("decoder.conv_in", top, vc["latent_channels"], 3)
    resnet("decoder.mid_block.resnets.0", top, top)
    gn("decoder.mid_block.attentions.0.group_norm", top)
    for n in ("to_q", "to_k", "to_v", "to_out.0"):
        e.append(("decoder.mid_block.attentions.0.%s.weight" % n, [top, top], "lin"))
        e.append(("decoder.mid_block.attentions.0.%s.bias" % n, [top], "bias"))
    resnet("decoder.mid_block.resnets.1", top, top)
    levels = vae_levels(vc)
    for i, (cin, cout) in enumerate(levels):
        for j in range(vc["layers_per_block"] + 1):
            resnet("decoder.up_blocks.%d.resnets.%d" % (i, j), cin if j == 0 else cout, cout)
        if i < len(levels) - 1:
            conv("decoder.up_blocks.%d.upsamplers.0.conv" % i, cout, cout, 3)
    gn("decoder.conv_norm_out", vc["block_out_channels"][0])
    conv("decoder.conv_out", 3, vc["block_out_channels"][0], 3, "convout")
    return e


def init_tensor(comp, name, shape, kind, seed):
    """Deterministic random tensor of one weight (float32)."""
    s = (seed * 1000003 + zlib.crc32(("%s:%s" % (comp, name)).encode())) % (2 ** 62)
    g = torch.Generator().manual_seed(s)
    r = torch.randn(shape, generator=g, dtype=torch.float32)
    if kind in ("lin", "ada", "conv", "convout"):
        fan_in = int(np.prod(shape[1:]))
        scale = {"lin": 1.0, "conv": 1.0, "ada": 0.5, "convout": 0.5}[kind]
        return r.mul_(scale / math.sqrt(fan_in))
    if kind == "bias":
        return r.mul_(0.05)
    if kind == "adabias":
        return r.mul_(0.3)
    if kind == "norm":
        return r.mul_(0.1).add_(1.0)
    if kind in ("pad", "embed"):
        return r
    raise ValueError(kind)


def component_entries(cfg, comp):
    return {"transformer": lambda: dit_entries(cfg["dit"]),
            "text_encoder": lambda: text_entries(cfg["text"]),
            "vae": lambda: vae_entries(cfg["vae"])}[comp]()


def make_weights(cfg, seed, comp, dtype=torch.float32):
    """OrderedDict HF name -> float32 tensor (rounded through dtype) of one
    component ("transformer", "text_encoder", "vae"). In memory: tiny only."""
    out = collections.OrderedDict()
    for name, shape, kind in component_entries(cfg, comp):
        out[name] = init_tensor(comp, name, shape, kind, seed).to(dtype).float()
    return out


# --- layout maps ------------------------------------------------------------------

SINGLE_PREFIX = "model.diffusion_model."


def dit_hf_to_canonical(name):
    """diffusers DiT name -> the single-file (canonical) name; to_q/to_k/to_v
    all map to the fused attention.qkv.weight."""
    for a, b in (("all_x_embedder.2-1.", "x_embedder."), ("all_final_layer.2-1.", "final_layer.")):
        if name.startswith(a):
            return b + name[len(a):]
    for a, b in ((".attention.to_q.weight", ".attention.qkv.weight"),
                 (".attention.to_k.weight", ".attention.qkv.weight"),
                 (".attention.to_v.weight", ".attention.qkv.weight"),
                 (".attention.to_out.0.weight", ".attention.out.weight"),
                 (".attention.norm_q.weight", ".attention.q_norm.weight"),
                 (".attention.norm_k.weight", ".attention.k_norm.weight")):
        if name.endswith(a):
            return name[:-len(a)] + b
    return name


def vae_hf_to_bfl(name, nlevels):
    """diffusers VAE decoder name -> FLUX BFL ae.safetensors name."""
    m = re.match(r"decoder\.up_blocks\.(\d+)\.(.*)$", name)
    if m:
        k = nlevels - 1 - int(m.group(1))
        rest = m.group(2)
        rest = re.sub(r"^resnets\.(\d+)\.", r"block.\1.", rest)
        rest = rest.replace("conv_shortcut", "nin_shortcut").replace("upsamplers.0.conv", "upsample.conv")
        return "decoder.up.%d.%s" % (k, rest)
    rep = (("decoder.mid_block.resnets.0.", "decoder.mid.block_1."),
           ("decoder.mid_block.resnets.1.", "decoder.mid.block_2."),
           ("decoder.mid_block.attentions.0.group_norm.", "decoder.mid.attn_1.norm."),
           ("decoder.mid_block.attentions.0.to_q.", "decoder.mid.attn_1.q."),
           ("decoder.mid_block.attentions.0.to_k.", "decoder.mid.attn_1.k."),
           ("decoder.mid_block.attentions.0.to_v.", "decoder.mid.attn_1.v."),
           ("decoder.mid_block.attentions.0.to_out.0.", "decoder.mid.attn_1.proj_out."),
           ("decoder.conv_norm_out.", "decoder.norm_out."))
    for a, b in rep:
        if name.startswith(a):
            return b + name[len(a):]
    return name


def single_dit_entries(cfg, seed):
    """[(single-file name, shape, producer)] of z_image_turbo.safetensors."""
    hf = dit_entries(cfg["dit"])
    kinds = {n: (s, k) for n, s, k in hf}
    out, seen = [], set()
    for name, shape, kind in hf:
        c = dit_hf_to_canonical(name)
        if c in seen:
            continue
        seen.add(c)
        if c.endswith(".attention.qkv.weight"):
            base = name[:-len("to_q.weight")]
            parts = [base + p + ".weight" for p in ("to_q", "to_k", "to_v")]

            def fused(parts=parts):
                return torch.cat([init_tensor("transformer", p, kinds[p][0], kinds[p][1], seed)
                                  for p in parts], 0)
            out.append((SINGLE_PREFIX + c, [3 * shape[0], shape[1]], fused))
        else:
            out.append((SINGLE_PREFIX + c, shape,
                        lambda n=name, s=shape, k=kind: init_tensor("transformer", n, s, k, seed)))
    D = cfg["dit"]["dim"]
    out.append((SINGLE_PREFIX + "norm_final.weight", [D],
                lambda: init_tensor("transformer", "norm_final.weight", [D], "norm", seed)))
    return out


def single_vae_entries(cfg, seed):
    n = len(cfg["vae"]["block_out_channels"])
    out = []
    for name, shape, kind in vae_entries(cfg["vae"]):
        b = vae_hf_to_bfl(name, n)
        if ".mid.attn_1." in b and len(shape) == 2:  # 1x1 convs in BFL files
            out.append((b, shape + [1, 1], lambda n_=name, s=shape, k=kind:
                        init_tensor("vae", n_, s, k, seed).reshape(s + [1, 1])))
        else:
            out.append((b, shape, lambda n_=name, s=shape, k=kind: init_tensor("vae", n_, s, k, seed)))
    return out


def hf_component_entries(cfg, comp, seed):
    return [(n, s, lambda n=n, s=s, k=k: init_tensor(comp, n, s, k, seed))
            for n, s, k in component_entries(cfg, comp)]


# --- safetensors: tools/safetensors_io.py (shared with lama_reference.py); its
# names stay importable from here (zimage_reference.py takes them from here) ----

def plan_shards(dirpath, stem, entries, dtype, min_shards=2, max_shard_bytes=5 * 10 ** 9):
    """Splits entries into at least min_shards shards of about equal size
    (at most max_shard_bytes each, unless one tensor is larger), writes the HF
    index `stem.safetensors.index.json` and returns (groups of entries, shard
    file names `stem-0000N-of-0000M.safetensors`) for the caller to write."""
    es = ST_SIZE[dtype]
    sizes = [int(np.prod(s)) * es for _, s, _ in entries]
    total = sum(sizes)
    nshards = max(min_shards, -(-total // max_shard_bytes))
    target = total / nshards
    groups, cur, cur_b = [], [], 0
    for e, b in zip(entries, sizes):
        if cur and cur_b + b > target and len(groups) < nshards - 1:
            groups.append(cur)
            cur, cur_b = [], 0
        cur.append(e)
        cur_b += b
    groups.append(cur)
    m = len(groups)
    wmap = collections.OrderedDict()
    names = []
    for k, g in enumerate(groups):
        fn = "%s-%05d-of-%05d.safetensors" % (stem, k + 1, m)
        names.append(fn)
        for n, _, _ in g:
            wmap[n] = fn
    with open(os.path.join(dirpath, stem + ".safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wmap}, f, indent=2)
    return groups, names


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


# --- make -------------------------------------------------------------------------

def hf_configs(cfg, dtype_name):
    tdt = "bfloat16" if dtype_name == "bf16" else "float32"
    dit = dict({"_class_name": "ZImageTransformer2DModel", "_diffusers_version": "0.36.0"},
               **cfg["dit"])
    text = dict({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
                 "attention_bias": False, "attention_dropout": 0.0, "hidden_act": "silu",
                 "tie_word_embeddings": True, "torch_dtype": tdt, "use_cache": True,
                 "bos_token_id": 151643, "eos_token_id": 151645}, **cfg["text"])
    vc = cfg["vae"]
    n = len(vc["block_out_channels"])
    vae = dict({"_class_name": "AutoencoderKL", "_diffusers_version": "0.36.0", "act_fn": "silu",
                "in_channels": 3, "out_channels": 3, "sample_size": 1024,
                "down_block_types": ["DownEncoderBlock2D"] * n,
                "up_block_types": ["UpDecoderBlock2D"] * n, "force_upcast": True,
                "use_quant_conv": False, "use_post_quant_conv": False,
                "mid_block_add_attention": True}, **vc)
    sched = {"_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.36.0",
             "num_train_timesteps": cfg["scheduler"]["num_train_timesteps"],
             "shift": cfg["scheduler"]["shift"], "use_dynamic_shifting": False}
    index = {"_class_name": "ZImagePipeline", "_diffusers_version": "0.36.0",
             "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
             "text_encoder": ["transformers", "Qwen3Model"],
             "tokenizer": ["transformers", "Qwen2Tokenizer"],
             "transformer": ["diffusers", "ZImageTransformer2DModel"],
             "vae": ["diffusers", "AutoencoderKL"]}
    return dit, text, vae, sched, index


def make_model(out, cfg, seed=0, dtype_name="fp32", layouts=("hf", "single"), tokenizer=None,
               only_index=False, log=None):
    """Writes the random model. only_index: configs + index files, no tensors."""
    dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
    maxb = 5 * 10 ** 9
    if "hf" in layouts:
        hf = os.path.join(out, "hf")
        dit_c, text_c, vae_c, sched_c, index = hf_configs(cfg, dtype_name)
        for d in ("transformer", "text_encoder", "vae", "scheduler"):
            os.makedirs(os.path.join(hf, d), exist_ok=True)
        write_json(os.path.join(hf, "model_index.json"), index)
        write_json(os.path.join(hf, "transformer", "config.json"), dit_c)
        write_json(os.path.join(hf, "text_encoder", "config.json"), text_c)
        write_json(os.path.join(hf, "vae", "config.json"), vae_c)
        write_json(os.path.join(hf, "scheduler", "scheduler_config.json"), sched_c)
        if tokenizer:
            td = os.path.join(hf, "tokenizer")
            os.makedirs(td, exist_ok=True)
            shutil.copyfile(tokenizer, os.path.join(td, "tokenizer.json"))
            write_json(os.path.join(td, "tokenizer_config.json"),
                       {"tokenizer_class": "Qwen2Tokenizer", "model_max_length": 131072,
                        "bos_token": None, "eos_token": "<|im_end|>",
                        "pad_token": "<|endoftext|>", "add_prefix_space": False,
                        "clean_up_tokenization_spaces": False, "errors": "replace",
                        "split_special_tokens": False})
        for comp, stem in (("transformer", "diffusion_pytorch_model"), ("text_encoder", "model")):
            d = os.path.join(hf, comp)
            groups, names = plan_shards(d, stem, hf_component_entries(cfg, comp, seed), dtype,
                                          2, maxb)
            if only_index:
                continue
            for g, fn in zip(groups, names):
                if log:
                    log("writing %s/%s" % (comp, fn))
                write_safetensors_stream(os.path.join(d, fn), g, dtype)
        if not only_index:
            write_safetensors_stream(os.path.join(hf, "vae", "diffusion_pytorch_model.safetensors"),
                                     hf_component_entries(cfg, "vae", seed), dtype)
    if "single" in layouts and not only_index:
        sd = os.path.join(out, "single")
        os.makedirs(sd, exist_ok=True)
        if log:
            log("writing single/z_image_turbo.safetensors")
        write_safetensors_stream(os.path.join(sd, "z_image_turbo.safetensors"),
                                 single_dit_entries(cfg, seed), dtype)
        if log:
            log("writing single/qwen_3_4b.safetensors")
        write_safetensors_stream(os.path.join(sd, "qwen_3_4b.safetensors"),
                                 hf_component_entries(cfg, "text_encoder", seed), dtype)
        write_safetensors_stream(os.path.join(sd, "ae.safetensors"),
                                 single_vae_entries(cfg, seed), dtype)


# --- loading an HF directory -------------------------------------------------------

def load_component(d, device="cpu"):
    """name -> float32 tensor (on device) of one HF component directory
    (sharded or not)."""
    idx = [f for f in os.listdir(d) if f.endswith(".safetensors.index.json")]
    if idx:
        with open(os.path.join(d, idx[0])) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
    out = collections.OrderedDict()
    for fn in files:
        t, _ = load_safetensors(os.path.join(d, fn), copy=False)
        for k, v in t.items():
            out[k] = (v.clone() if v.dtype == torch.float32 else v.float()).to(device)
        del t
    return out


class Model:
    """The three components and their configs, float32."""

    def __init__(self, dit_cfg, text_cfg, vae_cfg, sched_cfg, dit_w, text_w, vae_w, device="cpu"):
        self.dit_cfg, self.text_cfg, self.vae_cfg, self.sched_cfg = dit_cfg, text_cfg, vae_cfg, sched_cfg
        self.dit, self.text, self.vae = dit_w, text_w, vae_w
        self.device = torch.device(device)


def load_hf(model_dir, device="cpu"):
    """The Model of an HF directory written by make (or the real one), float32
    on device."""
    def js(*p):
        with open(os.path.join(model_dir, *p)) as f:
            return json.load(f)
    sched = {"shift": 3.0, "num_train_timesteps": 1000}
    sp = os.path.join(model_dir, "scheduler", "scheduler_config.json")
    if os.path.exists(sp):
        sched.update({k: v for k, v in js("scheduler", "scheduler_config.json").items()
                      if k in sched})
    return Model(js("transformer", "config.json"), js("text_encoder", "config.json"),
                 js("vae", "config.json"), sched,
                 load_component(os.path.join(model_dir, "transformer"), device),
                 load_component(os.path.join(model_dir, "text_encoder"), device),
                 load_component(os.path.join(model_dir, "vae"), device), device)


def model_from_config(cfg, seed=0, dtype=torch.float32):
    """The same model as `make` writes, built in memory (tiny configs)."""
    return Model(cfg["dit"], cfg["text"], cfg["vae"], cfg["scheduler"],
                 make_weights(cfg, seed, "transformer", dtype),
                 make_weights(cfg, seed, "text_encoder", dtype),
                 make_weights(cfg, seed, "vae", dtype))
