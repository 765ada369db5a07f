#!/usr/bin/python3
"""zimage_reference.py — a PyTorch reference of Z-Image-Turbo (Qwen3 text
encoder, S3-DiT, FLUX VAE decoder, flow-matching Euler sampler).

Written from the shared spec specs/zimage.md (the model facts) with the tensor
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
  decode DIR the VAE alone on a latents file (tensor `latents` or `final.latent`)
  compare    the errors of one stage file against another

Exact command lines:
  /usr/bin/python3 tools/zimage_reference.py make OUT [--config tiny|full]
      [--seed 0] [--dtype fp32|bf16] [--layouts hf,single]
      [--tokenizer tokenizer.json] [--dit-layers N] [--refiner-layers N]
      [--text-layers N] [--only-index]
  /usr/bin/python3 tools/zimage_reference.py run OUT/hf --ids 1,2,3
      [--neg-ids 4,5] --width W --height H --steps N [--seed S] [--cfg X]
      [--latents FILE] --out STAGES.safetensors [--dump-encoder] [--dump-dit]
      [--dump-vae] [--threads T] [--device cpu|cuda] [--lora FILE[:SCALE]]...
  /usr/bin/python3 tools/zimage_reference.py noise OUT.safetensors --width W
      --height H [--seed S]
  /usr/bin/python3 tools/zimage_reference.py decode OUT/hf --latents FILE
      --out FILE [--dump-vae]
  /usr/bin/python3 tools/zimage_reference.py compare REF.safetensors
      OUT.safetensors [--tol 1e-3]   (per shared tensor: max|diff| and
      max|diff|/max|ref|; exit 1 when one is over --tol)

Stage tensors written by `run` (all float32):
  text.features      [L, cap_dim]  hidden_states[-2] of Qwen3 on --ids
  text.neg_features  [Ln, cap_dim] the same on --neg-ids (only with --cfg > 0)
  text.layer.K       [L, hidden]   output of Qwen3 layer K (0-based, raw
                                   residual stream, no final norm), K = 0..n-1,
                                   only with --dump-encoder (then all n layers
                                   run; text.features == text.layer.{n-2})
  init.latent        [1, 16, H/8, W/8]
  sigmas             [N+1]         the sampler's sigma schedule
  dit.tK             [1]           t_in of step K's forward, K = 0..N-1
                                   (dit.t0 = 0 at sigma 1)
  dit.outK           [1, 16, H/8, W/8] raw DiT output of step K's forward for
                                   the positive prompt (before negation); its
                                   inputs are step.K.latent (init.latent for
                                   K = 0), dit.tK and text.features
  dit.neg_outK       [1, 16, H/8, W/8] the same for the negative (cfg > 0)
  step.K.latent      [1, 16, H/8, W/8] latent after step K, K = 1..N
  final.latent       [1, 16, H/8, W/8] (= step.N.latent)
  image              [H, W, 3]     VAE decode of final.latent, in [0, 1]
 with --dump-dit, the first forward's intermediates of the positive item
 (Ni = image tokens padded to 32, Lp = text tokens padded to 32):
  dit0.t_emb [t_dim]; dit0.pos [Ni+Lp, 3] (position ids as floats, image
  tokens first); dit0.x_embed [Ni, D] (x_embedder + pad tokens);
  dit0.cap_embed [Lp, D] (cap_embedder + pad tokens); dit0.noise_refined
  [Ni, D]; dit0.context_refined [Lp, D]; dit0.layer.K [Ni+Lp, D] after joint
  block K; dit0.final [Ni+Lp, 64] the final layer's output tokens
 with --dump-vae: vae.mid [1, C, h, w] after the mid block, vae.up.I after up
  block I (diffusers order, upsampled), before conv_norm_out

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
    CFG is on for any w > 0 as the spec says (diffusers' pipeline turns it on
    only for w > 1, same formula).
  - The ids given to `run` are the whole templated sequence; the reference
    does not tokenize or truncate (diffusers' template is the Qwen3 chat
    template with enable_thinking=True, i.e. no <think> block).
  - Everything is float32; diffusers runs the DiT and text encoder in bf16 and
    casts the final latent to bf16 before the VAE, which this does not model.
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
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zimage_weights import *  # noqa: E402,F401,F403 (configs, layouts, IO, make, load_hf)
from zimage_weights import (CONFIGS, SEQ_MULTI, T_FREQ, VAE_EPS, config, dit_dims,  # noqa: E402
                            load_hf, load_safetensors, make_model, save_safetensors)


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
        cm = torch.ones(S, S, dtype=torch.bool, device=q.device).triu(1)
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
    feats, outs = qwen3_forward_batch(m, [ids], all_layers)
    return feats[0], [o[0] for o in outs]


def qwen3_forward_batch(m, rows, all_layers=False):
    """rows: B lists of L ints each (prompts of one length, as a server
    batches them). Returns (features [B, L, H], [each layer's output [B, L,
    H]]); one prompt through it gives qwen3_forward's values."""
    c, w = m.text_cfg, m.text
    nh, nkv, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    eps, n = c["rms_norm_eps"], c["num_hidden_layers"]
    if not rows or any(len(r) != len(rows[0]) for r in rows):
        raise ValueError("token id rows must be non-empty and of one length")
    for ids in rows:
        if not ids or min(ids) < 0 or max(ids) >= c["vocab_size"]:
            raise ValueError("token ids must be a non-empty list in [0, %d)" % c["vocab_size"])
    ids = torch.tensor(rows, dtype=torch.int64)
    B, L = ids.shape
    emb = w["model.embed_tokens.weight"]
    x = emb[ids.to(emb.device)]  # [B, L, H]
    cos, sin = qwen3_rope(L, hd, c["rope_theta"])
    cos, sin = cos[None, :, None, :].to(x.device), sin[None, :, None, :].to(x.device)

    def rot(t):
        a, b = t[..., :hd // 2], t[..., hd // 2:]
        return t * cos + torch.cat([-b, a], dim=-1) * sin

    x0 = x
    run = n if all_layers else max(n - 1, 0)
    outs = []
    for i in range(run):
        p = "model.layers.%d." % i
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = linear(h, w[p + "self_attn.q_proj.weight"]).view(B, L, nh, hd)
        k = linear(h, w[p + "self_attn.k_proj.weight"]).view(B, L, nkv, hd)
        v = linear(h, w[p + "self_attn.v_proj.weight"]).view(B, L, nkv, hd)
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
        outs.append(x)
    feats = outs[n - 2] if n >= 2 else x0
    return feats, outs


# --- DiT --------------------------------------------------------------------------

def timestep_sinusoid(t, dim=T_FREQ, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)
    freqs = freqs.to(t.device)
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
    dev = seqs[0].device
    x = torch.zeros(B, S, D, device=dev)
    cos, sin = torch.zeros(B, S, hh, device=dev), torch.zeros(B, S, hh, device=dev)
    mask = torch.zeros(B, S, dtype=torch.bool, device=dev)
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
    img, img_cs, cap, cap_cs, n_img, img_pos, cap_pos = [], [], [], [], [], [], []
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
        img_pos.append(pos)
        img_cs.append(tuple(v.to(xi.device) for v in rope_cos_sin(pos, c["axes_dims"], c["rope_theta"])))
        n_img.append((n, C, H, W))
        ci = linear(rms_norm(cf.float(), w["cap_embedder.0.weight"], eps), w["cap_embedder.1.weight"],
                    w["cap_embedder.1.bias"])
        ci = torch.cat([ci, w["cap_pad_token"].expand(Lp - L, D)], 0)
        cpos = torch.zeros(Lp, 3, dtype=torch.int64)
        cpos[:, 0] = torch.arange(Lp) + 1
        cap.append(ci)
        cap_pos.append(cpos)
        cap_cs.append(tuple(v.to(ci.device) for v in rope_cos_sin(cpos, c["axes_dims"], c["rope_theta"])))
    x, xc, xs, xm = _batch(img, img_cs)
    for i in range(c["n_refiner_layers"]):
        x = dit_block(w, "noise_refiner.%d" % i, x, xm, xc, xs, nh, eps, temb)
    y, yc, ys, ym = _batch(cap, cap_cs)
    for i in range(c["n_refiner_layers"]):
        y = dit_block(w, "context_refiner.%d" % i, y, ym, yc, ys, nh, eps, None)
    if trace is not None:
        trace["t_emb"] = temb[0].clone()
        trace["pos"] = torch.cat([img_pos[0], cap_pos[0]], 0).float()
        trace["x_embed"] = img[0].clone()
        trace["cap_embed"] = cap[0].clone()
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
    if trace is not None:
        trace["final"] = u[0, :uni[0].shape[0]].clone()
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


def vae_attn_core(q, k, v):
    """One head over all pixels: q, k, v [B, N, C] -> [B, N, C]. A function
    of its own so that a benchmark can give PyTorch its fused attention."""
    a = torch.softmax(torch.matmul(q, k.transpose(1, 2)) / math.sqrt(q.shape[-1]), dim=-1)
    return torch.matmul(a, v)


def vae_attention(w, p, x, groups):
    B, C, H, W = x.shape
    h = F.group_norm(x, groups, w[p + ".group_norm.weight"], w[p + ".group_norm.bias"], VAE_EPS)
    h = h.reshape(B, C, H * W).transpose(1, 2)  # reshape: x may be channels_last
    q = linear(h, w[p + ".to_q.weight"], w[p + ".to_q.bias"])
    k = linear(h, w[p + ".to_k.weight"], w[p + ".to_k.bias"])
    v = linear(h, w[p + ".to_v.weight"], w[p + ".to_v.bias"])
    o = linear(vae_attn_core(q, k, v), w[p + ".to_out.0.weight"], w[p + ".to_out.0.bias"])
    return x + o.transpose(1, 2).reshape(B, C, H, W)


def vae_decode(m, latent, trace=None):
    """latent [1, 16, h, w] -> image [H, W, 3] in [0, 1]."""
    return vae_decode_images(m, latent, trace)[0].permute(1, 2, 0).contiguous()


def vae_decode_images(m, latent, trace=None):
    """latents [B, 16, h, w] -> images [B, 3, H, W] in [0, 1], computed in
    the dtype of the VAE's weights (fp32 as loaded; a benchmark may give
    PyTorch a bf16 copy)."""
    c, w = m.vae_cfg, m.vae
    g = c["norm_num_groups"]
    z = (latent.float() / c["scaling_factor"] + c["shift_factor"]).to(w["decoder.conv_in.weight"].dtype)
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
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


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
                 dump_encoder=False, dump_dit=False, dump_vae=False):
    """The whole pipeline; returns an OrderedDict of stage tensors (names in
    the module docstring)."""
    if width % 16 or height % 16 or width <= 0 or height <= 0:
        raise ValueError("width and height must be positive multiples of 16")
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
        x = noise(width, height, seed, C).to(m.device)
    else:
        x = latents.float().reshape(1, C, height // 8, width // 8).clone().to(m.device)
    st["init.latent"] = x.clone()
    sg = sigmas(steps, float(m.sched_cfg.get("shift", 3.0)))
    st["sigmas"] = sg.clone()
    caps = [st["text.features"]] + ([st["text.neg_features"]] if use_cfg else [])
    for i in range(steps):
        t_in = ((1.0 - sg[i]) * float(m.dit_cfg.get("t_scale", 1000.0))).reshape(1).to(m.device)
        trace = collections.OrderedDict() if (dump_dit and i == 0) else None
        outs = dit_forward(m, [x[0]] * len(caps), t_in.repeat(len(caps)), caps, trace)
        pos = outs[0][None]
        st["dit.t%d" % i] = t_in.clone()
        st["dit.out%d" % i] = pos.clone()
        if use_cfg:
            st["dit.neg_out%d" % i] = outs[1][None].clone()
        if trace is not None:
            for k, v in trace.items():
                st["dit0." + k] = v.contiguous()
        pred = pos + cfg_scale * (pos - outs[1][None]) if use_cfg else pos
        x = x + (sg[i + 1] - sg[i]) * (-pred)
        st["step.%d.latent" % (i + 1)] = x.clone()
    st["final.latent"] = x.clone()
    trace = collections.OrderedDict() if dump_vae else None
    st["image"] = vae_decode(m, x, trace)
    if trace is not None:
        for k, v in trace.items():
            st[k] = v.contiguous()
    return collections.OrderedDict((k, v.cpu()) for k, v in st.items())


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


def _setup(a):
    torch.set_num_threads(a.threads)
    if a.device.startswith("cuda"):  # a float32 reference: no TF32 anywhere
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return load_hf(a.model_dir, a.device)


def cmd_run(a):
    m = _setup(a)
    if a.lora:  # merged into the F32 weights: W + m·(α/r)·B·A (zimage_lora.py)
        import zimage_lora
        for spec in a.lora:
            f, scale = zimage_lora.parse_spec(spec)
            zimage_lora.merge_into(m.dit, m.dit_cfg, f, scale)
    lat = None
    if a.latents:
        t, _ = load_safetensors(a.latents)
        lat = t["latents"]
    st = run_pipeline(m, parse_ids(a.ids), a.width, a.height, a.steps, a.seed, parse_ids(a.neg_ids),
                      a.cfg, lat, a.dump_encoder, a.dump_dit, a.dump_vae)
    save_safetensors(a.out, st, {"format": "pixserve-zimage-stages"})


def cmd_decode(a):
    m = _setup(a)
    t, _ = load_safetensors(a.latents)
    lat = t["latents"] if "latents" in t else t["final.latent"]
    trace = collections.OrderedDict() if a.dump_vae else None
    st = collections.OrderedDict([("latents", lat.float()),
                                  ("image", vae_decode(m, lat.to(m.device), trace).cpu())])
    st.update((k, v.cpu()) for k, v in (trace or {}).items())
    save_safetensors(a.out, st, {"format": "pixserve-zimage-stages"})


def compare(ref_t, out_t):
    """[(name, shape ok, max |diff|, max |diff| / max |ref|)] over the tensors
    of ref_t that out_t also has."""
    rows = []
    for k, r in ref_t.items():
        if k not in out_t:
            continue
        o = out_t[k]
        if list(o.shape) != list(r.shape) and o.numel() == r.numel():
            o = o.reshape(r.shape)  # e.g. [16, h, w] against [1, 16, h, w]
        if list(o.shape) != list(r.shape):
            rows.append((k, False, float("inf"), float("inf")))
            continue
        d = (o.float() - r.float()).abs().max().item() if r.numel() else 0.0
        scale = r.float().abs().max().item() if r.numel() else 0.0
        rows.append((k, True, d, d / scale if scale > 0 else d))
    return rows


def cmd_compare(a):
    rt, _ = load_safetensors(a.reference)
    ot, _ = load_safetensors(a.output)
    rows = compare(rt, ot)
    bad = 0
    for k, ok, d, rel in rows:
        fail = not ok or rel > a.tol
        bad += fail
        print("%-28s %s max|diff| %.3e  rel %.3e%s" % (k, "" if ok else "SHAPE", d, rel,
                                                      "  FAIL" if fail else ""))
    missing = [k for k in ot if k not in rt]
    if missing:
        print("not in the reference: " + ", ".join(missing))
    print("%d compared, %d over rel %.1e" % (len(rows), bad, a.tol))
    sys.exit(1 if bad or not rows else 0)


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
    s.add_argument("--dump-dit", action="store_true",
                   help="also the first DiT forward's intermediates (dit0.*)")
    s.add_argument("--dump-vae", action="store_true", help="also the VAE's intermediates (vae.*)")
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine (fp32, no TF32)")
    s.add_argument("--lora", action="append", default=[],
                   help="FILE[:SCALE] (scale 1 by default), merged into the DiT; repeatable")
    s.set_defaults(fn=cmd_run)
    s = sub.add_parser("decode", help="VAE-decode latents (tensor `latents` or `final.latent`)")
    s.add_argument("model_dir", help="the hf/ directory of `make`")
    s.add_argument("--latents", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--dump-vae", action="store_true", help="also the VAE's intermediates (vae.*)")
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--device", default="cpu")
    s.set_defaults(fn=cmd_decode)
    s = sub.add_parser("compare", help="max errors of the tensors two stage files share")
    s.add_argument("reference")
    s.add_argument("output")
    s.add_argument("--tol", type=float, default=1e-3,
                   help="fail when max|diff| / max|ref| exceeds this (default 1e-3)")
    s.set_defaults(fn=cmd_compare)
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
