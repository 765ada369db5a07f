#!/usr/bin/python3
"""gguf_write.py — a GGUF v3 writer and an independent numpy dequantizer, for
pixserve's tests of its GGUF reader (src/engine/zimage/gguf.c). Needs only
numpy; written from the public format description (ggml's block layouts).

  write IN.safetensors OUT.gguf --type T [--set NAME=T ...] [--version 3]
        [--alignment N] [--kv-extra]
      Converts every tensor of a safetensors file to GGUF with type T (F32,
      F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K,
      Q6_K). A tensor whose rows (last
      PyTorch dimension) are not a multiple of T's block stays F32, as real
      converters do; --set gives one tensor another type. The quantizers are
      simple (no search for the best scales) but produce valid blocks.
      --dequant OUT2.safetensors also writes what `dequant` would (the file
      just written read back and decoded), saving a second start.
  dequant IN.gguf OUT.safetensors
      Decodes every tensor of a GGUF file with numpy into an F32 safetensors
      file with the same names and PyTorch shapes (dims outermost first).
  info IN.gguf
      Prints version, keys and tensors.

GGUF: magic "GGUF", u32 version, u64 tensor count, u64 kv count, kv pairs
(string key, u32 type, value), tensor infos (string name, u32 n_dims, u64
dims innermost first, u32 type, u64 offset into the data section), padding
to general.alignment (default 32), data. Strings are u64 length + bytes.
"""
import argparse
import json
import struct
import sys

import numpy as np

import safetensors_io

TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20),
         "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84),
         "Q3_K": (11, 256, 110), "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176),
         "Q6_K": (14, 256, 210), "BF16": (30, 1, 2)}
BY_ID = {v[0]: k for k, v in TYPES.items()}

KV_U8, KV_I8, KV_U16, KV_I16, KV_U32, KV_I32, KV_F32, KV_BOOL, KV_STR, KV_ARR, KV_U64, KV_I64, \
    KV_F64 = range(13)
KV_FMT = {KV_U8: "<B", KV_I8: "<b", KV_U16: "<H", KV_I16: "<h", KV_U32: "<I", KV_I32: "<i",
          KV_F32: "<f", KV_BOOL: "<?", KV_U64: "<Q", KV_I64: "<q", KV_F64: "<d"}


# --- safetensors ----------------------------------------------------------------------

def read_safetensors(path):
    """OrderedDict-like list of (name, float32 array) in file order."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    hdr = json.loads(raw[8:8 + n])
    hdr.pop("__metadata__", None)
    base = 8 + n
    out = []
    for name, e in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, en = e["data_offsets"]
        buf = raw[base + b:base + en]
        dt = e["dtype"]
        if dt == "F32":
            a = np.frombuffer(buf, "<f4")
        elif dt == "F16":
            a = np.frombuffer(buf, "<f2").astype(np.float32)
        elif dt == "BF16":
            a = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise SystemExit("%s: dtype %s not supported" % (name, dt))
        out.append((name, a.reshape(e["shape"]).astype(np.float32)))
    return out


def write_safetensors(path, tensors):
    """tensors: [(name, array)], written as F32."""
    safetensors_io.save_arrays(path, [(n, np.asarray(a, np.float32)) for n, a in tensors])


# --- quantizers (x: float32 array of whole blocks -> bytes) --------------------------------

def f16(a):
    return np.asarray(a, np.float32).astype(np.float16)


def inv(d):
    d = d.astype(np.float32)
    return np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)


def q8_0(x):
    b = x.reshape(-1, 32)
    d = f16(np.abs(b).max(1) / 127)
    q = np.clip(np.rint(b * inv(d)[:, None]), -127, 127).astype(np.int8)
    return np.concatenate([d.view(np.uint8).reshape(-1, 2), q.view(np.uint8)], 1).tobytes()


def signed_absmax(b):
    return np.take_along_axis(b, np.abs(b).argmax(1)[:, None], 1)[:, 0]


def q4_0(x):
    b = x.reshape(-1, 32)
    d = f16(signed_absmax(b) / -8)
    q = np.clip(np.rint(b * inv(d)[:, None]) + 8, 0, 15).astype(np.uint8)
    qs = q[:, :16] | (q[:, 16:] << 4)
    return np.concatenate([d.view(np.uint8).reshape(-1, 2), qs], 1).tobytes()


def q4_1_q5(x, tname):
    """Q4_1 / Q5_1 (x = d·q + m over the block's range) and Q5_0 (x = d·(q − 16))."""
    b = x.reshape(-1, 32)
    if tname == "Q5_0":
        d = f16(signed_absmax(b) / -16)
        q = np.clip(np.rint(b * inv(d)[:, None]) + 16, 0, 31).astype(np.uint32)
    else:
        nmax = 15 if tname == "Q4_1" else 31
        m = f16(b.min(1))
        d = f16((b.max(1) - m.astype(np.float32)) / nmax)
        q = np.clip(np.rint((b - m.astype(np.float32)[:, None]) * inv(d)[:, None]), 0, nmax).astype(np.uint32)
    qs = ((q[:, :16] & 15) | ((q[:, 16:] & 15) << 4)).astype(np.uint8)
    parts = [d.view(np.uint8).reshape(-1, 2)]
    if tname != "Q5_0":
        parts.append(m.view(np.uint8).reshape(-1, 2))
    if tname != "Q4_1":
        hb = (q >> 4) & 1
        h = (hb << np.arange(32, dtype=np.uint32)).sum(1).astype("<u4")
        parts.append(h.view(np.uint8).reshape(-1, 4))
    parts.append(qs)
    return np.concatenate(parts, 1).tobytes()


def pack_2bit(q):
    """(blocks, 256) 2-bit values -> (blocks, 64): element 128n + 32j + l in
    bits 2j of byte 32n + l."""
    q = q.reshape(-1, 2, 4, 32).astype(np.uint8)
    return (q[:, :, 0] | (q[:, :, 1] << 2) | (q[:, :, 2] << 4) | (q[:, :, 3] << 6)).reshape(-1, 64)


def q2_k(x):
    b = x.reshape(-1, 16, 16)
    mn = np.minimum(b.min(2), 0)
    scale = (b.max(2) - mn) / 3
    mins = -mn
    d, dmin = f16(scale.max(1) / 15), f16(mins.max(1) / 15)
    sc = np.clip(np.rint(scale * inv(d)[:, None]), 0, 15).astype(np.uint8)
    mq = np.clip(np.rint(mins * inv(dmin)[:, None]), 0, 15).astype(np.uint8)
    ed = d.astype(np.float32)[:, None] * sc
    em = dmin.astype(np.float32)[:, None] * mq
    q = np.clip(np.rint((b + em[:, :, None]) * inv(ed)[:, :, None]), 0, 3)
    return np.concatenate([sc | (mq << 4), pack_2bit(q.reshape(-1, 256)),
                           d.view(np.uint8).reshape(-1, 2), dmin.view(np.uint8).reshape(-1, 2)], 1).tobytes()


def q3_k(x):
    b = x.reshape(-1, 16, 16)
    scale = signed_absmax(b.reshape(-1, 16)).reshape(-1, 16) / -4
    d = f16(np.abs(scale).max(1) / 31)
    sc = np.clip(np.rint(scale * inv(d)[:, None]), -32, 31).astype(np.int32)
    eff = d.astype(np.float32)[:, None] * sc
    q = np.clip(np.rint(b * inv(eff)[:, :, None]) + 4, 0, 7).astype(np.uint8).reshape(-1, 2, 4, 32)
    hmask = np.zeros((q.shape[0], 32), np.uint8)
    for n in range(2):
        for j in range(4):
            hmask |= (q[:, n, j] >> 2) << (4 * n + j)
    us = (sc + 32).astype(np.uint8)
    s = np.zeros((us.shape[0], 12), np.uint8)
    s[:, 0:4] = (us[:, 0:4] & 15) | ((us[:, 8:12] & 15) << 4)
    s[:, 4:8] = (us[:, 4:8] & 15) | ((us[:, 12:16] & 15) << 4)
    s[:, 8:12] = (us[:, 0:4] >> 4) | ((us[:, 4:8] >> 4) << 2) | ((us[:, 8:12] >> 4) << 4) | \
        ((us[:, 12:16] >> 4) << 6)
    return np.concatenate([hmask, pack_2bit((q & 3).reshape(-1, 256)), s,
                           d.view(np.uint8).reshape(-1, 2)], 1).tobytes()


def pack_k_scales(sc, m):
    """8 six-bit scales and mins per block -> 12 bytes (ggml's K-quant packing)."""
    s = np.zeros((sc.shape[0], 12), np.uint8)
    s[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    s[:, 4:8] = m[:, 0:4] | ((m[:, 4:8] >> 4) << 6)
    s[:, 8:12] = (sc[:, 4:8] & 15) | ((m[:, 4:8] & 15) << 4)
    return s


def qk_45(x, bits):
    nmax = (1 << bits) - 1
    b = x.reshape(-1, 8, 32)
    mn = np.minimum(b.min(2), 0)
    scale = (b.max(2) - mn) / nmax
    mins = -mn
    d = f16(scale.max(1) / 63)
    dmin = f16(mins.max(1) / 63)
    sc = np.clip(np.rint(scale * inv(d)[:, None]), 0, 63).astype(np.uint8)
    mq = np.clip(np.rint(mins * inv(dmin)[:, None]), 0, 63).astype(np.uint8)
    ed = d.astype(np.float32)[:, None] * sc
    em = dmin.astype(np.float32)[:, None] * mq
    q = np.clip(np.rint((b + em[:, :, None]) * inv(ed)[:, :, None]), 0, nmax).astype(np.uint8)
    q = q.reshape(-1, 4, 2, 32)  # (block, group of 64, half, l)
    qs = ((q[:, :, 0] & 15) | ((q[:, :, 1] & 15) << 4)).reshape(-1, 128)
    parts = [d.view(np.uint8).reshape(-1, 2), dmin.view(np.uint8).reshape(-1, 2),
             pack_k_scales(sc, mq)]
    if bits == 5:
        hb = (q >> 4) & 1  # (block, g, half, l)
        qh = np.zeros((q.shape[0], 32), np.uint8)
        for g in range(4):
            qh |= hb[:, g, 0] << (2 * g)
            qh |= hb[:, g, 1] << (2 * g + 1)
        parts.append(qh)
    parts.append(qs)
    return np.concatenate(parts, 1).tobytes()


def q6_k(x):
    b = x.reshape(-1, 16, 16)
    scale = signed_absmax(b.reshape(-1, 16)).reshape(-1, 16) / -32
    d = f16(np.abs(scale).max(1) / 127)
    sc = np.clip(np.rint(scale * inv(d)[:, None]), -128, 127).astype(np.int8)
    eff = d.astype(np.float32)[:, None] * sc
    q = np.clip(np.rint(b * inv(eff)[:, :, None]) + 32, 0, 63).astype(np.uint8)
    q = q.reshape(-1, 2, 4, 32)  # (block, half, which quarter, l)
    ql = np.concatenate([(q[:, :, 0] & 15) | ((q[:, :, 2] & 15) << 4),
                         (q[:, :, 1] & 15) | ((q[:, :, 3] & 15) << 4)], 2).reshape(-1, 128)
    qh = ((q[:, :, 0] >> 4) | ((q[:, :, 1] >> 4) << 2) | ((q[:, :, 2] >> 4) << 4) |
          ((q[:, :, 3] >> 4) << 6)).reshape(-1, 64)
    return np.concatenate([ql, qh, sc.view(np.uint8), d.view(np.uint8).reshape(-1, 2)], 1).tobytes()


def encode(a, tname):
    x = np.ascontiguousarray(a, np.float32).reshape(-1)
    if tname == "F32":
        return x.astype("<f4").tobytes()
    if tname == "F16":
        return x.astype("<f2").tobytes()
    if tname == "BF16":
        u = x.view(np.uint32).astype(np.uint64)
        r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
        return r.astype("<u2").tobytes()
    if tname in ("Q4_1", "Q5_0", "Q5_1"):
        return q4_1_q5(x, tname)
    return {"Q8_0": q8_0, "Q4_0": q4_0, "Q2_K": q2_k, "Q3_K": q3_k, "Q4_K": lambda v: qk_45(v, 4),
            "Q5_K": lambda v: qk_45(v, 5), "Q6_K": q6_k}[tname](x)


# --- dequantizer (bytes -> float32), independent of the C code --------------------------

def h(u8pair):
    return u8pair.copy().view("<f2").astype(np.float32).reshape(-1)


def unpack_k_scales(s):
    sc = np.zeros((s.shape[0], 8), np.int32)
    m = np.zeros((s.shape[0], 8), np.int32)
    sc[:, :4] = s[:, 0:4] & 63
    m[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 15) | ((s[:, 0:4] >> 6) << 4)
    m[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, m


def decode(buf, tname, n):
    tid, bs, sz = TYPES[tname]
    raw = np.frombuffer(buf, np.uint8)
    if tname == "F32":
        return raw.view("<f4").astype(np.float32)
    if tname == "F16":
        return raw.view("<f2").astype(np.float32)
    if tname == "BF16":
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    blk = raw.reshape(-1, sz)
    if tname == "Q8_0":
        return (h(blk[:, :2])[:, None] * blk[:, 2:].view(np.int8)).reshape(-1)
    if tname == "Q4_0":
        qs = blk[:, 2:].astype(np.int32)
        q = np.concatenate([qs & 15, qs >> 4], 1) - 8
        return (h(blk[:, :2])[:, None] * q).reshape(-1)
    if tname in ("Q4_1", "Q5_0", "Q5_1"):
        d = h(blk[:, :2])
        at = 2 if tname == "Q5_0" else 4
        m = np.zeros_like(d) if tname == "Q5_0" else h(blk[:, 2:4])
        hb = np.zeros((blk.shape[0], 32), np.int32)
        if tname != "Q4_1":
            word = blk[:, at:at + 4].copy().view("<u4").reshape(-1).astype(np.int64)
            hb = ((word[:, None] >> np.arange(32)) & 1).astype(np.int32)
            at += 4
        qs = blk[:, at:at + 16].astype(np.int32)
        q = np.concatenate([qs & 15, qs >> 4], 1) + 16 * hb
        if tname == "Q5_0":
            return (d[:, None] * (q - 16).astype(np.float32)).reshape(-1)
        return (d[:, None] * q.astype(np.float32) + m[:, None]).reshape(-1)
    if tname in ("Q2_K", "Q3_K"):
        # 2-bit fields: element 128n + 32j + l in bits 2j of byte 32n + l
        qoff = 16 if tname == "Q2_K" else 32
        qs = blk[:, qoff:qoff + 64].astype(np.int32).reshape(-1, 2, 1, 32)
        low = ((qs >> (2 * np.arange(4))[None, None, :, None]) & 3).reshape(-1, 256)
        e = np.arange(256)
        sub = 8 * (e // 128) + 2 * (e % 128 // 32) + (e % 32) // 16  # scale index per element
        if tname == "Q2_K":
            sc = blk[:, :16].astype(np.int32)
            d, dmin = h(blk[:, 80:82]), h(blk[:, 82:84])
            dl = d[:, None] * (sc & 15)[:, sub].astype(np.float32)
            ml = dmin[:, None] * (sc >> 4)[:, sub].astype(np.float32)
            return (dl * low.astype(np.float32) - ml).reshape(-1)
        hm = blk[:, :32].astype(np.int32)
        bit = 4 * (e // 128) + e % 128 // 32
        high = (hm[:, e % 32] >> bit) & 1
        s = blk[:, 96:108].astype(np.int32)
        us = np.zeros((blk.shape[0], 16), np.int32)
        for i in range(16):
            lo = s[:, i] & 15 if i < 8 else s[:, i - 8] >> 4
            us[:, i] = lo | (((s[:, 8 + i % 4] >> (2 * (i // 4))) & 3) << 4)
        dl = h(blk[:, 108:110])[:, None] * (us - 32)[:, sub].astype(np.float32)
        return (dl * (low - 4 * (1 - high)).astype(np.float32)).reshape(-1)
    if tname in ("Q4_K", "Q5_K"):
        d, dmin = h(blk[:, 0:2]), h(blk[:, 2:4])
        sc, m = unpack_k_scales(blk[:, 4:16])
        qh = blk[:, 16:48].astype(np.int32) if tname == "Q5_K" else None
        qs = blk[:, 48:].astype(np.int32) if qh is not None else blk[:, 16:].astype(np.int32)
        out = np.zeros((blk.shape[0], 256), np.float32)
        for g in range(4):
            lo, hi = qs[:, 32 * g:32 * g + 32] & 15, qs[:, 32 * g:32 * g + 32] >> 4
            if qh is not None:
                lo = lo + ((qh >> (2 * g)) & 1) * 16
                hi = hi + ((qh >> (2 * g + 1)) & 1) * 16
            for half, q in ((0, lo), (1, hi)):
                j = 2 * g + half
                out[:, 64 * g + 32 * half:64 * g + 32 * half + 32] = \
                    (d * sc[:, j])[:, None] * q - (dmin * m[:, j])[:, None]
        return out.reshape(-1)
    if tname == "Q6_K":
        ql = blk[:, :128].astype(np.int32)
        qh = blk[:, 128:192].astype(np.int32)
        sc = blk[:, 192:208].view(np.int8).astype(np.float32)
        d = h(blk[:, 208:210])
        out = np.zeros((blk.shape[0], 256), np.float32)
        for half in range(2):
            L = ql[:, 64 * half:64 * half + 64]
            H = qh[:, 32 * half:32 * half + 32]
            quarters = [(L[:, :32] & 15) | ((H & 3) << 4), (L[:, 32:] & 15) | (((H >> 2) & 3) << 4),
                        (L[:, :32] >> 4) | (((H >> 4) & 3) << 4), (L[:, 32:] >> 4) | (((H >> 6) & 3) << 4)]
            for k, q in enumerate(quarters):
                for sub in range(2):
                    e0 = 128 * half + 32 * k + 16 * sub
                    s = sc[:, 8 * half + 2 * k + sub]
                    out[:, e0:e0 + 16] = (d * s)[:, None] * (q[:, 16 * sub:16 * sub + 16] - 32)
        return out.reshape(-1)
    raise SystemExit("cannot decode " + tname)


# --- GGUF container ---------------------------------------------------------------------

def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv_bytes(key, typ, val, elem=None):
    out = gstr(key) + struct.pack("<I", typ)
    if typ == KV_STR:
        return out + gstr(val)
    if typ == KV_ARR:
        out += struct.pack("<IQ", elem, len(val))
        for v in val:
            out += gstr(v) if elem == KV_STR else struct.pack(KV_FMT[elem], v)
        return out
    return out + struct.pack(KV_FMT[typ], val)


def write_gguf(path, tensors, version=3, alignment=None, extra_kv=False):
    """tensors: [(name, float32 array, type name)]."""
    kvs = [kv_bytes("general.architecture", KV_STR, "pixserve-test")]
    if alignment is not None:
        kvs.append(kv_bytes("general.alignment", KV_U32, alignment))
    if extra_kv:
        kvs += [kv_bytes("test.u8", KV_U8, 7), kv_bytes("test.i16", KV_I16, -3),
                kv_bytes("test.f64", KV_F64, 0.5), kv_bytes("test.bool", KV_BOOL, True),
                kv_bytes("test.u64", KV_U64, 1 << 40), kv_bytes("test.f32", KV_F32, 1.5),
                kv_bytes("test.ints", KV_ARR, [1, -2, 3], KV_I32),
                kv_bytes("test.strs", KV_ARR, ["a", "bc", ""], KV_STR)]
    align = alignment or 32
    infos, blobs, off = [], [], 0
    for name, a, t in tensors:
        data = encode(a, t)
        dims = list(reversed(a.shape)) or [1]
        infos.append(gstr(name) + struct.pack("<I", len(dims)) +
                     b"".join(struct.pack("<Q", d) for d in dims) +
                     struct.pack("<IQ", TYPES[t][0], off))
        pad = -len(data) % align
        blobs.append(data + b"\0" * pad)
        off += len(data) + pad
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs) + \
        b"".join(infos)
    head += b"\0" * (-len(head) % align)
    with open(path, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)


def read_gguf(path):
    """(version, {key: value}, [(name, shape outermost first, type name, bytes)])."""
    with open(path, "rb") as f:
        raw = f.read()
    at = [0]

    def take(fmt):
        v = struct.unpack_from(fmt, raw, at[0])
        at[0] += struct.calcsize(fmt)
        return v[0]

    def s():
        n = take("<Q")
        v = raw[at[0]:at[0] + n].decode()
        at[0] += n
        return v

    assert raw[:4] == b"GGUF", "not GGUF"
    at[0] = 4
    version, nt, nkv = take("<I"), take("<Q"), take("<Q")
    kv = {}
    for _ in range(nkv):
        k, t = s(), take("<I")
        if t == KV_STR:
            kv[k] = s()
        elif t == KV_ARR:
            et, n = take("<I"), take("<Q")
            kv[k] = [s() if et == KV_STR else take(KV_FMT[et]) for _ in range(n)]
        else:
            kv[k] = take(KV_FMT[t])
    infos = []
    for _ in range(nt):
        name = s()
        nd = take("<I")
        dims = [take("<Q") for _ in range(nd)]
        t, off = take("<I"), take("<Q")
        infos.append((name, list(reversed(dims)), BY_ID[t], off))
    align = kv.get("general.alignment", 32)
    base = at[0] + (-at[0] % align)
    out = []
    for name, shape, t, off in infos:
        n = int(np.prod(shape))
        _, bs, sz = TYPES[t]
        nb = n // bs * sz
        out.append((name, shape, t, raw[base + off:base + off + nb]))
    return version, kv, out


def dequant(src, out):
    _, _, ts = read_gguf(src)
    write_safetensors(out, [(n, decode(b, t, int(np.prod(s))).reshape(s)) for n, s, t, b in ts])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("src")
    w.add_argument("out")
    w.add_argument("--type", default="F32", choices=sorted(TYPES))
    w.add_argument("--set", action="append", default=[], help="NAME=TYPE")
    w.add_argument("--version", type=int, default=3)
    w.add_argument("--alignment", type=int)
    w.add_argument("--kv-extra", action="store_true")
    w.add_argument("--dequant", metavar="OUT2")
    d = sub.add_parser("dequant")
    d.add_argument("src")
    d.add_argument("out")
    i = sub.add_parser("info")
    i.add_argument("src")
    a = ap.parse_args()
    if a.cmd == "write":
        per = dict(x.split("=", 1) for x in a.set)
        ts, kept = [], 0
        for name, arr in read_safetensors(a.src):
            t = per.get(name, a.type)
            row = arr.shape[-1] if arr.ndim else 1
            if row % TYPES[t][1]:
                t, kept = "F32", kept + 1
            ts.append((name, arr, t))
        write_gguf(a.out, ts, a.version, a.alignment, a.kv_extra)
        if a.dequant:
            dequant(a.out, a.dequant)
    elif a.cmd == "dequant":
        dequant(a.src, a.out)
    else:
        v, kv, ts = read_gguf(a.src)
        print("version", v)
        for k, val in kv.items():
            print("kv", k, val)
        for n, s, t, b in ts:
            print("tensor", n, s, t, len(b))


if __name__ == "__main__":
    sys.exit(main())
