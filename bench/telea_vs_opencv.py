#!/usr/bin/python3
"""telea_vs_opencv.py — our Telea against OpenCV's cv2.inpaint(INPAINT_TELEA).

Both fill the same images and masks with the same radius; the script prints
the time of the fill alone (decode and encode excluded on both sides) and the
PSNR inside the hole against the original photograph. A benchmark, not a
test: it asserts nothing.

Run with Debian's python (cv2 is python3-opencv, `scripts/setup bench`):
    make bench && /usr/bin/python3 bench/telea_vs_opencv.py [--reps 3] [--radius 5]
        [--sizes 640,1280,2560] [--bin build/release/bench/classic_bench]

Ours runs twice: on all cores (its default) and with --threads 1, because
cv2.inpaint runs on one core; the ratios are OpenCV time / our time.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data"
PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png"]


def random_mask(w, h, seed):
    """Thick blobs and strokes until 15-30 % of the image is covered (the
    same recipe as classic_bench, drawn with OpenCV)."""
    rng = np.random.default_rng(seed)
    want = 0.15 + 0.15 * rng.random()
    s = min(w, h)
    m = np.zeros((h, w), np.uint8)
    while (m > 0).mean() < want:
        cx, cy = rng.random() * w, rng.random() * h
        if rng.random() < 0.5:
            axes = (int(s * (0.03 + 0.06 * rng.random())), int(s * (0.03 + 0.06 * rng.random())))
            cv2.ellipse(m, (int(cx), int(cy)), axes, 0, 0, 360, 255, -1)
        else:
            width = max(1, int(s * (0.01 + 0.02 * rng.random())))
            pts = [(cx, cy)]
            for _ in range(2 + int(rng.integers(3))):
                pts.append((pts[-1][0] + (rng.random() - 0.5) * 0.4 * s,
                            pts[-1][1] + (rng.random() - 0.5) * 0.4 * s))
            cv2.polylines(m, [np.array(pts, np.int32)], False, 255, width)
    return m


def hole_psnr(ref, out, mask):
    d = ref.astype(np.float64)[mask > 0] - out.astype(np.float64)[mask > 0]
    mse = (d * d).mean()
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def ours(binary, img_p, mask_p, out_p, radius, threads):
    cmd = [binary, "--telea", img_p, mask_p, out_p, "--radius", str(radius)]
    if threads:
        cmd += ["--threads", str(threads)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(re.search(r"ms=([0-9.]+)", r.stdout).group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--radius", type=int, default=5)
    ap.add_argument("--sizes", default="640,1280,2560")
    ap.add_argument("--bin", default="build/release/bench/classic_bench")
    a = ap.parse_args()
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"{a.bin} not found: run `make bench` first")
    print(f"Telea, radius {a.radius}, median of {a.reps}; OpenCV {cv2.__version__} "
          f"(cv2.getNumThreads() = {cv2.getNumThreads()}); {os.cpu_count()} CPUs")
    hdr = (f"{'size':<10} {'photo':<10} {'hole':>5} | {'ours ms':>8} {'1 thr':>8} {'cv2 ms':>8} "
           f"{'cv2/ours':>8} {'cv2/1thr':>8} | {'ours dB':>7} {'cv2 dB':>7}")
    print(hdr)
    print("-" * len(hdr))
    with tempfile.TemporaryDirectory() as tmp:
        for size in [int(x) for x in a.sizes.split(",")]:
            w, h = size, size * 3 // 4
            rows = []
            for k, name in enumerate(PHOTOS):
                src = cv2.imread(os.path.join(SKIMAGE, name), cv2.IMREAD_COLOR)
                img = cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA if w < src.shape[1]
                                 else cv2.INTER_CUBIC)
                mask = random_mask(w, h, 1000 * size + k)
                img_p, mask_p = os.path.join(tmp, "in.png"), os.path.join(tmp, "mask.png")
                out_p = os.path.join(tmp, "out.png")
                cv2.imwrite(img_p, img)
                cv2.imwrite(mask_p, mask)
                t_ours = statistics.median(ours(a.bin, img_p, mask_p, out_p, a.radius, 0)
                                           for _ in range(a.reps))
                t_one = statistics.median(ours(a.bin, img_p, mask_p, out_p, a.radius, 1)
                                          for _ in range(a.reps))
                p_ours = hole_psnr(img, cv2.imread(out_p, cv2.IMREAD_COLOR), mask)
                times = []
                for _ in range(a.reps):
                    t0 = time.perf_counter()
                    cv_out = cv2.inpaint(img, mask, a.radius, cv2.INPAINT_TELEA)
                    times.append((time.perf_counter() - t0) * 1e3)
                t_cv = statistics.median(times)
                p_cv = hole_psnr(img, cv_out, mask)
                cover = 100.0 * (mask > 0).mean()
                rows.append((t_ours, t_one, t_cv, p_ours, p_cv))
                print(f"{w}x{h:<5} {name[:-4]:<10} {cover:4.0f}% | {t_ours:8.0f} {t_one:8.0f} "
                      f"{t_cv:8.0f} {t_cv / t_ours:8.2f} {t_cv / t_one:8.2f} | "
                      f"{p_ours:7.2f} {p_cv:7.2f}", flush=True)
            m = [statistics.mean(col) for col in zip(*rows)]
            print(f"{w}x{h:<5} {'mean':<10} {'':>5} | {m[0]:8.0f} {m[1]:8.0f} {m[2]:8.0f} "
                  f"{m[2] / m[0]:8.2f} {m[2] / m[1]:8.2f} | {m[3]:7.2f} {m[4]:7.2f}", flush=True)


if __name__ == "__main__":
    main()
