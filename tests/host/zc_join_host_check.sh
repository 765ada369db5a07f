#!/usr/bin/env bash
# tests/host/zc_join_host_check.sh — builds and runs zc_join_host_check.c (the
# CUDA backend's continuous batching on the host, no GPU needed; the CUDA
# toolkit's headers are) on the tiny test model. Exits non-zero when a joined
# image differs from the same image run alone, or the bookkeeping slips.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/host/host_build.sh
tiny_model_check tests/host/zc_join_host_check.c build/release-cuda/src/engine/zimage/cuda/zc_join.o
