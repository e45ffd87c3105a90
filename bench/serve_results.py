#!/usr/bin/env python3
"""Gathers bench/serve_baseline.sh's raw outputs (stress reports, peak RSS,
one response per server) into one JSON and computes roadsign's ratios per OCR
mode: throughput (roadsign's req/s over the server's) and p95 latency
(roadsign's over the server's). Also counts, from each kept response, the
detections and the ones that came back with a text, so that the equal work
can be checked.

usage: serve_results.py OUT_DIR REQUESTS WORKERS RESULT.json
"""
import json
import sys
from pathlib import Path


def read(path):
    return json.loads(Path(path).read_text())


def main():
    out, requests, workers, result = sys.argv[1:5]
    out = Path(out)
    results = {"command": f"bash bench/serve_baseline.sh {requests} {workers}", "modes": {}}
    for mode in ("text_classes", "every_detection"):
        servers = {}
        for name in ("roadsign", "flask", "gunicorn"):
            stress = read(out / mode / f"{name}.json")
            response = read(out / mode / f"{name}_response.json")
            detections = response["detections"]
            servers[name] = {
                "stress": stress,
                "peak_rss_mib": read(out / mode / f"{name}_rss.json")["peak_rss_mib"],
                "detections": [d["class"] for d in detections],
                "detections_with_text": sum(1 for d in detections if d.get("text")),
                "response": response,
            }
        rs = servers["roadsign"]["stress"]
        for name in ("flask", "gunicorn"):
            other = servers[name]["stress"]
            servers[name]["roadsign_throughput_ratio"] = round(rs["requests_per_s"] / other["requests_per_s"], 2)
            servers[name]["roadsign_p95_ratio"] = round(rs["p95_ms"] / other["p95_ms"], 3)
        results["modes"][mode] = servers
    Path(result).write_text(json.dumps(results, indent=1) + "\n")
    for mode, servers in results["modes"].items():
        for name, s in servers.items():
            print(mode, name, round(s["stress"]["requests_per_s"], 2), "req/s, p95",
                  round(s["stress"]["p95_ms"]), "ms, RSS", s["peak_rss_mib"], "MiB,",
                  s["detections"], "with text:", s["detections_with_text"],
                  s.get("roadsign_throughput_ratio", ""), s.get("roadsign_p95_ratio", ""))


if __name__ == "__main__":
    main()
