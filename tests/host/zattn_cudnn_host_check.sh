#!/usr/bin/env bash
# tests/host/zattn_cudnn_host_check.sh — builds and runs zattn_cudnn_host_check.c
# (the cuDNN attention's plan cache, capture rule and self-check against a
# fake cuDNN, on the host; the CUDA toolkit's headers are needed, no GPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
make --no-print-directory -j2 CUDA=1 build/release-cuda/src/engine/zimage/cuda/zattn_cudnn.o \
  build/release-cuda/src/engine/zimage/cuda/zattn_cudnn_graph.o
make --no-print-directory -j2 build/release/libpixserve.a
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cc -Isrc -D_GNU_SOURCE -isystem "${CUDA_HOME:-/usr/local/cuda}/include" -std=c17 -O1 -g -pthread \
  -Wall -Wextra -Werror tests/host/zattn_cudnn_host_check.c tests/host/cuda_fakes.c \
  build/release-cuda/src/engine/zimage/cuda/zattn_cudnn.o \
  build/release-cuda/src/engine/zimage/cuda/zattn_cudnn_graph.o build/release/libpixserve.a \
  -lmicrohttpd -lcjson -lpng16 -l:libdeflate.a -ljpeg -lwebp -lz -lm -ldnnl -lfftw3f_threads \
  -lfftw3f -lgomp -lpcre2-8 -lutf8proc -o "$d/check"
"$d/check"
