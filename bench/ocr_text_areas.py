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
read best (the flattest optimum), then to the first in grid order. The
speed limit's `round` (read only the ellipse inside the area), chosen with
the areas on all of dev/, is then tried both ways at the chosen area, the
same way (a tie goes to `false`, roadsign's default). It starts from the
former areas (FORMER), whatever parameters.yml holds now, so that a rerun
repeats the choice. Only then are the former settings and the chosen ones
read on the test half.

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

from yolov10_vs_yolov8 import REPO, copy_project


def frange(start, stop, step):
    count = int(round((stop - start) / step)) + 1
    return [round(start + i * step, 2) for i in range(count)]


# Wide grids, the same step for both classes.
GRIDS = {
    "speed_limit": (frange(0.54, 0.96, 0.06), frange(0.4, 0.9, 0.1)),
    "stop": (frange(0.72, 1.0, 0.04), frange(0.3, 0.8, 0.1)),
}
# The areas chosen on all of dev/ before it was split (parameters.yml until
# this bench chose again), with the speed limit's round: true.
FORMER = {"speed_limit": [0.72, 0.6], "stop": [0.92, 0.5]}
INNER = re.compile(r"inner:\s*\[([0-9.]+),\s*([0-9.]+)\]")
ROUND = re.compile(r"round:\s*(true|false)")


def class_line(text, cls):
    """`cls`'s line of ocr.prepare.classes: a match of the whole line."""
    found = re.search(rf"^\s+{cls}:\s*\{{inner:.*$", text, re.M)
    if not found:
        sys.exit(f"parameters.yml has no `{cls}: {{inner: [w, h], ...}}` line")
    return found


def with_setting(text, cls, pattern, value):
    """`text` with `pattern` on `cls`'s line replaced by `value`."""
    line = class_line(text, cls)
    edited, count = pattern.subn(value, line.group(0), count=1)
    if not count:
        sys.exit(f"`{cls}`'s line in parameters.yml has no {pattern.pattern}")
    return text[:line.start()] + edited + text[line.end():]


def area_of(text, cls):
    return [float(v) for v in INNER.search(class_line(text, cls).group(0)).groups()]


def with_area(text, cls, area):
    return with_setting(text, cls, INNER, f"inner: [{area[0]}, {area[1]}]")


def with_round(text, cls, flag):
    return with_setting(text, cls, ROUND, f"round: {str(flag).lower()}")


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
    for cls, area in FORMER.items():
        base = with_area(base, cls, area)
    base = with_round(base, "speed_limit", True)
    result = {"command": f"python3 bench/ocr_text_areas.py --out {args.out}", "classes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        copy_project(project)  # its parameters.yml is rewritten for each read
        chosen_text = base
        for cls, (widths, heights) in GRIDS.items():
            scores = {}
            for w in widths:
                for h in heights:
                    high, low, _ = read_half(project, with_area(base, cls, [w, h]), "val")
                    scores[(w, h)] = (high, low)
                    print(f"{cls} inner [{w}, {h}]: tuning half high {high}, low {low}", flush=True)
            chosen = choose(scores, widths, heights)
            result["classes"][cls] = {
                "former": area_of(base, cls),
                "chosen_on_tuning_half": list(chosen),
                "tuning_half_scores": [{"inner": [w, h], "high_right": s[0], "low_right": s[1]}
                                       for (w, h), s in scores.items()],
            }
            chosen_text = with_area(chosen_text, cls, list(chosen))
        # The speed limit's round, both ways at the chosen area; a tie to false.
        rounds = {flag: read_half(project, with_round(chosen_text, "speed_limit", flag), "val")[:2]
                  for flag in (False, True)}
        keep_round = rounds[True] > rounds[False]
        result["classes"]["speed_limit"]["round_on_tuning_half"] = {
            str(flag).lower(): {"high_right": r[0], "low_right": r[1]} for flag, r in rounds.items()}
        result["classes"]["speed_limit"]["round_chosen"] = keep_round
        print(f"speed_limit round: {rounds}, keeping {keep_round}", flush=True)
        chosen_text = with_round(chosen_text, "speed_limit", keep_round)
        _, _, former_tuning = read_half(project, base, "val")
        result["former_on_tuning_half"] = former_tuning["per_legibility"]
        # Only now the test half: the former settings and the ones chosen above.
        for label, text in [("former", base), ("chosen_on_tuning_half", chosen_text)]:
            _, _, report = read_half(project, text, "test")
            result[f"test_half_{label}"] = {"per_legibility": report["per_legibility"], "misses": report["misses"]}
            grades = report["per_legibility"]
            print(f"test half, {label} settings: " + ", ".join(
                f"{g} {v['read_right']}/{v['signs']}" for g, v in grades.items()), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
