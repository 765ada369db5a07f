#!/usr/bin/python3
"""lama_precision_emulate.py — what reduced precision costs big-lama in
accuracy, emulated on the CPU, before a GPU spends time on it
(docs/benchmarks/lama-cuda.md, "Which reduced precision could pass").

The emulated forward pass is the CUDA engine's dataflow
(src/engine/lama/cuda/lama_cuda_net.c), not PyTorch's module order:
BatchNorm folded into the convolutions, one rounding wherever the engine
stores an activation, and the multiplicands of every cuDNN convolution
rounded to what the tensor cores read; sums in fp32. Per precision:

  fp32   nothing rounded (the engine's fp32: CUDA cores)
  tf32   convolution inputs and weights rounded to TF32 (10-bit mantissa);
         activations stored in fp32
  bf16   activations stored in bf16 (the residual stream too), weights in
         bf16; the Fourier unit in fp32 with its 1x1 convolution in TF32
  fp16   as bf16 with IEEE half (10-bit mantissa, 5-bit exponent)
  fp16r  fp16 with the residual stream (x += z) kept in fp32
  fp16w  the FP16 engine (lama_cuda_arena.h, px_lca_wide): fp16 with
         the residual stream and st1's output in fp32, st1 in TF32 on
         fp32 input

--bias says where a 16-bit convolution's bias (BatchNorm's folded shift)
is added, which matters: the shift nearly cancels the sum it is added to,
so its rounding shows in the result (docs/benchmarks/lama-cuda.md,
twenty-third session):
  fused16  the engine as it is: cuDNN's fused epilogue (down-sampling, the
           FFC's local output, st2) takes the bias in the tensors' type,
           rounded to 16 bits before it is added; the transposed
           convolutions (up-sampling) store their sums, then the engine's
           epilogue adds the fp32 bias
  exact    the fp32 bias added before the one store (what TF32 does; what
           the emulator assumed before the twenty-third session)
  unfused  every convolution stores its sum, then the fp32 bias is added
           (PX_LAMA_CUDA_NOFUSE=1)

The stem and the head are the engine's fp32 kernels in every precision,
or with --stem-head cudnn (a design measured 2.6x slower and removed)
cuDNN convolutions in the precision's
multiplicands (the stem on its 8-channel input built in the activations'
type; the head's logits stored in that type, the bias and sigmoid after
in fp32, and the 3-pixel border ring computed exactly, as the finishing
kernel does).
"torch-tf32" is PyTorch's TF32 on the GPU: the module as written, every
convolution's input and weight rounded to TF32.

Each case (two synthetic images and, with --photos, bench/fetch_photos.sh's
photographs, two box holes each: bench/lama_cuda_vs_torch.py's cases) is
compared with the fp32 module: max and mean absolute error of the
prediction, PSNR of the uint8 result inside the hole. A JSON line per case
and precision, then a summary per precision, then the verdict of issue
16's gate ("no worse than PyTorch's TF32 against fp32") per precision.

  /usr/bin/python3 tools/lama_precision_emulate.py [--weights big.safetensors]
      [--config big-lama --seed 1] [--photos build/photos] [--synth]
      [--precisions fp32,tf32,bf16,fp16,fp16r,torch-tf32] [--tf32-trunc]
      [--keep res,s,ygp,u,yl,yg] [--stem-head own|cudnn]
      [--bias fused16|exact|unfused] [--out rows.jsonl]

--keep names trunk sites whose stores stay fp32 in bf16/fp16 (which
roundings cost the most): res the residual stream, s the st1 output
(s_res: only where st1 reads the fp32 residual stream, in TF32), ygp
the l2g partial sum, u the Fourier unit's output, yl and yg the FFC's.

Random weights (tools/lama_reference.py) stand in for the trained ones,
which cannot be downloaded here: an estimate to choose what to build and
measure, not the gate itself (the GPU's bench/lama_cuda_vs_torch.py is).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lama_reference as ref  # noqa: E402

FP16_MAX = 65504.0


def tf32_round(t, trunc=False):
    """fp32 -> TF32 (10-bit mantissa) as fp32: round to nearest even, or
    truncation (an mma reading raw fp32 registers ignores the low bits)."""
    u = t.contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    if not trunc:
        u = u + 0x0FFF + ((u >> 13) & 1)
    u = u & 0xFFFFE000
    u = torch.where(u >= 2 ** 31, u - 2 ** 32, u)
    return u.to(torch.int32).view(torch.float32)


class Prec:
    """act: an activation as stored; mul: a cuDNN convolution's
    multiplicand; fu: the Fourier unit's convolution's multiplicand."""

    def __init__(self, name, trunc, keep=(), bias="fused16"):
        self.name = name
        self.bias = bias
        self.keep = set(keep)  # sites whose stores stay fp32 (--keep)
        self.peak = 0.0  # the largest |activation| stored
        t32 = lambda t: tf32_round(t, trunc)  # noqa: E731
        ident = lambda t: t  # noqa: E731
        half = lambda t: t.half().float()  # noqa: E731
        bf = lambda t: t.bfloat16().float()  # noqa: E731
        if name == "fp16w":
            self.keep |= {"s"}
        store = {"fp32": ident, "tf32": ident, "bf16": bf}.get(name, half)
        self.mul = {"fp32": ident, "tf32": t32, "bf16": bf}.get(name, half)
        self.fu = ident if name == "fp32" else t32
        self.st1 = t32 if name == "fp16w" else self.mul  # st1's multiplicands
        self.wide_res = name in ("fp16r", "fp16w") or "res" in self.keep
        self.res = ident if self.wide_res else store  # the residual stream
        self._store = store

    def residual(self, t):
        """The residual stream's new value, as stored (counted in the peak:
        it reaches the 3x3 convolutions in the activations' type)."""
        self.peak = max(self.peak, float(t.abs().max()))
        return self.res(t)

    def act(self, t, site=None):
        self.peak = max(self.peak, float(t.abs().max()))
        return t if site in self.keep else self._store(t)

    def epilogue(self, y, shift, fused=True):
        """relu(y + shift) of a 16-bit convolution's sum y, as --bias says
        the engine adds the shift (fused: cuDNN's epilogue; not: the
        transposed convolutions'). TF32 and fp32 store fp32: exact."""
        if self.bias == "exact" or (fused and self.bias == "fused16"):
            sh = self._store(shift) if self.bias == "fused16" else shift
            return relu_shift(y, sh)
        return relu_shift(self._store(y), shift)


def fold(bn):
    """BatchNorm (eval) as a per-channel scale and shift."""
    sc = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return sc, bn.bias - bn.running_mean * sc


def conv(p, x, w, stride=1, scale=None, mul=None):
    """cuDNN's convolution: multiplicands rounded, fp32 sums."""
    mul = mul or p.mul
    if scale is not None:
        w = w * scale.view(-1, 1, 1, 1)
    return F.conv2d(mul(x), mul(w), stride=stride)


def pad(x, n):
    return F.pad(x, (n, n, n, n), mode="reflect")


def relu_shift(y, sh):
    return torch.relu(y + sh.view(1, -1, 1, 1))


def fourier_unit(p, fu, s):
    """u = s + irfft2(relu(fu(rfft2(s)) + b)): transforms in fp32."""
    b, c, h, w = s.shape
    f = torch.fft.rfftn(s, dim=(-2, -1), norm="ortho")
    f = torch.stack((f.real, f.imag), dim=2).reshape(b, c * 2, h, f.shape[-1])
    sc, sh = fold(fu.bn)
    f = relu_shift(conv(p, f, fu.conv_layer.weight, scale=sc, mul=p.fu), sh)
    f = f.reshape(b, c, 2, h, f.shape[-1])
    f = torch.complex(f[:, :, 0].contiguous(), f[:, :, 1].contiguous())
    return p.act(s + torch.fft.irfftn(f, s=(h, w), dim=(-2, -1), norm="ortho"), "u")


def trunk_ffc(p, blk, xl, xg, from_res=False):
    """One FFC_BN_ACT of a residual block, in the engine's order."""
    f = blk.ffc
    scl, shl = fold(blk.bn_l)
    scg, shg = fold(blk.bn_g)
    pl, pg = pad(xl, 1), pad(xg, 1)
    yl = p.act(p.epilogue(conv(p, pl, f.convl2l.weight, scale=scl)
                          + conv(p, pg, f.convg2l.weight, scale=scl), shl), "yl")
    yg = p.act(conv(p, pl, f.convl2g.weight, scale=scg), "ygp")  # no bias yet
    st = f.convg2g
    sc1, sh1 = fold(st.conv1[1])
    # s_res: s stays fp32 where st1 reads the fp32 residual stream (a TF32
    # convolution can; one reading fp16 writes fp16).
    s = p.act(relu_shift(conv(p, xg, st.conv1[0].weight, scale=sc1,
                              mul=p.fu if from_res and "s_res" in p.keep else p.st1), sh1),
              "s_res" if from_res else "s")
    u = fourier_unit(p, st.fu, s)
    return yl, p.act(p.epilogue(conv(p, u, st.conv2.weight, scale=scg) + yg, shg), "yg")


def stem(p, st, x, cudnn):
    """The 7x7 stem: the engine's fp32 kernel, or cuDNN on the input stored
    in the activations' type (p.act)."""
    sc, sh = fold(st.bn_l)
    xin, mul = (p.act(x), None) if cudnn else (x, lambda t: t)
    return p.act(relu_shift(conv(p, pad(xin, 3), st.ffc.convl2l.weight, scale=sc, mul=mul), sh))


def head(p, hd, cur, cudnn):
    """The 7x7 head and sigmoid: fp32, or cuDNN's logits (no bias) stored in
    the activations' type with the 3-pixel border ring exact (fp32)."""
    exact = F.conv2d(pad(cur, 3), hd.weight, hd.bias)
    if not cudnn:
        return torch.sigmoid(exact)
    y = p.act(F.conv2d(p.mul(cur), p.mul(hd.weight), padding=3)) + hd.bias.view(1, -1, 1, 1)
    inner = torch.zeros_like(y, dtype=torch.bool)
    inner[:, :, 3:-3, 3:-3] = True
    return torch.sigmoid(torch.where(inner, y, exact))


def emulate(model, x, p, nd, nb, cudnn=False):
    m = model.model
    cur = stem(p, m[1], x, cudnn)
    for i in range(nd):
        blk = m[2 + i]
        xp = pad(cur, 1)
        scl, shl = fold(blk.bn_l)
        if i + 1 < nd:
            cur = p.act(p.epilogue(conv(p, xp, blk.ffc.convl2l.weight, 2, scl), shl))
        else:
            scg, shg = fold(blk.bn_g)
            xl = p.act(p.epilogue(conv(p, xp, blk.ffc.convl2l.weight, 2, scl), shl))
            xg = p.act(p.epilogue(conv(p, xp, blk.ffc.convl2g.weight, 2, scg), shg))
    for b in range(nb):
        blk = m[2 + nd + b]
        yl, yg = trunk_ffc(p, blk.conv1, xl, xg, b > 0 and p.wide_res)
        zl, zg = trunk_ffc(p, blk.conv2, yl, yg)
        xl, xg = p.residual(xl + zl), p.residual(xg + zg)
    cur = p.act(torch.cat([xl, xg], 1))
    k = 2 + nd + nb + 1
    for j in range(nd):
        tc, bn = m[k + 3 * j], m[k + 3 * j + 1]
        sc, sh = fold(bn)
        w = tc.weight * sc.view(1, -1, 1, 1)  # (cin, cout, 3, 3)
        y = F.conv_transpose2d(p.mul(cur), p.mul(w), stride=2, padding=1, output_padding=1)
        cur = p.act(p.epilogue(y, tc.bias * sc + sh, fused=False))
    return head(p, m[k + 3 * nd + 1], cur, cudnn)


def torch_tf32(model, x, trunc):
    """PyTorch's module with every convolution in TF32."""
    hooks = []
    saved = {}
    for name, mod in model.named_modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            saved[name] = mod.weight.data
            mod.weight.data = tf32_round(mod.weight.data, trunc)
            hooks.append(mod.register_forward_pre_hook(
                lambda _m, inp: tuple(tf32_round(t, trunc) for t in inp)))
    try:
        return model(x)
    finally:
        for h in hooks:
            h.remove()
        for name, mod in model.named_modules():
            if name in saved:
                mod.weight.data = saved[name]


def load_model(a):
    if a.weights:
        model, cfg = ref.load_generator(a.weights)
    else:
        cfg = ref.CONFIGS[a.config]
        torch.manual_seed(a.seed)
        model = ref.random_weights(ref.build(cfg), a.seed)
    return model.eval(), cfg


def summarise(rows, precs, keep):
    summ = {}
    for impl in precs:
        rs = [r for r in rows if r["impl"] == impl]
        photos = [r["hole_psnr_db"] for r in rs if r["case"].startswith("photo-")]
        summ[impl] = dict(impl=impl, summary=True, max_abs=max(r["max_abs"] for r in rs),
                          mean_abs=float(np.mean([r["mean_abs"] for r in rs])),
                          min_hole_psnr_db=min(r["hole_psnr_db"] for r in rs),
                          min_photo_psnr_db=min(photos) if photos else None,
                          peak_activation=max(r["peak_activation"] for r in rs), keep=keep)
    if "torch-tf32" in summ:
        bar = summ["torch-tf32"]
        for impl, s in summ.items():
            s["gate_pass"] = bool(s["min_hole_psnr_db"] >= bar["min_hole_psnr_db"]
                                  and s["mean_abs"] <= bar["mean_abs"]
                                  and s["peak_activation"] < FP16_MAX)
    return list(summ.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", help="pixserve-lama safetensors (default: random weights)")
    ap.add_argument("--config", default="big-lama", choices=sorted(ref.CONFIGS))
    ap.add_argument("--seed", type=int, default=1, help="random weights' seed (the GPU check's: 1)")
    ap.add_argument("--photos", help="directory of .npy photos (bench/fetch_photos.sh)")
    ap.add_argument("--synth", action="store_true", help="also the two synthetic cases")
    ap.add_argument("--precisions", default="fp32,tf32,bf16,fp16,fp16r,fp16w,torch-tf32")
    ap.add_argument("--tf32-trunc", action="store_true",
                    help="TF32 by truncation instead of round-to-nearest")
    ap.add_argument("--keep", default="", help="trunk sites kept fp32 (see above)")
    ap.add_argument("--stem-head", default="own", choices=("own", "cudnn"),
                    help="the 7x7 stem and head: the engine's fp32 kernels or cuDNN (see above)")
    ap.add_argument("--bias", default="fused16", choices=("fused16", "exact", "unfused"),
                    help="where a 16-bit convolution's bias is added (see above)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", help="also write the JSON lines here")
    a = ap.parse_args()
    if not a.photos and not a.synth:
        ap.error("no cases: give --photos DIR and/or --synth")
    precs = a.precisions.split(",")
    for p in precs:
        if p not in ("fp32", "tf32", "bf16", "fp16", "fp16r", "fp16w", "torch-tf32"):
            ap.error("unknown precision %r" % p)
    torch.set_num_threads(a.threads)
    model, cfg = load_model(a)
    nd, nb = cfg["n_downsampling"], cfg["n_blocks"]
    rows = []
    out = open(a.out, "w") if a.out else None

    def emit(r):
        line = json.dumps(r)
        print(line, flush=True)
        if out:
            out.write(line + "\n")

    with torch.no_grad():
        for (name, img, mask) in ref.accuracy_cases(a.photos, a.synth):
            h, w = mask.shape
            x, img_p, m_p = ref.net_input(img, mask)
            t0 = time.perf_counter()
            pref = model(x)[0].permute(1, 2, 0).numpy()
            ref_s = time.perf_counter() - t0
            for impl in precs:
                if impl == "torch-tf32":
                    y, peak = torch_tf32(model, x, a.tf32_trunc), float("nan")
                else:
                    p = Prec(impl, a.tf32_trunc, [k for k in a.keep.split(",") if k], a.bias)
                    y = emulate(model, x, p, nd, nb, a.stem_head == "cudnn")
                    peak = p.peak
                pred = y[0].permute(1, 2, 0).numpy()
                d = np.abs(pred - pref)
                r = dict(case=name, size="%dx%d" % (w, h), impl=impl,
                         max_abs=float(np.nan_to_num(d.max(), nan=1.0)),
                         mean_abs=float(np.nan_to_num(d.mean(), nan=1.0)),
                         hole_psnr_db=round(ref.hole_psnr(np.nan_to_num(pred, nan=0.0), pref, img_p,
                                                      m_p, h, w), 2),
                         peak_activation=0.0 if math.isnan(peak) else peak,
                         ref_s=round(ref_s, 1), tf32="trunc" if a.tf32_trunc else "rne",
                         keep=a.keep, stem_head=a.stem_head, bias=a.bias)
                rows.append(r)
                emit(r)
    for s in summarise(rows, precs, a.keep):
        s["stem_head"] = a.stem_head
        s["bias"] = a.bias
        emit(s)
    if out:
        out.close()


if __name__ == "__main__":
    main()
