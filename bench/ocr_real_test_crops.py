#!/usr/bin/env python3
"""roadsign's recogniser against plain pytesseract on the ground-truth crops
of the photos' test half (conf/real_dev_split.csv: used for no choice), with
and without the sign's class.

The `ocr` pipeline reads a ground-truth crop knowing the sign's true class,
which picks its text area, preprocessing, character whitelist and
vocabulary: a stop crop can only read STOP. pytesseract gets none of that.
So roadsign is measured twice, in one run, on the same crops:

- `with_class`: the default configuration (parameters.yml and conf/real);
- `class_blind`: every text class given the same settings, those roadsign
  uses for a class it has no settings for (the whole box, luma gray, Otsu,
  psm 7, no whitelist), and no correction: what the recogniser does without
  the class.

Beside them `bench/ocr_baseline.py`'s pytesseract readers on the same boxes
(plain RGB crop, and gray + 3x + Otsu). The shipped model gives the detector's
regions for the end-to-end figures of `ocr_metrics.json`.

    cargo build --release && python3 bench/ocr_real_test_crops.py --python /tmp/ultra-venv/bin/python \\
        --out bench/results/ocr_real_test_crops.json

--python: an interpreter with pytesseract, opencv-python(-headless), Pillow.
"""
import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from yolov10_vs_yolov8 import REAL_DATA, REPO, copy_project, real_env, run

SHIPPED = REPO / "models/yolov8n-roadsign.safetensors"
# What roadsign does for a class it has no settings for (ClassPreprocess and
# ClassReading defaults), spelt out so that the deep merge replaces every key.
BLIND_PREPARE = {"inner": [1.0, 1.0], "height": 64, "binarize": "otsu", "clear_border": False,
                 "drop_red": False, "channel": "luma", "stroke_thinning": 0.0, "round": False,
                 "deskew_degrees": 0.0}
BLIND_READING = {"psm": 7, "whitelist": ""}


def blind_env(work, base):
    """`base` with every text class read alike and correction off."""
    env = work / "conf" / f"{base}_blind"
    shutil.copytree(work / "conf" / base, env)
    params = yaml.safe_load((env / "parameters.yml").read_text()) or {}
    ocr = params.setdefault("ocr", {})
    classes = ocr.get("prepare", {}).get("text_classes") or ["speed_limit", "stop"]
    ocr.setdefault("prepare", {})["classes"] = {c: dict(BLIND_PREPARE) for c in classes}
    ocr.setdefault("tesseract", {})["classes"] = {c: dict(BLIND_READING) for c in classes}
    ocr["correction"] = {"enabled": False}
    (env / "parameters.yml").write_text(yaml.safe_dump(params, sort_keys=False))
    return env.name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", required=True, help="interpreter with pytesseract, cv2, Pillow")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    result = {"command": f"python3 bench/ocr_real_test_crops.py --python {args.python} --out {args.out}",
              "what": "ground-truth crops and detector regions (shipped model) of the test half of dev/",
              "settings": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_project(work)
        base = real_env(work)
        (work / "data/06_models").mkdir(parents=True)
        shutil.copy(SHIPPED, work / "data/06_models/bench_trained.safetensors")
        run(["run", "--env", base, "--to-nodes", "preprocess_data"], work)
        for label, env in [("with_class", base), ("class_blind", blind_env(work, base))]:
            run(["run", "--env", env, "--pipeline", "ocr", "--force", "--params", "ocr.prepare.split=test"], work)
            reports = work / "data/08_reporting/real"
            baseline = work / f"bench/pytesseract_{label}.json"
            subprocess.run([args.python, str(REPO / "bench/ocr_baseline.py"), "--reads",
                            str(reports / "ocr_reads.csv"), "--images", str(REAL_DATA / "dev/images"),
                            "--transcriptions", str(REAL_DATA / "dev/text_transcriptions.csv"), "--out", str(baseline)],
                           check=True)
            figures = json.loads(baseline.read_text())
            result["settings"][label] = {
                "ocr_metrics": json.loads((reports / "ocr_metrics.json").read_text()),
                "ground_truth_crops": {k: v for k, v in figures["figures"].items() if k.startswith("roadsign")},
            }
            # pytesseract reads the same boxes whatever roadsign's settings: kept once.
            result["pytesseract"] = {k: v for k, v in figures["figures"].items() if k.startswith("pytesseract")}
            result["pytesseract_ms_median"] = figures["pytesseract_ms_median"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for label, s in result["settings"].items():
        for reader, grades in s["ground_truth_crops"].items():
            print(f"{label:10} {reader:20} " + ", ".join(
                f"{g}: exact {v['exact']:.3f} CER {v['cer']:.3f} ({v['regions']})" for g, v in grades.items()))
    for reader, grades in result["pytesseract"].items():
        print(f"{reader:40} " + ", ".join(f"{g}: exact {v['exact']:.3f} CER {v['cer']:.3f}" for g, v in grades.items()))


if __name__ == "__main__":
    main()
