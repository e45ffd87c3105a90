#!/usr/bin/env python3
"""Benchmark guard: fails when start-up or a 1000-node run has regressed.

Measures the release binary the way bench/runner_overhead.py does (whole
process, median after a warm-up) for `roadsign --version`, a 1-node noop
run and the 1000-node noop chain and fan-out (sequential runner), and
compares each median with the committed figure of the same case in
bench/results/runner_overhead.json. A case more than FACTOR (3) times
slower fails the guard. It is a coarse tripwire for the machines CI runs on,
not a measurement: the figures quoted in BENCHMARKS.md come from
runner_overhead.py.

Usage: python3 bench/guard.py [--roadsign PATH] [--figures FILE] [--factor 3]
"""

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import runner_overhead as ro  # noqa: E402

CASES = [("chain", 1), ("chain", 1000), ("fanout", 1000)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--roadsign", default=ro.DEFAULT_ROADSIGN)
    ap.add_argument("--figures", default=os.path.join(HERE, "results", "runner_overhead.json"))
    ap.add_argument("--factor", type=float, default=3.0)
    args = ap.parse_args()
    with open(args.figures) as f:
        committed = json.load(f)
    by_case = {
        (c["shape"], c["nodes"], c["runner"]): c["roadsign"] for c in committed["cases"]
    }
    checks = [("roadsign --version", committed["version"], ro.version_case(args.roadsign, 5))]
    with tempfile.TemporaryDirectory(prefix="guard_") as work:
        for shape, n in CASES:
            proj = os.path.join(work, f"{shape}_{n}")
            ro.write_roadsign_project(proj, shape, n)
            now = ro.roadsign_case(args.roadsign, proj, "sequential", 5 if n == 1 else 3)
            checks.append((f"{shape} {n} nodes", by_case[(shape, n, "sequential")], now))
    failed = []
    for label, then, now in checks:
        ratio = now["median_s"] / then["median_s"]
        verdict = "ok" if ratio <= args.factor else f"REGRESSED (> {args.factor:g}x)"
        print(
            f"[guard] {label}: {now['median_s'] * 1000:.1f} ms now, "
            f"{then['median_s'] * 1000:.1f} ms committed ({ratio:.2f}x) {verdict}"
        )
        if ratio > args.factor:
            failed.append(label)
    if failed:
        sys.exit(f"[guard] slower than {args.factor:g}x the committed figures: {', '.join(failed)}")


if __name__ == "__main__":
    main()
