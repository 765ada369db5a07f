#!/usr/bin/python3
"""lama_reference.py — a PyTorch reference of the LaMa generator (FFC ResNet).

Written from docs/design.md and the architecture facts of the public LaMa
release, with the original module and tensor names (model.N.ffc.convl2l.weight,
model.N.conv1.ffc.convg2g.fu.conv_layer.weight, ...), so that the same state
dict fits the published checkpoints. It is what pixserve's C engine is
verified against; it never downloads anything.

Subcommands (run with --help for each):
  weights   build random weights with non-trivial BatchNorm statistics for a
            configuration (big-lama, lama-fourier, tiny, ...) and save them as
            safetensors, and optionally as a Lightning checkpoint and as a
            TorchScript file shaped like the public releases
  cases     run inference on synthetic images of several sizes and write one
            safetensors file per size: image, mask, the float result, and with
            --dump every layer's output (for per-layer comparison)
  infer     inpaint an image file with a mask file (PNG in, PNG out)
  bench     time inference (ms per image, peak RSS) for the benchmarks

Tensors are float32; inference runs on the CPU in eval mode.
"""
import argparse
import collections
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

from safetensors_io import load_safetensors, save_safetensors  # noqa: F401 (lama_convert.py and tests use them from here)

# --- configurations -----------------------------------------------------------

CONFIGS = {
    # The public big-lama: 18 FFC residual blocks.
    "big-lama": dict(ngf=64, n_downsampling=3, n_blocks=18, ratio_g=0.75),
    # The smaller LaMa-Fourier: 9 blocks.
    "lama-fourier": dict(ngf=64, n_downsampling=3, n_blocks=9, ratio_g=0.75),
    # Test configurations: same graph, few channels.
    "tiny": dict(ngf=8, n_downsampling=3, n_blocks=2, ratio_g=0.75),
    "tiny1": dict(ngf=16, n_downsampling=3, n_blocks=1, ratio_g=0.75),
}
INPUT_NC, OUTPUT_NC, MAX_FEATURES = 4, 3, 1024


# --- the generator ----------------------------------------------------------------

class FourierUnit(nn.Module):
    """Real 2-D FFT (orthonormal) -> 1x1 conv over interleaved (Re, Im)
    channels -> BN -> ReLU -> inverse real FFT back to the input size."""

    def __init__(self, channels):
        super().__init__()
        self.conv_layer = nn.Conv2d(channels * 2, channels * 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels * 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        b, c, h, w = x.shape
        f = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")          # (b, c, h, w/2+1)
        f = torch.stack((f.real, f.imag), dim=2)                    # (b, c, 2, h, wf)
        f = f.reshape(b, c * 2, h, f.shape[-1])                     # channel 2c = Re, 2c+1 = Im
        f = self.relu(self.bn(self.conv_layer(f)))
        f = f.reshape(b, c, 2, h, f.shape[-1])
        f = torch.complex(f[:, :, 0].contiguous(), f[:, :, 1].contiguous())
        # PyTorch CPU (pocketfft): inverse c2c over H, then c2r over W, which
        # reads only the real part of bins 0 and W/2 (even W).
        return torch.fft.irfftn(f, s=(h, w), dim=(-2, -1), norm="ortho")


class SpectralTransform(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.downsample = nn.Identity()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, out_channels // 2, 1, bias=False),
            nn.BatchNorm2d(out_channels // 2),
            nn.ReLU(inplace=True))
        self.fu = FourierUnit(out_channels // 2)
        self.conv2 = nn.Conv2d(out_channels // 2, out_channels, 1, bias=False)

    def forward(self, x):
        x = self.conv1(self.downsample(x))
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """Fast Fourier Convolution: local (l) and global (g) channel groups;
    out_l = l2l(l) + g2l(g), out_g = l2g(l) + g2g(g) (g2g spectral)."""

    def __init__(self, cin, cout, k, ratio_gin, ratio_gout, stride=1, padding=0):
        super().__init__()
        in_cg = int(cin * ratio_gin)
        in_cl = cin - in_cg
        out_cg = int(cout * ratio_gout)
        out_cl = cout - out_cg
        self.ratio_gout = ratio_gout

        def conv(a, b):
            if a == 0 or b == 0:
                return nn.Identity()
            return nn.Conv2d(a, b, k, stride, padding, bias=False, padding_mode="reflect")
        self.convl2l = conv(in_cl, out_cl)
        self.convl2g = conv(in_cl, out_cg)
        self.convg2l = conv(in_cg, out_cl)
        self.convg2g = (nn.Identity() if in_cg == 0 or out_cg == 0
                        else SpectralTransform(in_cg, out_cg))

    def forward(self, x):
        x_l, x_g = x if isinstance(x, tuple) else (x, 0)
        out_l, out_g = 0, 0
        if self.ratio_gout != 1:
            out_l = self.convl2l(x_l) + self.convg2l(x_g)
        if self.ratio_gout != 0:
            out_g = self.convl2g(x_l) + self.convg2g(x_g)
        return out_l, out_g


class FFC_BN_ACT(nn.Module):
    def __init__(self, cin, cout, k, ratio_gin, ratio_gout, stride=1, padding=0):
        super().__init__()
        self.ffc = FFC(cin, cout, k, ratio_gin, ratio_gout, stride, padding)
        out_cg = int(cout * ratio_gout)
        self.bn_l = nn.Identity() if ratio_gout == 1 else nn.BatchNorm2d(cout - out_cg)
        self.bn_g = nn.Identity() if ratio_gout == 0 else nn.BatchNorm2d(out_cg)
        self.act_l = nn.Identity() if ratio_gout == 1 else nn.ReLU(inplace=True)
        self.act_g = nn.Identity() if ratio_gout == 0 else nn.ReLU(inplace=True)

    def forward(self, x):
        x_l, x_g = self.ffc(x)
        return self.act_l(self.bn_l(x_l)), self.act_g(self.bn_g(x_g))


class FFCResnetBlock(nn.Module):
    def __init__(self, dim, ratio):
        super().__init__()
        self.conv1 = FFC_BN_ACT(dim, dim, 3, ratio, ratio, padding=1)
        self.conv2 = FFC_BN_ACT(dim, dim, 3, ratio, ratio, padding=1)

    def forward(self, x):
        x_l, x_g = x if isinstance(x, tuple) else (x, 0)
        y_l, y_g = self.conv2(self.conv1((x_l, x_g)))
        return x_l + y_l, x_g + y_g


class ConcatTupleLayer(nn.Module):
    def forward(self, x):
        x_l, x_g = x
        if not torch.is_tensor(x_g):
            return x_l
        return torch.cat(x, dim=1)


class FFCResNetGenerator(nn.Module):
    def __init__(self, ngf=64, n_downsampling=3, n_blocks=18, ratio_g=0.75):
        super().__init__()
        model = [nn.ReflectionPad2d(3), FFC_BN_ACT(INPUT_NC, ngf, 7, 0, 0)]
        for i in range(n_downsampling):
            mult = 2 ** i
            gout = ratio_g if i == n_downsampling - 1 else 0
            model.append(FFC_BN_ACT(min(MAX_FEATURES, ngf * mult), min(MAX_FEATURES, ngf * mult * 2),
                                    3, 0, gout, stride=2, padding=1))
        dim = min(MAX_FEATURES, ngf * 2 ** n_downsampling)
        for _ in range(n_blocks):
            model.append(FFCResnetBlock(dim, ratio_g))
        model.append(ConcatTupleLayer())
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            cin, cout = min(MAX_FEATURES, ngf * mult), min(MAX_FEATURES, ngf * mult // 2)
            model += [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                      nn.BatchNorm2d(cout), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, OUTPUT_NC, 7, padding=0), nn.Sigmoid()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


def build(cfg):
    return FFCResNetGenerator(**cfg).eval()


# --- random weights ---------------------------------------------------------------

def synth_batch(h, w, seed):
    """A smooth, textured RGB image in [0,1] (1,3,h,w) and a box mask (1,1,h,w)."""
    img, mask = synth_case(h, w, seed)
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(mask)[None, None].float()
    return t, m


def random_weights(model, seed, calib_size=64):
    """Random weights whose activations stay in a useful range through any
    depth: He-normal convolutions, BatchNorm running statistics measured on a
    synthetic batch (so they differ per channel, as trained ones do), then a
    random affine and a perturbation of the statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = m.weight[0].numel() if isinstance(m, nn.Conv2d) else m.weight.shape[0] * 9 // 4
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = None  # cumulative average over the calibration batches
                m.reset_running_stats()
        # Calibrate: train-mode forward passes record real batch statistics.
        model.train()
        for k in range(2):
            x, msk = synth_batch(calib_size, calib_size, seed * 7 + k)
            model(torch.cat([x * (1 - msk), msk], 1))
        model.eval()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.6 + 0.8 * torch.rand(c, generator=g))
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
                m.running_mean.add_(0.05 * torch.randn(c, generator=g) * m.running_var.sqrt())
                m.running_var.mul_(0.8 + 0.4 * torch.rand(c, generator=g))
                m.momentum = 0.1
    return model


def arch_metadata(cfg, source):
    return {"format": "pixserve-lama", "arch": "ffc_resnet",
            "ngf": str(cfg["ngf"]), "n_downsampling": str(cfg["n_downsampling"]),
            "n_blocks": str(cfg["n_blocks"]), "ratio_g": repr(float(cfg["ratio_g"])),
            "input_nc": str(INPUT_NC), "output_nc": str(OUTPUT_NC),
            "max_features": str(MAX_FEATURES), "out_act": "sigmoid", "padding": "reflect",
            "source": source}


def config_from_metadata(meta):
    if meta.get("format") != "pixserve-lama" or meta.get("arch") != "ffc_resnet":
        raise ValueError("not a pixserve-lama safetensors file (metadata format/arch)")
    return dict(ngf=int(meta["ngf"]), n_downsampling=int(meta["n_downsampling"]),
                n_blocks=int(meta["n_blocks"]), ratio_g=float(meta["ratio_g"]))


def load_generator(path):
    tensors, meta = load_safetensors(path, copy=False)
    cfg = config_from_metadata(meta)
    model = build(cfg)
    sd = {k[len("generator."):] if k.startswith("generator.") else k: v for k, v in tensors.items()}
    model.load_state_dict(sd, strict=True)  # copies into the model's own tensors
    del sd, tensors
    _trim_heap()
    return model.eval(), cfg


def _trim_heap():
    """Gives freed heap memory back to the system, so RSS after loading counts
    the model, not the allocator's leftovers (glibc only)."""
    import gc
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


# --- release-shaped files (for the converter's tests) -----------------------------

class _FakeDictConfig:
    """Stands in for omegaconf.DictConfig in a checkpoint's hyper_parameters,
    as the public checkpoint has one: a converter must not need omegaconf."""

    def __init__(self, d):
        self._content = d


_FakeDictConfig.__module__ = "omegaconf.dictconfig"
_FakeDictConfig.__qualname__ = "DictConfig"
_FakeDictConfig.__name__ = "DictConfig"


def save_lightning_ckpt(path, model, cfg):
    """A checkpoint shaped like big-lama/models/best.ckpt: the generator under
    state_dict with a 'generator.' prefix, next to a discriminator, loss
    modules and the trainer's bookkeeping."""
    sd = collections.OrderedDict()
    for k, v in model.state_dict().items():
        sd["generator." + k] = v.clone()
    sd["discriminator.model0.0.weight"] = torch.randn(64, 3, 4, 4)
    sd["discriminator.model0.0.bias"] = torch.randn(64)
    sd["loss_resnet_pl.impl.conv1.weight"] = torch.randn(8, 3, 3, 3)
    import types
    fake = types.ModuleType("omegaconf.dictconfig")
    fake.DictConfig = _FakeDictConfig
    sys.modules.setdefault("omegaconf", types.ModuleType("omegaconf"))
    sys.modules["omegaconf.dictconfig"] = fake
    try:
        torch.save({"epoch": 39, "global_step": 100000, "pytorch-lightning_version": "1.2.9",
                    "state_dict": sd,
                    "hyper_parameters": _FakeDictConfig({"generator": dict(
                        kind="ffc_resnet", input_nc=4, output_nc=3, **cfg)}),
                    "optimizer_states": [], "lr_schedulers": []}, path)
    finally:
        del sys.modules["omegaconf.dictconfig"]


class _JitWrapper(nn.Module):
    """(image, mask) -> inpainted image, like IOPaint's big-lama.pt."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, image, mask):
        masked = image * (1 - mask)
        pred = self.generator(torch.cat([masked, mask], dim=1))
        return mask * pred + (1 - mask) * image


def save_torchscript(path, model):
    wrapper = _JitWrapper(model).eval()
    x, m = synth_batch(64, 64, 1)
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, (x, m), check_trace=False)
    traced.save(path)


# --- pre/post-processing (the reference predictor) --------------------------------

def pad_size(n, mod=8, min_size=16):
    """Padded side: a multiple of `mod`, and at least 16 so that the 1/8
    trunk is 2 px or more (reflect padding needs it; pixserve's rule)."""
    return max(min_size, (n + mod - 1) // mod * mod)


def inpaint(model, img_u8, mask_u8):
    """img_u8 (h, w, 3) uint8, mask_u8 (h, w) (non-zero = hole) -> float32
    (h, w, 3): mask * pred + (1 - mask) * image, before quantisation."""
    h, w = mask_u8.shape
    x, img_p, mask_p = net_input(img_u8, mask_u8)
    with torch.no_grad():
        pred = model(x)[0].permute(1, 2, 0).numpy()
    return (mask_p * pred + (1 - mask_p) * img_p)[:h, :w].copy()


def to_u8(res):
    """The original predictors' quantisation: clip(x * 255, 0, 255).astype(uint8),
    which truncates."""
    return np.clip(res * 255, 0, 255).astype(np.uint8)


def synth_case(h, w, seed):
    """Deterministic test image (uint8 h×w×3, structure at several scales plus
    noise) and mask (uint8 h×w, 255 in two boxes)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    for k in range(3):
        img[:, :, k] = (60 + 100 * x / w + 40 * y / h
                        + 25 * np.sin(x * 0.21 + k) * np.cos(y * 0.17 + 0.5 * k))
    img += rng.uniform(0, 30, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(2):
        bh, bw = max(1, h // 3), max(1, w // 4)
        y0, x0 = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
        mask[y0:y0 + bh, x0:x0 + bw] = 255
    return img, mask


def net_input(img, mask):
    """The padded network input (1, 4, H, W) as inpaint() builds it, and the
    padded image (H, W, 3) and mask (H, W, 1) for composing a prediction."""
    h, w = mask.shape
    H, W = pad_size(h), pad_size(w)
    im = np.pad(img.astype(np.float32) / 255, ((0, H - h), (0, W - w), (0, 0)), mode="symmetric")
    m = np.pad((mask > 0).astype(np.float32)[:, :, None], ((0, H - h), (0, W - w), (0, 0)),
               mode="symmetric")
    t_im = torch.from_numpy(im).permute(2, 0, 1)[None]
    t_m = torch.from_numpy(m).permute(2, 0, 1)[None]
    return torch.cat([t_im * (1 - t_m), t_m], dim=1), im, m


def hole_psnr(pred, pred_ref, img_p, m_p, h, w):
    """PSNR (dB) of two predictions' uint8 results inside the hole; inf when
    identical (outside it every engine returns the input)."""
    a = to_u8(m_p * pred + (1 - m_p) * img_p)[:h, :w].astype(np.float64)
    b = to_u8(m_p * pred_ref + (1 - m_p) * img_p)[:h, :w].astype(np.float64)
    sel = m_p[:h, :w, 0] > 0
    mse = ((a - b) ** 2)[sel].mean()
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def accuracy_cases(photos=None, synth=True):
    """(name, image, mask) for the precision checks: two synthetic images
    and the photographs in `photos` (bench/fetch_photos.sh's .npy files),
    each with two box holes (about 17 %: synth_case's masks)."""
    out = []
    if synth:
        for (w, h, seed) in [(512, 512, 1), (1024, 768, 3)]:
            img, mask = synth_case(h, w, seed)
            out.append(("synth-%dx%d" % (w, h), img, mask))
    if photos:
        for i, f in enumerate(sorted(x for x in os.listdir(photos) if x.endswith(".npy"))):
            img = np.load(os.path.join(photos, f))
            _, mask = synth_case(img.shape[0], img.shape[1], 100 + i)
            out.append(("photo-" + f[:-4], img, mask))
    return out


def layer_hooks(model, store):
    """Forward hooks that record every model.N output in NHWC float32 under
    "act.model.N" (tuples as .l and .g), at the padded resolution."""
    def nhwc(t):
        return t.detach()[0].permute(1, 2, 0).contiguous()

    def mk(name):
        def hook(_m, _inp, out):
            if isinstance(out, tuple):
                if torch.is_tensor(out[0]):
                    store["act.%s.l" % name] = nhwc(out[0])
                if torch.is_tensor(out[1]):
                    store["act.%s.g" % name] = nhwc(out[1])
            else:
                store["act." + name] = nhwc(out)
        return hook
    return [m.register_forward_hook(mk("model.%d" % i)) for i, m in enumerate(model.model)]


# --- commands ---------------------------------------------------------------------

def cmd_weights(a):
    if a.config not in CONFIGS:
        sys.exit("unknown config %r (known: %s)" % (a.config, ", ".join(CONFIGS)))
    cfg = CONFIGS[a.config]
    torch.manual_seed(a.seed)
    model = random_weights(build(cfg), a.seed)
    save_safetensors(a.out, model.state_dict(),
                     arch_metadata(cfg, "lama_reference.py random weights, config %s seed %d"
                                   % (a.config, a.seed)))
    if a.ckpt:
        save_lightning_ckpt(a.ckpt, model, cfg)
    if a.torchscript:
        save_torchscript(a.torchscript, model)


def parse_sizes(s):
    out = []
    for part in s.split(","):
        w, h = part.lower().split("x")
        out.append((int(w), int(h)))
    return out


def cmd_cases(a):
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    if a.config and not os.path.exists(a.weights):
        # One process for weights and cases: tests pay for one torch import.
        cmd_weights(argparse.Namespace(config=a.config, seed=a.weights_seed, out=a.weights,
                                       ckpt=None, torchscript=None))
    model, _ = load_generator(a.weights)
    os.makedirs(a.out, exist_ok=True)
    for i, (w, h) in enumerate(parse_sizes(a.sizes)):
        img, mask = synth_case(h, w, a.seed + i)
        store = collections.OrderedDict()
        handles = layer_hooks(model, store) if a.dump else []
        res = inpaint(model, img, mask)
        for hd in handles:
            hd.remove()
        tensors = collections.OrderedDict(image=torch.from_numpy(img), mask=torch.from_numpy(mask),
                                          result=torch.from_numpy(res))
        tensors.update(store)
        save_safetensors(os.path.join(a.out, "case_%dx%d.safetensors" % (w, h)), tensors,
                         {"width": w, "height": h})


def cmd_infer(a):
    from PIL import Image
    torch.set_num_threads(a.threads)
    model, _ = load_generator(a.weights)
    img = np.asarray(Image.open(a.image).convert("RGB"))
    mask = np.asarray(Image.open(a.mask).convert("L"))
    res = to_u8(inpaint(model, img, mask))
    # Outside the mask the original bytes, as pixserve's engines guarantee.
    hole = (mask > 0)[:, :, None]
    Image.fromarray(np.where(hole, res, img)).save(a.out)


def _status_bytes(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def cmd_bench(a):
    """ms per image (median of --repeat after one warm-up), RSS after loading,
    peak RSS of loading and of inference (VmHWM reset in between)."""
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    model, _ = load_generator(a.weights)
    load_ms = (time.perf_counter() - t0) * 1e3
    import gc
    gc.collect()
    rss_loaded, peak_load = _status_bytes("VmRSS"), _status_bytes("VmHWM")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    w, h = parse_sizes(a.size)[0]
    img, mask = synth_case(h, w, 1)
    t0 = time.perf_counter()
    inpaint(model, img, mask)
    first_ms = (time.perf_counter() - t0) * 1e3
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        inpaint(model, img, mask)
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    print(json.dumps({"impl": "pytorch", "size": "%dx%d" % (w, h), "threads": a.threads,
                      "ms": [round(t, 1) for t in times], "median_ms": round(times[len(times) // 2], 1),
                      "first_ms": round(first_ms, 1), "load_ms": round(load_ms, 1),
                      "rss_after_load_bytes": rss_loaded, "peak_rss_load_bytes": peak_load,
                      "peak_rss_bytes": _status_bytes("VmHWM"), "torch": torch.__version__}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("weights", help="random weights for a configuration")
    s.add_argument("--config", default="tiny", help=", ".join(CONFIGS))
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--out", required=True, help="safetensors file to write")
    s.add_argument("--ckpt", help="also write a Lightning-style checkpoint here")
    s.add_argument("--torchscript", help="also write an IOPaint-style TorchScript file here")
    s.set_defaults(fn=cmd_weights)
    s = sub.add_parser("cases", help="reference outputs on synthetic images")
    s.add_argument("--weights", required=True)
    s.add_argument("--sizes", required=True, help="WxH[,WxH...]")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--out", required=True, help="directory")
    s.add_argument("--dump", action="store_true", help="also store every layer's output")
    s.add_argument("--config", help="if --weights does not exist, create it with random "
                                    "weights of this configuration")
    s.add_argument("--weights-seed", type=int, default=1)
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(fn=cmd_cases)
    s = sub.add_parser("infer", help="inpaint IMAGE with MASK into OUT (PNG)")
    s.add_argument("--weights", required=True)
    s.add_argument("image")
    s.add_argument("mask")
    s.add_argument("out")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(fn=cmd_infer)
    s = sub.add_parser("bench", help="time inference")
    s.add_argument("--weights", required=True)
    s.add_argument("--size", default="256x256")
    s.add_argument("--repeat", type=int, default=5)
    s.add_argument("--threads", type=int, default=os.cpu_count())
    s.set_defaults(fn=cmd_bench)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
