#!/usr/bin/python3
"""lama_vs_torch.py — pixserve's LaMa engine against PyTorch on the CPU, same
weights, same threads, same run (docs/benchmarks/lama-cpu.md).

For each size, runs build/release/bench/lama_bench and `tools/lama_reference.py
bench` alternately, --rounds times each (a fresh process per round, one
warm-up then --repeat timed images), so that the VM's noise falls on both.
Prints every round's JSON to stderr and a Markdown table to stdout: median
and min ms per image over all timed images, and the largest peak RSS.

usage: bench/lama_vs_torch.py [--weights big.safetensors] [--sizes 256x256,512x512]
                              [--threads 2] [--rounds 3] [--repeat 5]
Without --weights, random big-lama weights are made in a temporary directory.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), r.stderr[-2000:]))
    line = r.stdout.strip().splitlines()[-1]
    print(line, file=sys.stderr)
    return json.loads(line)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weights")
    p.add_argument("--sizes", default="256x256,512x512")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--bench", default=os.path.join(ROOT, "build/release/bench/lama_bench"))
    a = p.parse_args()
    tmp = None
    if not a.weights:
        tmp = tempfile.TemporaryDirectory(prefix="lamabench-")
        a.weights = os.path.join(tmp.name, "big-lama.safetensors")
        subprocess.run([PY, os.path.join(ROOT, "tools/lama_reference.py"), "weights", "--config",
                        "big-lama", "--seed", "1", "--out", a.weights], check=True)
    ours = [a.bench, a.weights, None, str(a.repeat), str(a.threads)]
    torch = [PY, os.path.join(ROOT, "tools/lama_reference.py"), "bench", "--weights", a.weights,
             "--size", None, "--repeat", str(a.repeat), "--threads", str(a.threads)]
    rows = []
    for size in a.sizes.split(","):
        res = {"pixserve": [], "pytorch": []}
        for _ in range(a.rounds):
            ours[2] = size
            torch[6] = size
            res["pixserve"].append(run(ours))
            res["pytorch"].append(run(torch))
        summary = {}
        for impl, rs in res.items():
            ms = [t for r in rs for t in r["ms"]]
            summary[impl] = dict(median=statistics.median(ms), min=min(ms),
                                 peak=max(r["peak_rss_bytes"] for r in rs),
                                 loaded=max(r["rss_after_load_bytes"] for r in rs),
                                 first=statistics.median(r["first_ms"] for r in rs))
        rows.append((size, summary))
    print("| size | impl | median ms/image | min ms | first image ms | RSS after load MiB "
          "| peak RSS during inference MiB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for size, s in rows:
        for impl in ("pixserve", "pytorch"):
            x = s[impl]
            print("| %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f |" % (
                size, impl, x["median"], x["min"], x["first"], x["loaded"] / 2**20, x["peak"] / 2**20))
        print("| %s | **pytorch / pixserve** | **%.2fx** | %.2fx | | | |" % (
            size, s["pytorch"]["median"] / s["pixserve"]["median"],
            s["pytorch"]["min"] / s["pixserve"]["min"]))
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
