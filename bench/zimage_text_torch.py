#!/usr/bin/python3
"""zimage_text_torch.py — the PyTorch reference's Qwen3 text encoder alone
on a model directory (fp32: the reference widens bf16 weights at load), for
the stage comparison in docs/benchmarks/zimage-cpu.md: load time, encode
wall and CPU seconds of N token ids, peak RSS.

  bench/zimage_text_torch.py HF_DIR [--tokens 14] [--threads 2] [--reps 2]
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import zimage_reference as zr  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir")
    p.add_argument("--tokens", type=int, default=14)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    class M:
        pass
    m = M()
    with open(os.path.join(a.model_dir, "text_encoder", "config.json")) as f:
        m.text_cfg = json.load(f)
    t = time.time()
    m.text = zr.load_component(os.path.join(a.model_dir, "text_encoder"))
    print("load %.1f s, peak RSS %.0f MB" % (time.time() - t,
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0), flush=True)
    ids = [(1000 + 7919 * i) % m.text_cfg["vocab_size"] for i in range(a.tokens)]
    for _ in range(a.reps):
        t, c = time.time(), time.process_time()
        with torch.no_grad():
            zr.qwen3_forward(m, ids)
        print("encode %d tokens: %.2f s (cpu %.2f s, threads %d); peak RSS %.0f MB" %
              (a.tokens, time.time() - t, time.process_time() - c, torch.get_num_threads(),
               resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0), flush=True)


if __name__ == "__main__":
    main()
