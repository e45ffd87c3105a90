#!/usr/bin/env bash
# /predict requests/s and p95 latency of two release binaries, alternated
# over ROUNDS rounds (one server at a time, the project's defaults and
# shipped model, the stress command's own 640x640 scene, REQUESTS requests
# over 2 workers): a longer look at throughput than bench/torch_path.sh's
# two rounds.
#
#   BEFORE=/path/to/old/roadsign [BEFORE_COMMIT=abc1234] [OUT=file] \
#     bash bench/predict_ab.sh [REQUESTS] [ROUNDS]
#
# BEFORE_COMMIT: the before side runs on that commit's YAML files (an older
# binary refuses parameters it does not know). Raw output: OUT, by default
# bench/results/predict_ab.txt (one line per server run); medians and
# after/before ratios beside it as JSON (bench/ab_summary.py).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-600}
ROUNDS=${2:-3}
AFTER=$(pwd)/target/release/roadsign
BEFORE=${BEFORE:?set BEFORE to the release binary to compare with}
OUT=${OUT:-bench/results/predict_ab.txt}
TMP=$(mktemp -d)
# shellcheck source=bench/serve_lib.sh
source bench/serve_lib.sh
trap 'pkill -TERM -P $$ 2>/dev/null || true; rm -rf "$TMP"' EXIT
mkdir -p "$TMP/after" "$TMP/before"
cp -r catalog.yml parameters.yml pipelines.yml conf models "$TMP/after/"
cp -r catalog.yml parameters.yml pipelines.yml conf models "$TMP/before/"
if [ -n "${BEFORE_COMMIT:-}" ]; then
  for file in catalog.yml parameters.yml pipelines.yml; do
    git show "$BEFORE_COMMIT:$file" >"$TMP/before/$file"
  done
fi
"$AFTER" stress --url http://127.0.0.1:9 --requests 1 --workers 1 --save-file "$TMP/scene.jpg" >/dev/null 2>&1 || true
echo "# BEFORE=$BEFORE BEFORE_COMMIT=${BEFORE_COMMIT:-} bash bench/predict_ab.sh $REQUESTS $ROUNDS ($(date -u +%FT%TZ), after = $(git rev-parse --short HEAD) tree)" >"$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for side in before after; do
    bin=$AFTER
    [ "$side" = before ] && bin=$BEFORE
    serve_start "$bin" "$TMP/log" --project-dir "$TMP/$side"
    figures=$("$AFTER" stress --url "http://$ADDRESS" --file "$TMP/scene.jpg" --requests "$REQUESTS" \
      --workers 2 --format json |
      python3 -c 'import json, sys; r = json.load(sys.stdin); print("requests_per_s", r["requests_per_s"], "p95_ms", r["p95_ms"])')
    echo "round $round $side $figures" | tee -a "$OUT"
    serve_stop
  done
done
python3 bench/ab_summary.py "$OUT"
