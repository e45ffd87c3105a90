#!/usr/bin/env python3
"""Exports a roadsign model (safetensors, Ultralytics' state_dict names) as an
Ultralytics checkpoint, so that the Flask reference serves the same weights.

    python bench/export_ultralytics.py models/yolov8n-roadsign.safetensors out.pt

Needs torch, ultralytics and safetensors (the venv of bench/serve_baseline.sh).
"""
import json
import sys

import torch
from safetensors import safe_open
from ultralytics.nn.tasks import DetectionModel


def main(src: str, dst: str) -> None:
    with safe_open(src, "pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    names = json.loads(meta["names"])
    scale = meta.get("scale", "n")
    model = DetectionModel(f"yolov8{scale}.yaml", nc=len(names), verbose=False)
    state = model.state_dict()
    missing = [k for k in state if k not in tensors and not k.endswith("num_batches_tracked")]
    if missing:
        sys.exit(f"missing tensors: {missing[:5]} ...")
    for key, value in tensors.items():
        if key in state and state[key].shape != value.shape:
            sys.exit(f"{key}: shape {tuple(value.shape)} != {tuple(state[key].shape)}")
    model.load_state_dict({k: v for k, v in tensors.items() if k in state}, strict=False)
    model.names = dict(enumerate(names))
    model.eval()
    torch.save({"model": model, "train_args": {"imgsz": int(meta.get("imgsz", 640))}}, dst)
    print(f"{dst}: {len(names)} classes, scale {scale}, imgsz {meta.get('imgsz')}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
