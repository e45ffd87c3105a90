#!/usr/bin/env python3
"""Ultralytics' own YOLOv10 at every scale, as the shape fixture of yolo's tests.

Builds ``DetectionModel('yolov10<s>.yaml', nc=4)`` for s in n, s, m, b, l, x
and writes, per scale, every state_dict tensor's name and shape (without
``num_batches_tracked``) and the parameter counts at nc 4 and nc 80, to
``yolo/tests/fixtures/oracle/yolov10_scales.json``. Made once with
ultralytics 8.4.190 (torch CPU); the test compares roadsign's YOLOv10 to it.

    python3 -m venv /tmp/ultra-venv
    /tmp/ultra-venv/bin/pip install torch ultralytics==8.4.190
    YOLO_OFFLINE=1 /tmp/ultra-venv/bin/python scripts/oracle/yolov10_scales.py
"""
import json
import pathlib

import torch
import ultralytics
from ultralytics.nn.tasks import DetectionModel

OUT = pathlib.Path(__file__).resolve().parents[2] / "yolo/tests/fixtures/oracle/yolov10_scales.json"


def describe(scale: str, nc: int) -> dict:
    model = DetectionModel(f"yolov10{scale}.yaml", nc=nc, verbose=False)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    return {
        # Parameters (what Ultralytics' summary counts: the frozen DFL weight included).
        "parameters": sum(p.numel() for p in model.parameters()),
        "shapes": {k: list(v.shape) for k, v in state.items()},
    }


def main() -> None:
    scales = {}
    for scale in "nsmblx":
        at4, at80 = describe(scale, 4), describe(scale, 80)
        scales[scale] = {
            "parameters_nc4": at4["parameters"],
            "parameters_nc80": at80["parameters"],
            "shapes_nc4": at4["shapes"],
        }
    meta = {"ultralytics": ultralytics.__version__, "torch": torch.__version__}
    OUT.write_text(json.dumps({"made_with": meta, "scales": scales}, indent=0, sort_keys=True) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
