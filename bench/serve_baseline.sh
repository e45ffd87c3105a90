#!/usr/bin/env bash
# The predict service against the Flask reference (../shared/reference), side
# by side in one run on this machine: the same image (640x640, 3 generated
# signs: a stop sign and two yield signs), the same weights (ours exported to
# an Ultralytics checkpoint), each server alone on the machine while
# `roadsign stress` loads it. Equal OCR work, both ways:
#  - text_classes: Tesseract on text-bearing classes only (roadsign's default;
#    the reference through bench/flask_text_only.py, its own view with the
#    class filter added): one read per image, the stop sign;
#  - every_detection: Tesseract on every detection (the reference as it is;
#    roadsign with ocr.prepare.text_classes set to all nine classes): three.
#
#   bash bench/serve_baseline.sh [REQUESTS] [WORKERS]
#
# Needs: target/release/roadsign (cargo build --release), a Python venv at
# $VENV (default /tmp/ultra-venv) with torch, ultralytics, flask, gunicorn,
# pytesseract, opencv-python-headless, safetensors. Raw outputs under
# bench/out/serve/; every figure and the ratios in bench/results/serve_baseline.json.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-200}
WORKERS=${2:-10}
VENV=${VENV:-/tmp/ultra-venv}
REF=${REF:-../shared/reference}
OUT=bench/out/serve
BIN=target/release/roadsign
rm -rf "$OUT"; mkdir -p "$OUT"
export YOLO_OFFLINE=1

wait_for() { # URL
  for _ in $(seq 1 600); do
    if curl -sf "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "timed out waiting for $1" >&2; return 1
}
sum_rss_mib() { # PIDs: summed VmHWM (all processes of a server), MiB
  local total=0
  for pid in "$@"; do
    local kib; kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${kib:-0}))
  done
  echo $((total / 1024))
}

"$VENV/bin/python" bench/export_ultralytics.py models/yolov8n-roadsign.safetensors "$OUT/roadsign.pt"

ALL_CLASSES=$(python3 -c "import yaml; print(','.join(c['name'] for c in yaml.safe_load(open('parameters.yml'))['classes']))")
TEXT_CLASSES=$(python3 -c "import yaml; print(','.join(yaml.safe_load(open('parameters.yml'))['ocr']['prepare']['text_classes']))")

# roadsign, on the shipped model; conf/every_detection reads every class.
PROJECT=$(mktemp -d)
cp pipelines.yml catalog.yml parameters.yml "$PROJECT/"
mkdir -p "$PROJECT/data/06_models" "$PROJECT/conf/every_detection"
cp models/yolov8n-roadsign.safetensors "$PROJECT/data/06_models/yolov8.safetensors"
printf 'ocr:\n  prepare:\n    text_classes: [%s]\n' "$ALL_CLASSES" >"$PROJECT/conf/every_detection/parameters.yml"

# One response of a server on the scene, kept: which detections were read.
sample() { # URL FILE
  curl -sf -F "file=@$OUT/scene.jpg" "$1" >"$2"
}

# Starts a reference server (MODE, NAME, PORT, process pattern, command...)
# in the reference folder, loads it as roadsign was loaded, records its peak
# RSS (its processes added), and stops it.
load_reference() {
  local mode=$1 name=$2 port=$3 pattern=$4
  shift 4
  (cd "$REF" && MODEL_PATH="$OLDPWD/$OUT/roadsign.pt" IMGSZ=320 TEXT_CLASSES="$TEXT_CLASSES" \
    PYTHONPATH="$OLDPWD/bench" "$@") 2>"$OUT/$mode/$name.log" &
  local pid=$!
  wait_for "http://127.0.0.1:$port/health"
  sample "http://127.0.0.1:$port/predict" "$OUT/$mode/${name}_response.json"
  "$BIN" stress --url "http://127.0.0.1:$port/predict" --requests "$REQUESTS" --workers "$WORKERS" \
    --file "$OUT/scene.jpg" --format json | tee "$OUT/$mode/$name.json" || true
  echo "{\"peak_rss_mib\": $(sum_rss_mib $(pgrep -f "$pattern"))}" | tee "$OUT/$mode/${name}_rss.json"
  pkill -f "$pattern" || true
  wait "$pid" 2>/dev/null || true
}

for mode in text_classes every_detection; do
  mkdir -p "$OUT/$mode"
  env_args=()
  app=flask_text_only
  if [ "$mode" = every_detection ]; then env_args=(--env every_detection); app=flask_app; fi
  "$BIN" serve --port 5000 --project-dir "$PROJECT" "${env_args[@]}" 2>"$OUT/$mode/roadsign.log" &
  RS=$!
  wait_for http://127.0.0.1:5000/ready
  if [ ! -f "$OUT/scene.jpg" ]; then
    # The stress tool's generated scene, saved once and sent to every server.
    "$BIN" stress --url http://127.0.0.1:5000/predict --requests 1 --workers 1 \
      --save-file "$OUT/scene.jpg" --format json >/dev/null
  fi
  sample http://127.0.0.1:5000/predict "$OUT/$mode/roadsign_response.json"
  "$BIN" stress --url http://127.0.0.1:5000/predict --requests "$REQUESTS" --workers "$WORKERS" \
    --file "$OUT/scene.jpg" --format json | tee "$OUT/$mode/roadsign.json"
  echo "{\"peak_rss_mib\": $(sum_rss_mib $RS)}" | tee "$OUT/$mode/roadsign_rss.json"
  kill -TERM $RS; wait $RS || true

  # Flask's development server (threaded), as the course runs it
  load_reference "$mode" flask 8000 "flask --app $app" \
    "$VENV/bin/flask" --app "$app" run --host 127.0.0.1 --port 8000
  # gunicorn with 2 sync workers
  load_reference "$mode" gunicorn 8001 'gunicorn -w 2' \
    "$VENV/bin/gunicorn" -w 2 -b 127.0.0.1:8001 --timeout 300 "$app:app"
done
python3 bench/serve_results.py "$OUT" "$REQUESTS" "$WORKERS" bench/results/serve_baseline.json

# A 640x360 dashcam clip through the video path (frames/s).
"$BIN" run --project-dir "$PROJECT" --pipeline dashcam >/dev/null 2>&1
"$BIN" predict "$PROJECT/data/01_raw/dashcam.mp4" --project-dir "$PROJECT" --format json | tee "$OUT/video.json" bench/results/serve_video.json
rm -rf "$PROJECT"
