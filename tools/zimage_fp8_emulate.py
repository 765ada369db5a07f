#!/usr/bin/python3
"""zimage_fp8_emulate.py — what FP8 (e4m3) DiT linears cost in accuracy,
emulated in the PyTorch reference (tools/zimage_reference.py) on the CPU, to
choose the CUDA backend's test bars and FP8 gate before a GPU measures them
(docs/benchmarks/zimage-cuda.md, "FP8").

The emulation is the CUDA backend's arithmetic for the DiT blocks' qkv, out,
w1|w3 and w2 linears (src/engine/zimage/cuda/zc_fp8.h): weights and
activations rounded to bf16 first (what the GPU holds), then per-row
fake-quantized: scale = max|row| / 448, q = e4m3(x / scale) round to nearest
even, saturated, x ~ q·scale; the products summed in fp32. Everything else
stays fp32. Linears whose output width is not a multiple of 16 stay bf16, as
on the GPU (the tiny model's w1|w3: 340 rows), unless --all-four.

  /usr/bin/python3 tools/zimage_fp8_emulate.py [--config tiny|medium]
      [--width 64] [--height 64] [--steps 8] [--prompts 12] [--all-four]
      [--dit-layers N] [--refiner-layers N]   (medium: 4 and 1 by default)
      [--outliers F] [--outlier-channels 4]

For each of --prompts random token sequences (lengths 8..200), from the same
initial latents, runs the pipeline three times — fp32, bf16 linears, fp8
linears — and prints a JSON line: per-step latent max|diff|/max|ref| of fp8
against bf16, the final image's PSNR (8-bit) fp8 vs bf16, and dit.out0 /
final.latent errors of both against fp32 and fp8's worst 8-bit image level
against fp32 (the stage test's measures). A
summary line last. Random weights: real checkpoints have outlier channels
that random ones lack, so this is a lower bound on the error, not the gate.
"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zimage_reference as zr  # noqa: E402
from zimage_weights import config, model_from_config  # noqa: E402


def bf16(x):
    return x.to(torch.bfloat16).float()


def e4m3(v):
    """Round to e4m3 (nearest even, saturating at ±448); v float32."""
    a = v.abs()
    _, e = torch.frexp(a)  # a = m·2^e, m in [0.5, 1): the binade is 2^(e-1)
    step = torch.pow(2.0, (e - 1).clamp(min=-6).float() - 3.0)  # subnormals: 2^-9
    q = torch.round(a / step) * step  # torch.round: half to even
    return torch.sign(v) * q.clamp(max=448.0)


def fake_quant_rows(x):
    """Per-row (last dim) fp8 quantize-dequantize of x."""
    m = x.abs().amax(dim=-1, keepdim=True)
    s = torch.where(m > 0, m / 448.0, torch.ones_like(m))
    return e4m3(x / s) * s


def block_weight_names(dc, all_four):
    names = []
    pre = (["noise_refiner.%d" % i for i in range(dc["n_refiner_layers"])] +
           ["context_refiner.%d" % i for i in range(dc["n_refiner_layers"])] +
           ["layers.%d" % i for i in range(dc["n_layers"])])
    ffn = int(dc["dim"] / 3 * 8)
    for p in pre:
        names += [p + ".attention.to_%s.weight" % k for k in "qkv"]
        names += [p + ".attention.to_out.0.weight", p + ".feed_forward.w2.weight"]
        if all_four or (2 * ffn) % 16 == 0:  # the engine's w1|w3 is one [2F, D] linear
            names += [p + ".feed_forward.w1.weight", p + ".feed_forward.w3.weight"]
    return names


def add_outliers(m, factor, k, seed):
    """Makes the inputs of every block's fp8 linears carry k outlier channels
    `factor` times their size, leaving the model's function unchanged (up to
    rounding): the norm weight (or, for out and w2, the v and w3 rows) that
    makes a channel grows by factor and the columns of the linears that
    read it shrink by it. Real checkpoints have such channels (random
    weights do not): this asks whether per-row e4m3 scales lose the rest of
    a row's values to them."""
    g = torch.Generator().manual_seed(seed)
    D = m.dit_cfg["dim"]
    ffn = m.dit["layers.0.feed_forward.w2.weight"].shape[1]
    cd, cf = torch.randperm(D, generator=g)[:k], torch.randperm(ffn, generator=g)[:k]
    w = m.dit
    for p in {n.rsplit(".attention.", 1)[0] for n in w if ".attention.to_q." in n}:
        w[p + ".attention_norm1.weight"][cd] *= factor
        for t in "qkv":
            w[p + ".attention.to_%s.weight" % t][:, cd] /= factor
        w[p + ".attention.to_v.weight"][cd] *= factor  # a's channels cd = v's
        w[p + ".attention.to_out.0.weight"][:, cd] /= factor
        w[p + ".ffn_norm1.weight"][cd] *= factor
        for t in ("w1", "w3"):
            w[p + ".feed_forward.%s.weight" % t][:, cd] /= factor
        w[p + ".feed_forward.w3.weight"][cf] *= factor
        w[p + ".feed_forward.w2.weight"][:, cf] /= factor


def run(m, ids, lat, args, mode, names, base):
    """The pipeline with the block linears in `mode` (fp32, bf16, fp8)."""
    ws = {}
    if mode != "fp32":
        for n in names:
            w = bf16(base[n])
            ws[id(m.dit[n])] = fake_quant_rows(w) if mode == "fp8" else w

    def linear(x, w, b=None):
        if id(w) in ws:
            x = bf16(x)
            y = torch.matmul(fake_quant_rows(x) if mode == "fp8" else x, ws[id(w)].t())
        else:
            y = torch.matmul(x, w.t())
        return y + b if b is not None else y

    saved, zr.linear = zr.linear, linear
    try:
        return zr.run_pipeline(m, ids, args.width, args.height, args.steps, latents=lat)
    finally:
        zr.linear = saved


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


def q8(a):
    """An image in [0, 1] as 8-bit levels (what the engines return)."""
    return (a * 255).round().clamp(0, 255)


def levels(a, b):
    return int((q8(a) - q8(b)).abs().max())


def psnr(a, b):
    mse = float(((q8(a) - q8(b)) ** 2).mean())
    return 99.0 if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="tiny", choices=["tiny", "medium"])
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=12)
    ap.add_argument("--all-four", action="store_true")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--dit-layers", type=int, default=4, help="medium only")
    ap.add_argument("--refiner-layers", type=int, default=1, help="medium only")
    ap.add_argument("--outliers", type=float, default=0.0,
                    help="F: give the fp8 linears' inputs --outlier-channels channels F times "
                         "their size, the model's function unchanged (add_outliers)")
    ap.add_argument("--outlier-channels", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    cfg = config("tiny")
    if args.config == "medium":  # wider, with the full model's head size
        cfg["dit"].update(dim=512, n_heads=4, n_kv_heads=4, n_layers=args.dit_layers,
                          n_refiner_layers=args.refiner_layers, axes_dims=[32, 48, 48])
    m = model_from_config(cfg, args.seed)
    if args.outliers:
        add_outliers(m, args.outliers, args.outlier_channels, args.seed)
    names = block_weight_names(m.dit_cfg, args.all_four)
    base = {n: m.dit[n].clone() for n in names}
    g = torch.Generator().manual_seed(1)
    worst_step, psnrs = 0.0, []
    for i in range(args.prompts):
        L = int(torch.randint(8, 200, (1,), generator=g))
        ids = torch.randint(0, cfg["text"]["vocab_size"], (L,), generator=g).tolist()
        lat = zr.noise(args.width, args.height, 100 + i)
        st = {mode: run(m, ids, lat, args, mode, names, base) for mode in ("fp32", "bf16", "fp8")}
        steps = [rel(st["fp8"]["step.%d.latent" % k], st["bf16"]["step.%d.latent" % k])
                 for k in range(1, args.steps + 1)]
        p = psnr(st["fp8"]["image"], st["bf16"]["image"])
        worst_step, psnrs = max(worst_step, max(steps)), psnrs + [p]
        print(json.dumps(dict(
            prompt=i, tokens=L, step_rel_err=[round(v, 5) for v in steps], psnr_db=round(p, 2),
            fp8_vs_fp32=dict(dit_out0=round(rel(st["fp8"]["dit.out0"], st["fp32"]["dit.out0"]), 5),
                             final=round(rel(st["fp8"]["final.latent"], st["fp32"]["final.latent"]), 5),
                             image_levels=levels(st["fp8"]["image"], st["fp32"]["image"])),
            bf16_vs_fp32=dict(dit_out0=round(rel(st["bf16"]["dit.out0"], st["fp32"]["dit.out0"]), 5),
                              final=round(rel(st["bf16"]["final.latent"], st["fp32"]["final.latent"]), 5)))),
            flush=True)
    print(json.dumps(dict(summary=True, config=args.config, linears_fp8=len(names),
                          outliers=args.outliers, outlier_channels=args.outlier_channels,
                          max_step_rel_err=round(worst_step, 5), min_psnr_db=round(min(psnrs), 2),
                          mean_psnr_db=round(sum(psnrs) / len(psnrs), 2))))


if __name__ == "__main__":
    main()
