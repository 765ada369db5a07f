#!/usr/bin/env bash
# bench/lama_defaults_gpu.sh — issue 16 on a GPU machine, in one device call:
# pixserve with LaMa on CUDA started with the DEFAULTS (only --warm-sizes
# 1024x1024), under the seed's test (pixbench --profile seed-inpaint
# --sizes 1024x1024 --mask-coverage 0.15-0.30 --sweep 1,5,10,20,50,100),
# then the same with the flags that reached 68 QPS before the admission,
# crop-bucket and PNG changes (--queue 512 --cpu-queue 512 --hd-strategy
# Original --max-batch 16). Writes to $OUT:
#   defaults.md, tuned.md           pixbench's report.md of each
#   defaults.json, tuned.json       pixbench's report.json (raw)
#   table.md, table.json            "defaults vs tuned flags" per stage:
#                                   QPS, P50/P95/P99, errors (status = 429s),
#                                   GPU util; plus each server's rejected count
#   *.serve.txt                     the servers' log summary and /metrics
# Run from the repository root with the CUDA build in .devcarry/ (see
# docs/benchmarks/lama-cuda.md: carry .devcarry .devlibs):
#
#   OUT=/tmp/l16 bench/lama_defaults_gpu.sh [STAGE_SECONDS] [WARMUP_SECONDS]
#   (CONFIGS=defaults: only the defaults; SWEEP=1,10,50: fewer stages)
#
# It writes more than the device tool's 8 files under $OUT: give it a folder
# of its own (bench/gpu_session.sh does, and packs it).
#
# 2 configurations x 6 stages x (10 + 3) s plus start-up (warm-up now
# builds the crop-bucket plans: 256², 512², 768², 1024² at batches 1-8):
# about 4-5 minutes, within one 10-minute device call.
#
# A dry run of the plumbing on a CPU machine (not a measurement):
#   B=build/release ENGINE="--engine classic" SIZE=256 SWEEP=1,4 OUT=/tmp/l16 \
#     bench/lama_defaults_gpu.sh 2 1
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/gpu_env.sh >/dev/null
B=${B:-.devcarry}
OUT=${OUT:-/tmp/l16}
WORK=${WORK:-/tmp/l16-work}
STAGE=${1:-10}
WARM=${2:-3}
W=${WEIGHTS:-/tmp/big.safetensors}
SIZE=${SIZE:-1024}
SWEEP=${SWEEP:-1,5,10,20,50,100}
ENGINE=${ENGINE:-}
mkdir -p "$OUT" "$WORK"
[ -n "$ENGINE" ] || [ -f "$W" ] || python3 tools/lama_reference.py weights --config big-lama --seed 1 --out "$W" >/dev/null
nproc > "$OUT/machine.txt"; nvidia-smi -L >> "$OUT/machine.txt" 2>&1 || true; date -u >> "$OUT/machine.txt"

run() { # tag port flags...
  local tag=$1 port=$2; shift 2
  # shellcheck disable=SC2086  # ENGINE is a list of flags
  "$B/pixserve" serve ${ENGINE:---engine lama --weights $W --device cuda} --port "$port" \
    --warm-sizes ${SIZE}x${SIZE} --outputs /tmp/px-out --log-level warn "$@" > "$WORK/$tag.serve.log" 2>&1 &
  local sp=$! t0=$SECONDS
  # Up to 300 s for the warm-up plans; at once when the server has exited
  # (a failed engine open must not eat the device call).
  for _ in $(seq 1500); do
    kill -0 $sp 2>/dev/null || { echo "== $tag: pixserve exited:"; tail -3 "$WORK/$tag.serve.log"; return 1; }
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=1)" \
      2>/dev/null && break
    sleep 0.2
  done
  echo "== $tag (pixserve pid $sp, ready after $((SECONDS - t0)) s): $*" | tee "$OUT/$tag.serve.txt"
  "$B/pixbench" --target "http://127.0.0.1:$port" --pid $sp --profile seed-inpaint \
    --sizes ${SIZE}x${SIZE} --mask-coverage 0.15-0.30 --sweep "$SWEEP" \
    --stage-duration ${STAGE}s --warmup ${WARM}s --timeout 60s --no-progress -q \
    --title "issue 16: ${ENGINE:-LaMa CUDA} ${SIZE}², $tag" --out "$WORK/$tag" 2>&1 | tail -n 20
  python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/metrics', timeout=5).read().decode())" \
    2>/dev/null | grep -E '^pixserve_(jobs_total|batch|stage_duration_seconds_sum)' >> "$OUT/$tag.serve.txt"
  kill $sp; wait $sp 2>/dev/null
  cp "$WORK/$tag/report.md" "$OUT/$tag.md"
  cp "$WORK/$tag/report.json" "$OUT/$tag.json"
  grep -v " http: " "$WORK/$tag.serve.log" | cut -d" " -f2- | sort | uniq -c | sort -rn | head -5 \
    >> "$OUT/$tag.serve.txt"
}

# CONFIGS picks which of the two run (issue 18 runs the defaults alone, on
# one GPU and on two).
CONFIGS=${CONFIGS:-defaults,tuned}
failed=0
case ",$CONFIGS," in *,defaults,*) run defaults 18261 || failed=1 ;; esac
case ",$CONFIGS," in *,tuned,*) run tuned 18262 --queue 512 --cpu-queue 512 --hd-strategy Original --max-batch 16 || failed=1 ;; esac

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]

def find(d, key):
    """First value under key anywhere in d (GPU figures sit in sub-objects)."""
    if isinstance(d, dict):
        if key in d:
            return d[key]
        for v in d.values():
            r = find(v, key)
            if r is not None:
                return r
    elif isinstance(d, list):
        for v in d:
            r = find(v, key)
            if r is not None:
                return r
    return None

rows, table = {}, {}
for tag in ("defaults", "tuned"):
    p = os.path.join(out, tag + ".json")
    if not os.path.exists(p):
        continue
    rep = json.load(open(p))
    for s in rep.get("stages", []):
        lat = s.get("latency_ms", {})
        cell = {"qps": s.get("qps"), "p50": lat.get("p50"), "p95": lat.get("p95"),
                "p99": lat.get("p99"), "requests": s.get("requests"), "errors": s.get("errors"),
                "status_errors": s.get("errors_by_class", {}).get("status"),
                "gpu_util": find(s, "gpu_util_percent_mean")}
        table.setdefault(tag, []).append(dict(cell, users=s.get("load")))
        rows.setdefault(s.get("load"), {})[tag] = cell
json.dump(table, open(os.path.join(out, "table.json"), "w"), indent=1)

def f(v, d=1):
    return "–" if v is None else f"{v:.{d}f}" if isinstance(v, float) else str(v)

lines = ["| users | QPS defaults | P50 | P95 | P99 | errors (429) | GPU % | QPS tuned | P50 | P95 | P99 | errors (429) | GPU % |",
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for users in sorted(rows):
    r = rows[users]
    cells = []
    for tag in ("defaults", "tuned"):
        c = r.get(tag, {})
        cells += [f(c.get("qps")), f(c.get("p50"), 0), f(c.get("p95"), 0), f(c.get("p99"), 0),
                  f"{f(c.get('errors'))} ({f(c.get('status_errors'))})", f(c.get("gpu_util"), 0)]
    lines.append(f"| {users:g} | " + " | ".join(cells) + " |")
open(os.path.join(out, "table.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
exit $failed
