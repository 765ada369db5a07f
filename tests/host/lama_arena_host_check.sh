#!/usr/bin/env bash
# tests/host/lama_arena_host_check.sh — builds and runs lama_arena_host_check.c
# (the LaMa CUDA plan's arena layout: no two buffers of one phase of the
# forward pass overlap; no GPU needed, the CUDA toolkit's headers are).
set -euo pipefail
cd "$(dirname "$0")/../.."
make --no-print-directory -j2 CUDA=1 build/release-cuda/src/engine/lama/cuda/lama_cuda_arena.o
make --no-print-directory -j2 build/release/libpixserve.a
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cc -Isrc -D_GNU_SOURCE -isystem "${CUDA_HOME:-/usr/local/cuda}/include" -std=c17 -O1 -g \
  -Wall -Wextra -Werror tests/host/lama_arena_host_check.c \
  build/release-cuda/src/engine/lama/cuda/lama_cuda_arena.o build/release/libpixserve.a \
  -lmicrohttpd -lcjson -lpng16 -l:libdeflate.a -ljpeg -lwebp -lz -lm -ldnnl -lfftw3f_threads \
  -lfftw3f -lgomp -lpcre2-8 -lutf8proc \
  -o "$d/check"
"$d/check"
