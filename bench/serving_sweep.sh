#!/usr/bin/env bash
# bench/serving_sweep.sh — issue 7's serving benchmark on a GPU machine:
# pixserve with LaMa on CUDA under pixbench sweeps of 1, 5, 10, 20, 50 and
# 100 users at 512² and 1024² (generated photo-like PNGs, 15–30 % masks,
# PNG results), once with dynamic batching (--max-batch 16) and once without
# (--max-batch 1), then the engine alone (lama_cuda_bench, the ceiling), all
# in one run. Run from the repository root with the CUDA build in .devcarry/
# (see docs/benchmarks/lama-cuda.md):
#
#   OUT=/tmp/sweep [SIZES="512 1024"] bench/serving_sweep.sh [STAGE_SECONDS] [WARMUP_SECONDS]
#
# Each configuration gets a fresh server with --warm-sizes for its size,
# queues long enough for 100 users (--queue 512 --cpu-queue 512: the
# defaults would answer part of the 100-user stage with 429, which is the
# admission control working, not what this measures) and hd_strategy
# Original (the sizes are the benchmark's, not crop windows). Full reports
# go to $WORK/SIZE-bBATCH/ (default /tmp/sweep-work); $OUT gets each
# report.md as SIZE-bBATCH.md and the engine's figures (few files: the
# device tool brings back only so many).
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/gpu_env.sh >/dev/null
B=${B:-.devcarry}
OUT=${OUT:-/tmp/sweep}
WORK=${WORK:-/tmp/sweep-work}
STAGE=${1:-10}
WARM=${2:-3}
W=${WEIGHTS:-/tmp/big.safetensors}
mkdir -p "$OUT" "$WORK"
[ -f "$W" ] || python3 tools/lama_reference.py weights --config big-lama --seed 1 --out "$W" >/dev/null
port=18180
for size in ${SIZES:-512 1024}; do
  for mb in 16 1; do
    port=$((port + 1))
    tag="${size}-b${mb}"
    "$B/pixserve" serve --engine lama --weights "$W" --device cuda --port $port --max-batch $mb \
      --warm-sizes ${size}x${size} --queue 512 --cpu-queue 512 --hd-strategy Original \
      --outputs /tmp/px-out --log-level warn > "$WORK/$tag.serve.log" 2>&1 &
    sp=$!
    for _ in $(seq 600); do
      python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=1)" \
        2>/dev/null && break
      sleep 0.2
    done
    echo "== $tag (pixserve pid $sp)"
    "$B/pixbench" --target http://127.0.0.1:$port --pid $sp --sizes ${size}x${size} \
      --sweep 1,5,10,20,50,100 --stage-duration ${STAGE}s --warmup ${WARM}s --timeout 60s \
      --no-progress -q --title "LaMa CUDA tf32, ${size}², max batch $mb" --out "$WORK/$tag" 2>&1
    kill $sp; wait $sp 2>/dev/null
    cp "$WORK/$tag/report.md" "$OUT/$tag.md"
    grep -v " http: " "$WORK/$tag.serve.log" | cut -d" " -f2- | sort | uniq -c | sort -rn | head -5
  done
done
echo "== engine alone (the ceiling)"
"$B/lama_cuda_bench" --weights "$W" --sizes 512x512,1024x1024 --batches 1,16 --precisions tf32 \
  --iters 10 2>/dev/null | tee "$OUT/engine.txt"
