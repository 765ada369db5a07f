#!/usr/bin/env bash
# tests/host/zc_lora_host_check.sh — builds and runs zc_lora_host_check.c (the
# CUDA backend's LoRA logic on the host, no GPU needed; the CUDA toolkit's
# headers are). Prints the largest difference against the merged deltas and
# exits non-zero past bf16 rounding (2e-2 of the largest output). LoRA a is
# F32 (rounded to bf16 at upload), b BF16 (uploaded as stored).
set -euo pipefail
cd "$(dirname "$0")/../.."
make --no-print-directory -j2 CUDA=1 build/release-cuda/src/engine/zimage/cuda/zc_lora.o
make --no-print-directory -j2 build/release/libpixserve.a
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
py=${PX_PYTHON:-/usr/bin/python3}
"$py" tools/zimage_lora.py write "$d/a.safetensors" --config tiny --rank 4 --targets attn,ffn,ada \
  --seed 1 >/dev/null
"$py" tools/zimage_lora.py write "$d/b.safetensors" --config tiny --rank 8 --targets attn,ada \
  --spelling comfy-fused --seed 2 --dtype bf16 >/dev/null
cc -Isrc -D_GNU_SOURCE -isystem "${CUDA_HOME:-/usr/local/cuda}/include" -std=c17 -O1 -g -pthread \
  -Wall -Wextra -Werror tests/host/zc_lora_host_check.c tests/host/cuda_fakes.c \
  build/release-cuda/src/engine/zimage/cuda/zc_lora.o build/release/libpixserve.a \
  -lmicrohttpd -lcjson -lpng16 -l:libdeflate.a -ljpeg -lwebp -lz -lm -ldnnl -lfftw3f_threads \
  -lfftw3f -lgomp -lpcre2-8 -lutf8proc -o "$d/check"
"$d/check" "$d/a.safetensors" "$d/b.safetensors"
