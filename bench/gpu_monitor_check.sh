#!/usr/bin/env bash
# bench/gpu_monitor_check.sh — pixbench's GPU monitor next to nvidia-smi dmon,
# on a machine with an NVIDIA GPU. It builds nothing: carry a release build
# (build/release/pixbench) and run it from the repository root:
#
#   OUT=/tmp/gpucheck bench/gpu_monitor_check.sh      # $OUT is set by the device tool
#
# What it does, in about 30 s:
#   1. starts a GPU load with python3 + torch: fp16 matmuls in bursts with idle
#      gaps (1.5 s busy, 1 s idle, 0.3 s spike, 1 s idle, ...) for $DURATION
#      seconds (default 20), holding ~2 GB of its own GPU memory;
#   2. runs, at the same time, `pixbench monitor --pid <that python>
#      --interval 100ms --csv $OUT/pixbench-monitor.csv` and
#      `nvidia-smi dmon -s pucm -d 1 -o DT` (into $OUT/dmon.txt), and takes
#      `nvidia-smi --query-compute-apps` once mid-load (per-process memory);
#   3. prints a side-by-side summary (bench/gpu_monitor_compare.py): mean and
#      peak SM and memory utilisation, memory used, the process's own memory,
#      power, clocks; written to $OUT/summary.txt too.
#
# Environment: OUT, DURATION (s), PYTHON (default python3), PIXBENCH (default
# build/release/pixbench), GPU (CUDA device index for the load, default 0).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d /tmp/gpucheck-XXXXXX)}
DURATION=${DURATION:-20}
PYTHON=${PYTHON:-python3}
PIXBENCH=${PIXBENCH:-build/release/pixbench}
GPU=${GPU:-0}
mkdir -p "$OUT"

[ -x "$PIXBENCH" ] || { echo "gpu_monitor_check: no $PIXBENCH (carry a build: make)"; exit 1; }
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu_monitor_check: no nvidia-smi here; pixbench's own view of this machine:"
  "$PIXBENCH" monitor --interval 100ms --duration 0.3s --no-gpu >/dev/null 2>&1 || true
  "$PIXBENCH" monitor --interval 100ms --duration 0.3s 2>&1 | grep -m1 "GPU:" || true
  exit 1
fi
"$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null || {
  echo "gpu_monitor_check: $PYTHON has no CUDA-enabled torch (set PYTHON=...)"; exit 1; }

nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv > "$OUT/gpus.csv"
cat "$OUT/gpus.csv"

cat > "$OUT/gpu_load.py" <<'EOF'
# The load: fp16 matmuls in bursts with idle gaps, so there are spikes a
# one-second sampler can miss and the driver's sample buffer keeps.
import os, sys, time
import torch
dur, out, dev = float(sys.argv[1]), sys.argv[2], torch.device("cuda:%s" % sys.argv[3])
a = torch.randn(8192, 8192, device=dev, dtype=torch.float16)
b = torch.randn(8192, 8192, device=dev, dtype=torch.float16)
hold = torch.empty(1 << 30, dtype=torch.float16, device=dev)  # 2 GiB held: the process's own memory
torch.cuda.synchronize(dev)
open(os.path.join(out, "load.ready"), "w").write("%d\n" % os.getpid())
pattern = [(1.5, 1.0), (0.3, 1.0), (3.0, 0.5), (0.15, 1.5)]  # (busy s, idle s)
t_end, log = time.time() + dur, []
while time.time() < t_end:
    for busy, idle in pattern:
        t0 = time.time()
        while time.time() - t0 < busy:
            (a @ b).sum()
            torch.cuda.synchronize(dev)
        log.append((t0, time.time()))
        time.sleep(idle)
        if time.time() >= t_end:
            break
with open(os.path.join(out, "load_busy.csv"), "w") as f:
    f.write("busy_start_unix,busy_end_unix\n")
    for s, e in log:
        f.write("%.3f,%.3f\n" % (s, e))
del hold
EOF

rm -f "$OUT/load.ready"
"$PYTHON" "$OUT/gpu_load.py" "$DURATION" "$OUT" "$GPU" > "$OUT/load.log" 2>&1 &
LOAD=$!
for _ in $(seq 1 600); do
  [ -f "$OUT/load.ready" ] && break
  kill -0 "$LOAD" 2>/dev/null || { echo "gpu_monitor_check: the load died:"; cat "$OUT/load.log"; exit 1; }
  sleep 0.1
done
[ -f "$OUT/load.ready" ] || { echo "gpu_monitor_check: the load did not start"; kill "$LOAD"; exit 1; }

nvidia-smi dmon -s pucm -d 1 -o DT > "$OUT/dmon.txt" 2>&1 &
DMON=$!
"$PIXBENCH" monitor --pid "$LOAD" --interval 100ms --csv "$OUT/pixbench-monitor.csv" \
  --duration "$((DURATION + 5))s" > "$OUT/pixbench-monitor.txt" 2> "$OUT/pixbench-monitor.err" &
MON=$!
sleep $((DURATION / 2))
nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv > "$OUT/compute-apps.csv" 2>&1 || true
wait "$LOAD" || true
sleep 1.5                      # let both samplers see the idle tail
kill "$DMON" 2>/dev/null || true
wait "$MON" 2>/dev/null || true  # it ends by itself once the process has gone
wait "$DMON" 2>/dev/null || true

cat "$OUT/pixbench-monitor.err"
"$PYTHON" bench/gpu_monitor_compare.py "$OUT" | tee "$OUT/summary.txt"
echo "files: $OUT/{pixbench-monitor.csv,pixbench-monitor.txt,dmon.txt,compute-apps.csv,load_busy.csv,summary.txt}"
