"""safetensors_io.py — safetensors files written and read by hand (Debian 12
has no python3-safetensors), shared by the tools: lama_reference.py,
zimage_weights.py (and through it zimage_reference.py), gguf_write.py.

The format: a little-endian u64 header length, the JSON header (name ->
dtype, shape, [begin, end) offsets into the data; "__metadata__": strings),
padded with spaces so the data starts 8-byte aligned, then the data.

Torch is imported only by the functions that take or return tensors, so
numpy-only tools (gguf_write.py) can use the header and numpy writer.
"""
import collections
import concurrent.futures
import json
import math
import mmap
import os
import struct

import numpy as np

NP_DTYPES = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("float64"): "F64",
             np.dtype("int64"): "I64", np.dtype("int32"): "I32", np.dtype("int16"): "I16",
             np.dtype("int8"): "I8", np.dtype("uint8"): "U8", np.dtype("bool"): "BOOL"}


# bytes per element of the codes weights are streamed in
STREAM_SIZES = {"F32": 4, "F16": 2, "BF16": 2}


def torch_dtypes():
    """torch dtype -> safetensors dtype code."""
    import torch
    return {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
            torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
            torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def __getattr__(name):
    # ST_DTYPES (torch dtype -> code), ST_TORCH (code -> torch dtype) and
    # ST_SIZE (bytes per element of the dtypes weights are streamed in),
    # made on first use so that importing this module does not import torch.
    if name == "ST_DTYPES":
        return torch_dtypes()
    if name == "ST_TORCH":
        return {v: k for k, v in torch_dtypes().items()}
    if name == "ST_SIZE":
        return {dt: STREAM_SIZES[c] for dt, c in torch_dtypes().items() if c in STREAM_SIZES}
    raise AttributeError(name)


def header_bytes(items, metadata=None):
    """items: [(name, dtype code, shape, nbytes)] in file order. Returns
    (the file's head: length + padded JSON, the data's total size)."""
    header, off = {}, 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, code, shape, n in items:
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)  # data starts 8-byte aligned
    return struct.pack("<Q", len(hj)) + hj, off


def write_file(path, head, chunks):
    """head, then every chunk (bytes-like), into path through path.tmp, so
    a reader never sees half a file."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(head)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def save_arrays(path, arrays, metadata=None):
    """arrays: [(name, numpy array)], stored little-endian in their own dtypes."""
    items, blobs = [], []
    for name, a in arrays:
        a = np.ascontiguousarray(a)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        code = NP_DTYPES.get(a.dtype)
        if code is None:
            raise ValueError("%s: dtype %s cannot be stored" % (name, a.dtype))
        b = a.tobytes()
        items.append((name, code, a.shape, len(b)))
        blobs.append(b)
    head, _ = header_bytes(items, metadata)
    write_file(path, head, blobs)


def save_safetensors(path, tensors, metadata=None):
    """tensors: name -> torch tensor, stored in their own dtypes (contiguous
    CPU copies are written in order)."""
    import torch
    codes = torch_dtypes()
    items, blobs = [], []
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in codes:
            raise ValueError("%s: dtype %s cannot be stored" % (name, t.dtype))
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        items.append((name, codes[t.dtype], t.shape, len(raw)))
        blobs.append(raw)
    head, _ = header_bytes(items, metadata)
    write_file(path, head, blobs)


def write_safetensors_stream(path, entries, dtype, metadata=None):
    """entries: [(name, shape, producer)] — each producer() is called once,
    in order, and its tensor written as dtype; nothing is kept in memory.
    Returns the data's size in bytes."""
    import torch
    code = torch_dtypes()[dtype]
    es = STREAM_SIZES[code]
    head, off = header_bytes([(name, code, shape, int(np.prod(shape)) * es) for name, shape, _ in entries],
                             metadata)

    def make(e):
        return e[0], e[1], e[2]().to(dtype).contiguous()

    # Producers run a few at a time on threads (torch releases the GIL; each
    # tensor has its own generator, so the bytes do not depend on the order),
    # and are written in order; at most `ahead` tensors are held at once.
    workers = max(1, min(8, os.cpu_count() or 1))
    ahead = 2 * workers

    def chunks(ex):
        pending = collections.deque()
        it = iter(entries)
        for e in it:
            pending.append(ex.submit(make, e))
            if len(pending) >= ahead:
                break
        while pending:
            name, shape, t = pending.popleft().result()
            for e in it:
                pending.append(ex.submit(make, e))
                break
            if list(t.shape) != list(shape):
                raise AssertionError("%s: produced %s, declared %s" % (name, list(t.shape), shape))
            yield memoryview(t.reshape(-1).view(torch.uint8).numpy())
            del t

    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        write_file(path, head, chunks(ex))
    return off


def load_safetensors(path, copy=True):
    """Returns (OrderedDict name -> torch tensor in its stored dtype,
    metadata dict). copy=False gives tensors that view a private mapping of
    the file (no read of the whole file into memory; the mapping lives as
    long as they do)."""
    import torch
    to_torch = {v: k for k, v in torch_dtypes().items()}
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    (n,) = struct.unpack("<Q", mm[:8])
    header = json.loads(mm[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = collections.OrderedDict()
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, _ = e["data_offsets"]
        dt = to_torch[e["dtype"]]
        numel = math.prod(e["shape"])
        t = torch.frombuffer(mm, dtype=dt, count=numel, offset=base + b) if numel else torch.empty(0, dtype=dt)
        t = t.reshape(e["shape"])
        out[name] = t.clone() if copy else t
    return out, meta
