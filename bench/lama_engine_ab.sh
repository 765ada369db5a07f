#!/usr/bin/env bash
# bench/lama_engine_ab.sh — one device call (about 5 minutes) that checks a
# change to the LaMa CUDA engine and measures it against the engine before
# it, in the same call: lama_cuda_test (the correctness gate: fp32 within
# 2e-4 of the CPU engine, TF32 against PyTorch's; fp16 in its own test),
# unless WITH_ACCURACY=0 the accuracy gate on photographs against
# PyTorch's TF32 (scripts/test_gpu PARTS=torch: every precision's
# verdict), the engine before (./lcb_old) and after in TF32 at 1024² and
# 512² batch 16, alternated, the new engine's 16-bit precisions (bf16,
# fp16) there, and its profiles of a 1024² batch-8 pass (TF32, fp16).
# Every part has a timeout; the later parts are skipped when the call runs
# past 500-545 s. VARIANTS="name:VAR=VALUE ..." adds runs of the new engine
# under an environment to the A/B and the 16-bit runs (e.g.
# "nofuse:PX_LAMA_CUDA_NOFUSE=1"; several variables joined by commas);
# PROFILES="name:precision[:VAR=VALUE[,...]] ..." chooses the profiles;
# ACC_ENV="VAR=VALUE ..." runs the accuracy gate under a variant, and
# ACC2_ENV once more under another. AB=0 stops after the gates;
# TEST_TIMEOUT (200 s) bounds lama_cuda_test. First used 2026-12-06 for the planar Fourier unit
# and the re-blocked 7x7 kernels, then for the FP16 engine and the cuDNN
# 7x7 stem and head (lama-cuda.md).
#
# Here, before the call (OLD: the commit to compare with, e.g. main):
#   git worktree add /tmp/old-wt OLD && make -C /tmp/old-wt CUDA=1 \
#     build/release-cuda/bench/lama_cuda_bench && \
#     strip -o lcb_old /tmp/old-wt/build/release-cuda/bench/lama_cuda_bench
#   scripts/gpu_prepare
# The call: run(command="bash bench/lama_engine_ab.sh", carry=[".devpack"])
# (lcb_old, untracked, travels with the tree). Results under $OUT.
xz -dc .devpack/gpu.tar.xz | tar -xf -
. bench/gpu_env.sh > /dev/null 2>&1
[ -x ./lcb_old ] || { echo "lama_engine_ab: ./lcb_old is missing (see the header)"; exit 2; }
nvidia-smi --query-gpu=name,driver_version --format=csv > $OUT/lama-test.txt
( python3 tools/lama_reference.py weights --config big-lama --seed 1 --out /tmp/big.safetensors > /tmp/w.log 2>&1 ) &
WP=$!
timeout ${TEST_TIMEOUT:-200} .devcarry/lama_cuda_test >> $OUT/lama-test.txt 2>&1; echo "lama_cuda_test rc=$?" | tee -a $OUT/lama-test.txt
grep -E "^  *(ok|FAIL)|passed|fp16|tf32" $OUT/lama-test.txt | tail -14
wait $WP
# The accuracy gate before the speed runs: if the call runs long, the
# speed is what is cut.
if [ "${WITH_ACCURACY:-1}" = 1 ]; then
  # ACC_ENV="VAR=VALUE ...": the gate under that environment (a variant).
  env ${ACC_ENV:-} WEIGHTS=/tmp/big.safetensors PARTS=torch OUT=$OUT/lama-acc PX_TEST_TIMEOUT=140 \
    timeout 150 scripts/test_gpu > $OUT/lama-acc.txt 2>&1
  echo "accuracy rc=$?"; grep -E "summary|verdicts" $OUT/lama-acc.txt
  # ACC2_ENV: the gate once more under a second environment.
  if [ -n "${ACC2_ENV:-}" ]; then
    env $ACC2_ENV WEIGHTS=/tmp/big.safetensors PARTS=torch OUT=$OUT/lama-acc2 PX_TEST_TIMEOUT=140 \
      timeout 150 scripts/test_gpu > $OUT/lama-acc2.txt 2>&1
    echo "accuracy 2 ($ACC2_ENV) rc=$?"; grep -E "summary|verdicts" $OUT/lama-acc2.txt
  fi
fi
# AB=0: the tests and gates only (the speed runs in a second call).
[ "${AB:-1}" = 1 ] || exit 0
# ./lcb_mid (optional): a third engine between the two, e.g. when one call
# checks two changes stacked on each other.
# VARIANTS: more runs of the new engine under an environment, e.g.
# VARIANTS="nofuse:PX_LAMA_CUDA_NOFUSE=1" (name:VAR=VALUE[,VAR=VALUE], space-separated).
# AB_PREC=fp16: the alternated runs in that precision instead of TF32 (a
# change that only 16-bit precisions see).
export PX_LAMA_CUDA_UNVERIFIED_BF16=1
VS="old new"; [ -x ./lcb_mid ] && VS="old mid new"
for x in ${VARIANTS:-}; do VS="$VS ${x%%:*}"; done
VS="$VS $(echo $VS | tr ' ' '\n' | tac | tr '\n' ' ')"
for v in $VS; do
  [ $SECONDS -lt ${AB_UNTIL:-520} ] || { echo "== $v: skipped, out of time" >> $OUT/lama-ab.txt; continue; }
  b=.devcarry/lama_cuda_bench; [ -x ./lcb_$v ] && b=./lcb_$v
  envs=""; for x in ${VARIANTS:-}; do [ "${x%%:*}" = $v ] && envs=${x#*:}; done
  envs=${envs//,/ }
  echo "== $v $envs" >> $OUT/lama-ab.txt
  env $envs timeout 30 $b --weights /tmp/big.safetensors --sizes 1024x1024,512x512 --batches 16 \
    --precisions ${AB_PREC:-tf32} --iters 5 2>&1 | grep -v '^ *$' | tail -4 >> $OUT/lama-ab.txt
done
cat $OUT/lama-ab.txt
# Which bias + ReLU epilogues each variant's plans fused (cuDNN's choice).
for x in "new:" ${VARIANTS:-}; do
  echo "== ${x%%:*} ${x#*:}" >> $OUT/lama-fuse.txt
  e=${x#*:}; env ${e//,/ } timeout 20 .devcarry/lama_cuda_bench --weights /tmp/big.safetensors --sizes 256x256 \
    --batches 1 --precisions tf32,fp16 --iters 1 --log-level debug 2>&1 | grep epilogues >> $OUT/lama-fuse.txt
done
cat $OUT/lama-fuse.txt
# The 16-bit runs (SKIP16=1: not, e.g. when AB_PREC=fp16 measured them),
# then again under each variant's environment.
[ "${SKIP16:-0}" = 1 ] || timeout 40 .devcarry/lama_cuda_bench --weights /tmp/big.safetensors \
  --sizes 1024x1024,512x512 --batches 16 --precisions bf16,fp16 --iters 5 > $OUT/lama-16bit.txt 2>&1
cat $OUT/lama-16bit.txt 2>/dev/null
for x in ${VARIANTS:-}; do
  [ "${SKIP16:-0}" = 1 ] && break
  [ $SECONDS -lt 500 ] || { echo "16-bit ${x%%:*}: skipped, out of time"; continue; }
  echo "== ${x%%:*} ${x#*:}" >> $OUT/lama-16bit.txt
  e=${x#*:}; env ${e//,/ } timeout 30 .devcarry/lama_cuda_bench --weights /tmp/big.safetensors \
    --sizes 1024x1024,512x512 --batches 16 --precisions fp16 --iters 5 2>&1 | tail -3 >> $OUT/lama-16bit.txt
done
tail -4 $OUT/lama-16bit.txt
# Profiles: PROFILES="name:precision[:VAR=VALUE] ..." (default TF32 and fp16).
for x in ${PROFILES:-tf32:tf32 fp16:fp16}; do
  n=${x%%:*}; r=${x#*:}; p=${r%%:*}; envs=""; [ "$r" != "$p" ] && envs=${r#*:}
  envs=${envs//,/ }
  [ $SECONDS -lt 545 ] || { echo "profile $n: skipped, out of time"; continue; }
  env $envs PX_LAMA_CUDA_PROFILE=1 timeout 20 .devcarry/lama_cuda_bench --weights /tmp/big.safetensors \
    --sizes 1024x1024 --batches 8 --precisions $p --iters 1 > $OUT/lama-profile-$n.txt 2>&1
  grep -A18 "profile" $OUT/lama-profile-$n.txt | head -19
done
