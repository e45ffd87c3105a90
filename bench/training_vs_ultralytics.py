#!/usr/bin/env python3
"""YOLOv8n training, roadsign against Ultralytics, equal work side by side in
one run: the same YOLO folder (the default synthetic set), epochs, image
size, batch, seed and flips; each run's best epoch chosen on the val split by
its own trainer, then every model measured by the same evaluator on held-out
synthetic test scenes no choice was made on (the release pipeline's, seed
2026). Ultralytics' weights are exported to a roadsign model file for that.

Runs, one at a time, each alone on the machine:
- roadsign, the default profile (amp: true, AdamW lr0 0.002, nbs 16), and the
  same with amp: false;
- Ultralytics 8.4 with its defaults (optimizer auto, nbs 64) and cache=False
  (images decoded in its training loop), the same with cache=ram (decoded
  once, as roadsign's detection node does), and cache=ram with roadsign's
  optimiser settings (AdamW, lr0 0.002, nbs 16): implementation and
  hyper-parameters told apart.
Memory: peak RSS of each training process, and the same less its start-up
baseline (Ultralytics: importing torch and ultralytics; roadsign: the
process with libtorch loaded, before any data).

    cargo build --release && python3 bench/training_vs_ultralytics.py \\
        --ultralytics /tmp/ultra-venv/bin/python --epochs 10 --out bench/results/training_vs_ultralytics.json

--data real: the public photos instead (train/ to train, each run's best
epoch chosen on the tuning half of dev/, every model measured on its test
half, conf/real_dev_split.csv), with three runs: roadsign's default profile,
Ultralytics cache=ram with its defaults and with roadsign's optimiser
settings (on a CPU without bfloat16 amp is float32, and cache=False only
changes Ultralytics' speed: the synthetic run measures both).
"""
import argparse
import csv
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from yolov10_vs_yolov8 import (REPO, ROADSIGN, copy_project, evaluate, real_env, roadsign_env, test_figures,
                               write_history)

ROADSIGN_RUNS = [("roadsign_amp", "true"), ("roadsign_float32", "false")]
ULTRALYTICS_RUNS = [("ultralytics_defaults", "false", []),
                    ("ultralytics_cache_ram", "ram", []),
                    ("ultralytics_cache_ram_roadsign_optimiser", "ram",
                     ["--optimizer", "AdamW", "--lr0", "0.002", "--nbs", "16"])]
# What --data real runs (see the docstring).
REAL_RUNS = {"roadsign_amp", "ultralytics_cache_ram", "ultralytics_cache_ram_roadsign_optimiser"}


def peak_rss_mib(stderr):
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return round(int(found.group(1)) / 1024, 1) if found else None


def trained_paths(work, data):
    """Where a training run of `data` leaves its model and history."""
    if data == "real":  # real_env's catalog
        return work / "data/06_models/bench_trained.safetensors", work / "data/08_reporting/bench_history.csv"
    return work / "data/06_models/yolov8.safetensors", work / "data/08_reporting/training_history.csv"


def roadsign_train(work, train_env, params, data):
    """Trains under /usr/bin/time -v; seconds, peak RSS, history rows."""
    started = time.monotonic()
    out = subprocess.run(["/usr/bin/time", "-v", str(ROADSIGN), "run", *train_env, "--to-nodes", "train_yolo",
                          "--force", "--params", params, "--project-dir", str(work)],
                         capture_output=True, text=True, env=roadsign_env())
    if out.returncode != 0:
        raise SystemExit(f"roadsign failed:\n{out.stderr[-4000:]}")
    with open(trained_paths(work, data)[1]) as f:
        history = list(csv.DictReader(f))
    return time.monotonic() - started, peak_rss_mib(out.stderr), history


def roadsign_baseline_mib():
    """roadsign's start-up baseline: its libtorch executable loaded, answering
    --version (libtorch mapped, no model, no data)."""
    torch_bin = ROADSIGN.parent / "roadsign-torch"
    out = subprocess.run(["/usr/bin/time", "-v", str(torch_bin), "--version"], capture_output=True, text=True)
    return peak_rss_mib(out.stderr)


def ultralytics_train(python, work, name, epochs, cache, optimiser, data):
    train = yaml.safe_load((REPO / "parameters.yml").read_text())["train"]
    out = work / "bench" / name
    exported = work / f"bench/{name}.safetensors"
    folder = work / "data/05_model_input" / ("yolo_real_halves" if data == "real" else "yolo")
    command = [
        python, str(REPO / "bench/ultralytics_baseline.py"), "--data", str(folder),
        "--model", "yolov8n.yaml", "--epochs", str(epochs), "--imgsz", str(train["imgsz"]),
        "--batch", str(train["batch"]), "--seed", str(train["seed"]), "--fliplr", str(train["augment"]["fliplr"]),
        "--cache", cache, *optimiser, "--latency-runs", "5", "--export-safetensors", str(exported),
        "--out", str(out),
    ]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"Ultralytics ({name}) failed:\n{done.stderr[-4000:]}")
    report = json.loads((out / "ultralytics.json").read_text())
    return exported, report, time.monotonic() - started, command


def ratios(runs):
    """Each roadsign run against each Ultralytics run, and amp against float32."""
    def ratio(a, b):
        return round(a / b, 3) if b else None

    out = {}
    for ours, _ in ROADSIGN_RUNS:
        for theirs, _, _ in ULTRALYTICS_RUNS:
            if ours not in runs or theirs not in runs:
                continue
            a, b = runs[ours], runs[theirs]
            out[f"{ours}_over_{theirs}"] = {
                "test_map50_95": ratio(a["test_map50_95"], b["test_map50_95"]),
                "train_images_per_s": ratio(a["train_images_per_s_mean"], b["train_images_per_s_mean"]),
                "peak_rss": ratio(a["peak_rss_mib"], b["peak_rss_mib"]),
                "peak_rss_less_baselines": ratio(a["peak_rss_mib_less_baseline"], b["peak_rss_mib_less_baseline"]),
            }
    if "roadsign_float32" in runs:
        out["amp_over_float32_images_per_s"] = ratio(runs["roadsign_amp"]["train_images_per_s_mean"],
                                                     runs["roadsign_float32"]["train_images_per_s_mean"])
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--data", choices=["synthetic", "real"], default="synthetic")
    parser.add_argument("--ultralytics", metavar="PYTHON",
                        help="the interpreter with torch, ultralytics, safetensors")
    parser.add_argument("--ratios-only", action="store_true",
                        help="recompute the ratios of an existing --out from its raw runs, measuring nothing")
    args = parser.parse_args()
    if args.ratios_only:
        results = json.loads(args.out.read_text())
        results["ratios"] = ratios(results["runs"])
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        return
    if not args.ultralytics:
        parser.error("--ultralytics PYTHON is required")
    results = {"command": f"python3 bench/training_vs_ultralytics.py --ultralytics {args.ultralytics} "
                          f"--epochs {args.epochs} --data {args.data} --out {args.out}",
               "data": args.data, "epochs": args.epochs, "runs": {}}
    wanted = REAL_RUNS if args.data == "real" else None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_project(work)
        train_env = ["--env", real_env(work)] if args.data == "real" else []
        results["roadsign_start_baseline_mib"] = roadsign_baseline_mib()
        for name, amp in ROADSIGN_RUNS:
            if wanted and name not in wanted:
                continue
            seconds, rss, history = roadsign_train(work, train_env, f"train.epochs={args.epochs},train.amp={amp}",
                                                   args.data)
            model, history_csv = trained_paths(work, args.data)
            shutil.copy(model, work / f"bench/{name}.safetensors")
            shutil.copy(history_csv, work / f"bench/{name}.history.csv")
            metrics = evaluate(work, train_env, name, work / f"bench/{name}.safetensors", True, args.data)
            results["runs"][name] = {
                "params": f"train.amp={amp}",
                "train_seconds_incl_data": round(seconds, 1),
                "peak_rss_mib": rss,
                "peak_rss_mib_less_baseline": round(rss - results["roadsign_start_baseline_mib"], 1),
                "best_val_map50_95": max(float(r["map50_95"]) for r in history),
                "train_images_per_s_mean": round(sum(float(r["images_per_s"]) for r in history) / len(history), 2),
                **test_figures(metrics),
            }
        for name, cache, optimiser in ULTRALYTICS_RUNS:
            if wanted and name not in wanted:
                continue
            exported, report, seconds, command = ultralytics_train(args.ultralytics, work, name, args.epochs, cache,
                                                                   optimiser, args.data)
            # The evaluator draws the training curves from the run's history.
            write_history(report, trained_paths(work, args.data)[1] if args.data == "real"
                          else work / f"bench/{name}.history.csv")
            metrics = evaluate(work, train_env, name, exported, True, args.data)
            rss = report["peak_rss_mib"]
            results["ultralytics_versions"] = report["versions"]
            results["runs"][name] = {
                "command": " ".join(command).replace(tmp, "$WORK"),
                "train_seconds_incl_val": round(seconds, 1),
                "peak_rss_mib": rss["end"]["self"],
                "import_baseline_mib": rss["after_import"],
                "peak_rss_mib_less_baseline": round(rss["end"]["self"] - rss["after_import"], 1),
                "own_val_map50_95_best_checkpoint": report["val"]["map50_95"],
                "train_images_per_s_mean": report["train"]["train_images_per_s"],
                **test_figures(metrics),
            }
    results["ratios"] = ratios(results["runs"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
