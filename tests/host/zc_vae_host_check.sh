#!/usr/bin/env bash
# tests/host/zc_vae_host_check.sh — builds and runs zc_vae_host_check.c (the
# CUDA backend's VAE decoder walked on the host with stand-in convolutions
# and kernels, no GPU needed; the CUDA toolkit's headers are) on the tiny
# test model. Exits non-zero when the walk differs from the CPU engine's
# VAE, a buffer is read as the wrong type, or the bf16 path is not taken.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/host/host_build.sh
tiny_model_check tests/host/zc_vae_host_check.c build/release-cuda/src/engine/zimage/cuda/zc_vae.o
