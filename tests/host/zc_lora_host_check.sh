#!/usr/bin/env bash
# tests/host/zc_lora_host_check.sh — builds and runs zc_lora_host_check.c (the
# CUDA backend's LoRA logic on the host, no GPU needed; the CUDA toolkit's
# headers are). Prints the largest difference against the merged deltas and
# exits non-zero past bf16 rounding (2e-2 of the largest output). LoRA a is
# F32 (rounded to bf16 at upload), b BF16 (uploaded as stored).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/host/host_build.sh
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
py=${PX_PYTHON:-/usr/bin/python3}
"$py" tools/zimage_lora.py write "$d/a.safetensors" --config tiny --rank 4 --targets attn,ffn,ada \
  --seed 1 >/dev/null
"$py" tools/zimage_lora.py write "$d/b.safetensors" --config tiny --rank 8 --targets attn,ada \
  --spelling comfy-fused --seed 2 --dtype bf16 >/dev/null
host_build "$d/check" tests/host/zc_lora_host_check.c tests/host/cuda_fakes.c \
  build/release-cuda/src/engine/zimage/cuda/zc_lora.o
"$d/check" "$d/a.safetensors" "$d/b.safetensors"
