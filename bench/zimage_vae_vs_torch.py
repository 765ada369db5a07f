#!/usr/bin/python3
"""zimage_vae_vs_torch.py — the Z-Image VAE decoder, pixserve against the
PyTorch reference, interleaved in one run on the same full-size random
weights and the same standard-normal latents (seed 1), with wall and CPU
seconds and peak RSS of each decode; JSON rows to --json.

  bench/zimage_vae_vs_torch.py [--sizes 256,512] [--rounds 2] [--json OUT]
      [--weights VAE.safetensors] [--bench build/release/bench/zimage_vae_bench]

Per round and size it runs: pixserve (blocked oneDNN layout), PyTorch with
2 threads, pixserve --nhwc (the layout before), PyTorch with 1 thread; each
a fresh process decoding once (so pixserve's decode includes converting the
weights to oneDNN's layout, ~0.1-0.5 s; PyTorch's its first-call setup).
The machine is shared: compare rows of the same round (ratios), not
absolute seconds across runs.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    t = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode:
        sys.exit("%s failed:\n%s" % (" ".join(cmd), p.stdout))
    return p.stdout, time.time() - t


def ours(bench, weights, size, nhwc):
    out, _ = run([bench, weights, "--sizes", str(size), "--reps", "1", "--threads", "2"] +
                 (["--nhwc"] if nhwc else []))
    m = re.search(r"decode ms: (\d+) \(cpu (\d+)\); RSS before \d+ MB, peak so far (\d+) MB", out)
    if not m:
        sys.exit("unexpected output:\n" + out)
    return {"impl": "pixserve-" + ("nhwc" if nhwc else "blocked"), "threads": 2,
            "wall_s": int(m.group(1)) / 1e3, "cpu_s": int(m.group(2)) / 1e3,
            "peak_rss_bytes": int(m.group(3)) << 20}


def torch(weights, size, threads):
    out, _ = run(["/usr/bin/python3", os.path.join(HERE, "zimage_vae_full.py"), weights + ".torch",
                  "--ref-size", str(size), "--ref-out", weights + ".torch-out",
                  "--threads", str(threads)])
    m = re.search(r"torch decode \d+x\d+: ([\d.]+) s \(cpu ([\d.]+) s, threads (\d+)\); "
                  r"peak RSS (\d+) MB", out)
    if not m:
        sys.exit("unexpected output:\n" + out)
    return {"impl": "pytorch",
            "threads": int(m.group(3)), "wall_s": float(m.group(1)), "cpu_s": float(m.group(2)),
            "peak_rss_bytes": int(m.group(4)) << 20}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="256,512")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--weights", default="/tmp/zimage_vae_full.safetensors")
    p.add_argument("--bench", default="build/release/bench/zimage_vae_bench")
    p.add_argument("--json", help="append the rows (one JSON object a line)")
    a = p.parse_args()
    if not os.path.exists(a.weights):
        run(["/usr/bin/python3", os.path.join(HERE, "zimage_vae_full.py"), a.weights])
    rows = []
    for rnd in range(a.rounds):
        for size in [int(s) for s in a.sizes.split(",")]:
            for f in (lambda: ours(a.bench, a.weights, size, False),
                      lambda: torch(a.weights, size, 2),
                      lambda: ours(a.bench, a.weights, size, True),
                      lambda: torch(a.weights, size, 1)):
                date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                r = f()
                r.update(part="vae_decode", size=size, round=rnd, date=date)
                rows.append(r)
                print("round %d %4d %-17s threads %d: wall %6.2f s cpu %6.2f s peak RSS %5.0f MB" %
                      (rnd, size, r["impl"], r["threads"], r["wall_s"], r["cpu_s"],
                       r["peak_rss_bytes"] / 2**20), flush=True)
                if a.json:
                    with open(a.json, "a") as f:
                        f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
