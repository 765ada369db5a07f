#!/usr/bin/python3
"""zimage_vae_full.py — random full-size FLUX VAE decoder weights (diffusers
names, 49.5 M parameters, 200 MB fp32, the reference's initialisation) for
bench/zimage_vae_bench.c, and optionally the PyTorch reference's decode of
standard-normal latents at one size with its time.

  bench/zimage_vae_full.py OUT.safetensors [--ref-size 512 --ref-out STAGES]
      [--threads N] [--reps N]

Each decode prints its wall and CPU seconds (all threads) and the process's
peak RSS so far.
"""
import argparse
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import zimage_reference as zr  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ref-size", type=int, help="image side of a reference decode")
    p.add_argument("--ref-out", help="stage file for the reference decode (latents, image)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--reps", type=int, default=1, help="decodes of the same latents")
    a = p.parse_args()
    vc = zr.config("full")["vae"]
    w = {name: zr.init_tensor("vae", name, shape, kind, a.seed)
         for name, shape, kind in zr.vae_entries(vc)}
    print("%d parameters" % sum(t.numel() for t in w.values()))
    zr.save_safetensors(a.out, w)
    if a.ref_size:
        torch.set_num_threads(a.threads)

        class M:
            pass
        m = M()
        m.vae_cfg, m.vae = vc, w
        h = a.ref_size // 8
        lat = torch.randn((1, 16, h, h), generator=torch.Generator().manual_seed(1))
        for _ in range(a.reps):
            t, c = time.time(), time.process_time()
            with torch.no_grad():
                img = zr.vae_decode(m, lat)
            print("torch decode %dx%d: %.2f s (cpu %.2f s, threads %d); peak RSS %.0f MB" %
                  (a.ref_size, a.ref_size, time.time() - t, time.process_time() - c,
                   torch.get_num_threads(),
                   resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0), flush=True)
        zr.save_safetensors(a.ref_out, {"latents": lat, "image": img})


if __name__ == "__main__":
    main()
