#!/usr/bin/env python3
"""The text areas of the photos' stop and speed-limit signs, chosen again on
the tuning half of dev/ alone, then measured on its test half.

parameters.yml's `ocr.prepare.classes.<class>.inner` (the part of a sign's box
Tesseract reads, width and height fractions) was first chosen on all of dev/,
before dev/ was split in halves (conf/real_dev_split.csv). This bench redoes
that choice without the test half: for each class it tries a grid of areas,
reads the tuning half end to end with each (`bench/real_test_reads.py
--split val`: `roadsign predict`, the shipped model, parameters.yml with only
that area changed), and keeps the area that reads the most `high` signs
right, then the most `low` ones; ties go to the area whose grid neighbours
read best (the flattest optimum), then to the first in grid order. Only then
are the shipped areas and the chosen ones read on the test half.

    cargo build --release && python3 bench/ocr_text_areas.py --out bench/results/ocr_text_areas.json

Needs target/release/roadsign and ../shared/datasets/road-sign-detection
(or ROADSIGN_REAL_DATA).
"""
import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def frange(start, stop, step):
    count = int(round((stop - start) / step)) + 1
    return [round(start + i * step, 2) for i in range(count)]


# Wide grids, the same step for both classes.
GRIDS = {
    "speed_limit": (frange(0.54, 0.96, 0.06), frange(0.4, 0.9, 0.1)),
    "stop": (frange(0.72, 1.0, 0.04), frange(0.3, 0.8, 0.1)),
}
AREA = re.compile(r"^(\s+{cls}:\s*\{{inner:\s*)\[([0-9.]+),\s*([0-9.]+)\]", re.M)


def shipped_area(text, cls):
    found = re.compile(AREA.pattern.format(cls=cls), re.M).search(text)
    if not found:
        sys.exit(f"parameters.yml has no `{cls}: {{inner: [w, h]` line")
    return [float(found.group(2)), float(found.group(3))]


def with_area(text, cls, area):
    pattern = re.compile(AREA.pattern.format(cls=cls), re.M)
    return pattern.sub(lambda m: f"{m.group(1)}[{area[0]}, {area[1]}]", text, count=1)


def read_half(project, parameters, split):
    """Reads one half of dev/ with these parameters; (high right, low right, report)."""
    (project / "parameters.yml").write_text(parameters)
    out = project / "reads.json"
    subprocess.run([sys.executable, str(REPO / "bench/real_test_reads.py"), "--split", split,
                    "--project-dir", str(project), "--out", str(out)], check=True, capture_output=True, text=True)
    report = json.loads(out.read_text())
    grades = report["per_legibility"]
    return grades["high"]["read_right"], grades.get("low", {}).get("read_right", 0), report


def choose(scores, widths, heights):
    """The best (high, low) score; ties to the best mean of grid neighbours."""
    def neighbours(w, h):
        i, j = widths.index(w), heights.index(h)
        around = [(widths[a], heights[b]) for a, b in [(i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)]
                  if 0 <= a < len(widths) and 0 <= b < len(heights)]
        return sum(scores[k][0] + scores[k][1] / 100 for k in around) / len(around)

    best = max(scores.values())
    tied = [k for k in scores if scores[k] == best]  # grid order
    return max(tied, key=lambda k: (neighbours(*k), -tied.index(k)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    base = (REPO / "parameters.yml").read_text()
    result = {"command": f"python3 bench/ocr_text_areas.py --out {args.out}", "classes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for name in ["pipelines.yml", "catalog.yml"]:
            (project / name).write_text((REPO / name).read_text())
        chosen_text = base
        for cls, (widths, heights) in GRIDS.items():
            scores = {}
            for w in widths:
                for h in heights:
                    high, low, _ = read_half(project, with_area(base, cls, [w, h]), "val")
                    scores[(w, h)] = (high, low)
                    print(f"{cls} inner [{w}, {h}]: tuning half high {high}, low {low}", flush=True)
            chosen = choose(scores, widths, heights)
            shipped = shipped_area(base, cls)
            _, _, shipped_tuning = read_half(project, base, "val")
            result["classes"][cls] = {
                "shipped": shipped,
                "chosen_on_tuning_half": list(chosen),
                "tuning_half_scores": [{"inner": [w, h], "high_right": s[0], "low_right": s[1]}
                                       for (w, h), s in scores.items()],
                "shipped_on_tuning_half": {"high_right": shipped_tuning["per_legibility"]["high"]["read_right"]},
            }
            chosen_text = with_area(chosen_text, cls, list(chosen))
        # Only now the test half: the shipped areas and the ones chosen above.
        for label, text in [("shipped", base), ("chosen_on_tuning_half", chosen_text)]:
            _, _, report = read_half(project, text, "test")
            result[f"test_half_{label}"] = {"per_legibility": report["per_legibility"], "misses": report["misses"]}
            grades = report["per_legibility"]
            print(f"test half, {label} areas: " + ", ".join(
                f"{g} {v['read_right']}/{v['signs']}" for g, v in grades.items()), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
