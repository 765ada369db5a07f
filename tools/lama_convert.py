#!/usr/bin/python3
"""lama_convert.py — LaMa generator weights into one safetensors file for pixserve.

Reads either of the public forms of big-lama:
  * big-lama/models/best.ckpt, a PyTorch Lightning checkpoint (generator
    tensors under state_dict, prefixed "generator.");
  * IOPaint's TorchScript big-lama.pt, a traced (image, mask) module with the
    generator inside it;
and writes the generator's tensors (float32; BatchNorm's num_batches_tracked
as int64) under the generator's own names ("model.1.ffc.convl2l.weight", ...)
with the architecture in the metadata: format, arch, ngf, n_downsampling,
n_blocks, ratio_g, ... The architecture is inferred from the tensors and then
checked against the reference generator (tools/lama_reference.py): every
expected tensor present with its shape, nothing left over. Anything else
fails with a message that says what was wrong.

usage: lama_convert.py INPUT OUTPUT.safetensors
"""
import collections
import io
import os
import pickle
import re
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import lama_reference as ref  # noqa: E402


class ConvertError(Exception):
    pass


# The checkpoint's pickle names classes from packages we do not have (omegaconf
# configs in hyper_parameters, pytorch_lightning callbacks...). Tensors come
# only from torch, collections and numpy; anything else becomes an inert stub,
# so loading needs neither those packages nor runs their code.
_TRUSTED = ("torch", "collections", "numpy", "builtins", "_codecs", "copyreg")


class _Stub:
    def __init__(self, *a, **k):
        pass

    def __setstate__(self, state):
        self._state = state


class _StubUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.split(".")[0] in _TRUSTED:
            return super().find_class(module, name)
        return type(name, (_Stub,), {"__module__": "stub." + module})


def _stub_pickle_module():
    """A copy of the pickle module whose Unpickler stubs foreign classes."""
    import types
    m = types.ModuleType("pickle")
    m.__dict__.update(pickle.__dict__)
    m.Unpickler = _StubUnpickler
    return m


def _torch_load_stubbed(path):
    mod = _stub_pickle_module()
    # torch 1.13 (Debian 12) ignores load()'s pickle_module argument unless
    # weights_only is set ("else: pickle_module = pickle"), so the module it
    # uses is swapped for the duration of the call.
    import torch.serialization as ser
    saved = ser.pickle
    ser.pickle = mod
    try:
        return torch.load(path, map_location="cpu", pickle_module=mod)
    finally:
        ser.pickle = saved


def _is_torchscript(path):
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") or n.endswith("/code/__torch__.py")
               or "/code/" in n for n in names)


def read_tensors(path):
    """Returns (OrderedDict name -> tensor, description of the source)."""
    if not os.path.isfile(path):
        raise ConvertError("%s: no such file" % path)
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 2:
        raise ConvertError("%s: empty or truncated file" % path)
    if _is_torchscript(path):
        try:
            m = torch.jit.load(path, map_location="cpu")
        except Exception as e:  # torch raises RuntimeError with C++ text
            raise ConvertError("%s: looks like TorchScript but cannot be loaded: %s"
                               % (path, str(e).splitlines()[0]))
        return collections.OrderedDict(m.state_dict()), "torchscript"
    if head[:2] != b"PK" and head[:1] != b"\x80":
        raise ConvertError("%s: neither a PyTorch checkpoint (zip or pickle) nor TorchScript"
                           % path)
    try:
        obj = _torch_load_stubbed(path)
    except Exception as e:
        raise ConvertError("%s: cannot be read as a PyTorch checkpoint: %s"
                           % (path, str(e).splitlines()[0] if str(e) else type(e).__name__))
    if not isinstance(obj, dict):
        raise ConvertError("%s: checkpoint holds a %s, not a dict with a state_dict"
                           % (path, type(obj).__name__))
    sd = obj.get("state_dict", obj)
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ConvertError("%s: no state_dict of tensors in the checkpoint" % path)
    return collections.OrderedDict(sd), "lightning checkpoint"


_ANCHOR = "model.1.ffc.convl2l.weight"


def generator_tensors(sd, path):
    """The generator's tensors with whatever prefix they carry removed."""
    prefixes = [k[:-len(_ANCHOR)] for k in sd if k.endswith(_ANCHOR)]
    if not prefixes:
        raise ConvertError("%s: no LaMa generator found (no tensor named *%s)" % (path, _ANCHOR))
    # Prefer the generator over, e.g., an EMA copy: the shortest prefix that
    # is empty or names the generator.
    prefixes.sort(key=lambda p: (p not in ("", "generator."), len(p)))
    pre = prefixes[0]
    return collections.OrderedDict((k[len(pre):], v) for k, v in sd.items()
                                   if k.startswith(pre) and k[len(pre):].startswith("model."))


def infer_config(g, path):
    def shape(name):
        if name not in g:
            raise ConvertError("%s: generator tensor %s is missing" % (path, name))
        return tuple(g[name].shape)

    ngf = shape("model.1.ffc.convl2l.weight")[0]
    if shape("model.1.ffc.convl2l.weight")[1:] != (ref.INPUT_NC, 7, 7):
        raise ConvertError("%s: model.1 is %s, expected a 7x7 convolution over %d input channels"
                           % (path, shape("model.1.ffc.convl2l.weight"), ref.INPUT_NC))
    idx = sorted({int(m.group(1)) for k in g for m in [re.match(r"model\.(\d+)\.", k)] if m})
    blocks = [i for i in idx if "model.%d.conv1.ffc.convl2l.weight" % i in g]
    if not blocks:
        raise ConvertError("%s: no FFC residual blocks (model.N.conv1.*) found" % path)
    n_down = blocks[0] - 2
    if n_down < 1:
        raise ConvertError("%s: residual blocks start at model.%d; expected downsampling layers "
                           "before them" % (path, blocks[0]))
    if blocks != list(range(blocks[0], blocks[0] + len(blocks))):
        raise ConvertError("%s: residual blocks are not consecutive: %s" % (path, blocks))
    b0 = "model.%d.conv1.ffc." % blocks[0]
    cl = shape(b0 + "convl2l.weight")[0]
    cg = shape(b0 + "convl2g.weight")[0]
    ratio = cg / float(cl + cg)
    cfg = dict(ngf=ngf, n_downsampling=n_down, n_blocks=len(blocks), ratio_g=ratio)
    # int(dim * ratio) must give back cg exactly.
    if int((cl + cg) * ratio) != cg:
        raise ConvertError("%s: global/local split %d/%d has no exact ratio" % (path, cg, cl))
    return cfg


def check_against_reference(g, cfg, path):
    model = ref.build(cfg)
    want = model.state_dict()
    missing = [k for k in want if k not in g]
    extra = [k for k in g if k not in want]
    if missing or extra:
        raise ConvertError("%s: tensors do not match a LaMa generator with %s: missing %s%s"
                           % (path, cfg, missing[:5] or "none",
                              "; unexpected %s" % extra[:5] if extra else ""))
    for k, v in want.items():
        if tuple(g[k].shape) != tuple(v.shape):
            raise ConvertError("%s: %s has shape %s, expected %s"
                               % (path, k, tuple(g[k].shape), tuple(v.shape)))
        if g[k].is_floating_point() != v.is_floating_point():
            raise ConvertError("%s: %s has dtype %s" % (path, k, g[k].dtype))
    out = collections.OrderedDict()
    for k in want:  # the module's own order
        t = g[k]
        out[k] = t.to(torch.float32) if t.is_floating_point() else t.to(torch.int64)
        if out[k].is_floating_point() and not torch.isfinite(out[k]).all():
            raise ConvertError("%s: %s has non-finite values" % (path, k))
    return out


def convert(src, dst):
    sd, kind = read_tensors(src)
    g = generator_tensors(sd, src)
    cfg = infer_config(g, src)
    tensors = check_against_reference(g, cfg, src)
    meta = ref.arch_metadata(cfg, "lama_convert.py from %s %s" % (kind, os.path.basename(src)))
    ref.save_safetensors(dst, tensors, meta)
    return cfg, kind, len(tensors), sum(t.numel() for t in tensors.values())


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip().split("\n\n")[-1], file=sys.stderr if len(argv) != 2 else sys.stdout)
        return 0 if len(argv) == 2 else 2
    try:
        cfg, kind, n, numel = convert(argv[1], argv[2])
    except ConvertError as e:
        print("lama_convert: %s" % e, file=sys.stderr)
        return 1
    print("lama_convert: %s (%s) -> %s: %d tensors, %.2f M elements, ngf %d, %d downsamplings, "
          "%d blocks, ratio %.2f" % (argv[1], kind, argv[2], n, numel / 1e6, cfg["ngf"],
                                     cfg["n_downsampling"], cfg["n_blocks"], cfg["ratio_g"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
