#!/usr/bin/env python3
"""Incremental runs: time a first and a second run of an unchanged 100-node
pipeline whose nodes persist their outputs, whole process each.

Each node generates 2 synthetic 320x320 scenes (real work) into its own
Pascal VOC folder, declared through one dataset factory. The second run must
run no node and take a small fraction of the first.

    python3 bench/incremental.py [--roadsign target/release/roadsign] [--nodes 100] \\
        [--out bench/results/incremental.json]

--out: the raw wall times of every run, their nodes run and the ratio, as JSON.
"""
import argparse
import json
import re
import sys
import subprocess
import tempfile
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--roadsign", default="target/release/roadsign")
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--out", type=Path, help="write the raw measurements and the ratio as JSON here")
    args = ap.parse_args()
    binary = str(Path(args.roadsign).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        proj = Path(tmp)
        nodes = "\n".join(
            f"      - {{func: generate_synthetic_data, name: gen{i:03}, inputs: 'params:gen{i:03}', outputs: scenes_{i:03}}}"
            for i in range(args.nodes)
        )
        (proj / "pipelines.yml").write_text(f"pipelines:\n  __default__:\n    nodes:\n{nodes}\n")
        (proj / "catalog.yml").write_text('"scenes_{n}":\n  type: voc.VOCDataset\n  filepath: data/01_raw/scenes_{n}\n')
        params = "".join(
            f"gen{i:03}: {{seed: {i}, scenes: 2, width: 320, height: 320}}\n" for i in range(args.nodes)
        )
        (proj / "parameters.yml").write_text(params)

        def run():
            start = time.perf_counter()
            out = subprocess.run([binary, "run", "--project-dir", str(proj)], capture_output=True, text=True, check=True)
            wall = time.perf_counter() - start
            line = next(l for l in out.stderr.splitlines() if l.startswith("pipeline '"))
            ran = int(re.search(r"(\d+) node\(s\) completed", line).group(1))
            return wall, ran, line

        first = run()
        seconds = [run() for _ in range(5)]
        seconds.sort()
        second = seconds[2]
        print(f"{args.nodes}-node pipeline, persisted outputs (2 scenes of 320x320 per node)")
        print(f"  first run:  {first[0]*1e3:8.0f} ms, {first[1]} node(s) ran")
        print(f"  second run: {second[0]*1e3:8.0f} ms (median of 5), {second[1]} node(s) ran")
        print(f"  second/first: {second[0]/first[0]*100:.1f}%")
        print(f"  last line: {second[2]}")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({
                "command": "python3 bench/incremental.py " + " ".join(sys.argv[1:]),
                "nodes": args.nodes,
                "first_run": {"wall_ms": round(first[0] * 1e3, 1), "nodes_run": first[1]},
                "second_runs": [{"wall_ms": round(w * 1e3, 1), "nodes_run": n} for w, n, _ in seconds],
                "second_median_ms": round(second[0] * 1e3, 1),
                "second_over_first": round(second[0] / first[0], 4),
                "last_line": second[2],
            }, indent=1) + "\n")


if __name__ == "__main__":
    main()
