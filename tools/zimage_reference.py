#!/usr/bin/python3
"""zimage_reference.py — a PyTorch reference of Z-Image-Turbo (Qwen3 text
encoder, S3-DiT, FLUX VAE decoder, flow-matching Euler sampler).

Written from /work/shared/specs/zimage.md (the model facts) with the tensor
names of the public releases, so that pixserve's C engine can be verified
stage by stage against it. Everything runs in float32 on the CPU with plain
tensor functions over name -> tensor dicts (no nn.Module, no newer torch APIs:
it runs on Debian 12's torch 1.13). It never downloads anything.

Subcommands (run with --help for each):
  make OUT   random weights of a configuration (tiny: a few MB; full: the
             real sizes, streamed to disk shard by shard) in the Hugging Face
             directory layout (OUT/hf) and the single-file layout (OUT/single:
             z_image_turbo.safetensors with fused qkv and the
             `model.diffusion_model.` prefix, qwen_3_4b.safetensors, FLUX's
             ae.safetensors with BFL names). Both layouts hold identical tensors.
  run DIR    the whole pipeline on token ids from an OUT/hf directory, writing
             every stage's tensor into one safetensors file
  noise OUT  the initial latents of a seed ([1, 16, H/8, W/8], tensor `latents`)

Stage tensors written by `run` (all float32):
  text.features      [L, cap_dim]  hidden_states[-2] of Qwen3 on --ids
  text.neg_features  [Ln, cap_dim] the same on --neg-ids (only with --cfg > 0)
  text.layer.K       [L, hidden]   output of Qwen3 layer K (0-based, raw
                                   residual stream, no final norm), K = 0..n-1,
                                   only with --dump-encoder (then all n layers
                                   run; text.features == text.layer.{n-2})
  init.latent        [1, 16, H/8, W/8]
  sigmas             [N+1]         the sampler's sigma schedule
  dit.t0             [1]           t_in of the first forward (= 0 at sigma 1)
  dit.out0           [1, 16, H/8, W/8] raw DiT output of the first forward for
                                   the positive prompt (before negation)
  dit.neg_out0       [1, 16, H/8, W/8] the same for the negative (cfg > 0)
  step.K.latent      [1, 16, H/8, W/8] latent after step K, K = 1..N
  final.latent       [1, 16, H/8, W/8] (= step.N.latent)
  image              [H, W, 3]     VAE decode of final.latent, in [0, 1]

Choices where the spec leaves room (taken from diffusers'
ZImageTransformer2DModel / ZImagePipeline, whose behaviour they reproduce):
  - adaLN width t_dim = min(dim, 256); timestep MLP hidden = 1024 whatever
    dim is; sinusoid width 256, [cos, sin] order, freqs exp(-ln(1e4)·i/128).
  - FFN hidden = int(dim / 3 * 8) (10240 for 3840; 170 for the tiny 64).
  - Patch features are ordered (ph, pw, c) with the channel fastest:
    feature[(ph*2 + pw)*C + c] = latent[c, 2h+ph, 2w+pw]; unpatchify inverts it.
  - Text tokens are padded to a multiple of 32 (no pad when already one) and
    the pads get positions (1+i, 0, 0) like real tokens; image tokens come at
    (L_pad+1, h, w), image pads at (0, 0, 0). Pads carry the learned pad
    tokens (replacing the embedded features) and are attended to.
  - The noise refiner sees only the image tokens (+ pads) of its item, the
    context refiner only the text tokens (+ pads); the joint sequence is
    [image tokens, text tokens]; items of a batch are right-padded to the
    longest and padded keys masked out.
  - RoPE angles pos·θ^(-2i/d) are computed in float64, cast to float32, then
    cos/sin in float32 (as diffusers' precomputed table); pairs are
    interleaved (x[2i], x[2i+1]). Qwen3 uses half-split pairs (x[i], x[i+d/2]).
  - The sampler: sigmas sigma_i = 3·s/(1+2·s), s = 1 − i/N, computed in float64
    and stored as float32; t_in = (1 − sigma_i)·1000 in float32; the Euler step
    x + (sigma_{i+1} − sigma_i)·v in float32 with v = −DiT (with CFG w > 0:
    v = −(pos + w·(pos − neg)) with pos and neg run as one batch of 2).
  - VAE mid attention: one head of width C, scale 1/sqrt(C), residual added;
    ResNet output = shortcut(x) + h (no rescale).
  - Random weights: every tensor has its own generator seeded from the seed and
    the tensor's (HF) name, so layouts and streamed writes agree; linears
    normal/sqrt(fan_in), biases N(0, 0.05²), norm weights 1 + N(0, 0.1²),
    adaLN weights 0.5/sqrt(fan_in) with N(0, 0.3²) biases, pad tokens and the
    token embedding N(0, 1), the VAE's conv_out 0.5/sqrt(fan_in).
"""
import argparse
import collections
import json
import math
import mmap
import os
import shutil
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

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
    import re
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


# --- safetensors (written by hand: Debian 12 has no python3-safetensors) -----------

ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
             torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}
ST_TORCH = {v: k for k, v in ST_DTYPES.items()}
ST_SIZE = {torch.float32: 4, torch.bfloat16: 2, torch.float16: 2}


def write_safetensors_stream(path, entries, dtype, metadata=None):
    """entries: [(name, shape, producer)] — each producer() is called once,
    in order, and its tensor written as dtype; nothing is kept in memory."""
    header, off = {}, 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    es = ST_SIZE[dtype]
    for name, shape, _ in entries:
        n = int(np.prod(shape)) * es
        header[name] = {"dtype": ST_DTYPES[dtype], "shape": list(shape),
                        "data_offsets": [off, off + n]}
        off += n
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for name, shape, prod in entries:
            t = prod().to(dtype).contiguous()
            if list(t.shape) != list(shape):
                raise AssertionError("%s: produced %s, declared %s" % (name, list(t.shape), shape))
            f.write(t.reshape(-1).view(torch.uint8).numpy().tobytes())
            del t
    os.replace(tmp, path)
    return off


def save_safetensors(path, tensors, metadata=None):
    """tensors: name -> tensor, stored in their own dtypes."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path, copy=True):
    """(OrderedDict name -> tensor in its stored dtype, metadata)."""
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    (n,) = struct.unpack("<Q", mm[:8])
    header = json.loads(mm[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = collections.OrderedDict()
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, _ = e["data_offsets"]
        dt = ST_TORCH[e["dtype"]]
        numel = int(np.prod(e["shape"])) if e["shape"] else 1
        t = (torch.frombuffer(mm, dtype=dt, count=numel, offset=base + b) if numel
             else torch.empty(0, dtype=dt))
        t = t.reshape(e["shape"])
        out[name] = t.clone() if copy else t
    return out, meta


def write_sharded(dirpath, stem, entries, dtype, min_shards=2, max_shard_bytes=5 * 10 ** 9):
    """Writes `stem-0000N-of-0000M.safetensors` shards and `stem.safetensors.
    index.json` (HF layout), one shard at a time."""
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
    small = cfg["dit"]["dim"] < 1024
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
            groups, names = write_sharded(d, stem, hf_component_entries(cfg, comp, seed), dtype,
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
    del small


# --- loading an HF directory -------------------------------------------------------

def load_component(d):
    """name -> float32 tensor of one HF component directory (sharded or not)."""
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
            out[k] = v.float().clone()
    return out


class Model:
    """The three components and their configs, float32."""

    def __init__(self, dit_cfg, text_cfg, vae_cfg, sched_cfg, dit_w, text_w, vae_w):
        self.dit_cfg, self.text_cfg, self.vae_cfg, self.sched_cfg = dit_cfg, text_cfg, vae_cfg, sched_cfg
        self.dit, self.text, self.vae = dit_w, text_w, vae_w


def load_hf(model_dir):
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
                 load_component(os.path.join(model_dir, "transformer")),
                 load_component(os.path.join(model_dir, "text_encoder")),
                 load_component(os.path.join(model_dir, "vae")))


def model_from_config(cfg, seed=0, dtype=torch.float32):
    """The same model as `make` writes, built in memory (tiny configs)."""
    return Model(cfg["dit"], cfg["text"], cfg["vae"], cfg["scheduler"],
                 make_weights(cfg, seed, "transformer", dtype),
                 make_weights(cfg, seed, "text_encoder", dtype),
                 make_weights(cfg, seed, "vae", dtype))


# --- shared maths -------------------------------------------------------------------

def rms_norm(x, w, eps):
    x = x.float()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def linear(x, w, b=None):
    y = torch.matmul(x, w.t())
    return y + b if b is not None else y


def attention(q, k, v, key_mask=None, causal=False):
    """q [B, S, h, d], k/v [B, S, h, d] -> [B, S, h*d]; key_mask [B, S] bool."""
    B, S, h, d = q.shape
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d)
    if key_mask is not None:
        s = s.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    if causal:
        cm = torch.ones(S, S, dtype=torch.bool).triu(1)
        s = s.masked_fill(cm, float("-inf"))
    p = torch.softmax(s, dim=-1)
    return torch.einsum("bhqk,bkhd->bqhd", p, v).reshape(B, S, h * d)


# --- Qwen3 text encoder -------------------------------------------------------------

def qwen3_rope(L, head_dim, theta):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    f = torch.arange(L).float()[:, None] * inv[None, :]
    emb = torch.cat([f, f], dim=-1)
    return emb.cos(), emb.sin()


def qwen3_forward(m, ids, all_layers=False):
    """ids: list of ints. Returns (features = hidden_states[-2] [L, H],
    [output of each layer that ran])."""
    c, w = m.text_cfg, m.text
    H, nh, nkv, hd = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    eps, n = c["rms_norm_eps"], c["num_hidden_layers"]
    ids = torch.tensor(ids, dtype=torch.int64)
    L = ids.numel()
    x = w["model.embed_tokens.weight"][ids][None]  # [1, L, H]
    cos, sin = qwen3_rope(L, hd, c["rope_theta"])
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]

    def rot(t):
        a, b = t[..., :hd // 2], t[..., hd // 2:]
        return t * cos + torch.cat([-b, a], dim=-1) * sin

    run = n if all_layers else max(n - 1, 0)
    outs = []
    for i in range(run):
        p = "model.layers.%d." % i
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = linear(h, w[p + "self_attn.q_proj.weight"]).view(1, L, nh, hd)
        k = linear(h, w[p + "self_attn.k_proj.weight"]).view(1, L, nkv, hd)
        v = linear(h, w[p + "self_attn.v_proj.weight"]).view(1, L, nkv, hd)
        q = rot(rms_norm(q, w[p + "self_attn.q_norm.weight"], eps))
        k = rot(rms_norm(k, w[p + "self_attn.k_norm.weight"], eps))
        k = k.repeat_interleave(nh // nkv, dim=2)
        v = v.repeat_interleave(nh // nkv, dim=2)
        a = attention(q, k, v, causal=True)
        x = x + linear(a, w[p + "self_attn.o_proj.weight"])
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = linear(h, w[p + "mlp.gate_proj.weight"])
        u = linear(h, w[p + "mlp.up_proj.weight"])
        x = x + linear(F.silu(g) * u, w[p + "mlp.down_proj.weight"])
        outs.append(x[0])
    feats = outs[n - 2] if n >= 2 else w["model.embed_tokens.weight"][ids]
    return feats, outs


# --- DiT --------------------------------------------------------------------------

def timestep_sinusoid(t, dim=T_FREQ, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def rope_cos_sin(pos, axes_dims, theta):
    """pos [S, 3] int -> cos, sin [S, head_dim/2] for interleaved pairs."""
    angs = []
    for a, d in enumerate(axes_dims):
        fr = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        angs.append((pos[:, a].to(torch.float64)[:, None] * fr[None]).float())
    ang = torch.cat(angs, dim=-1)
    return ang.cos(), ang.sin()


def rope_interleaved(x, cos, sin):
    """x [B, S, h, d]; cos/sin [B, S, d/2]."""
    B, S, h, d = x.shape
    xr = x.reshape(B, S, h, d // 2, 2)
    a, b = xr[..., 0], xr[..., 1]
    c, s = cos[:, :, None, :], sin[:, :, None, :]
    return torch.stack([a * c - b * s, a * s + b * c], dim=-1).reshape(B, S, h, d)


def dit_block(w, p, x, mask, cos, sin, n_heads, eps, adaln=None):
    """One transformer block. x [B, S, D]; adaln [B, t_dim] or None (context
    refiner: no modulation)."""
    B, S, D = x.shape
    hd = D // n_heads
    if adaln is not None:
        mod = linear(adaln, w[p + ".adaLN_modulation.0.weight"], w[p + ".adaLN_modulation.0.bias"])
        scale_msa, gate_msa, scale_mlp, gate_mlp = mod[:, None, :].chunk(4, dim=2)
        gate_msa, gate_mlp = gate_msa.tanh(), gate_mlp.tanh()
        scale_msa, scale_mlp = 1.0 + scale_msa, 1.0 + scale_mlp
    else:
        scale_msa = scale_mlp = gate_msa = gate_mlp = 1.0
    h = rms_norm(x, w[p + ".attention_norm1.weight"], eps) * scale_msa
    q = linear(h, w[p + ".attention.to_q.weight"]).view(B, S, n_heads, hd)
    k = linear(h, w[p + ".attention.to_k.weight"]).view(B, S, n_heads, hd)
    v = linear(h, w[p + ".attention.to_v.weight"]).view(B, S, n_heads, hd)
    q = rope_interleaved(rms_norm(q, w[p + ".attention.norm_q.weight"], 1e-5), cos, sin)
    k = rope_interleaved(rms_norm(k, w[p + ".attention.norm_k.weight"], 1e-5), cos, sin)
    a = linear(attention(q, k, v, mask), w[p + ".attention.to_out.0.weight"])
    x = x + gate_msa * rms_norm(a, w[p + ".attention_norm2.weight"], eps)
    h = rms_norm(x, w[p + ".ffn_norm1.weight"], eps) * scale_mlp
    f = linear(F.silu(linear(h, w[p + ".feed_forward.w1.weight"])) *
               linear(h, w[p + ".feed_forward.w3.weight"]), w[p + ".feed_forward.w2.weight"])
    return x + gate_mlp * rms_norm(f, w[p + ".ffn_norm2.weight"], eps)


def patchify(lat, p):
    """[C, H, W] -> [(H/p)(W/p), p*p*C], features ordered (ph, pw, c)."""
    C, H, W = lat.shape
    return lat.view(C, H // p, p, W // p, p).permute(1, 3, 2, 4, 0).reshape((H // p) * (W // p), p * p * C)


def unpatchify(tok, C, H, W, p):
    return tok.view(H // p, W // p, p, p, C).permute(4, 0, 2, 1, 3).reshape(C, H, W)


def pad_to(n, m=SEQ_MULTI):
    return n + (-n) % m


def _batch(seqs, cs):
    """Right-pads per-item [S_i, D] sequences (and their cos/sin) to a batch
    with a key mask."""
    B, S = len(seqs), max(s.shape[0] for s in seqs)
    D, hh = seqs[0].shape[1], cs[0][0].shape[1]
    x = torch.zeros(B, S, D)
    cos, sin = torch.zeros(B, S, hh), torch.zeros(B, S, hh)
    mask = torch.zeros(B, S, dtype=torch.bool)
    for i, (s, (c, sn)) in enumerate(zip(seqs, cs)):
        n = s.shape[0]
        x[i, :n], cos[i, :n], sin[i, :n], mask[i, :n] = s, c, sn, True
    return x, cos, sin, mask


def dit_forward(m, latents, t_in, caps, trace=None):
    """latents: list of [C, H, W]; t_in: [B] float32 (already ×t_scale, i.e.
    1000·(1−σ)); caps: list of [L_i, cap_dim]. Returns a list of the raw
    outputs [C, H, W] (the negative velocity). trace: optional dict filled
    with intermediate tensors of item 0 (for debugging the C side)."""
    c, w = m.dit_cfg, m.dit
    d = dit_dims(c)
    p, D, nh, eps = d["patch"], d["dim"], c["n_heads"], c["norm_eps"]
    key = "%d-%d" % (p, d["fpatch"])
    B = len(latents)
    temb = linear(F.silu(linear(timestep_sinusoid(t_in.float()), w["t_embedder.mlp.0.weight"],
                                w["t_embedder.mlp.0.bias"])),
                  w["t_embedder.mlp.2.weight"], w["t_embedder.mlp.2.bias"])
    img, img_cs, cap, cap_cs, n_img = [], [], [], [], []
    for lat, cf in zip(latents, caps):
        L = cf.shape[0]
        Lp = pad_to(L)
        C, H, W = lat.shape
        ht, wt = H // p, W // p
        n = ht * wt
        npad = pad_to(n)
        xi = linear(patchify(lat.float(), p), w["all_x_embedder.%s.weight" % key],
                    w["all_x_embedder.%s.bias" % key])
        xi = torch.cat([xi, w["x_pad_token"].expand(npad - n, D)], 0)
        pos = torch.zeros(npad, 3, dtype=torch.int64)
        hh, ww = torch.meshgrid(torch.arange(ht), torch.arange(wt), indexing="ij")
        pos[:n, 0] = Lp + 1
        pos[:n, 1] = hh.reshape(-1)
        pos[:n, 2] = ww.reshape(-1)
        img.append(xi)
        img_cs.append(rope_cos_sin(pos, c["axes_dims"], c["rope_theta"]))
        n_img.append((n, C, H, W))
        ci = linear(rms_norm(cf.float(), w["cap_embedder.0.weight"], eps), w["cap_embedder.1.weight"],
                    w["cap_embedder.1.bias"])
        ci = torch.cat([ci, w["cap_pad_token"].expand(Lp - L, D)], 0)
        cpos = torch.zeros(Lp, 3, dtype=torch.int64)
        cpos[:, 0] = torch.arange(Lp) + 1
        cap.append(ci)
        cap_cs.append(rope_cos_sin(cpos, c["axes_dims"], c["rope_theta"]))
    x, xc, xs, xm = _batch(img, img_cs)
    for i in range(c["n_refiner_layers"]):
        x = dit_block(w, "noise_refiner.%d" % i, x, xm, xc, xs, nh, eps, temb)
    y, yc, ys, ym = _batch(cap, cap_cs)
    for i in range(c["n_refiner_layers"]):
        y = dit_block(w, "context_refiner.%d" % i, y, ym, yc, ys, nh, eps, None)
    if trace is not None:
        trace["t_emb"] = temb[0].clone()
        trace["noise_refined"] = x[0, :img[0].shape[0]].clone()
        trace["context_refined"] = y[0, :cap[0].shape[0]].clone()
    uni, ucs = [], []
    for i in range(B):
        a, b = img[i].shape[0], cap[i].shape[0]
        uni.append(torch.cat([x[i, :a], y[i, :b]], 0))
        ucs.append((torch.cat([img_cs[i][0], cap_cs[i][0]], 0), torch.cat([img_cs[i][1], cap_cs[i][1]], 0)))
    u, uc, us, um = _batch(uni, ucs)
    for i in range(c["n_layers"]):
        u = dit_block(w, "layers.%d" % i, u, um, uc, us, nh, eps, temb)
        if trace is not None:
            trace["layer.%d" % i] = u[0, :uni[0].shape[0]].clone()
    fp = "all_final_layer.%s." % key
    scale = 1.0 + linear(F.silu(temb), w[fp + "adaLN_modulation.1.weight"], w[fp + "adaLN_modulation.1.bias"])
    u = F.layer_norm(u, (D,), eps=1e-6) * scale[:, None, :]
    u = linear(u, w[fp + "linear.weight"], w[fp + "linear.bias"])
    return [unpatchify(u[i, :n], C, H, W, p) for i, (n, C, H, W) in enumerate(n_img)]


# --- VAE decoder ------------------------------------------------------------------

def vae_resnet(w, p, x, groups):
    h = F.conv2d(F.silu(F.group_norm(x, groups, w[p + ".norm1.weight"], w[p + ".norm1.bias"], VAE_EPS)),
                 w[p + ".conv1.weight"], w[p + ".conv1.bias"], padding=1)
    h = F.conv2d(F.silu(F.group_norm(h, groups, w[p + ".norm2.weight"], w[p + ".norm2.bias"], VAE_EPS)),
                 w[p + ".conv2.weight"], w[p + ".conv2.bias"], padding=1)
    if (p + ".conv_shortcut.weight") in w:
        x = F.conv2d(x, w[p + ".conv_shortcut.weight"], w[p + ".conv_shortcut.bias"])
    return x + h


def vae_attention(w, p, x, groups):
    B, C, H, W = x.shape
    h = F.group_norm(x, groups, w[p + ".group_norm.weight"], w[p + ".group_norm.bias"], VAE_EPS)
    h = h.view(B, C, H * W).transpose(1, 2)
    q = linear(h, w[p + ".to_q.weight"], w[p + ".to_q.bias"])
    k = linear(h, w[p + ".to_k.weight"], w[p + ".to_k.bias"])
    v = linear(h, w[p + ".to_v.weight"], w[p + ".to_v.bias"])
    a = torch.softmax(torch.matmul(q, k.transpose(1, 2)) / math.sqrt(C), dim=-1)
    o = linear(torch.matmul(a, v), w[p + ".to_out.0.weight"], w[p + ".to_out.0.bias"])
    return x + o.transpose(1, 2).reshape(B, C, H, W)


def vae_decode(m, latent, trace=None):
    """latent [1, 16, h, w] -> image [H, W, 3] in [0, 1]."""
    c, w = m.vae_cfg, m.vae
    g = c["norm_num_groups"]
    z = latent.float() / c["scaling_factor"] + c["shift_factor"]
    x = F.conv2d(z, w["decoder.conv_in.weight"], w["decoder.conv_in.bias"], padding=1)
    x = vae_resnet(w, "decoder.mid_block.resnets.0", x, g)
    x = vae_attention(w, "decoder.mid_block.attentions.0", x, g)
    x = vae_resnet(w, "decoder.mid_block.resnets.1", x, g)
    if trace is not None:
        trace["vae.mid"] = x.clone()
    n = len(c["block_out_channels"])
    for i in range(n):
        for j in range(c["layers_per_block"] + 1):
            x = vae_resnet(w, "decoder.up_blocks.%d.resnets.%d" % (i, j), x, g)
        if i < n - 1:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = F.conv2d(x, w["decoder.up_blocks.%d.upsamplers.0.conv.weight" % i],
                         w["decoder.up_blocks.%d.upsamplers.0.conv.bias" % i], padding=1)
        if trace is not None:
            trace["vae.up.%d" % i] = x.clone()
    x = F.silu(F.group_norm(x, g, w["decoder.conv_norm_out.weight"], w["decoder.conv_norm_out.bias"], VAE_EPS))
    x = F.conv2d(x, w["decoder.conv_out.weight"], w["decoder.conv_out.bias"], padding=1)
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)[0].permute(1, 2, 0).contiguous()


# --- sampler and pipeline -------------------------------------------------------------

def sigmas(n, shift=3.0):
    """[n+1] float32: shift·s/(1+(shift−1)·s), s = 1 − i/n, then 0."""
    s = np.array([1.0 - i / n for i in range(n)], dtype=np.float64)
    sg = shift * s / (1.0 + (shift - 1.0) * s)
    return torch.from_numpy(np.concatenate([sg, [0.0]])).float()


def noise(width, height, seed, channels=16):
    if width % 16 or height % 16:
        raise ValueError("width and height must be multiples of 16")
    g = torch.Generator().manual_seed(seed)
    return torch.randn((1, channels, height // 8, width // 8), generator=g, dtype=torch.float32)


def run_pipeline(m, ids, width, height, steps, seed=0, neg_ids=None, cfg_scale=0.0, latents=None,
                 dump_encoder=False):
    """The whole pipeline; returns an OrderedDict of stage tensors (names in
    the module docstring)."""
    st = collections.OrderedDict()
    feats, layers = qwen3_forward(m, ids, all_layers=dump_encoder)
    st["text.features"] = feats.contiguous()
    use_cfg = cfg_scale > 0
    if use_cfg:
        if neg_ids is None:
            raise ValueError("--cfg > 0 needs --neg-ids")
        st["text.neg_features"] = qwen3_forward(m, neg_ids)[0].contiguous()
    if dump_encoder:
        for k, t in enumerate(layers):
            st["text.layer.%d" % k] = t.contiguous()
    C = m.dit_cfg["in_channels"]
    if latents is None:
        x = noise(width, height, seed, C)
    else:
        x = latents.float().reshape(1, C, height // 8, width // 8).clone()
    st["init.latent"] = x.clone()
    sg = sigmas(steps, float(m.sched_cfg.get("shift", 3.0)))
    st["sigmas"] = sg.clone()
    caps = [st["text.features"]] + ([st["text.neg_features"]] if use_cfg else [])
    for i in range(steps):
        t_in = ((1.0 - sg[i]) * float(m.dit_cfg.get("t_scale", 1000.0))).reshape(1)
        outs = dit_forward(m, [x[0]] * len(caps), t_in.repeat(len(caps)), caps)
        pos = outs[0][None]
        if i == 0:
            st["dit.t0"] = t_in.clone()
            st["dit.out0"] = pos.clone()
            if use_cfg:
                st["dit.neg_out0"] = outs[1][None].clone()
        pred = pos + cfg_scale * (pos - outs[1][None]) if use_cfg else pos
        x = x + (sg[i + 1] - sg[i]) * (-pred)
        st["step.%d.latent" % (i + 1)] = x.clone()
    st["final.latent"] = x.clone()
    st["image"] = vae_decode(m, x)
    return st


# --- commands -------------------------------------------------------------------------

def parse_ids(s):
    return [int(v) for v in s.split(",") if v.strip()] if s else None


def cmd_make(a):
    cfg = config(a.config, a.dit_layers, a.refiner_layers, a.text_layers)
    layouts = [x.strip() for x in a.layouts.split(",") if x.strip()]
    for x in layouts:
        if x not in ("hf", "single"):
            raise SystemExit("unknown layout %r (hf, single)" % x)
    make_model(a.out, cfg, a.seed, a.dtype, layouts, a.tokenizer, a.only_index,
               log=(lambda s: print(s, file=sys.stderr, flush=True)) if a.config == "full" else None)


def cmd_run(a):
    torch.set_num_threads(a.threads)
    m = load_hf(a.model_dir)
    lat = None
    if a.latents:
        t, _ = load_safetensors(a.latents)
        lat = t["latents"]
    st = run_pipeline(m, parse_ids(a.ids), a.width, a.height, a.steps, a.seed, parse_ids(a.neg_ids),
                      a.cfg, lat, a.dump_encoder)
    save_safetensors(a.out, st, {"format": "pixserve-zimage-stages"})


def cmd_noise(a):
    save_safetensors(a.out, {"latents": noise(a.width, a.height, a.seed)})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("make", help="random weights in the HF and single-file layouts")
    s.add_argument("out")
    s.add_argument("--config", default="tiny", choices=sorted(CONFIGS))
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    s.add_argument("--layouts", default="hf,single")
    s.add_argument("--tokenizer", help="tokenizer.json to copy into hf/tokenizer/")
    s.add_argument("--dit-layers", type=int, help="override n_layers")
    s.add_argument("--refiner-layers", type=int, help="override n_refiner_layers")
    s.add_argument("--text-layers", type=int, help="override num_hidden_layers")
    s.add_argument("--only-index", action="store_true",
                   help="write configs and shard index files only (no tensors)")
    s.set_defaults(fn=cmd_make)
    s = sub.add_parser("run", help="the pipeline on token ids; every stage into --out")
    s.add_argument("model_dir", help="the hf/ directory of `make`")
    s.add_argument("--ids", required=True, help="comma-separated token ids (the templated prompt)")
    s.add_argument("--neg-ids", help="negative prompt ids (used when --cfg > 0)")
    s.add_argument("--width", type=int, required=True)
    s.add_argument("--height", type=int, required=True)
    s.add_argument("--steps", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--cfg", type=float, default=0.0)
    s.add_argument("--latents", help="safetensors with a float32 tensor `latents` [1,16,H/8,W/8]")
    s.add_argument("--out", required=True)
    s.add_argument("--dump-encoder", action="store_true", help="also every Qwen3 layer's output")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(fn=cmd_run)
    for name in ("noise", "latents"):
        s = sub.add_parser(name, help="the initial latents of a seed")
        s.add_argument("out")
        s.add_argument("--width", type=int, required=True)
        s.add_argument("--height", type=int, required=True)
        s.add_argument("--seed", type=int, default=0)
        s.set_defaults(fn=cmd_noise)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
