#!/usr/bin/env bash
# tests/host/fft2_host_check.sh — builds and runs fft2_host_check.cpp: the
# LaMa Fourier unit's one-pass FFT kernels (src/engine/lama/cuda/fft2.cu)
# compiled as C++ and run on host threads, against plain DFTs. Needs g++
# (C++20: std::barrier), which nvcc needs anyway; no GPU, no CUDA headers.
set -euo pipefail
cd "$(dirname "$0")/../.."
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
"${CXX:-g++}" -std=c++20 -O2 -Isrc -Wall -Wextra -Werror -Wno-unknown-pragmas -pthread \
  tests/host/fft2_host_check.cpp -o "$d/check"
"$d/check"
