#!/usr/bin/python3
"""Writes the seed corpora of fuzz_decode and fuzz_exif (fuzz/corpus/decode,
fuzz/corpus/exif): tiny valid files of each variant the decoders handle, so
the fuzzer starts from inputs that reach deep into each code path. Every
file stays under 2 KB. PNG is written by hand here because PIL cannot write
Adam7, 16-bit gray+alpha or low bit depths. Run from the repository root:
    /usr/bin/python3 fuzz/make_corpus.py
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image

OUT = "fuzz/corpus/decode"
EXIF_OUT = "fuzz/corpus/exif"


def chunk(tag, data):
    body = tag + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def pack_rows(a, depth):
    """a: (h, w*channels) integer samples -> packed scanlines without filter bytes."""
    if depth == 16:
        return [row.astype(">u2").tobytes() for row in a]
    if depth == 8:
        return [row.astype("u1").tobytes() for row in a]
    per = 8 // depth
    rows = []
    for row in a:
        bits = bytearray((len(row) + per - 1) // per)
        for i, v in enumerate(row):
            bits[i // per] |= int(v) << (8 - depth * (i % per + 1))
        rows.append(bytes(bits))
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(samples, color_type, depth, interlace=False, plte=None, trns=None):
    """samples: (h, w, channels) array."""
    h, w, ch = samples.shape
    raw = b""
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in pack_rows(sub.reshape(sub.shape[0], -1), depth):
            raw += b"\0" + row
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlace)))
    if plte is not None:
        out += chunk(b"PLTE", bytes(plte))
    if trns is not None:
        out += chunk(b"tRNS", bytes(trns))
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def pil_bytes(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def exif_payload(little, orientation, extra=True):
    e = "<" if little else ">"
    entries = []
    if extra:
        entries.append(struct.pack(e + "HHII", 0x010F, 2, 6, 0))  # offset patched below
    entries.append(struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "H", orientation) + b"\0\0")
    ifd = struct.pack(e + "H", len(entries)) + b"".join(entries) + struct.pack(e + "I", 0)
    tiff = (b"II" if little else b"MM") + struct.pack(e + "HI", 42, 8)
    make_off = len(tiff) + len(ifd)
    if extra:
        ifd = ifd[:2] + struct.pack(e + "HHII", 0x010F, 2, 6, make_off) + ifd[14:]
    return b"Exif\0\0" + tiff + ifd + (b"Canon\0" if extra else b"")


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(EXIF_OUT, exist_ok=True)
    rng = np.random.RandomState(7)
    y, x = np.mgrid[0:12, 0:16]
    rgb = np.stack([x * 16, y * 20, (x + y) * 9], -1).astype(np.uint8)
    files = {
        "rgb8.png": png(rgb, 2, 8),
        "rgba8_adam7.png": png(np.dstack([rgb, (x * 15).astype(np.uint8)]), 6, 8, interlace=True),
        "gray1.png": png(((x + y) % 2)[..., None], 0, 1),
        "gray4_trns.png": png(((x + y) % 16)[..., None], 0, 4, trns=struct.pack(">H", 3)),
        "ga16.png": png(np.stack([x * 4000, y * 5000], -1).astype(np.uint16), 4, 16),
        "rgb16_adam7.png": png((rgb.astype(np.uint16) * 257), 2, 16, interlace=True),
        "palette2_trns.png": png(((x + y) % 4)[..., None], 3, 2, plte=[255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9], trns=[0, 128]),
        "palette8.png": png(((x * 3 + y) % 5)[..., None], 3, 8, plte=list(range(15))),
    }
    im = Image.fromarray(rgb)
    files["baseline.jpg"] = pil_bytes(im, "JPEG", quality=75)
    files["progressive.jpg"] = pil_bytes(im, "JPEG", quality=75, progressive=True)
    files["gray.jpg"] = pil_bytes(im.convert("L"), "JPEG", quality=75)
    files["cmyk.jpg"] = pil_bytes(im.convert("CMYK"), "JPEG", quality=75)
    files["exif_orient6.jpg"] = pil_bytes(im, "JPEG", quality=60, exif=exif_payload(True, 6))
    files["exif_orient8_mm.jpg"] = pil_bytes(im, "JPEG", quality=60, exif=exif_payload(False, 8))
    files["lossy.webp"] = pil_bytes(im, "WEBP", quality=60)
    files["lossless_alpha.webp"] = pil_bytes(Image.fromarray(np.dstack([rgb, (y * 20).astype(np.uint8)])), "WEBP", lossless=True)
    files["lossy_alpha.webp"] = pil_bytes(Image.fromarray(np.dstack([rgb, (x * 15).astype(np.uint8)])), "WEBP", quality=50)
    for name, data in files.items():
        assert len(data) < 2048, (name, len(data))
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    exif = {
        "ii_orient6": exif_payload(True, 6),
        "mm_orient8": exif_payload(False, 8),
        "ii_only_orient3": exif_payload(True, 3, extra=False),
        "mm_orient9_invalid": exif_payload(False, 9),
    }
    for name, data in exif.items():
        with open(os.path.join(EXIF_OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
