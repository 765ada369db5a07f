#!/usr/bin/env bash
# bench/pixserve_ab.sh A B [OUT] — two pixserve binaries' HTTP path, same run.
#
# Each round starts A, then B, as pixbench's embedded target (classic engine,
# defaults) and loads it with pixbench: GET /healthz (the HTTP layer alone:
# parsing, routing, a small JSON reply) at 16, 256 and 900 keep-alive users
# (the default --max-connections is 1024), then
# POST /api/v1/inpaint with pixbench's 64x64 images at 8 users (the path
# requests take). Rounds alternate A and B so the machine's drift hits both.
# Prints QPS and P99 per binary and case (median over the rounds) and writes
# every row as JSON lines to OUT/rows.jsonl (OUT default /tmp/pixserve-ab).
#
# Env: ROUNDS (default 3), DURATION (default 6s), PIXBENCH (default
# build/release/pixbench).
set -euo pipefail
a=${1:?usage: bench/pixserve_ab.sh PIXSERVE_A PIXSERVE_B [OUT]}
b=${2:?usage: bench/pixserve_ab.sh PIXSERVE_A PIXSERVE_B [OUT]}
out=${3:-/tmp/pixserve-ab}
rounds=${ROUNDS:-3}
dur=${DURATION:-6s}
pb=${PIXBENCH:-build/release/pixbench}
mkdir -p "$out"
: > "$out/rows.jsonl"

one() { # label binary case users extra...
  local label=$1 bin=$2 case=$3 users=$4
  shift 4
  local dir="$out/$label-$case-$users"
  rm -rf "$dir"
  "$pb" --pixserve "$bin" --users "$users" --duration "$dur" --warmup 1s --out "$dir" "$@" \
    > "$dir.log" 2>&1 || { tail -5 "$dir.log" >&2; return 1; }
  /usr/bin/python3 - "$dir/report.json" "$label" "$bin" "$case" "$users" >> "$out/rows.jsonl" <<'EOF'
import json, sys
path, label, binary, case, users = sys.argv[1:]
st = json.load(open(path))["stages"][0]
print(json.dumps({"impl": label, "binary": binary, "case": case, "users": int(users),
                  "qps": st["qps"], "p50_ms": st["latency_ms"]["p50"],
                  "p99_ms": st["latency_ms"]["p99"], "errors": st["errors"],
                  "requests": st["requests"]}))
EOF
}

for r in $(seq 1 "$rounds"); do
  for label in A B; do
    bin=$a; [ $label = B ] && bin=$b
    one $label "$bin" healthz 16 --profile raw --path /healthz
    one $label "$bin" healthz 256 --profile raw --path /healthz
    one $label "$bin" healthz 900 --profile raw --path /healthz
    one $label "$bin" inpaint64 8 --sizes 64x64
  done
  echo "round $r done" >&2
done

/usr/bin/python3 - "$out/rows.jsonl" "$a" "$b" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("A = %s\nB = %s" % (sys.argv[2], sys.argv[3]))
print("| case | users | A QPS | B QPS | B/A | A P99 ms | B P99 ms | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for case, users in sorted({(r["case"], r["users"]) for r in rows}):
    pick = lambda l, k: statistics.median(r[k] for r in rows
                                          if r["impl"] == l and r["case"] == case and r["users"] == users)
    errs = sum(r["errors"] for r in rows if r["case"] == case and r["users"] == users)
    qa, qb = pick("A", "qps"), pick("B", "qps")
    print("| %s | %d | %.0f | %.0f | %.3f | %.2f | %.2f | %d |" %
          (case, users, qa, qb, qb / qa, pick("A", "p99_ms"), pick("B", "p99_ms"), errs))
EOF
