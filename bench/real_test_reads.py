#!/usr/bin/env python3
"""What a user gets on real photos: `roadsign predict` with the default
configuration (parameters.yml) and the shipped model, on the test half of the
public photos' dev/ (conf/real_dev_split.csv: fixed once, used for no choice).

A sign counts as read right when the prediction has a box of its class
overlapping it (IoU >= 0.5) whose text is its transcription (spaces and case
aside). Reported per legibility grade; `high` is the goal's grade.

    python3 bench/real_test_reads.py --out bench/results/real_test_reads.json [--require 0.95]

Needs target/release/roadsign and ../shared/datasets/road-sign-detection
(or ROADSIGN_REAL_DATA). Exits 1 when the `high` rate is under --require.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHIPPED = "models/yolov8n-roadsign.safetensors"


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def normalise(text):
    return "".join((text or "").split()).upper()


CLASS_MAP = {"speedlimit": "speed_limit", "trafficlight": "traffic_light"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(REPO / "target/release/roadsign"))
    ap.add_argument("--model", default=SHIPPED)
    ap.add_argument("--split", default="test", help="the half of dev/ to read (test or val)")
    ap.add_argument("--project-dir", default=str(REPO), help="whose parameters.yml (default: the repository's)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--require", type=float, help="fail when the high grade's rate is below this")
    args = ap.parse_args()
    data = Path(os.environ.get("ROADSIGN_REAL_DATA", REPO / "../shared/datasets/road-sign-detection"))
    dev = data / "dev"
    if not dev.is_dir():
        sys.exit(f"{dev} is absent: put the public road-sign photos there (or set ROADSIGN_REAL_DATA)")
    with open(REPO / "conf/real_dev_split.csv", newline="") as f:
        half = {row["image"] for row in csv.DictReader(f) if row["split"] == args.split}
    signs = []
    with open(dev / "text_transcriptions.csv", newline="") as f:
        for row in csv.DictReader(f):
            image = Path(row["image"]).stem
            if image in half:
                signs.append({
                    "image": image,
                    "class": CLASS_MAP.get(row["class"], row["class"]),
                    "box": [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")],
                    "truth": row["text"],
                    "legibility": row["legibility"],
                })
    images = sorted(half, key=lambda s: (len(s), s))
    files = [str(dev / "images" / f"{image}.png") for image in images]
    # The default configuration: the repository's parameters.yml, nothing overridden.
    run = subprocess.run(
        [args.binary, "predict", "--project-dir", args.project_dir, "--model", str(REPO / args.model),
         "--format", "json", *files],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    predictions = {}
    for line in run.stdout.splitlines():
        p = json.loads(line)
        predictions[Path(p["file"]).stem] = p["detections"]
    grades = defaultdict(lambda: {"signs": 0, "read_right": 0, "found": 0})
    reads = []
    for s in signs:
        best, best_iou = None, 0.5
        for d in predictions.get(s["image"], []):
            overlap = iou(s["box"], d["box"])
            if d["class"] == s["class"] and overlap >= best_iou:
                best, best_iou = d, overlap
        text = best.get("text") if best else None
        right = best is not None and normalise(text) == normalise(s["truth"])
        g = grades[s["legibility"]]
        g["signs"] += 1
        g["found"] += best is not None
        g["read_right"] += right
        reads.append({**s, "found": best is not None, "read": text, "right": right})
    for g in grades.values():
        g["rate"] = g["read_right"] / g["signs"] if g["signs"] else 0.0
    result = {
        "command": "python3 bench/real_test_reads.py " + " ".join(sys.argv[1:]),
        "what": f"roadsign predict, default parameters.yml, {args.model}, the {args.split} half of dev/ "
                f"({len(images)} photos, conf/real_dev_split.csv)",
        "match": "a box of the sign's class with IoU >= 0.5 whose text equals the transcription (spaces, case aside)",
        "per_legibility": dict(sorted(grades.items())),
        "misses": [r for r in reads if not r["right"] and r["legibility"] != "illegible"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for grade, g in sorted(grades.items()):
        print(f"{grade:10} {g['read_right']:3}/{g['signs']:3} read right ({g['rate']:.1%}), {g['found']} found")
    high = grades["high"]["rate"]
    if args.require is not None and high < args.require:
        sys.exit(f"high-legibility signs read right: {high:.1%}, under the required {args.require:.0%}")


if __name__ == "__main__":
    main()
