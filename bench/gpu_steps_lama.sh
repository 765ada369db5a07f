# bench/gpu_steps_lama.sh — gpu_session.sh's LaMa steps (lama, lamanew,
# verify, multi), sourced by it: they use its helpers (part, env_part,
# lama_weights, libs_ab, KEY, ...) and are described in its header.
# shellcheck shell=bash
# torch.compile's precisions in the LaMa engine tables: TF32, issue 16's
# peer, by default; LAMA_TORCH=tf32,fp16 adds PyTorch's fp16 autocast
# (four more compiles of ~55 s; it runs only at power-of-two sizes and
# misses the accuracy gate: lama-cuda.md, "twenty-eighth session").
LAMA_TORCH=${LAMA_TORCH:-tf32}

step_lama() {
  env_part
  lama_weights
  part lama_defaults 330 gpu "B=$BIN OUT=$WORK/l16 WORK=$WORK/l16-work WEIGHTS=/tmp/big.safetensors \
    bench/lama_defaults_gpu.sh 10 3"
  part lama_engine 320 gpu "$PY bench/lama_cuda_vs_torch.py --weights /tmp/big.safetensors \
    --bench $BIN/lama_cuda_bench --out $WORK/lama-engine --sizes 1024,512 --batches 16 \
    --iters 5 --compile --compile-batches 16 --skip-accuracy --skip-eager --precisions fp16,tf32 \
    --torch-precisions $LAMA_TORCH"
  # LAMA_TESTS="t_name ...": those lama_cuda_test cases with what is left.
  [ -n "${LAMA_TESTS:-}" ] && part lama_tests 120 gpu "PX_TEST_TIMEOUT=110 $BIN/lama_cuda_test $LAMA_TESTS"
  KEY+=("$WORK/l16/table.md:lama16-table.md" "$WORK/l16/table.json:lama16-table.json"
        "$WORK/lama-engine/lama_cuda_vs_torch.json:lama-engine.json")
}

step_lamanew() {
  export PX_ZIMAGE_CUDA_ATTN=${PX_ZIMAGE_CUDA_ATTN:-cudnn} # no attention pick: LaMa only
  env_part
  lama_weights
  part lama_gate 150 gpu "WEIGHTS=/tmp/big.safetensors PARTS=torch OUT=$WORK/acc PX_TEST_TIMEOUT=140 scripts/test_gpu"
  # torch.compile only (both layouts at both sizes: 4 compiles of 40-50 s
  # on an H100); with the eager rows it ran past 230 s on 2026-12-07.
  part lama_engine 260 gpu "$PY bench/lama_cuda_vs_torch.py --weights /tmp/big.safetensors \
    --bench $BIN/lama_cuda_bench --out $WORK/lama-engine --sizes 1024,512 --batches 16 \
    --iters 5 --compile --compile-batches 16 --skip-accuracy --skip-eager --torch-precisions $LAMA_TORCH"
  part lama_defaults 150 gpu "CONFIGS=defaults SWEEP=${SWEEP:-1,5,10,20,50,100} B=$BIN OUT=$WORK/l16 \
    WORK=$WORK/l16-work WEIGHTS=/tmp/big.safetensors bench/lama_defaults_gpu.sh 10 3"
  # ./lcb_old (a stripped lama_cuda_bench of the engine before the change,
  # untracked, travels with the tree): old and new alternated in the
  # default precision, then where a 1024² batch-8 pass spends its time
  # (PROF_ENV="VAR=VALUE ...": a second profile under that environment).
  if [ -x ./lcb_old ]; then
    part lama_ab 90 gpu "for v in old new new old; do b=$BIN/lama_cuda_bench; \
      [ \$v = old ] && b=./lcb_old; echo == \$v; \$b --weights /tmp/big.safetensors \
      --sizes 1024x1024,512x512 --batches 16 --precisions fp16 --iters 5 | tail -3; done"
    part lama_profile 40 gpu "PX_LAMA_CUDA_PROFILE=1 $BIN/lama_cuda_bench --weights /tmp/big.safetensors \
      --sizes 1024x1024 --batches 8 --precisions fp16 --iters 1 | grep -A18 profile | head -19; \
      [ -z '${PROF_ENV:-}' ] || env ${PROF_ENV:-} PX_LAMA_CUDA_PROFILE=1 $BIN/lama_cuda_bench \
      --weights /tmp/big.safetensors --sizes 1024x1024 --batches 8 --precisions fp16 --iters 1 | \
      grep -A18 profile | head -19"
  fi
  part lama_cuda_test 200 gpu "PARTS=lama PX_TEST_TIMEOUT=190 scripts/test_gpu"
  KEY+=("$WORK/l16/table.md:lama16-table.md")
}

step_verify() {
  env_part
  lama_weights
  part lama_cuda_test 240 gpu "PARTS=lama PX_TEST_TIMEOUT=220 scripts/test_gpu"
  [ "${SKIP_ZIMAGE:-0}" = 1 ] || part zimage_cuda_test 300 gpu "PARTS=zimage PX_TEST_TIMEOUT=280 scripts/test_gpu"
  part lama_ours 150 gpu "$BIN/lama_cuda_bench --weights /tmp/big.safetensors \
    --sizes 1024x1024,512x512 --batches 1,4,5,8,16 --precisions tf32 --iters 5"
  [ "${SKIP_DEFAULTS:-0}" = 1 ] || part lama_defaults 260 gpu "CONFIGS=defaults SWEEP=${SWEEP:-1,5,10,50,100} OUT=$WORK/l16 \
    WORK=$WORK/l16-work WEIGHTS=/tmp/big.safetensors bench/lama_defaults_gpu.sh 10 3"
  # WITH_PROFILE=1: where a 1024² batch-8 TF32 forward's GPU time goes.
  [ "${WITH_PROFILE:-0}" = 1 ] && part lama_profile 90 gpu "PX_LAMA_CUDA_PROFILE=1 $BIN/lama_cuda_bench \
    --weights /tmp/big.safetensors --sizes 1024x1024 --batches 8 --precisions tf32 --iters 2"
  # WITH_LIBS_AB=1: the engine with the system's cuDNN/cuFFT/cuBLAS against
  # PyTorch's wheels' (the ones its torch.compile rows run on), alternated.
  [ "${WITH_LIBS_AB:-0}" = 1 ] && libs_ab lama_libs_ab lama_cuda_bench "--weights /tmp/big.safetensors \
    --sizes 1024x1024,512x512 --batches 16 --precisions tf32 --iters 5"
  # WITH_TORCH=1: the engine table against torch.compile too (as `lama`).
  [ "${WITH_TORCH:-0}" = 1 ] && part lama_engine 300 gpu "$PY bench/lama_cuda_vs_torch.py \
    --weights /tmp/big.safetensors --bench $BIN/lama_cuda_bench --out $WORK/lama-engine \
    --sizes 1024,512 --batches 16 --iters 5 --compile --compile-batches 16 --skip-accuracy \
    --torch-precisions $LAMA_TORCH"
  KEY+=("$WORK/l16/table.md:lama16-table.md")
}

step_multi() {
  env_part
  [ "$NGPU" -ge 2 ] || note "gpu_session multi: $NGPU GPU(s) here (nvidia-h200-x2 wanted): 'two' equals 'one'"
  lama_weights
  part lama_two 220 gpu "CONFIGS=defaults SWEEP=1,10,50,100 OUT=$WORK/lama-two WORK=$WORK/lama-two-work \
    WEIGHTS=/tmp/big.safetensors bench/lama_defaults_gpu.sh 10 3"
  part lama_one 200 gpu "CUDA_VISIBLE_DEVICES=0 CONFIGS=defaults SWEEP=1,10,50,100 OUT=$WORK/lama-one \
    WORK=$WORK/lama-one-work WEIGHTS=/tmp/big.safetensors bench/lama_defaults_gpu.sh 10 3"
  # SKIP_ZIMAGE=1 when the zimage engine failed its check on one GPU.
  [ "${SKIP_ZIMAGE:-0}" = 1 ] && return 0
  zmodel 240
  pick_batching
  for n in two one; do
    local vis=()
    [ "$n" = one ] && vis=(CUDA_VISIBLE_DEVICES=0)
    serve_zimage 7861 "serve-zimage-$n.log" "${vis[@]}"
    [ "$GPU" = 1 ] && wait_ready 7861 150
    part "zimage_$n" 150 gpu "$BIN/pixbench --target http://127.0.0.1:7861 --pid $SP --profile generate \
      --sweep 1,4,8,16 --warmup 5s --duration 20s --width 1024 --height 1024 --steps 8 --cfg-scale 0 \
      --timeout 120s --no-progress --out $WORK/zimage-$n"
    kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null
  done
  KEY+=("$WORK/lama-two/table.md:lama-two.md" "$WORK/lama-one/table.md:lama-one.md")
}
