#!/usr/bin/env bash
# bench/lama_kernels_ab.sh — one device call (about 4 minutes) for branch
# lama-cuda-kernels, whose LaMa CUDA changes have not run on a GPU yet:
# the re-blocked 7x7 stem and head kernels (default path) and the planar
# Fourier unit (PX_LAMA_CUDA_FFT=planar). It runs lama_cuda_test in both
# FFT layouts (the correctness gate: fp32 within 2e-4 of the CPU engine),
# bench/lama_fft_cuda_bench (the transforms alone in both layouts), the
# engine at 1024² and 512² batch 16 for main's binary (./lcb_old), this
# branch's, and this branch's with the planar unit, then profiles.
#
# Here, before the call:
#   git worktree add /tmp/main-wt main && make -C /tmp/main-wt CUDA=1 \
#     build/release-cuda/bench/lama_cuda_bench && \
#     strip -o lcb_old /tmp/main-wt/build/release-cuda/bench/lama_cuda_bench
#   scripts/gpu_prepare
# The call: run(command="bash bench/lama_kernels_ab.sh", carry=[".devpack"])
# (lcb_old, untracked, travels with the tree). Results under $OUT.
xz -dc .devpack/gpu.tar.xz | tar -xf -
. bench/gpu_env.sh > /dev/null 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv > $OUT/lama-test.txt
( python3 tools/lama_reference.py weights --config big-lama --seed 1 --out /tmp/big.safetensors > /tmp/w.log 2>&1 ) &
WP=$!
timeout 100 .devcarry/lama_cuda_test >> $OUT/lama-test.txt 2>&1; echo "lama_cuda_test rc=$?" | tee -a $OUT/lama-test.txt
PX_LAMA_CUDA_FFT=planar timeout 100 .devcarry/lama_cuda_test > $OUT/lama-test-planar.txt 2>&1; echo "lama_cuda_test planar rc=$?" | tee -a $OUT/lama-test-planar.txt
# zimage_cuda_test (tiny model) while the weights are made: its cache-release test
PX_TEST_TIMEOUT=110 timeout 120 .devcarry/zimage_cuda_test > $OUT/zimage-test.txt 2>&1; echo "zimage_cuda_test rc=$?" | tee -a $OUT/zimage-test.txt
PX_TEST_TIMEOUT=80 timeout 90 .devcarry/zimage_cuda_fp8_test >> $OUT/zimage-test.txt 2>&1; echo "zimage_cuda_fp8_test rc=$?" | tee -a $OUT/zimage-test.txt
grep -E "release|passed|FAIL" $OUT/zimage-test.txt | tail -6
timeout 40 .devcarry/lama_fft_cuda_bench --iters 20 > $OUT/lama-fft.txt 2>&1; cat $OUT/lama-fft.txt
wait $WP
for v in old new planar; do
  b=.devcarry/lama_cuda_bench; [ $v = old ] && b=./lcb_old
  f=; [ $v = planar ] && f=planar
  echo "== $v" >> $OUT/lama-ab.txt
  PX_LAMA_CUDA_FFT=$f timeout 60 $b --weights /tmp/big.safetensors --sizes 1024x1024,512x512 --batches 16 \
    --precisions tf32 --iters 5 2>&1 | grep -v '^ *$' | tail -4 >> $OUT/lama-ab.txt
done
cat $OUT/lama-ab.txt; grep -E "^  *(ok|FAIL)|passed" $OUT/lama-test.txt $OUT/lama-test-planar.txt | tail -14
for f in nhwc planar; do
  [ $SECONDS -lt 300 ] && PX_LAMA_CUDA_FFT=$f PX_LAMA_CUDA_PROFILE=1 timeout 40 .devcarry/lama_cuda_bench --weights /tmp/big.safetensors \
    --sizes 1024x1024 --batches 8 --precisions tf32 --iters 1 > $OUT/lama-profile-$f.txt 2>&1
done
grep -E "stem|head|fu " $OUT/lama-profile-*.txt | tail -12
