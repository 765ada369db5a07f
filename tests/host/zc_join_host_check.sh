#!/usr/bin/env bash
# tests/host/zc_join_host_check.sh — builds and runs zc_join_host_check.c (the
# CUDA backend's continuous batching on the host, no GPU needed; the CUDA
# toolkit's headers are) on the tiny test model. Exits non-zero when a joined
# image differs from the same image run alone, or the bookkeeping slips —
# step by step and a step ahead (PX_ZIMAGE_CUDA_AHEAD=1).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/host/host_build.sh
# Twice: step by step (the default), and with the step loop a step ahead.
ALSO_ENV="PX_ZIMAGE_CUDA_AHEAD=1" tiny_model_check tests/host/zc_join_host_check.c build/release-cuda/src/engine/zimage/cuda/zc_join.o
