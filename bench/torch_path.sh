#!/usr/bin/env bash
# The libtorch path before and after a change, side by side in one run:
# `serve` start-up to /ready, the first /predict's latency, /predict
# throughput (`roadsign stress`), and training speed (images/s of YOLOv8n
# epochs through `roadsign run --pipeline detection --to-nodes train_yolo`).
# Each measurement alternates the two binaries, twice, on the same
# generated data, the shipped model and the project's default configuration.
#
#   BEFORE=/path/to/old/target/release/roadsign [BEFORE_COMMIT=sha] \
#     bash bench/torch_path.sh [REQUESTS] [WORKERS] [EPOCHS]
#
# AFTER is target/release/roadsign (cargo build --release). Raw output:
# bench/results/torch_path.json (every report, per binary and round).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-100}
WORKERS=${2:-2}
EPOCHS=${3:-2}
AFTER=$(pwd)/target/release/roadsign
BEFORE=${BEFORE:?set BEFORE to the release binary to compare with}
OUT=bench/results/torch_path.json
TMP=$(mktemp -d)
mkdir -p bench/results
# shellcheck source=bench/serve_lib.sh
source bench/serve_lib.sh
trap 'pkill -TERM -P $$ 2>/dev/null || true; rm -rf "$TMP"' EXIT

# One project copy per binary (each keeps its own incremental state), the
# same generated scenes in both.
for side in before after; do
  mkdir -p "$TMP/$side"
  cp -r catalog.yml parameters.yml pipelines.yml conf models "$TMP/$side/"
done
"$AFTER" run --project-dir "$TMP/after" --pipeline data_generation >/dev/null 2>&1
cp -r "$TMP/after/data" "$TMP/before/data"
"$AFTER" stress --url http://127.0.0.1:9 --requests 1 --workers 1 --save-file "$TMP/scene.jpg" >/dev/null 2>&1 || true
if [ ! -s "$TMP/scene.jpg" ]; then
  echo "could not generate the request image" >&2
  exit 1
fi

serve_round() { # SIDE BIN ROUND
  local side=$1 bin=$2 round=$3
  local log="$TMP/serve_${side}_$round.log"
  local start end first
  start=$(date +%s.%N)
  serve_start "$bin" "$log" --project-dir "$TMP/$side"
  end=$(date +%s.%N)
  first=$(curl -s -o /dev/null -w '%{time_total}' -F "file=@$TMP/scene.jpg" "http://$ADDRESS/predict")
  "$AFTER" stress --url "http://$ADDRESS" --file "$TMP/scene.jpg" --format json \
    --requests "$REQUESTS" --workers "$WORKERS" >"$TMP/stress_${side}_$round.json"
  serve_stop
  python3 - "$start" "$end" "$first" "$TMP/stress_${side}_$round.json" >"$TMP/serve_${side}_$round.json" <<'PY'
import json, sys
start, end, first, stress = sys.argv[1:]
print(json.dumps({"ready_s": float(end) - float(start), "first_request_s": float(first),
                  "stress": json.load(open(stress))}))
PY
  echo "serve $side $round: $(cat "$TMP/serve_${side}_$round.json")" >&2
}

train_round() { # SIDE BIN ROUND
  local side=$1 bin=$2 round=$3
  "$bin" run --project-dir "$TMP/$side" --pipeline detection --to-nodes train_yolo --force \
    --params "train.epochs=$EPOCHS" 2>"$TMP/train_${side}_$round.log" >/dev/null
  grep -o '[0-9.]* img/s' "$TMP/train_${side}_$round.log" | sed 's/ img\/s//' >"$TMP/train_${side}_$round.txt"
  echo "train $side $round: $(tr '\n' ' ' <"$TMP/train_${side}_$round.txt")img/s" >&2
}

for round in 1 2; do
  serve_round before "$BEFORE" "$round"
  serve_round after "$AFTER" "$round"
done
for round in 1 2; do
  train_round before "$BEFORE" "$round"
  train_round after "$AFTER" "$round"
done

python3 - "$TMP" "$OUT" "$REQUESTS" "$WORKERS" "$EPOCHS" "${BEFORE_COMMIT:-unknown}" "$(git rev-parse HEAD)" "$BEFORE" <<'EOF2'
import json, statistics, sys, time
tmp, out, requests, workers, epochs, before_commit, after_commit, before_bin = sys.argv[1:]
report = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
          "command": f"BEFORE={before_bin} bash bench/torch_path.sh {requests} {workers} {epochs}",
          "before": {"binary": before_bin, "commit": before_commit},
          "after": {"binary": "target/release/roadsign", "commit_at_run": after_commit},
          "rounds": {}}
summary = {}
for side in ("before", "after"):
    serve = [json.load(open(f"{tmp}/serve_{side}_{r}.json")) for r in (1, 2)]
    train = [[float(x) for x in open(f"{tmp}/train_{side}_{r}.txt").read().split()] for r in (1, 2)]
    report["rounds"][side] = {"serve": serve, "train_images_per_s_per_epoch": train}
    summary[side] = {
        "ready_s": statistics.median(s["ready_s"] for s in serve),
        "first_request_s": statistics.median(s["first_request_s"] for s in serve),
        "predict_requests_per_s": statistics.median(s["stress"]["requests_per_s"] for s in serve),
        # every epoch of both rounds (one slow epoch on this shared VM
        # weighs no more than any other)
        "train_images_per_s": statistics.median(x for t in train for x in t),
    }
summary["after_over_before"] = {k: summary["after"][k] / summary["before"][k] for k in summary["after"]}
report["summary"] = summary
json.dump(report, open(out, "w"), indent=2)
print(json.dumps(summary, indent=2))
EOF2
