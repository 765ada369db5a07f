#!/usr/bin/env python3
"""zimage_cuda_vs_torch.py — the zimage CUDA engine (bf16) against the PyTorch
reference (tools/zimage_reference.py) on the same GPU in the same run: seconds
per image and per-stage milliseconds at each size and batch, 8 steps, a
128-token prompt, for

  pixserve-bf16        bench/zimage_cuda_bench (our engine, px_engine_run)
  torch-eager-bf16     the reference's functions, GEMM weights in bf16 under
                       autocast, attention through F.scaled_dot_product_attention
                       (the reference's own einsum attention would be unfair)
  torch-compile-bf16   the same DiT forward under torch.compile(dynamic=False),
                       compiled afresh for every shape (torch._dynamo.reset())

with peak memory and the DiT's fraction of the measured bf16 GEMM rate
(torch.matmul at the DiT's shapes). The text encoder and the VAE are each
timed in several ways and a row takes the fastest it may use (an eager row
the eager ones, a compiled row any), naming it in text_impl / vae_impl and
listing every way's ms under "stages": the reference's own (per prompt,
bf16 autocast; the VAE per image in fp32), the prompts batched, the VAE
batched in bf16 (diffusers' default dtype) with torch's fused attention,
NCHW and channels_last, and on a compiled row each of them compiled afresh.
Before 2026-12-07 the rows used the reference's way alone, which left
PyTorch's end-to-end time 11-26 % above its best (docs/benchmarks/
zimage-cuda.md, "twenty-eighth session").

  python3 bench/zimage_cuda_vs_torch.py --model DIR --bench BIN --out OUTDIR
      [--sizes 1024x1024,512x512] [--batches 1,2,4,8] [--steps 8]
      [--iters 2] [--skip-compile] [--skip-ours] [--skip-torch]
      [--torch-shapes 1024x1024:1,512x512:4] [--compile-shapes ...] [--device cuda]

DIR: `tools/zimage_reference.py make DIR0 --config full --layouts hf --dtype
bf16` then DIR = DIR0/hf. Writes OUTDIR/rows.json (a list of rows: impl, size,
batch, s_per_image, peak_gib, text_ms, denoise_ms, vae_ms, step_ms,
gemm_fraction) for docs/benchmarks/data/, and prints a table. rows.json is
rewritten after every row, so a run stopped at its time limit keeps what it
measured. --torch-shapes / --compile-shapes (SIZE:BATCH,...) limit PyTorch
eager / torch.compile to those shapes, in that order (default: every
--sizes x --batches; compiling one full-size shape takes minutes).
--device cpu with a tiny model (`make DIR --config tiny`) checks the script's
PyTorch path without a GPU (not a measurement; Debian's torch 1.13 has no
torch.compile, so no compiled rows there).
"""
import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import zimage_reference as ref  # noqa: E402

SEQ = 32


def sdpa_attention(q, k, v, key_mask=None, causal=False):
    """The reference's attention contract on torch's fused SDPA (bf16)."""
    B, S, h, d = q.shape
    q, k, v = (t.transpose(1, 2).to(torch.bfloat16) for t in (q, k, v))
    mask = key_mask[:, None, None, :] if key_mask is not None else None
    if k.shape[1] != h:  # GQA: repeat kv heads
        r = h // k.shape[1]
        k, v = k.repeat_interleave(r, 1), v.repeat_interleave(r, 1)
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None)
    return o.transpose(1, 2).reshape(B, S, h * d)


def to_bf16(weights):
    """GEMM weights (2-D and up) to bf16; norms, biases, pads stay fp32."""
    for k, v in weights.items():
        if v.dim() >= 2 and not k.endswith("pad_token"):
            weights[k] = v.to(torch.bfloat16)


def pad(n):
    return (n + SEQ - 1) // SEQ * SEQ


def dit_flops(c, lat_h, lat_w, text_len):
    """zi_dit_flops (src/engine/zimage/dit.c) for one item."""
    D, F_, p = c["dim"], int(c["dim"] / 3 * 8), c["all_patch_size"][0]
    ni, nt = pad((lat_h // p) * (lat_w // p)), pad(text_len)
    s = ni + nt
    blk, att = 2 * (3 * D * D + D * D + 3 * D * F_), 4 * D
    f = c["n_refiner_layers"] * (ni * blk + ni * ni * att + nt * blk + nt * nt * att)
    f += c["n_layers"] * (s * blk + s * s * att)
    return f + 2 * ni * D * (p * p * c["in_channels"]) * 2 + 2 * nt * D * c["cap_feat_dim"]


def gemm_rate():
    """bf16 torch.matmul TFLOP/s at the DiT's shapes (the best of them)."""
    best = 0.0
    for n, k in ((3840, 3840), (11520, 3840), (20480, 3840), (3840, 10240)):
        a = torch.randn(4224, k, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
        for _ in range(3):
            a @ b
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(20):
            a @ b
        torch.cuda.synchronize()
        best = max(best, 2 * 4224 * n * k * 20 / (time.perf_counter() - t0) / 1e12)
        del a, b
    torch.cuda.empty_cache()
    return best


DEV = "cuda"


def sync():
    if DEV.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn):
    sync()
    t0 = time.perf_counter()
    r = fn()
    sync()
    return r, (time.perf_counter() - t0) * 1000


def torch_denoise(m, dit, w, h, B, steps, feats):
    """The DiT's steps for one batch: (denoise ms, median step ms, latents)."""
    C = m.dit_cfg["in_channels"]
    x = torch.randn(B, C, h // 8, w // 8, device=DEV)
    sg = ref.sigmas(steps)
    step_ms = []
    for i in range(steps):
        t = ((1.0 - sg[i]) * 1000.0).reshape(1).repeat(B).to(DEV)
        with torch.autocast(DEV.split(":")[0], dtype=torch.bfloat16):
            outs, ms = timed(lambda: dit(m, [x[b] for b in range(B)], t, feats))
        x = x + (sg[i + 1] - sg[i]) * (-torch.stack([o.float() for o in outs]))
        step_ms.append(ms)
    return sum(step_ms), statistics.median(step_ms), x


def sdpa_vae_core(q, k, v):
    """The VAE's one-head attention on torch's fused SDPA, as diffusers runs it."""
    return F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]


def vae_copy(m, dtype, channels_last):
    """m with its VAE weights in dtype (the 4-D ones channels_last if asked)."""
    c = copy.copy(m)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    c.vae = {k: v.to(dtype).contiguous(memory_format=fmt) if v.dim() == 4 else v.to(dtype)
             for k, v in m.vae.items()}
    return c


def compiled(fn):
    """fn under torch.compile, compiled afresh (the peer at its best)."""
    torch._dynamo.reset()
    return torch.compile(fn, dynamic=False)


def _autocast(f):
    with torch.autocast(DEV.split(":")[0], dtype=torch.bfloat16):
        return f()


def stage_variants(m, B, ids, lat, compile_ok):
    """PyTorch's ways to run the text encoder and the VAE: [(stage, name,
    compiled?, build)], build() giving the function to time (compiling it
    first where it is compiled). The reference runs the text encoder per
    prompt and the VAE per image in fp32; a PyTorch user would batch both
    and run the VAE in bf16 (diffusers' default dtype) with the fused
    attention, channels_last tried, and may compile them."""
    rows = [list(ids)] * B
    text = lambda fwd: lambda: _autocast(lambda: fwd(m, rows)[0])  # noqa: E731
    v = [("text", "per-prompt eager (the reference)", False,
          lambda: lambda: _autocast(lambda: [ref.qwen3_forward(m, ids)[0] for _ in range(B)])),
         ("text", "batched eager", False, lambda: text(ref.qwen3_forward_batch)),
         ("vae", "fp32 per image eager (the reference)", False,
          lambda: lambda: [ref.vae_decode_images(m, lat[b:b + 1]) for b in range(B)])]

    def vae(layout, comp):
        vm = vae_copy(m, torch.bfloat16, layout)
        x = lat.contiguous(memory_format=torch.channels_last) if layout else lat
        dec = compiled(ref.vae_decode_images) if comp else ref.vae_decode_images
        return lambda: dec(vm, x)
    for comp in ((False, True) if compile_ok else (False,)):
        if comp:
            v.append(("text", "batched compile", True,
                      lambda: text(compiled(ref.qwen3_forward_batch))))
        for layout in (False, True):
            v.append(("vae", "bf16%s batched %s" % (" channels_last" if layout else "",
                                                   "compile" if comp else "eager"), comp,
                      lambda layout=layout, comp=comp: vae(layout, comp)))
    return v


def bench_stages(m, B, ids, lat, iters, compile_ok, on_result):
    """Times each stage variant (one untimed run first: a compiled one's
    compile); on_result(stage, name, compiled?, ms) after each, so that a
    run cut off at its limit keeps what it measured."""
    for stage, name, comp, build in stage_variants(m, B, ids, lat, compile_ok):
        try:
            t0 = time.perf_counter()
            fn = build()
            fn()
            sync()
            first = time.perf_counter() - t0
            ms = statistics.median(timed(fn)[1] for _ in range(iters))
        except torch.cuda.OutOfMemoryError:
            print("%s %s batch %d: out of memory" % (stage, name, B), flush=True)
            torch.cuda.empty_cache()
            continue
        print("%-4s %-40s batch %d: %9.2f ms (first %.1f s)" % (stage, name, B, ms, first),
              flush=True)
        on_result(stage, name, comp, ms)


def shapes(spec, args):
    """[(size, batch)] from "WxH:B,..." or, when spec is empty, --sizes x --batches."""
    if spec:
        return [(v.split(":")[0], int(v.split(":")[1])) for v in spec.split(",") if v]
    return [(z, int(b)) for z in args.sizes.split(",") for b in args.batches.split(",")]


def compose(row, stages):
    """row's text and VAE from the fastest variant it may use (an eager row
    the eager ones, a compiled row any), and its seconds per image."""
    may = row["impl"].startswith("torch-compile")  # may use compiled ways
    for st in ("text", "vae"):
        best = min(((ms, n) for n, (ms, comp) in stages[st].items() if may or not comp),
                   default=None)
        if best:
            row[st + "_ms"], row[st + "_impl"] = round(best[0], 2), best[1]
    row["s_per_image"] = round((row["text_ms"] + row["denoise_ms"] + row["vae_ms"]) / 1000 /
                               row["batch"], 4)
    row["stages"] = {st: {n: round(ms, 2) for n, (ms, _) in stages[st].items()} for st in stages}


def bench_torch(args, m, rate, rows):
    ids = list(range(1000, 1128))
    eager, comp = shapes(args.torch_shapes, args), []
    if not args.skip_compile:
        comp = shapes(args.compile_shapes, args)
    cuda = DEV.startswith("cuda")
    for size, B in dict.fromkeys(eager + comp):  # each shape once, in order
        w, h = (int(v) for v in size.split("x"))
        feats = _autocast(lambda: list(ref.qwen3_forward_batch(m, [ids] * B)[0]))
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        mine, lat = [], None
        for name, on, c in (("torch-eager-bf16", (size, B) in eager, False),
                            ("torch-compile-bf16", (size, B) in comp, True)):
            if not on:
                continue
            dit = compiled(ref.dit_forward) if c else ref.dit_forward
            try:
                t0 = time.perf_counter()
                torch_denoise(m, dit, w, h, B, 1, feats)  # warm-up / compile
                print("%s %s batch %d: warm-up %.1f s" % (name, size, B, time.perf_counter() - t0),
                      flush=True)
                runs = [torch_denoise(m, dit, w, h, B, args.steps, feats) for _ in range(args.iters)]
            except torch.cuda.OutOfMemoryError:
                print("%-20s %s batch %d: out of memory" % (name, size, B))
                torch.cuda.empty_cache()
                continue
            den, step = (statistics.median(r[i] for r in runs) for i in range(2))
            lat = runs[-1][2]
            frac = dit_flops(m.dit_cfg, h // 8, w // 8, len(ids)) * B / (step / 1000) / 1e12 / rate
            mine.append(dict(impl=name, size=size, batch=B, s_per_image=0.0, peak_gib=0.0,
                             text_ms=0.0, denoise_ms=round(den, 2), vae_ms=0.0,
                             step_ms=round(step, 2), gemm_fraction=round(frac, 3)))
        if not mine:
            continue
        rows.extend(mine)
        stages = {"text": {}, "vae": {}}

        def on_result(stage, name, c, ms):
            stages[stage][name] = (ms, c)
            peak = torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else 0.0
            for r in mine:
                compose(r, stages)
                r["peak_gib"] = round(peak, 2)
            save(args, rate, rows)
        bench_stages(m, B, ids, lat, args.iters, (size, B) in comp, on_result)
        for r in mine:
            print(json.dumps(r), flush=True)


def save(args, rate, rows):
    gpu = torch.cuda.get_device_name() if DEV.startswith("cuda") else "cpu (not a measurement)"
    with open(os.path.join(args.out, "rows.json"), "w") as f:
        json.dump(dict(gemm_tflops=round(rate, 1), gpu=gpu, rows=rows), f, indent=1)


def bench_ours(args, rows):
    """Our bench first, before this process touches the GPU: its peak memory
    (cudaMemGetInfo, device-wide) must not count PyTorch's context and cache."""
    path = os.path.join(args.out, "ours.jsonl")
    if os.path.exists(path):  # the bench appends: this run's rows only
        os.remove(path)
    cmd = [args.bench, "--model", args.model, "--sizes", args.sizes, "--batches", args.batches,
           "--steps", str(args.steps), "--iters", str(args.iters + 1), "--json", path]
    print("$ " + " ".join(cmd), flush=True)
    rc = subprocess.run(cmd).returncode
    if os.path.exists(path):  # the rows it finished (the bench flushes each)
        with open(path) as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    if rc:
        raise SystemExit("%s exited with %d after %d rows" % (args.bench, rc, len(rows)))


def ours_fractions(c, rate, rows):
    for r in rows:
        w, h = (int(v) for v in r["size"].split("x"))
        fl = dit_flops(c, h // 8, w // 8, r["tokens"]) * r["batch"]
        r["gemm_fraction"] = round(fl / (r["step_ms"] / 1000) / 1e12 / rate, 3) if r["step_ms"] else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--bench", default=".devcarry/zimage_cuda_bench")
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/zimage-bench"))
    ap.add_argument("--sizes", default="1024x1024,512x512")
    ap.add_argument("--batches", default="1,2,4,8")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--skip-compile", action="store_true")
    ap.add_argument("--skip-ours", action="store_true")
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--torch-shapes", default="", help="SIZE:BATCH,... for PyTorch eager")
    ap.add_argument("--compile-shapes", default="", help="SIZE:BATCH,... for torch.compile")
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of the PyTorch path")
    args = ap.parse_args()
    global DEV
    DEV = args.device
    os.makedirs(args.out, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    rows = []
    cfg = json.load(open(os.path.join(args.model, "transformer", "config.json")))
    if not args.skip_ours:
        try:
            bench_ours(args, rows)
        finally:  # what it measured, also when it failed part-way
            save(args, 0.0, rows)
    rate = gemm_rate() if DEV.startswith("cuda") else 1.0
    print("bf16 GEMM rate (torch.matmul, best of the DiT's shapes): %.0f TFLOP/s" % rate)
    ours_fractions(cfg, rate, rows)
    save(args, rate, rows)
    if not args.skip_torch:
        if hasattr(F, "scaled_dot_product_attention"):
            ref.attention = sdpa_attention
            ref.vae_attn_core = sdpa_vae_core
        else:  # an old torch (the dry run on Debian's): the reference's einsum attention
            print("torch %s has no scaled_dot_product_attention: the reference's attention"
                  % torch.__version__)
        if not hasattr(torch, "compile") and not args.skip_compile:
            print("torch %s has no torch.compile: no compiled rows" % torch.__version__)
            args.skip_compile = True
        m = ref.load_hf(args.model, DEV)
        to_bf16(m.dit)
        to_bf16(m.text)
        bench_torch(args, m, rate, rows)
    save(args, rate, rows)
    print("\n%-20s %-10s %5s %10s %8s %9s %8s %6s" % ("impl", "size", "batch", "s/image",
                                                      "step ms", "GEMM frac", "peak GiB", ""))
    for r in rows:
        print("%-20s %-10s %5d %10.3f %8.1f %9.2f %8.1f" % (r["impl"], r["size"], r["batch"],
                                                           r["s_per_image"], r["step_ms"],
                                                           r["gemm_fraction"], r["peak_gib"]))


if __name__ == "__main__":
    main()
