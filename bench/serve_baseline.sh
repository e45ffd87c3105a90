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
peak_rss_mib() { # PID...: the largest VmHWM among them, MiB
  local max=0
  for pid in "$@"; do
    local kib; kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${kib:-0}" -gt "$max" ] && max=$kib
  done
  echo $((max / 1024))
}
sum_rss_mib() { # PIDs: summed VmHWM (for several worker processes), MiB
  local total=0
  for pid in "$@"; do
    local kib; kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${kib:-0}))
  done
  echo $((total / 1024))
}

"$VENV/bin/python" bench/export_ultralytics.py models/yolov8n-roadsign-synthetic.safetensors "$OUT/roadsign.pt"

# roadsign, on the shipped model
PROJECT=$(mktemp -d)
cp pipelines.yml catalog.yml parameters.yml "$PROJECT/"
mkdir -p "$PROJECT/data/06_models"
cp models/yolov8n-roadsign-synthetic.safetensors "$PROJECT/data/06_models/yolov8.safetensors"
"$BIN" serve --port 5000 --project-dir "$PROJECT" 2>"$OUT/roadsign.log" &
RS=$!
wait_for http://127.0.0.1:5000/ready
"$BIN" stress --url http://127.0.0.1:5000/predict --requests "$REQUESTS" --workers "$WORKERS" \
  --save-file "$OUT/scene.jpg" --format json | tee "$OUT/roadsign.json"
echo "{\"peak_rss_mib\": $(peak_rss_mib $RS)}" | tee "$OUT/roadsign_rss.json"
kill -TERM $RS; wait $RS || true

# Flask's development server (threaded), as the course runs it
(cd "$REF" && MODEL_PATH="$OLDPWD/$OUT/roadsign.pt" IMGSZ=320 "$VENV/bin/flask" --app flask_app run \
  --host 127.0.0.1 --port 8000) 2>"$OUT/flask.log" &
FL=$!
wait_for http://127.0.0.1:8000/health
"$BIN" stress --url http://127.0.0.1:8000/predict --requests "$REQUESTS" --workers "$WORKERS" \
  --file "$OUT/scene.jpg" --format json | tee "$OUT/flask.json" || true
echo "{\"peak_rss_mib\": $(peak_rss_mib $(pgrep -f 'flask --app flask_app' || echo $FL))}" | tee "$OUT/flask_rss.json"
pkill -f 'flask --app flask_app' || true; wait $FL 2>/dev/null || true

# gunicorn with 2 sync workers
(cd "$REF" && MODEL_PATH="$OLDPWD/$OUT/roadsign.pt" IMGSZ=320 "$VENV/bin/gunicorn" -w 2 -b 127.0.0.1:8001 \
  --timeout 300 flask_app:app) 2>"$OUT/gunicorn.log" &
GU=$!
wait_for http://127.0.0.1:8001/health
"$BIN" stress --url http://127.0.0.1:8001/predict --requests "$REQUESTS" --workers "$WORKERS" \
  --file "$OUT/scene.jpg" --format json | tee "$OUT/gunicorn.json" || true
echo "{\"peak_rss_mib\": $(sum_rss_mib $(pgrep -f 'gunicorn -w 2'))}" | tee "$OUT/gunicorn_rss.json"
pkill -f 'gunicorn -w 2' || true; wait $GU 2>/dev/null || true

# A 640x360 dashcam clip through the video path (frames/s).
"$BIN" run --project-dir "$PROJECT" --pipeline dashcam >/dev/null 2>&1
"$BIN" predict "$PROJECT/data/01_raw/dashcam.mp4" --project-dir "$PROJECT" --format json | tee "$OUT/video.json"
rm -rf "$PROJECT"
