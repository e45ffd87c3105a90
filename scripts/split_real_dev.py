#!/usr/bin/env python3
"""Splits the public photos' dev/ folder once into a tuning half and a test half.

Run once (2026-12-03) and committed as conf/real_dev_split.csv; the test half
is then used for no choice (model, epoch, threshold, crop, vocabulary, rule):
it only reports. Stratified by each image's rarest class and whether it holds
a clearly legible (`high`) text, so both halves carry signs to read. The text
areas of parameters.yml were tuned earlier on all of dev/: BENCHMARKS.md says so.

    python3 scripts/split_real_dev.py ../shared/datasets/road-sign-detection/dev > conf/real_dev_split.csv
"""
import csv
import random
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

SEED = 20261203


def main(dev: Path) -> None:
    objects = {}
    for xml in sorted((dev / "annotations").glob("*.xml")):
        root = ET.parse(xml).getroot()
        objects[xml.stem] = [o.findtext("name") for o in root.iter("object")]
    legible = set()
    with open(dev / "text_transcriptions.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["legibility"] == "high":
                legible.add(Path(row["annotation"]).stem)
    counts = Counter(c for classes in objects.values() for c in classes)
    strata = defaultdict(list)
    for image, classes in objects.items():
        rarest = min(classes, key=lambda c: (counts[c], c)) if classes else "_background"
        strata[(rarest, image in legible)].append(image)
    rng = random.Random(SEED)
    split = {}
    for key in sorted(strata):
        members = sorted(strata[key], key=lambda s: (len(s), s))
        rng.shuffle(members)
        for k, image in enumerate(members):
            split[image] = "test" if k % 2 == 0 else "val"
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["image", "split"])
    for image in sorted(split, key=lambda s: (len(s), s)):
        out.writerow([image, split[image]])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
