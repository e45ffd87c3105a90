#!/usr/bin/env bash
# Single-image latency at the predict settings (conf 0.25, batch 1, 2 threads,
# 320 px) of the shipped YOLOv8n and of a YOLOv10n (the predict-parity
# fixture, trained by bench/yolov10_vs_yolov8.py), the YOLOv10n end to end and
# with NMS, in one run on one photo-like scene. Raw lines to
# bench/results/inference_latency.jsonl.
#
#   bash bench/inference_latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/inference_latency.jsonl
image=$PWD/yolo/tests/fixtures/predict_parity/baseline_640x480.jpg
: > "$out.tmp"
for model in models/yolov8n-roadsign.safetensors \
  yolo/tests/fixtures/predict_parity/yolov10n_synthetic_f16.safetensors; do
  BENCH_IMGSZ=320 BENCH_RUNS=100 BENCH_IMAGE=$image \
    cargo bench -q --offline -p yolo --bench inference -- "$PWD/$model" | tee -a "$out.tmp"
done
mv "$out.tmp" "$out"
