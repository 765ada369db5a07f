#!/usr/bin/env bash
# tests/host/zattn_spellings_host_check.sh — the cuDNN attention graph
# (zattn_cudnn_graph.c) against a real GPU's engines, without the GPU: cuDNN
# (9.8+) runs its heuristics from device properties an H100 saved on
# 2026-12-05 (docs/benchmarks/data/2026-12-05-h100/cudnn-deviceprop.json).
# Building the plan itself needs that GPU's driver (the toolkit's stub
# libcuda stands in for it, so cuDNN gets as far as the heuristics); what
# this checks is that the spelling the H100 took ("inference") is still
# recognised by cuDNN's fused-attention engines (the heuristics find an
# engine: "heuristics found no engine" fails) — so a change to the graph
# that no engine would take fails here, not on a GPU. The same for the
# fp8 attention's spellings ("fp8 training", the first since 2026-12-06,
# and "fp8 inference"). (Until 2026-12-06 it also held that the H100's
# heuristics refused "no statistics"; that spelling is gone with the
# others without M/N/K overrides, which ignored the padding.)
set -uo pipefail
cd "$(dirname "$0")/../.."
CUDA=${CUDA_HOME:-/usr/local/cuda}
stub=$CUDA/lib64/stubs/libcuda.so
if [ ! -f "$stub" ] || ! { [ -e "$CUDA/lib64/libcudnn.so.9" ] || ldconfig -p | grep -q 'libcudnn.so.9 '; }; then
  echo "zattn spellings host check: skipped (no cuDNN or no libcuda stub under $CUDA)"
  exit 0
fi
make --no-print-directory -j2 CUDA=1 build/release-cuda/bench/zattn_cuda_bench >/dev/null || exit 1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
ln -s "$stub" "$d/libcuda.so.1"
LD_LIBRARY_PATH="$CUDA/lib64:$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  build/release-cuda/bench/zattn_cuda_bench spellings \
  docs/benchmarks/data/2026-12-05-h100/cudnn-deviceprop.json > "$d/out" 2>&1
if grep -q "not device properties" "$d/out"; then
  echo "zattn spellings host check: skipped (this cuDNN cannot read device properties: $(head -1 "$d/out"))"
  exit 0
fi
fails=0
for shape in "1024x1024 batch 1" "1024x1024 batch 2" "512x512 batch 4"; do
  grep -Eq "^$shape: inference +(taken|no engine finalizes a plan)" "$d/out" ||
    { echo "FAIL: $shape: the 'inference' spelling is not recognised"; fails=$((fails + 1)); }
  # the fp8 pattern (e4m3 Q, K, V, P and O; heuristics found an engine for
  # it with cuDNN 9.19 here, and none with a bf16 O, 2026-12-06)
  for sp in "fp8 training" "fp8 inference"; do
    grep -Eq "^$shape: $sp +(taken|no engine finalizes a plan)" "$d/out" ||
      { echo "FAIL: $shape: the '$sp' spelling is not recognised"; fails=$((fails + 1)); }
  done
done
[ "$fails" = 0 ] || cat "$d/out"
echo "zattn spellings host check: $([ "$fails" = 0 ] && echo PASS || echo FAIL) ($fails failed)"
[ "$fails" = 0 ]
