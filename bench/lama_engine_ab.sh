#!/usr/bin/env bash
# bench/lama_engine_ab.sh — one device call (about 3 minutes) that checks a
# change to the LaMa CUDA engine and measures it against the engine before
# it, in the same call: lama_cuda_test (the correctness gate: fp32 within
# 2e-4 of the CPU engine, TF32 against PyTorch's), bench/lama_fft_cuda_bench
# (the Fourier unit's transforms alone, NHWC against planar), the engine
# before (./lcb_old) and after at 1024² and 512² batch 16, alternated, and
# the new engine's profile of a 1024² batch-8 pass. First used 2026-12-06
# for the planar Fourier unit and the re-blocked 7x7 kernels (lama-cuda.md).
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
timeout 100 .devcarry/lama_cuda_test >> $OUT/lama-test.txt 2>&1; echo "lama_cuda_test rc=$?" | tee -a $OUT/lama-test.txt
timeout 40 .devcarry/lama_fft_cuda_bench --iters 20 > $OUT/lama-fft.txt 2>&1; cat $OUT/lama-fft.txt
wait $WP
for v in old new old new; do
  b=.devcarry/lama_cuda_bench; [ $v = old ] && b=./lcb_old
  echo "== $v" >> $OUT/lama-ab.txt
  timeout 60 $b --weights /tmp/big.safetensors --sizes 1024x1024,512x512 --batches 16 \
    --precisions tf32 --iters 5 2>&1 | grep -v '^ *$' | tail -4 >> $OUT/lama-ab.txt
done
cat $OUT/lama-ab.txt; grep -E "^  *(ok|FAIL)|passed" $OUT/lama-test.txt | tail -7
PX_LAMA_CUDA_PROFILE=1 timeout 40 .devcarry/lama_cuda_bench --weights /tmp/big.safetensors \
  --sizes 1024x1024 --batches 8 --precisions tf32 --iters 1 > $OUT/lama-profile.txt 2>&1
grep -A18 "profile" $OUT/lama-profile.txt | head -19
