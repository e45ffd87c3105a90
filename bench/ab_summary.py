#!/usr/bin/env python3
"""The JSON of an A/B run's raw lines (bench/predict_ab.sh's output): every
round's figures per side, their medians and the after/before ratios.

    python3 bench/ab_summary.py bench/results/predict_ab.txt [OUT.json]

The input's lines: `# command (date, tree)` then `round N before|after
key value [key value ...]`. OUT defaults to the input with `.json`.
"""
import json
import statistics
import sys
from pathlib import Path


def summarise(text):
    header, rounds = None, []
    for line in text.splitlines():
        if line.startswith("#"):
            header = line.lstrip("# ").strip()
            continue
        words = line.split()
        if len(words) < 5 or words[0] != "round" or (len(words) - 3) % 2:
            raise SystemExit(f"not an A/B line: {line!r}")
        figures = {words[i]: float(words[i + 1]) for i in range(3, len(words), 2)}
        rounds.append({"round": int(words[1]), "side": words[2], **figures})
    keys = sorted({k for r in rounds for k in r} - {"round", "side"})
    medians = {side: {k: statistics.median(r[k] for r in rounds if r["side"] == side and k in r) for k in keys}
               for side in ("before", "after")}
    ratios = {f"{k}_after_over_before": round(medians["after"][k] / medians["before"][k], 3) for k in keys}
    return {"command": header, "rounds": rounds, "medians": medians, "ratios": ratios}


def main():
    source = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else source.with_suffix(".json")
    result = summarise(source.read_text())
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"medians": result["medians"], "ratios": result["ratios"]}))


if __name__ == "__main__":
    main()
