"""What correction did to the reads of an `ocr_reads.csv`: how many right raw
reads it turned wrong (goal: none), how many wrong ones it fixed, and how many
it changed between two wrong strings, on legible signs, per source (ground
truth crops, detector regions) and grade. Writes the counts as JSON.

usage: ocr_correction.py OCR_READS.csv OUT.json LABEL
"""

import csv
import json
import sys


def normalize(text):
    return " ".join((text or "").split()).upper()


def correction_counts(reads):
    """The counts, per source and per source and grade, of an ocr_reads.csv."""
    counts = {}
    with open(reads, newline="") as f:
        for row in csv.DictReader(f):
            if row["legibility"] == "illegible" or not row["truth"]:
                continue
            truth, raw, corrected = (normalize(row[k]) for k in ("truth", "read", "corrected"))
            for key in (row["source"], f'{row["source"]} {row["legibility"]}'):
                c = counts.setdefault(
                    key,
                    {"signs": 0, "right_raw": 0, "right_corrected": 0,
                     "right_turned_wrong": 0, "wrong_fixed": 0, "wrong_changed_still_wrong": 0},
                )
                c["signs"] += 1
                c["right_raw"] += raw == truth
                c["right_corrected"] += corrected == truth
                c["right_turned_wrong"] += raw == truth and corrected != truth
                c["wrong_fixed"] += raw != truth and corrected == truth
                c["wrong_changed_still_wrong"] += raw != truth and corrected not in (truth, raw)
    return counts


def main():
    reads, out, label = sys.argv[1:4]
    result = {"label": label, "reads": reads, "counts": correction_counts(reads)}
    with open(out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
