#!/usr/bin/env bash
# tests/host/lama_arena_host_check.sh — builds and runs lama_arena_host_check.c
# (the LaMa CUDA plan's arena layout: no two buffers of one phase of the
# forward pass overlap; no GPU needed, the CUDA toolkit's headers are).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/host/host_build.sh
host_run tests/host/lama_arena_host_check.c \
  build/release-cuda/src/engine/lama/cuda/lama_cuda_arena.o
