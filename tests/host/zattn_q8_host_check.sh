#!/usr/bin/env bash
# tests/host/zattn_q8_host_check.sh — builds and runs zattn_q8_host_check.c
# (the fp8 attention's self-check against outputs made on the host, with
# the fake CUDA of cuda_fakes.c; the CUDA toolkit's headers are needed, no GPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/host/host_build.sh
host_run tests/host/zattn_q8_host_check.c tests/host/cuda_fakes.c \
  build/release-cuda/src/engine/zimage/cuda/zattn_q8_check.o
