#!/usr/bin/env python3
"""lama_cuda_vs_torch.py — pixserve's LaMa CUDA backend against PyTorch on
the same GPU, in one run (the machines are noisy: compare ratios taken
together, not numbers from different days).

  python3 bench/lama_cuda_vs_torch.py --weights big.safetensors \
      --bench .devcarry/lama_cuda_bench --out $OUT [--sizes 512,1024]
      [--batches 1,4,8,16,32] [--iters 10] [--compile] [--compile-batches 8]
      [--photos build/photos]

Accuracy: for two synthetic images (tools/lama_reference.py's synth_case)
and, with --photos, real photographs (bench/fetch_photos.sh), the float
prediction of each of our precisions (fp32, tf32,
bf16, fp16; lama_cuda_bench --dump) and of PyTorch on the GPU (fp32, TF32) is
compared with
PyTorch fp32 on the CPU, the reference the engines are verified against:
max and mean absolute error of the sigmoid output, and the PSNR of the
uint8 result inside the hole (outside it every engine returns the input).

Speed: images per second of PyTorch's forward pass on the GPU (input
already on the device, so PyTorch is not charged for the uploads, the
uint8 conversions and the composition that lama_cuda_bench's figures
include) in fp32 (TF32 off), TF32, bf16 and fp16 autocast and, with
--compile, torch.compile'd in each --torch-precisions (TF32, fp16
autocast) and layout; then lama_cuda_bench on the same sizes and batches.
Everything goes to stdout and to OUT/lama_cuda_vs_torch.json.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import lama_reference as ref  # noqa: E402


def write_png(path, arr):
    """Minimal PNG writer (8-bit gray or RGB, no filtering): the device
    machine has no PIL, and lama_cuda_bench reads PNG."""
    h, w = arr.shape[:2]
    ctype = 2 if arr.ndim == 3 else 0
    raw = b"".join(b"\x00" + arr[y].tobytes() for y in range(h))

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
        f.write(chunk(b"IEND", b""))


def accuracy(a, model_cpu, model_gpu, tmp):
    rows = []
    for (name, img, mask) in ref.accuracy_cases(a.photos):
        h, w = mask.shape
        x, img_p, m_p = ref.net_input(img, mask)
        with torch.no_grad():
            t0 = time.perf_counter()
            pref = model_cpu(x)[0].permute(1, 2, 0).numpy()
            cpu_s = time.perf_counter() - t0
            cands = []
            for label, tf32, ac in (("torch-cuda-fp32", False, None), ("torch-cuda-tf32", True, None),
                                    ("torch-cuda-fp16-autocast", True, torch.float16)):
                torch.backends.cuda.matmul.allow_tf32 = tf32
                torch.backends.cudnn.allow_tf32 = tf32
                try:
                    with autocast_to(ac):
                        y = model_gpu(x.cuda())
                except RuntimeError as e:  # the FFT refuses fp16 at sizes not powers of two
                    print("accuracy %-22s %s: failed (%s)" % (name, label, str(e)[:100]))
                    continue
                cands.append((label, y[0].permute(1, 2, 0).float().cpu().numpy()))
        ip, mp = os.path.join(tmp, "img.png"), os.path.join(tmp, "mask.png")
        write_png(ip, img)
        write_png(mp, mask)
        for prec in ("fp32", "tf32", "bf16", "fp16"):
            of = os.path.join(tmp, "pred-%s.f32" % prec)
            r = subprocess.run([a.bench, "--weights", a.weights, "--precision", prec, "--dump", ip,
                                mp, of], stderr=subprocess.DEVNULL)
            if r.returncode and prec in ("fp32", "tf32"):  # the offered ones: a failure is fatal
                raise subprocess.CalledProcessError(r.returncode, a.bench)
            if r.returncode:  # a diagnosis precision's failure leaves the others' verdicts
                print("accuracy %-22s pixserve-%s: the dump failed (rc %d)" % (name, prec,
                                                                              r.returncode))
                continue
            raw = np.fromfile(of, dtype=np.float32)
            H, W = int(raw[:4].view(np.int32)[0]), int(raw[:4].view(np.int32)[1])
            cands.append(("pixserve-" + prec, raw[4:].reshape(H, W, 3)))
        for impl, p in cands:
            d = np.abs(p - pref)
            r = dict(case=name, size="%dx%d" % (w, h), impl=impl, max_abs=float(d.max()),
                     mean_abs=float(d.mean()),
                     hole_psnr_db=ref.hole_psnr(p, pref, img_p, m_p, h, w), cpu_ref_s=round(cpu_s, 2))
            rows.append(r)
            print("accuracy %-22s %-16s max %.3g mean %.3g hole PSNR %.1f dB" %
                  (name, impl, r["max_abs"], r["mean_abs"], r["hole_psnr_db"]), flush=True)
    # The verdicts the issue asks for, over every case.
    by = {}
    for r in rows:
        by.setdefault(r["impl"], []).append(r)
    summ = {}
    for impl, rs in by.items():
        summ[impl] = dict(max_abs=max(r["max_abs"] for r in rs),
                          mean_abs=float(np.mean([r["mean_abs"] for r in rs])),
                          min_hole_psnr_db=min(r["hole_psnr_db"] for r in rs),
                          min_photo_psnr_db=min([r["hole_psnr_db"] for r in rs
                                                 if r["case"].startswith("photo-")] or [float("nan")]))
        print("accuracy summary %-16s max %.3g mean %.3g min hole PSNR %.1f dB (photos %.1f dB)" %
              (impl, summ[impl]["max_abs"], summ[impl]["mean_abs"], summ[impl]["min_hole_psnr_db"],
               summ[impl]["min_photo_psnr_db"]), flush=True)
    # TF32 against PyTorch's TF32 on the cases where PyTorch's own fp32 GPU
    # run agrees with the CPU reference (max error under 1e-3): elsewhere
    # PyTorch's GPU result is wrong in either mode and no yardstick.
    sane = {r["case"] for r in by["torch-cuda-fp32"] if r["max_abs"] < 1e-3}
    agg = lambda impl, key, f: f(r[key] for r in by[impl] if r["case"] in sane)
    mean_of = lambda xs: float(np.mean(list(xs)))
    # "No worse than PyTorch's TF32": the mean error and the worst hole PSNR
    # over the cases; the max error is reported beside them (a single pixel,
    # it moves with cuDNN's algorithm choice from run to run).
    v = dict(fp32_max_abs=summ["pixserve-fp32"]["max_abs"],
             fp32_max_abs_le_2e4=bool(summ["pixserve-fp32"]["max_abs"] <= 2e-4),
             tf32_mean_abs=agg("pixserve-tf32", "mean_abs", mean_of),
             torch_tf32_mean_abs=agg("torch-cuda-tf32", "mean_abs", mean_of),
             tf32_min_psnr_db=agg("pixserve-tf32", "hole_psnr_db", min),
             torch_tf32_min_psnr_db=agg("torch-cuda-tf32", "hole_psnr_db", min),
             tf32_max_abs=agg("pixserve-tf32", "max_abs", max),
             torch_tf32_max_abs=agg("torch-cuda-tf32", "max_abs", max),
             torch_gpu_wrong_cases=sorted({r["case"] for r in by["torch-cuda-fp32"]} - sane),
             bf16_min_photo_psnr_db=summ.get("pixserve-bf16", {}).get("min_photo_psnr_db"),
             bf16_photos_ge_40db=bool(summ.get("pixserve-bf16", {}).get("min_photo_psnr_db", 0)
                                      >= 40))
    # Issue 16's gate for any precision as the default: TF32's (a precision
    # whose runs failed on some case fails it).
    for p in ("tf32", "bf16", "fp16"):
        if not sane <= {r["case"] for r in by.get("pixserve-" + p, [])}:
            v[p + "_no_worse_than_torch_tf32"] = False
            continue
        v[p + "_mean_abs"] = agg("pixserve-" + p, "mean_abs", mean_of)
        v[p + "_min_psnr_db"] = agg("pixserve-" + p, "hole_psnr_db", min)
        v[p + "_no_worse_than_torch_tf32"] = bool(
            v[p + "_mean_abs"] <= v["torch_tf32_mean_abs"] and
            v[p + "_min_psnr_db"] >= v["torch_tf32_min_psnr_db"])
    print("verdicts", json.dumps(v), flush=True)
    return dict(rows=rows, summary=summ, verdicts=v)


# --torch-precisions: what each runs under (TF32 on in both).
TORCH_AUTOCAST = {"tf32": None, "fp16": torch.float16}


def autocast_to(dtype):
    """CUDA autocast to dtype, or nothing when dtype is None."""
    return torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None)


def time_torch(model, x, iters, label, autocast=None):
    """Median of iters timed forward passes over two rotated inputs, after
    two untimed ones (under autocast to that dtype if given); peak memory
    PyTorch's allocator handed out."""
    xs = [x, torch.rand_like(x)]
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()

    def once(i=0):
        x = xs[i & 1]
        with torch.no_grad(), autocast_to(autocast):
            return model(x)
    once(0)
    once(1)
    torch.cuda.synchronize()
    ts = []
    for i in range(iters):
        t0 = time.perf_counter()
        once(i)
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    med = ts[len(ts) // 2]
    gib = torch.cuda.max_memory_allocated() / 2**30
    return dict(impl=label, ms=round(med * 1e3, 2), img_s=round(x.shape[0] / med, 1),
                gib=round(gib, 2), gib_per_img=round(gib / x.shape[0], 3))


def speed_torch(a, model_gpu, save):
    """PyTorch's rows; save(rows) after each, so a part cut by its time
    limit still leaves what it measured in the JSON."""
    rows = []
    # --skip-eager: torch.compile alone (the peer issue 16 compares with),
    # so a call's time limit reaches both layouts at every size.
    for s in ([] if a.skip_eager else a.sizes):
        for b in a.batches:
            x = torch.rand(b, 4, s, s, device="cuda")
            for label, tf32, ac in (("torch-fp32", False, None), ("torch-tf32", True, None),
                                    ("torch-bf16-autocast", True, torch.bfloat16),
                                    ("torch-fp16-autocast", True, torch.float16)):
                torch.backends.cuda.matmul.allow_tf32 = tf32
                torch.backends.cudnn.allow_tf32 = tf32
                try:
                    r = time_torch(model_gpu, x, a.iters, label, ac)
                except Exception as e:  # out of memory, or bf16 refused by the FFT
                    print("speed torch %dx%d B=%d %s: failed (%s)" % (s, s, b, label, str(e)[:120]))
                    torch.cuda.empty_cache()
                    continue
                r.update(size="%dx%d" % (s, s), batch=b)
                rows.append(r)
                save(rows)
                print("speed %-20s %5dx%-5d B=%-3d %9.2f ms %8.1f img/s %7.2f GiB" %
                      (label, s, s, b, r["ms"], r["img_s"], r["gib"]), flush=True)
            del x
            torch.cuda.empty_cache()
    if a.compile:
        # Each shape compiled afresh (dynamo reset, dynamic=False), in NCHW and
        # channels_last: one compiled module reused across shapes recompiles
        # with dynamic shapes and is not PyTorch at its best (issue 16). And
        # in each --torch-precisions: TF32, and fp16 autocast, PyTorch's
        # fastest setting where its FFTs take fp16 (power-of-two sizes).
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        for prec, layout in [(p, l) for p in a.torch_precisions for l in ("nchw", "channels_last")]:
            fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
            model_gpu = model_gpu.to(memory_format=fmt)
            label = "torch-compile-%s" % prec + ("-cl" if layout == "channels_last" else "")
            ac = TORCH_AUTOCAST[prec]
            for s in a.sizes:
                for b in a.compile_batches:
                    torch._dynamo.reset()
                    cm = torch.compile(model_gpu, dynamic=False)
                    x = torch.rand(b, 4, s, s, device="cuda").contiguous(memory_format=fmt)
                    t0 = time.perf_counter()
                    try:
                        with torch.no_grad(), autocast_to(ac):
                            cm(x)
                        torch.cuda.synchronize()
                        comp_s = time.perf_counter() - t0
                        r = time_torch(cm, x, a.iters, label, ac)
                    except Exception as e:  # out of memory, a compile failure
                        print("speed %s %dx%d B=%d: failed (%s)" % (label, s, s, b, str(e)[:120]))
                        continue
                    r.update(size="%dx%d" % (s, s), batch=b, compile_s=round(comp_s, 1), layout=layout)
                    rows.append(r)
                    save(rows)
                    print("speed %-22s %5dx%-5d B=%-3d %9.2f ms %8.1f img/s %7.2f GiB (compile %.0f s)" %
                          (label, s, s, b, r["ms"], r["img_s"], r["gib"], comp_s), flush=True)
                    del x, cm
                    torch.cuda.empty_cache()
        model_gpu = model_gpu.to(memory_format=torch.contiguous_format)
    return rows


def speed_ours(a):
    sizes = ",".join("%dx%d" % (s, s) for s in a.sizes)
    rows = []
    # fp32 (cuDNN's NHWC fp32 kernels are slow) at fewer batches and runs.
    for precs, batches, iters in ((a.precisions, a.batches, a.iters),
                                  ("fp32", [b for b in a.batches if b in (1, 8)], 3)):
        if not precs or not batches:
            continue
        out = subprocess.run([a.bench, "--weights", a.weights, "--sizes", sizes, "--batches",
                              ",".join(str(b) for b in batches), "--precisions", precs,
                              "--iters", str(iters)],
                             check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 8 and f[0] in ("fp32", "tf32", "bf16", "fp16"):
                rows.append(dict(impl="pixserve-" + f[0], size=f[1], batch=int(f[2]),
                                 ms=float(f[3]), img_s=float(f[4]), gib=float(f[5]),
                                 gib_per_img=float(f[6]), build_s=float(f[7])))
                print("speed %-20s %s B=%-3s %9s ms %8s img/s %7s GiB (build %s s)" %
                      ("pixserve-" + f[0], f[1], f[2], f[3], f[4], f[5], f[7]), flush=True)
            elif "failed" in line:
                print("speed pixserve", line, flush=True)
    return rows


def roofline(rows):
    """Fraction of 790 TFLOP/s (the bf16 tensor rate measured on these
    machines, the issue's reference) reached: 1.76 TFLOP per 1024² image,
    scaling with the pixel count."""
    for r in rows:
        w, h = (int(v) for v in r["size"].split("x"))
        r["tflops"] = round(r["img_s"] * 1.76 * w * h / 1024 ** 2, 1)
        r["roofline"] = round(r["tflops"] / 790, 3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--bench", required=True, help="the lama_cuda_bench binary (CUDA build)")
    ap.add_argument("--out", default=".")
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--batches", default="1,4,8,16,32")
    ap.add_argument("--compile-batches", default="8", help="torch.compile at these batches")
    ap.add_argument("--photos", help="directory of .npy photos (bench/fetch_photos.sh)")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow start)")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--precisions", default="tf32,bf16,fp16",
                    help="ours at these precisions (fp32 runs apart, at batches 1 and 8 only)")
    ap.add_argument("--torch-precisions", default="tf32,fp16",
                    help="torch.compile in these: tf32, fp16 (autocast)")
    ap.add_argument("--skip-eager", action="store_true",
                    help="time PyTorch under torch.compile only (with --compile)")
    a = ap.parse_args()
    # bf16 is not offered to users (it does not pass the gate);
    # the bench still measures them, which is how that is found.
    os.environ.setdefault("PX_LAMA_CUDA_UNVERIFIED_BF16", "1")
    a.sizes = [int(s) for s in a.sizes.split(",")]
    a.batches = [int(b) for b in a.batches.split(",")]
    a.compile_batches = [int(b) for b in a.compile_batches.split(",")]
    a.torch_precisions = [p for p in a.torch_precisions.split(",") if p]
    for p in a.torch_precisions:
        if p not in TORCH_AUTOCAST:
            ap.error("--torch-precisions: %s is not one of %s" % (p, ", ".join(TORCH_AUTOCAST)))
    torch.set_num_threads(os.cpu_count() or 1)
    model_cpu, cfg = ref.load_generator(a.weights)
    model_gpu, _ = ref.load_generator(a.weights)
    model_gpu = model_gpu.cuda()
    res = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__,
               cudnn=torch.backends.cudnn.version(), config=cfg,
               date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    os.makedirs(a.out, exist_ok=True)
    tmp = os.path.join(a.out, "tmp")
    os.makedirs(tmp, exist_ok=True)
    if not a.skip_accuracy:
        res["accuracy"] = accuracy(a, model_cpu, model_gpu, tmp)
    del model_cpu
    name = "lama_cuda_vs_torch%s.json" % ("-accuracy" if a.skip_speed else "")

    def save(torch_rows):
        res["torch_speed"] = torch_rows
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(res, f, indent=1)
    res["ours"], res["torch_speed"] = [], []
    if not a.skip_speed:
        res["ours"] = speed_ours(a)
        save([])
        speed_torch(a, model_gpu, save)  # saves after each of its rows
    roofline(res["ours"] + res["torch_speed"])
    if res["ours"] or res["torch_speed"]:
        print("\n%-20s %-10s %5s %9s %8s %8s %9s" % ("impl", "size", "batch", "img/s", "GiB", "GiB/img",
                                                    "roofline"))
        for r in sorted(res["ours"] + res["torch_speed"], key=lambda r: (r["size"], r["batch"], r["impl"])):
            print("%-20s %-10s %5d %9.1f %8.2f %8.3f %8.1f%%" % (r["impl"], r["size"], r["batch"],
                                                               r["img_s"], r["gib"], r["gib_per_img"],
                                                               100 * r["roofline"]))
    save(res["torch_speed"])
    if "accuracy" in res:
        v = res["accuracy"]["verdicts"]
        ok = v["fp32_max_abs_le_2e4"] and v["tf32_no_worse_than_torch_tf32"]
        print("accuracy verdict: %s (fp32 within 2e-4: %s; tf32 no worse than PyTorch's: %s; "
              "bf16 reaches 40 dB on photos: %s, so it %s offered)" %
              ("PASS" if ok else "FAIL", v["fp32_max_abs_le_2e4"],
               v["tf32_no_worse_than_torch_tf32"], v["bf16_photos_ge_40db"],
               "could be" if v["bf16_photos_ge_40db"] else "is not"))
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
