#!/usr/bin/env python3
"""What Ultralytics' predictor makes of a few image files: the fixture of
yolo's tests/predict_parity.rs.

Writes image files of different formats, sizes and aspect ratios (baseline,
progressive, 4:4:4 and grey JPEGs, a JPEG with EXIF orientation 6, an RGBA
PNG, a 16-bit PNG, a small PNG that is scaled up), all cut from the synthetic
road scene of the oracle fixture (yolo/tests/fixtures/oracle/inputs.safetensors,
made by this project's generator), into yolo/tests/fixtures/predict_parity/,
and beside them ultralytics.safetensors with, for each file NAME:

  NAME.pixels_sha256 u8 [32]       SHA-256 of what Ultralytics' imread gives, as RGB rows (H x W x 3 bytes)
  NAME.pixels_shape  i64 [3]       H, W, 3
  NAME.input         u8 [h, w, 3]  the predictor's letterboxed input (before /255), RGB
  NAME.MODEL.boxes   f32 [N, 4]    detections of `model.predict(file, imgsz=320)`, xyxy in the file's pixels
  NAME.MODEL.scores  f32 [N]
  NAME.MODEL.classes f32 [N]

for MODEL `yolov8` (the shipped models/yolov8n-roadsign.safetensors loaded into
Ultralytics' own DetectionModel) and, when given with --yolov10 FILE, `yolov10`
and `yolov10nms` (the same YOLOv10 weights read end to end, `nms=False`, and
with Ultralytics' default for a model built from its yaml: one-to-many +
NMS); at conf 0.25 and, as MODEL_low, at conf 0.05.

    /tmp/ultra-venv/bin/pip install torch ultralytics==8.4.190 safetensors pillow
    YOLO_OFFLINE=1 /tmp/ultra-venv/bin/python scripts/oracle/predict_parity.py [--yolov10 FILE]
"""
import argparse
import hashlib
import io
import json
import pathlib

import cv2
import numpy as np
import torch
import ultralytics
from PIL import Image
from safetensors.numpy import save_file
from safetensors.torch import load_file
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.patches import imread

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "yolo/tests/fixtures/predict_parity"
IMGSZ = 320
CONF = 0.25
LOW_CONF = 0.05


def scene(size: int) -> np.ndarray:
    """The oracle's 320x320 synthetic scene (RGB), resized to size x size."""
    rgb = load_file(str(ROOT / "yolo/tests/fixtures/oracle/inputs.safetensors"))["val00000_lb320_u8_hwc_rgb"].numpy()
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_CUBIC)


def pil_jpeg(rgb: np.ndarray, path: pathlib.Path, **options) -> None:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", **options)
    path.write_bytes(buffer.getvalue())


def write_inputs() -> list[str]:
    files = []

    def add(name):
        files.append(name)
        return OUT / name

    cv2.imwrite(str(add("baseline_640x480.jpg")), scene(640)[80:560, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    pil_jpeg(scene(500)[:, 83:416], add("progressive_333x500.jpg"), quality=85, progressive=True)
    grey = cv2.cvtColor(scene(400)[50:350], cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(add("grey_400x300.jpg")), grey, [cv2.IMWRITE_JPEG_QUALITY, 92])
    pil_jpeg(scene(1000)[150:850], add("subsampling444_1000x700.jpg"), quality=95, subsampling=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    pil_jpeg(scene(480)[80:400], add("exif6_480x320.jpg"), quality=90, exif=exif)
    rgb = scene(417)[58:358]
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    cv2.imwrite(str(add("rgba_417x300.png")), np.dstack([rgb[..., ::-1], alpha]))
    rgb = scene(257)[32:225].astype(np.uint16)
    low = (np.arange(rgb.size, dtype=np.uint16).reshape(rgb.shape) * 37) % 256
    cv2.imwrite(str(add("rgb16_257x193.png")), (rgb * 256 + low)[..., ::-1])
    cv2.imwrite(str(add("small_150x100.png")), scene(150)[25:125, :, ::-1])
    return files


def ultralytics_model(weights: pathlib.Path, yaml: str) -> YOLO:
    state = load_file(str(weights))
    metadata = json.loads(pathlib.Path(weights).read_bytes()[8 : 8 + int.from_bytes(weights.read_bytes()[:8], "little")])
    names = json.loads(metadata["__metadata__"]["names"])
    net = DetectionModel(yaml, nc=len(names), verbose=False)
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert all(k.endswith("num_batches_tracked") for k in missing) and not unexpected, (missing, unexpected)
    net.names = dict(enumerate(names))
    model = YOLO(yaml)
    model.model = net
    return model.eval() if hasattr(model, "eval") else model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--yolov10", type=pathlib.Path, help="a YOLOv10 model file (safetensors) to run too")
    args = parser.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    files = write_inputs()
    yolov8 = ultralytics_model(ROOT / "models/yolov8n-roadsign.safetensors", "yolov8n.yaml")
    # (model, predict arguments): the default threshold, and a low one that
    # lets many more boxes through. A YOLOv10 reads end to end only with
    # nms=False (the predictor hands AutoBackend end2end=(nms is False)).
    models = {"yolov8": (yolov8, {"conf": CONF}), "yolov8_low": (yolov8, {"conf": LOW_CONF})}
    if args.yolov10:
        # Two objects: a predictor keeps the head it was set up with.
        yolov10 = ultralytics_model(args.yolov10, "yolov10n.yaml")
        yolov10nms = ultralytics_model(args.yolov10, "yolov10n.yaml")
        models |= {
            "yolov10": (yolov10, {"conf": CONF, "nms": False}),
            "yolov10_low": (yolov10, {"conf": LOW_CONF, "nms": False}),
            "yolov10nms": (yolov10nms, {"conf": CONF}),
            "yolov10nms_low": (yolov10nms, {"conf": LOW_CONF}),
        }
    tensors = {}
    counts = {}
    for name in files:
        path = str(OUT / name)
        bgr = imread(path)
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        tensors[f"{name}.pixels_sha256"] = np.frombuffer(hashlib.sha256(rgb.tobytes()).digest(), np.uint8)
        tensors[f"{name}.pixels_shape"] = np.array(rgb.shape, np.int64)
        for key, (model, options) in models.items():
            result = model.predict(path, imgsz=IMGSZ, verbose=False, **options)[0]
            boxes = result.boxes
            tensors[f"{name}.{key}.boxes"] = boxes.xyxy.numpy().astype(np.float32).reshape(-1, 4)
            tensors[f"{name}.{key}.scores"] = boxes.conf.numpy().astype(np.float32).reshape(-1)
            tensors[f"{name}.{key}.classes"] = boxes.cls.numpy().astype(np.float32).reshape(-1)
            counts[f"{name}.{key}"] = len(boxes)
        # The letterboxed input, as the predictor builds it (float in [0, 1]).
        image = yolov8.predictor.preprocess([bgr])[0]
        u8 = (image * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
        tensors[f"{name}.input"] = u8
    meta = {
        "ultralytics": ultralytics.__version__,
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "imgsz": IMGSZ,
        "conf": CONF,
        "low_conf": LOW_CONF,
        "detections": counts,
    }
    save_file(tensors, str(OUT / "ultralytics.safetensors"), metadata={"meta": json.dumps(meta)})
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
