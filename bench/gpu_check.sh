#!/usr/bin/env bash
# bench/gpu_check.sh — first look on a GPU machine (the device tool runs it
# from the repository root with the CUDA build carried in .devcarry/):
# environment, the GPU comparison tests, a short throughput table.
set -uo pipefail
. bench/gpu_env.sh
B=${1:-.devcarry}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi -L
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
for f in "$B"/*; do ldd "$f" | grep "not found" && echo "MISSING for $f"; done
echo "== lama_cuda_test"
PX_TEST_TIMEOUT=600 "$B/lama_cuda_test" 2>&1 | tee "$OUT/lama_cuda_test.txt"
echo "== throughput"
python3 tools/lama_reference.py weights --config big-lama --seed 1 --out /tmp/big.safetensors
"$B/lama_cuda_bench" --weights /tmp/big.safetensors --sizes 512x512,1024x1024 --batches 1,8 \
  --precisions tf32,bf16,fp32 --iters 5 2>&1 | tee "$OUT/quick_bench.txt"
