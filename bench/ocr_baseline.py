#!/usr/bin/env python3
"""roadsign's OCR against plain pytesseract, on the same ground-truth crops.

Reads roadsign's per-region table (``ocr_reads.csv``, written by
``evaluate_ocr``) and, for every ground-truth region in it, runs pytesseract
on the same box of the same image:

- ``plain``: the RGB crop as it is, ``--psm 7``, English (the usual
  "pytesseract.image_to_string(crop)" of a Flask service);
- ``gray3x``: grayscale, 3x bicubic upscale, Otsu (cv2), ``--psm 7``.

Then prints CER (Levenshtein over all text-bearing regions), exact-match rate
and the median time of one pytesseract call, next to roadsign's raw and
corrected reads of the same regions, over the legible regions (all but those
graded ``illegible``) and per legibility grade. The grade comes from the
table's ``legibility`` column (generated scenes) or, with
``--transcriptions`` (the real photos' ``text_transcriptions.csv``), from its
``legibility`` column, matched on image and box.

Usage (from the repository root, after the OCR nodes ran)::

    target/release/roadsign run --nodes load_data,prepare_ocr_data,detect_text_regions,configure_tesseract,run_ocr,evaluate_ocr --force
    /tmp/ultra-venv/bin/python bench/ocr_baseline.py --reads data/08_reporting/ocr_reads.csv \\
        --images data/01_raw/road_signs/images
    target/release/roadsign run --env real --nodes load_data,prepare_ocr_data,detect_text_regions,configure_tesseract,run_ocr,evaluate_ocr --force
    /tmp/ultra-venv/bin/python bench/ocr_baseline.py --reads data/08_reporting/real/ocr_reads.csv \\
        --images ../shared/datasets/road-sign-detection/dev/images \\
        --transcriptions ../shared/datasets/road-sign-detection/dev/text_transcriptions.csv

Needs pytesseract, opencv-python(-headless) and Pillow, and the ``tesseract``
program (Debian's tesseract-ocr, the same 5.3 that roadsign links).
"""

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import pytesseract
from PIL import Image


def normalize(text):
    return " ".join((text or "").split()).upper()


def levenshtein(a, b):
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a):
        current = [i + 1]
        for j, y in enumerate(b):
            current.append(min(previous[j] + (x != y), previous[j + 1] + 1, current[j] + 1))
        previous = current
    return previous[-1]


def scores(pairs):
    """CER over all pairs (read, truth) and the exact-match rate."""
    errors = sum(levenshtein(normalize(r), normalize(t)) for r, t in pairs)
    chars = sum(len(normalize(t)) for _, t in pairs)
    exact = sum(normalize(r) == normalize(t) for r, t in pairs)
    return {
        "regions": len(pairs),
        "cer": errors / max(chars, 1),
        "exact": exact / max(len(pairs), 1),
    }


def find_image(folder, stem):
    for ext in (".png", ".jpg", ".jpeg"):
        path = folder / f"{stem}{ext}"
        if path.exists():
            return path
    raise FileNotFoundError(f"no image {stem}.* in {folder}")


def plain(crop):
    return crop


def gray3x(crop):
    gray = cv2.cvtColor(np.asarray(crop), cv2.COLOR_RGB2GRAY)
    big = cv2.resize(gray, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    _, binary = cv2.threshold(big, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return Image.fromarray(binary)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reads", type=Path, required=True, help="roadsign's ocr_reads.csv")
    ap.add_argument("--images", type=Path, required=True, help="folder of the images named in it")
    ap.add_argument("--transcriptions", type=Path, help="text_transcriptions.csv (legibility column)")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = ap.parse_args()

    rows = [r for r in csv.DictReader(args.reads.open()) if r["source"] == "ground_truth" and r["truth"]]
    legibility = {}
    if args.transcriptions:
        for t in csv.DictReader(args.transcriptions.open()):
            key = (Path(t["image"]).stem, *(int(t[k]) for k in ("xmin", "ymin", "xmax", "ymax")))
            legibility[key] = t["legibility"]

    variants = {"plain": plain, "gray3x": gray3x}
    reads = {name: [] for name in variants}
    seconds = {name: [] for name in variants}
    groups = []
    for row in rows:
        box = tuple(int(round(float(row[k]))) for k in ("xmin", "ymin", "xmax", "ymax"))
        groups.append(row.get("legibility") or legibility.get((row["image"], *box), "ungraded"))
        crop = Image.open(find_image(args.images, row["image"])).convert("RGB").crop(box)
        for name, prepare in variants.items():
            start = time.perf_counter()
            text = pytesseract.image_to_string(prepare(crop), config="--psm 7")
            seconds[name].append(time.perf_counter() - start)
            reads[name].append(text)

    truths = [r["truth"] for r in rows]
    columns = {
        "pytesseract plain (psm 7)": reads["plain"],
        "pytesseract gray+3x+Otsu (psm 7)": reads["gray3x"],
        "roadsign raw": [r["read"] for r in rows],
        "roadsign corrected": [r["corrected"] for r in rows],
    }
    selections = {"legible": [g != "illegible" for g in groups]}
    if set(groups) != {"ungraded"}:
        for level in sorted(set(groups)):
            selections[level] = [g == level for g in groups]
    figures = {}
    for name, texts in columns.items():
        figures[name] = {}
        for level, keep in selections.items():
            pairs = [(r, t) for r, t, k in zip(texts, truths, keep) if k]
            figures[name][level] = scores(pairs)
    timing = {name: statistics.median(s) * 1000 for name, s in seconds.items()}

    print(f"{len(rows)} ground-truth regions from {args.reads}")
    header = "| reader | " + " | ".join(f"{lv} CER | {lv} exact" for lv in selections) + " |"
    print(header)
    print("|" + " --- |" * (1 + 2 * len(selections)))
    for name, per_level in figures.items():
        cells = " | ".join(f"{s['cer']:.3f} | {s['exact']:.3f}" for s in per_level.values())
        print(f"| {name} | {cells} |")
    print("regions per group: " + ", ".join(f"{lv} {s['regions']}" for lv, s in figures["roadsign raw"].items()))
    for name, ms in timing.items():
        print(f"pytesseract {name}: median {ms:.0f} ms a call ({len(seconds[name])} calls)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"figures": figures, "pytesseract_ms_median": timing}, indent=2))


if __name__ == "__main__":
    main()
