#!/usr/bin/env python3
"""Data-parallel training on this machine, side by side in one run: one
process of two threads against two ranks of one thread each (c10d's Gloo on
loopback, the torchrun environment), the ranks once as shipped (gradients
averaged during the backward pass by DDP's Reducer) and once with
`train.distributed.overlap=false` (one bucketed all-reduce after it); the
same data, global batch and epochs (the default synthetic set and the CPU
profile of parameters.yml, fewer epochs). Each run under /usr/bin/time -v
(peak RSS); throughput and the time in collectives from the runs' histories
(rank 0's record; `sync_s`, the seconds a rank waited for collectives outside
the backward pass, waiting for the other rank included: with overlap=false
every all-reduce and broadcast); per step from the steps of an epoch. Then,
on paper, the scaling to more ranks from the measured per-step compute and
the all-reduce volume.

    cargo build --release && python3 bench/data_parallel.py --out bench/results/data_parallel.json

Runs in a temporary copy of the project; writes every raw figure to --out.
"""
import argparse
import csv
import json
import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
ROADSIGN = REPO / "target/release/roadsign"


def peak_rss_mib(stderr):
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return round(int(found.group(1)) / 1024, 1) if found else None


def start(work, params, env):
    command = ["/usr/bin/time", "-v", str(ROADSIGN), "run", "--nodes", "train_yolo", "--force",
               "--params", params, "--project-dir", str(work)]
    return subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process, what):
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{what} failed:\n{err[-4000:]}")
    return err


def history(work):
    with open(work / "data/08_reporting/training_history.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    params = f"train.epochs={args.epochs}"
    results = {"command": f"python3 bench/data_parallel.py --out {args.out} --epochs {args.epochs}",
               "cpus": os.cpu_count(), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ["pipelines.yml", "catalog.yml", "parameters.yml"]:
            shutil.copy(REPO / name, work / name)
        subprocess.run([str(ROADSIGN), "run", "--to-nodes", "preprocess_data", "--project-dir", str(work)],
                       check=True, capture_output=True)
        train_images = len(list((work / "data/05_model_input/yolo/images/train").iterdir()))
        results["train_images"] = train_images

        started = time.monotonic()
        alone = start(work, params, {"OMP_NUM_THREADS": "2"})
        stderr = finish(alone, "one process")
        rows = history(work)
        results["runs"]["one_process_two_threads"] = {
            "wall_s": round(time.monotonic() - started, 1),
            "peak_rss_mib": peak_rss_mib(stderr),
            "images_per_s_per_epoch": [round(r["images_per_s"], 2) for r in rows],
            "map50_95_per_epoch": [round(r["map50_95"], 4) for r in rows],
            "loss_per_epoch": [round(r["box_loss"] + r["cls_loss"] + r["dfl_loss"], 4) for r in rows],
        }

        batch = yaml.safe_load((REPO / "parameters.yml").read_text())["train"]["batch"]
        rank_batch = batch // 2
        steps_per_epoch = math.ceil(math.ceil(train_images / 2) / rank_batch)
        for name, extra in [("two_ranks_one_thread_each", ""),
                            ("two_ranks_averaged_after_backward", ",train.distributed.overlap=false")]:
            port = str(free_port())
            launch = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
                      "LOCAL_RANK": "0", "OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1"}
            started = time.monotonic()
            ranks = [start(work, params + extra, {**launch, "RANK": str(r)}) for r in range(2)]
            stderrs = [finish(p, f"{name}: rank {r}") for r, p in enumerate(ranks)]
            rows = history(work)
            # Rank 1's epochs as it printed them: its time in collectives.
            rank1_sync = [float(m) for m in re.findall(r"· ([\d.]+)s in collectives", stderrs[1])]
            rank0_sync = [r["sync_s"] for r in rows]
            epoch_train_s = [train_images / r["images_per_s"] for r in rows]
            results["runs"][name] = {
                "params": params + extra,
                "wall_s": round(time.monotonic() - started, 1),
                "peak_rss_mib_per_rank": [peak_rss_mib(e) for e in stderrs],
                "images_per_s_per_epoch": [round(r["images_per_s"], 2) for r in rows],
                "map50_95_per_epoch": [round(r["map50_95"], 4) for r in rows],
                "loss_per_epoch_rank0": [round(r["box_loss"] + r["cls_loss"] + r["dfl_loss"], 4)
                                         for r in rows],
                "steps_per_epoch": steps_per_epoch,
                "rank0_sync_s_per_epoch": [round(s, 3) for s in rank0_sync],
                "rank1_sync_s_per_epoch": rank1_sync,
                "rank0_sync_ms_per_step": [round(1000 * s / steps_per_epoch, 1) for s in rank0_sync],
                "rank0_sync_share_of_epoch": [round(s / t, 3) for s, t in zip(rank0_sync, epoch_train_s)],
                "epoch_train_s": [round(t, 2) for t in epoch_train_s],
            }

    one = results["runs"]["one_process_two_threads"]
    two = results["runs"]["two_ranks_one_thread_each"]
    after = results["runs"]["two_ranks_averaged_after_backward"]
    # Steady state: the epochs after the first (start-up, first validation).
    mean = lambda xs: sum(xs[1:]) / max(1, len(xs) - 1)  # noqa: E731
    results["ratios"] = {
        "two_ranks_over_one_process_images_per_s": round(
            mean(two["images_per_s_per_epoch"]) / mean(one["images_per_s_per_epoch"]), 3),
        "two_ranks_total_rss_over_one_process": round(
            sum(two["peak_rss_mib_per_rank"]) / one["peak_rss_mib"], 3),
        "averaged_during_over_after_backward_images_per_s": round(
            mean(two["images_per_s_per_epoch"]) / mean(after["images_per_s_per_epoch"]), 3),
    }
    # On paper: a ring all-reduce sends and receives 2 (N-1)/N of the
    # gradients per rank per step; YOLOv8n has 3.01 M parameters (float32).
    gradient_bytes = 3_011_043 * 4
    # The compute of a step: the run that waits for every collective outside
    # the backward pass, less that wait.
    step_compute_s = mean([t / steps_per_epoch - s / steps_per_epoch
                           for t, s in zip(after["epoch_train_s"], after["rank0_sync_s_per_epoch"])])
    paper = {"gradient_bytes": gradient_bytes, "measured_cpu_step_compute_s": round(step_compute_s, 4),
             "assumptions": "ring all-reduce at the given link speed; per-step compute of one rank constant as "
                            "ranks are added (the global batch grows with them); not overlapped: efficiency = "
                            "compute / (compute + communication); overlapped (DDP's buckets during backward): "
                            "the backward pass taken as 2/3 of a step's compute, communication hidden behind it "
                            "up to that, efficiency = compute / (compute + max(0, communication - 2/3 compute))",
             "cases": []}
    for label, compute in [("this CPU (measured per-rank step)", step_compute_s),
                           ("a GPU step of 50 ms (assumed, not measured: no GPU here)", 0.05),
                           ("a GPU step of 15 ms (assumed, not measured)", 0.015)]:
        for gbit in [10, 25, 100]:
            for n in [2, 4, 8, 32]:
                comm = 2 * (n - 1) / n * gradient_bytes * 8 / (gbit * 1e9)
                exposed = max(0.0, comm - 2 / 3 * compute)
                paper["cases"].append({"compute": label, "link_gbit_s": gbit, "ranks": n,
                                       "comm_ms": round(comm * 1000, 2),
                                       "efficiency": round(compute / (compute + comm), 3),
                                       "speedup": round(n * compute / (compute + comm), 2),
                                       "efficiency_overlapped": round(compute / (compute + exposed), 3),
                                       "speedup_overlapped": round(n * compute / (compute + exposed), 2)})
    results["on_paper"] = paper
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "on_paper"}, indent=1))


if __name__ == "__main__":
    main()
