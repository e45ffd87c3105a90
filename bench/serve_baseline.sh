#!/usr/bin/env bash
# The predict service against the Flask reference (../shared/reference), side
# by side in one run on this machine: the same image (640x640, 3 generated
# signs), the same weights (ours exported to an Ultralytics checkpoint), each
# server alone on the machine while `roadsign stress` loads it.
#
#   bash bench/serve_baseline.sh [REQUESTS] [WORKERS]
#
# Needs: target/release/roadsign (cargo build --release), a Python venv at
# $VENV (default /tmp/ultra-venv) with torch, ultralytics, flask, gunicorn,
# pytesseract, opencv-python-headless, safetensors. Results: bench/out/serve/.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-200}
WORKERS=${2:-10}
VENV=${VENV:-/tmp/ultra-venv}
REF=${REF:-../shared/reference}
OUT=bench/out/serve
BIN=target/release/roadsign
mkdir -p "$OUT"
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

# roadsign, on the shipped model
PROJECT=$(mktemp -d)
cp pipelines.yml catalog.yml parameters.yml "$PROJECT/"
mkdir -p "$PROJECT/data/06_models"
cp models/yolov8n-roadsign.safetensors "$PROJECT/data/06_models/yolov8.safetensors"
"$BIN" serve --port 5000 --project-dir "$PROJECT" 2>"$OUT/roadsign.log" &
RS=$!
wait_for http://127.0.0.1:5000/ready
"$BIN" stress --url http://127.0.0.1:5000/predict --requests "$REQUESTS" --workers "$WORKERS" \
  --save-file "$OUT/scene.jpg" --format json | tee "$OUT/roadsign.json"
echo "{\"peak_rss_mib\": $(sum_rss_mib $RS)}" | tee "$OUT/roadsign_rss.json"
kill -TERM $RS; wait $RS || true

# Starts a reference server (NAME, PORT, process pattern, command...) in the
# reference folder, loads it as roadsign was loaded, records its peak RSS
# (its processes added), and stops it.
load_reference() {
  local name=$1 port=$2 pattern=$3
  shift 3
  (cd "$REF" && MODEL_PATH="$OLDPWD/$OUT/roadsign.pt" IMGSZ=320 "$@") 2>"$OUT/$name.log" &
  local pid=$!
  wait_for "http://127.0.0.1:$port/health"
  "$BIN" stress --url "http://127.0.0.1:$port/predict" --requests "$REQUESTS" --workers "$WORKERS" \
    --file "$OUT/scene.jpg" --format json | tee "$OUT/$name.json" || true
  echo "{\"peak_rss_mib\": $(sum_rss_mib $(pgrep -f "$pattern"))}" | tee "$OUT/${name}_rss.json"
  pkill -f "$pattern" || true
  wait "$pid" 2>/dev/null || true
}

# Flask's development server (threaded), as the course runs it
load_reference flask 8000 'flask --app flask_app' \
  "$VENV/bin/flask" --app flask_app run --host 127.0.0.1 --port 8000
# gunicorn with 2 sync workers
load_reference gunicorn 8001 'gunicorn -w 2' \
  "$VENV/bin/gunicorn" -w 2 -b 127.0.0.1:8001 --timeout 300 flask_app:app

# A 640x360 dashcam clip through the video path (frames/s).
"$BIN" run --project-dir "$PROJECT" --pipeline dashcam >/dev/null 2>&1
"$BIN" predict "$PROJECT/data/01_raw/dashcam.mp4" --project-dir "$PROJECT" --format json | tee "$OUT/video.json"
rm -rf "$PROJECT"
