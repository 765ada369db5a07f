#!/usr/bin/env bash
# bench/gpu_check.sh — first look on a GPU machine (the device tool runs it
# from the repository root with the CUDA build carried in .devcarry/):
# environment, the GPU comparison tests, a short throughput table.
# LaMa only, and it writes more than the device tool's 8 files under $OUT
# (the pixbench folder): the next session runs bench/gpu_session.sh instead
# (docs/benchmarks/gpu-runbook.md), which covers the same and packs its logs.
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
echo "== serve smoke: pixserve serve --engine lama --device cuda, 16 users of 1024² for 10 s"
"$B/pixserve" serve --engine lama --weights /tmp/big.safetensors --device cuda --port 18080 \
  --outputs /tmp/px-outputs --log-level warn > "$OUT/serve.log" 2>&1 &
SP=$!
for _ in $(seq 120); do
  kill -0 $SP 2>/dev/null || break
  python3 -c 'import urllib.request,sys; urllib.request.urlopen("http://127.0.0.1:18080/readyz", timeout=1)' \
    2>/dev/null && break
  sleep 0.5
done
python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:18080/healthz").read().decode())' \
  | tee "$OUT/healthz.json"
"$B/pixbench" --target http://127.0.0.1:18080 --sizes 1024x1024 --users 16 --duration 10s \
  --warmup 3s --no-progress --out "$OUT/smoke" 2>&1 | tail -8
kill $SP; wait $SP 2>/dev/null
tail -5 "$OUT/serve.log"
