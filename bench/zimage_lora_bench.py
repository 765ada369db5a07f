#!/usr/bin/python3
"""zimage_lora_bench.py — the CPU LoRA benchmark of docs/benchmarks/lora.md:
writes the files (tools/zimage_lora.py, tools/zimage_weights.py), runs
build/release/bench/zimage_lora_bench and writes
docs/benchmarks/data/lora-cpu.json.

  /usr/bin/python3 bench/zimage_lora_bench.py [--work DIR] [--out JSON]
      [--size 512] [--reps 5] [--machine TEXT]

1. Load: a random LoRA for the full-size DiT (dim 3840, 30 + 2 + 2 blocks),
   attention only (to_q/k/v/out), rank 89, BF16: 186 MB on disk like the
   seed's style LoRA; cold (page cache dropped for the file) and warm.
2. Step: a small DiT (dim 1024, 8 heads, FFN 2730, 1 + 1 refiner blocks and
   2 joint layers, BF16 weights) on one 512x512 item with 32 text tokens,
   without a LoRA and with rank 16 / 32 / 64 on attention and on attention +
   FFN, scale 0.8.
3. The flop ratio of the same LoRAs on the full-size model at 1024x1024 (the
   small model's ratios overstate it: a delta costs r·(in + out) per token
   against in·out for the base linear).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import zimage_weights as zw  # noqa: E402

BIN = os.path.join(ROOT, "build", "release", "bench", "zimage_lora_bench")
LORA = [sys.executable, os.path.join(ROOT, "tools", "zimage_lora.py")]
RANKS = (16, 32, 64)
TARGETS = ("attn", "attn,ffn")


def small_config():
    c = zw.config("tiny")
    c["dit"].update(dim=1024, n_heads=8, n_kv_heads=8, axes_dims=[32, 48, 48], n_layers=2,
                    n_refiner_layers=1)
    return c


def flops_pct(dc, rank, targets, tokens):
    """LoRA flops / base DiT flops per token (linears + attention)."""
    d = zw.dit_dims(dc)
    D, F = d["dim"], d["ffn"]
    nb = 2 * dc["n_refiner_layers"] + dc["n_layers"]
    base = nb * (2 * (4 * D * D + 3 * D * F) + 4 * D * tokens)
    lora = 4 * 2 * rank * (D + D)
    if "ffn" in targets:
        lora += 3 * 2 * rank * (D + F)
    return 100.0 * nb * lora / base


def run(args):
    r = subprocess.run(args, check=True, capture_output=True, text=True)
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="/tmp/pixserve-lora-bench")
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks", "data",
                                                 "lora-cpu.json"))
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--machine", default="2-core VM (shared), no GPU")
    a = p.parse_args()
    os.makedirs(a.work, exist_ok=True)
    big = os.path.join(a.work, "style-186mb.safetensors")
    if not os.path.exists(big):
        subprocess.run(LORA + ["write", big, "--config", "full", "--targets", "attn", "--rank",
                               "89", "--dtype", "bf16", "--seed", "3"], check=True)
    load = run([BIN, "load", big, "3", "5"])
    model = os.path.join(a.work, "small")
    if not os.path.exists(os.path.join(model, "hf", "transformer", "config.json")):
        zw.make_model(model, small_config(), 0, "bf16", ("hf",))
    hf = os.path.join(model, "hf")
    files = []
    for t in TARGETS:
        for r in RANKS:
            f = os.path.join(a.work, "r%d-%s.safetensors" % (r, t.replace(",", "+")))
            if not os.path.exists(f):
                subprocess.run(LORA + ["write", f, "--model", hf, "--targets", t, "--rank", str(r),
                                       "--dtype", "bf16"], check=True, stdout=subprocess.DEVNULL)
            files.append(f)
    step = run([BIN, "step", os.path.join(hf, "transformer"), "%dx%d" % (a.size, a.size), "32",
                str(a.reps)] + files)
    for s in step:
        s["lora"] = os.path.basename(s["lora"])
    full = zw.config("full")["dit"]
    tokens = (1024 // 16) ** 2 + 128
    ratios = [{"rank": r, "targets": t.replace(",", "+"),
               "full_model_1024px_flops_pct": round(flops_pct(full, r, t, tokens), 2),
               "small_model_flops_pct": round(flops_pct(small_config()["dit"], r, t,
                                                        (a.size // 16) ** 2 + 32), 2)}
              for t in TARGETS for r in RANKS]
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": a.machine, "command": "/usr/bin/python3 bench/zimage_lora_bench.py",
           "load": load, "step": step, "flops": ratios}
    # Rows this script does not make (bf16_deltas: an A/B of two builds, by
    # hand; see lora.md) stay: a rerun must not drop recorded figures.
    if os.path.exists(a.out):
        with open(a.out) as f:
            old = json.load(f)
        doc.update({k: v for k, v in old.items() if k not in doc})
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
