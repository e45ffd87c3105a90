#!/usr/bin/env python3
"""The JSON of bench/python_image.sh's raw output: each image's uncompressed
size and the Python image's size over roadsign's.

    python3 bench/image_sizes.py bench/results/python_image.txt [OUT.json]
"""
import json
import re
import sys
from pathlib import Path

ROADSIGN, PYTHON = "localhost/roadsign:test", "localhost/seed-python:test"


def main():
    source = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else source.with_suffix(".json")
    text = source.read_text()
    sizes = {m.group(1): int(m.group(2)) for m in re.finditer(r"^## (\S+): (\d+) bytes uncompressed$", text, re.M)}
    if ROADSIGN not in sizes or PYTHON not in sizes:
        raise SystemExit(f"{source} lacks the size of {ROADSIGN} or {PYTHON}")
    result = {"command": text.splitlines()[0].lstrip("# "), "bytes_uncompressed": sizes,
              "python_over_roadsign": round(sizes[PYTHON] / sizes[ROADSIGN], 2)}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
