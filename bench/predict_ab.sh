#!/usr/bin/env bash
# /predict requests/s of two release binaries, alternated over ROUNDS rounds
# (one server at a time, the project's defaults and shipped model, the
# stress command's own 640x640 scene, REQUESTS requests over 2 workers):
# a longer look at throughput than bench/torch_path.sh's two rounds.
#
#   BEFORE=/path/to/old/roadsign bash bench/predict_ab.sh [REQUESTS] [ROUNDS]
#
# Raw output: bench/results/predict_ab.txt (one line per server run).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-600}
ROUNDS=${2:-3}
AFTER=$(pwd)/target/release/roadsign
BEFORE=${BEFORE:?set BEFORE to the release binary to compare with}
OUT=bench/results/predict_ab.txt
TMP=$(mktemp -d)
# shellcheck source=bench/serve_lib.sh
source bench/serve_lib.sh
trap 'pkill -TERM -P $$ 2>/dev/null || true; rm -rf "$TMP"' EXIT
cp -r catalog.yml parameters.yml pipelines.yml conf models "$TMP/"
"$AFTER" stress --url http://127.0.0.1:9 --requests 1 --workers 1 --save-file "$TMP/scene.jpg" >/dev/null 2>&1 || true
echo "# BEFORE=$BEFORE bash bench/predict_ab.sh $REQUESTS $ROUNDS ($(date -u +%FT%TZ), after = $(git rev-parse --short HEAD) tree)" >"$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for side in before after; do
    bin=$AFTER
    [ "$side" = before ] && bin=$BEFORE
    serve_start "$bin" "$TMP/log" --project-dir "$TMP"
    rps=$("$AFTER" stress --url "http://$ADDRESS" --file "$TMP/scene.jpg" --requests "$REQUESTS" \
      --workers 2 --format json | python3 -c 'import json, sys; print(json.load(sys.stdin)["requests_per_s"])')
    echo "round $round $side requests_per_s $rps" | tee -a "$OUT"
    serve_stop
  done
done
