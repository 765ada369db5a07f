#!/usr/bin/python3
"""zimage_lora.py — random LoRA files for the Z-Image DiT in every key
spelling users bring, and merging LoRAs into a copy of the weights (the
reference way to apply them: W' = W + m·(α/r)·B·A), so pixserve's run-time
application can be checked against tools/zimage_reference.py.

  write OUT.safetensors (--model HF_DIR | --config tiny|full) [--spelling S]
        [--rank R] [--targets attn,ffn,ada] [--dtype f32|bf16|f16]
        [--alpha X | --no-alpha] [--seed N] [--blocks all|layers]
      S: peft        transformer.layers.N.attention.to_q.lora_A.weight, .lora_B, .alpha
         peft-bare   the same without the "transformer." prefix
         comfy       diffusion_model.… with the original module names
                     (attention.out for to_out.0, q/k/v separate)
         comfy-fused the same with ONE delta on the fused attention.qkv: A the
                     q, k, v downs stacked [3r, D], B block-diagonal [3D, 3r],
                     alpha 3α (α/r kept): the same W' as the others
         kohya       lora_unet_layers_N_attention_to_q.lora_down.weight,
                     .lora_up.weight, .alpha
      The numbers depend on the seed and the module only (one generator per
      module, drawn in F32 then rounded to --dtype), so every spelling of one
      seed holds the same deltas.
  merge MODEL_HF_DIR OUT_DIR --lora FILE[:SCALE] ...
      OUT_DIR: a copy of the model directory (components linked) whose
      transformer/ holds the merged DiT in F32.

Imported by zimage_reference.py (run --lora FILE:SCALE merges in memory).
"""
import argparse
import collections
import json
import math
import os
import re
import sys
import zlib

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zimage_weights import (CONFIGS, dit_dims, load_component, load_safetensors,  # noqa: E402
                            save_safetensors)

DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
TARGETS = {"attn": ("attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0"),
           "ffn": ("feed_forward.w1", "feed_forward.w2", "feed_forward.w3"),
           "ada": ("adaLN_modulation.0",)}
QKV = ("attention.to_q", "attention.to_k", "attention.to_v")


def blocks(dc):
    """[(prefix, modulated)] in forward order."""
    nr = dc["n_refiner_layers"]
    return ([("noise_refiner.%d" % i, True) for i in range(nr)] +
            [("context_refiner.%d" % i, False) for i in range(nr)] +
            [("layers.%d" % i, True) for i in range(dc["n_layers"])])


def module_shape(dc, mod):
    """(rows, in) of a diffusers module of a block."""
    d = dit_dims(dc)
    D, F, T = d["dim"], d["ffn"], d["t_dim"]
    return {"feed_forward.w1": (F, D), "feed_forward.w3": (F, D), "feed_forward.w2": (D, F),
            "adaLN_modulation.0": (4 * D, T)}.get(mod, (D, D))


def modules(dc, targets, only_layers=False):
    """[(block prefix, module)] a LoRA of these targets covers."""
    out = []
    for pre, modulated in blocks(dc):
        if only_layers and not pre.startswith("layers."):
            continue
        for t in targets:
            for m in TARGETS[t]:
                if m == "adaLN_modulation.0" and not modulated:
                    continue
                out.append((pre, m))
    return out


def random_delta(dc, pre, mod, rank, seed):
    """(A [r, in], B [rows, r]) in F32 from the module's own generator."""
    rows, fin = module_shape(dc, mod)
    s = (seed * 1000003 + zlib.crc32(("lora:%s.%s" % (pre, mod)).encode())) % (2 ** 62)
    g = torch.Generator().manual_seed(s)
    a = torch.randn(rank, fin, generator=g) / math.sqrt(fin)
    b = torch.randn(rows, rank, generator=g) * (0.3 / math.sqrt(rank))
    return a, b


def spelled(spelling, pre, mod, half):
    """The key of one half ('A', 'B', 'alpha') of a module in a spelling."""
    if spelling == "kohya":
        h = {"A": ".lora_down.weight", "B": ".lora_up.weight", "alpha": ".alpha"}[half]
        return "lora_unet_" + (pre + "." + mod).replace(".", "_") + h
    h = {"A": ".lora_A.weight", "B": ".lora_B.weight", "alpha": ".alpha"}[half]
    if spelling in ("comfy", "comfy-fused"):
        mod = {"attention.to_out.0": "attention.out"}.get(mod, mod)
        return "diffusion_model." + pre + "." + mod + h
    return ("transformer." if spelling == "peft" else "") + pre + "." + mod + h


def lora_tensors(dc, spelling, rank, targets, dtype, alpha, seed, only_layers=False):
    """OrderedDict key -> tensor of a random LoRA (alpha None: no alpha keys)."""
    out = collections.OrderedDict()
    mods = modules(dc, targets, only_layers)
    fused = {}
    for pre, mod in mods:
        a, b = random_delta(dc, pre, mod, rank, seed)
        a, b = a.to(dtype), b.to(dtype)
        if spelling == "comfy-fused" and mod in QKV:
            fused.setdefault(pre, {})[mod] = (a, b)
            if len(fused[pre]) < 3:
                continue
            parts = [fused[pre][m] for m in QKV]
            A = torch.cat([p[0] for p in parts], 0)
            B = torch.block_diag(*[p[1] for p in parts])
            mod = "attention.qkv"
            out[spelled(spelling, pre, mod, "A")] = A
            out[spelled(spelling, pre, mod, "B")] = B
            if alpha is not None:
                out[spelled(spelling, pre, mod, "alpha")] = torch.tensor(3 * alpha, dtype=dtype)
            continue
        out[spelled(spelling, pre, mod, "A")] = a
        out[spelled(spelling, pre, mod, "B")] = b
        if alpha is not None:
            out[spelled(spelling, pre, mod, "alpha")] = torch.tensor(float(alpha), dtype=dtype)
    return out


# --- reading any spelling back (the reference's own mapping, independent of lora.c) --------

def module_table(dc):
    """module path (dotted or kohya-underscored) -> (block prefix, diffusers
    module or 'attention.qkv')."""
    t = {}
    for pre, modulated in blocks(dc):
        mods = list(TARGETS["attn"]) + list(TARGETS["ffn"]) + ["attention.qkv", "attention.out"]
        if modulated:
            mods.append("adaLN_modulation.0")
        for m in mods:
            canon = "attention.to_out.0" if m == "attention.out" else m
            t[pre + "." + m] = (pre, canon)
            t[(pre + "." + m).replace(".", "_")] = (pre, canon)
    return t


def read_lora(path, dc):
    """{(block prefix, module): [A f32, B f32, alpha or None]} of a file in any
    spelling; raises ValueError naming keys it cannot place."""
    t, _ = load_safetensors(path)
    table, out, bad = module_table(dc), {}, []
    for k, v in t.items():
        m = re.match(r"^(?:lora_unet_|lora_transformer_|diffusion_model\.|transformer\.)?(.*?)"
                     r"\.(lora_A\.weight|lora_B\.weight|lora_down\.weight|lora_up\.weight|alpha)$", k)
        if not m or m.group(1) not in table:
            bad.append(k)
            continue
        half = {"lora_A.weight": 0, "lora_down.weight": 0, "lora_B.weight": 1,
                "lora_up.weight": 1, "alpha": 2}[m.group(2)]
        out.setdefault(table[m.group(1)], [None, None, None])[half] = v.float()
    if bad:
        raise ValueError("%s: keys of no module: %s" % (path, ", ".join(bad[:5])))
    return out


def merge_into(dit, dc, path, scale):
    """W += m·(α/r)·B·A for every module of the LoRA file, in place on the
    diffusers-named F32 weights dit."""
    D = dit_dims(dc)["dim"]
    for (pre, mod), (a, b, alpha) in read_lora(path, dc).items():
        if a is None or b is None:
            raise ValueError("%s: %s.%s lacks a half" % (path, pre, mod))
        r = a.shape[0]
        s = scale * (float(alpha) if alpha is not None else r) / r
        delta = s * (b.double() @ a.double())
        if mod == "attention.qkv":
            for i, q in enumerate(QKV):
                w = dit["%s.%s.weight" % (pre, q)]
                w += delta[i * D:(i + 1) * D].to(w.dtype)
        else:
            w = dit["%s.%s.weight" % (pre, mod)]
            w += delta.to(w.dtype)


def parse_spec(s):
    """FILE[:SCALE] -> (file, scale)."""
    m = re.match(r"^(.*):([-+0-9.eE]+)$", s)
    return (m.group(1), float(m.group(2))) if m else (s, 1.0)


def dit_config_of(a):
    if a.model:
        d = a.model
        for c in (os.path.join(d, "transformer", "config.json"), os.path.join(d, "config.json")):
            if os.path.exists(c):
                with open(c) as f:
                    return json.load(f)
        raise SystemExit("%s: no transformer/config.json" % d)
    return json.loads(json.dumps(CONFIGS[a.config]["dit"]))


def cmd_write(a):
    dc = dit_config_of(a)
    targets = [t for t in a.targets.split(",") if t]
    for t in targets:
        if t not in TARGETS:
            raise SystemExit("unknown target %r (attn, ffn, ada)" % t)
    alpha = None if a.no_alpha else (a.alpha if a.alpha is not None else a.rank / 2.0)
    t = lora_tensors(dc, a.spelling, a.rank, targets, DTYPES[a.dtype], alpha, a.seed,
                     a.blocks == "layers")
    save_safetensors(a.out, t, {"format": "pt"})
    n = sum(v.numel() * v.element_size() for v in t.values())
    print("%s: %d tensors, %d bytes of weights" % (a.out, len(t), n))


def cmd_merge(a):
    src, dst = os.path.abspath(a.model_dir), a.out_dir
    os.makedirs(dst, exist_ok=True)
    for e in os.listdir(src):
        if e != "transformer" and not os.path.exists(os.path.join(dst, e)):
            os.symlink(os.path.join(src, e), os.path.join(dst, e))
    with open(os.path.join(src, "transformer", "config.json")) as f:
        dc = json.load(f)
    dit = load_component(os.path.join(src, "transformer"))
    for spec in a.lora:
        f, m = parse_spec(spec)
        merge_into(dit, dc, f, m)
    td = os.path.join(dst, "transformer")
    os.makedirs(td, exist_ok=True)
    with open(os.path.join(td, "config.json"), "w") as f:
        json.dump(dc, f, indent=1)
    save_safetensors(os.path.join(td, "diffusion_pytorch_model.safetensors"), dit)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("write", help="a random LoRA in one spelling")
    s.add_argument("out")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--model", help="model directory (hf/ of zimage_reference.py make)")
    g.add_argument("--config", choices=sorted(CONFIGS))
    s.add_argument("--spelling", default="peft",
                   choices=["peft", "peft-bare", "comfy", "comfy-fused", "kohya"])
    s.add_argument("--rank", type=int, default=4)
    s.add_argument("--targets", default="attn")
    s.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    s.add_argument("--alpha", type=float, help="alpha (default rank / 2)")
    s.add_argument("--no-alpha", action="store_true", help="no alpha keys (alpha = rank)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--blocks", default="all", choices=["all", "layers"])
    s.set_defaults(fn=cmd_write)
    s = sub.add_parser("merge", help="a model copy with LoRAs merged into the DiT (F32)")
    s.add_argument("model_dir")
    s.add_argument("out_dir")
    s.add_argument("--lora", action="append", required=True, help="FILE[:SCALE], repeatable")
    s.set_defaults(fn=cmd_merge)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
