#!/usr/bin/env bash
# bench/fetch_photos.sh — real photographs for accuracy checks of reduced
# precision (bench/lama_cuda_vs_torch.py --photos): scikit-image's sample
# photos (astronaut, coffee, chelsea, rocket, motorcycle; public domain or
# CC0, see the package's copyright file), taken from Debian's
# python3-skimage package with `apt-get download` (no root, nothing
# installed) and written to build/photos/ as RGB PNG plus .npy arrays (the
# GPU machine's Python has numpy but maybe no image library).
#
#   bench/fetch_photos.sh [DIR]        # default build/photos
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-build/photos}
mkdir -p "$DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download python3-skimage >/dev/null)
dpkg-deb -x "$tmp"/python3-skimage_*.deb "$tmp/x"
src="$tmp/x/usr/lib/python3/dist-packages/skimage/data"
/usr/bin/python3 - "$src" "$DIR" <<'PY'
import os, sys
import numpy as np
from PIL import Image
src, dst = sys.argv[1], sys.argv[2]
for name in ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png"):
    im = np.asarray(Image.open(os.path.join(src, name)).convert("RGB"))
    base = os.path.join(dst, os.path.splitext(name)[0])
    Image.fromarray(im).save(base + ".png")
    np.save(base + ".npy", im)
    print("%-20s %dx%d" % (name, im.shape[1], im.shape[0]))
PY
cp "$tmp/x/usr/share/doc/python3-skimage/copyright" "$DIR/COPYRIGHT" 2>/dev/null || true
