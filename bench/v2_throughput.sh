#!/usr/bin/env bash
# The Open Inference Protocol's infer route against /predict, and a batch of
# 8 images in one v2 request against 8 single v2 requests sent one after
# another: one server (the release binary, the shipped model, `serve`
# defaults), the same 640x640 JPEG of 3 generated signs, side by side in one
# run, each comparison interleaved twice. v2 requests carry the image as a
# BYTES tensor with the binary data extension and get binary outputs.
#
#   bash bench/v2_throughput.sh [REQUESTS] [WORKERS] [ROUNDS]
#
# Needs target/release/roadsign (cargo build --release). Raw output:
# bench/results/v2_throughput.json (every stress report, and the ratios).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-200}
WORKERS=${2:-10}
ROUNDS=${3:-25}
BIN=target/release/roadsign
OUT=bench/results/v2_throughput.json
MODEL=models/yolov8n-roadsign.safetensors
NAME=yolov8n-roadsign
TMP=$(mktemp -d)
mkdir -p bench/results

# shellcheck source=bench/serve_lib.sh
source bench/serve_lib.sh
trap 'kill -TERM ${SERVER:-} 2>/dev/null || true; rm -rf "$TMP"' EXIT
serve_start "$BIN" "$TMP/serve.log" --project-dir . --model "$MODEL"
curl -sf "http://$ADDRESS/v2/health/ready" >/dev/null
curl -sf "http://$ADDRESS/v2/models/$NAME" >/dev/null

stress() { # LABEL ARGS...: one run, its JSON report kept under LABEL
  local label=$1
  shift
  "$BIN" stress --url "http://$ADDRESS" --file "$TMP/scene.jpg" --format json "$@" >"$TMP/$label.json"
  echo "$label: $(cat "$TMP/$label.json")" >&2
}

# The image: the stress command's own generated scene.
"$BIN" stress --url "http://$ADDRESS" --requests 1 --workers 1 --save-file "$TMP/scene.jpg" >/dev/null

for i in 1 2; do
  stress "predict_$i" --requests "$REQUESTS" --workers "$WORKERS"
  stress "v2_$i" --protocol v2 --model "$NAME" --requests "$REQUESTS" --workers "$WORKERS"
done
for i in 1 2; do
  stress "single_$i" --protocol v2 --model "$NAME" --requests $((8 * ROUNDS)) --workers 1
  stress "batch8_$i" --protocol v2 --model "$NAME" --batch 8 --requests "$ROUNDS" --workers 1
done

python3 - "$TMP" "$OUT" "$REQUESTS" "$WORKERS" "$ROUNDS" <<'EOF'
import json, statistics, sys
tmp, out, requests, workers, rounds = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
runs = {}
for label in ["predict", "v2", "single", "batch8"]:
    runs[label] = [json.load(open(f"{tmp}/{label}_{i}.json")) for i in (1, 2)]
median = lambda label, key: statistics.median(r[key] for r in runs[label])
result = {
    "command": f"bash bench/v2_throughput.sh {requests} {workers} {rounds}",
    "runs": runs,
    "predict_requests_per_s": median("predict", "requests_per_s"),
    "v2_requests_per_s": median("v2", "requests_per_s"),
    "v2_over_predict": median("v2", "requests_per_s") / median("predict", "requests_per_s"),
    "predict_p95_ms": median("predict", "p95_ms"),
    "v2_p95_ms": median("v2", "p95_ms"),
    "single_images_per_s": median("single", "images_per_s"),
    "batch8_images_per_s": median("batch8", "images_per_s"),
    "batch8_over_single": median("batch8", "images_per_s") / median("single", "images_per_s"),
}
json.dump(result, open(out, "w"), indent=1)
print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
EOF
