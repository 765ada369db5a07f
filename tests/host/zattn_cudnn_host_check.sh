#!/usr/bin/env bash
# tests/host/zattn_cudnn_host_check.sh — builds and runs zattn_cudnn_host_check.c
# (the cuDNN attention's plan cache, capture rule and self-check against a
# fake cuDNN, on the host; the CUDA toolkit's headers are needed, no GPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/host/host_build.sh
host_run tests/host/zattn_cudnn_host_check.c tests/host/cuda_fakes.c \
  build/release-cuda/src/engine/zimage/cuda/zattn_cudnn.o \
  build/release-cuda/src/engine/zimage/cuda/zattn_cudnn_graph.o \
  build/release-cuda/src/engine/zimage/cuda/zattn_q8_check.o
