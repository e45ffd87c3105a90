#!/usr/bin/env python3
"""YOLOv10n beside YOLOv8n, both trained by roadsign on the same data with
the same settings (the CPU profile of parameters.yml: epochs, image size,
optimiser, seed), the best epoch of each chosen on a validation split, then
both measured on held-out data used for no choice. YOLOv10n is measured
twice: end to end (its one-to-one head, no NMS: the default) and with its
one-to-many head and NMS.

--data synthetic: the generated scenes (seed 42, val split for the best
epoch), measured on the release pipeline's synthetic test scenes (seed 2026).
--data real: the public photos (train/ to train, the tuning half of dev/ for
the best epoch), measured on the test half of dev/ (conf/real_dev_split.csv).

    cargo build --release && python3 bench/yolov10_vs_yolov8.py \\
        --out bench/results/yolov10_vs_yolov8.json [--data real] [--epochs N]

--ultralytics PYTHON: also Ultralytics' own YOLOv10n, trained by the given
interpreter (bench/ultralytics_baseline.py) on the same YOLO folder with the
same settings, its best checkpoint exported and measured by the same
evaluator on the same test data, both modes.

Runs in a temporary copy of the project (nothing under data/ or models/ is
touched). Writes the raw figures of every run and the ratios to --out.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
ROADSIGN = REPO / "target/release/roadsign"
# The public photos: ROADSIGN_REAL_DATA, else beside the repository.
REAL_DATA = Path(os.environ.get("ROADSIGN_REAL_DATA", REPO.parent / "shared/datasets/road-sign-detection"))
EVAL_NODES = "generate_synthetic_test,load_synthetic_test,split_synthetic_test,evaluate_release_synthetic"


def copy_project(work):
    """The project's configuration in a temporary folder, with a bench/ for
    this script's files: runs there touch nothing under data/ or models/."""
    for name in ["pipelines.yml", "catalog.yml", "parameters.yml"]:
        shutil.copy(REPO / name, work / name)
    shutil.copytree(REPO / "conf", work / "conf")
    (work / "bench").mkdir()


def roadsign_env():
    """The environment of a roadsign run: the photos found wherever the
    temporary project is."""
    return {**os.environ, "ROADSIGN_REAL_DATA": str(REAL_DATA)}


def run(args, cwd):
    started = time.monotonic()
    out = subprocess.run([str(ROADSIGN), *args, "--project-dir", str(cwd)], capture_output=True, text=True,
                         env=roadsign_env())
    if out.returncode != 0:
        raise SystemExit(f"roadsign {' '.join(args)} failed:\n{out.stderr[-4000:]}")
    return time.monotonic() - started


def overlay(work, arch):
    """An environment whose release model is this run's, its reports under bench/."""
    env = work / "conf" / f"bench_{arch}"
    env.mkdir(parents=True, exist_ok=True)
    entries = {
        "release_model": ("torch.ModelDataset", f"bench/{arch}.safetensors"),
        "release_training_history": ("polars.CSVDataset", f"bench/{arch}.history.csv"),
        "release_synthetic_metrics": ("json.JSONDataset", f"bench/{arch}.synthetic-test.json"),
    }
    (env / "catalog.yml").write_text(
        "".join(f"{name}: {{type: {kind}, filepath: {path}}}\n" for name, (kind, path) in entries.items())
    )
    return f"bench_{arch}"


def real_env(work):
    """`--env real` with the photos' dev/ split in halves (tuning half as
    val, test half as test), and this bench's own model paths."""
    env = work / "conf" / "bench_real"
    shutil.copytree(REPO / "conf" / "real", env)
    replaced = {"raw_signs", "model_input", "model", "training_history", "detection_metrics"}
    # conf/real's catalog without the entries replaced here (top-level keys at column 0).
    kept, skipping = [], False
    for line in (env / "catalog.yml").read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            skipping = line.split(":")[0] in replaced
        if not skipping:
            kept.append(line)
    (env / "catalog.yml").write_text(
        "\n".join(kept)
        + "\n# bench: dev/ in halves, outputs apart\n"
        "raw_signs:\n  type: voc.VOCDataset\n"
        "  filepath: ${env:ROADSIGN_REAL_DATA,../shared/datasets/road-sign-detection}\n"
        "  splits: {train: train, val: dev}\n  split_ids: conf/real_dev_split.csv\n"
        "  annotations: [annotations_with_text, annotations]\n  transcriptions: text_transcriptions.csv\n"
        "model_input: {type: yolo.YOLODataset, filepath: data/05_model_input/yolo_real_halves}\n"
        "model: {type: torch.ModelDataset, filepath: data/06_models/bench_trained.safetensors}\n"
        "training_history: {type: polars.CSVDataset, filepath: data/08_reporting/bench_history.csv}\n"
        "detection_metrics: {type: json.JSONDataset, filepath: bench/real-test.json}\n"
    )
    return "bench_real"


def evaluate(work, train_env, name, model_file, end2end, data):
    """roadsign's evaluator on the held-out test data, one model, one mode."""
    flag = str(end2end).lower()
    if data == "real":
        shutil.copy(model_file, work / "data/06_models/bench_trained.safetensors")
        run(["run", *train_env, "--nodes", "evaluate_yolo", "--params",
             f"evaluate.split=test,evaluate.end2end={flag}"], work)
        return json.loads((work / "bench/real-test.json").read_text())
    env = overlay(work, name)
    if model_file != work / f"bench/{name}.safetensors":
        shutil.copy(model_file, work / f"bench/{name}.safetensors")
    run(["run", "--pipeline", "release", "--env", env, "--nodes", EVAL_NODES,
         "--params", f"release.evaluate.end2end={flag}"], work)
    return json.loads((work / f"bench/{name}.synthetic-test.json").read_text())


def evaluate_on_val(work, train_env, model_file, data):
    """roadsign's evaluator, end to end, on the val split that chose the best
    epoch: beside the trainer's own figure there, a check of the export."""
    if data == "real":
        shutil.copy(model_file, work / "data/06_models/bench_trained.safetensors")
        run(["run", *train_env, "--nodes", "evaluate_yolo", "--params", "evaluate.split=val,evaluate.end2end=true"],
            work)
        return json.loads((work / "bench/real-test.json").read_text())
    shutil.copy(model_file, work / "data/06_models/yolov8.safetensors")
    run(["run", "--nodes", "evaluate_yolo", "--params", "evaluate.end2end=true"], work)
    return json.loads((work / "data/08_reporting/detection_metrics.json").read_text())


def test_figures(metrics):
    return {
        "test_map50": metrics["map50"],
        "test_map50_95": metrics["map50_95"],
        "test_precision": metrics["precision"],
        "test_recall": metrics["recall"],
        "ms_per_image": metrics["ms_per_image"],
        "test_images": metrics["images"],
        "model": metrics["model"],
    }


def ultralytics_yolov10n(python, work, data, epochs):
    """Ultralytics' own YOLOv10n (yolov10n.yaml, from scratch) trained on the
    YOLO folder roadsign trained on, with parameters.yml's epochs, image size,
    batch, optimiser, nominal batch, seed and flips; its best epoch chosen by
    its own validator on the same val split, read end to end (nms=False) as
    roadsign chooses YOLOv10's. Returns the exported weights and its report."""
    train = yaml.safe_load((REPO / "parameters.yml").read_text())["train"]
    folder = work / "data/05_model_input" / ("yolo_real_halves" if data == "real" else "yolo")
    out = work / "bench/ultralytics"
    exported = work / "bench/ultralytics_yolov10n.safetensors"
    command = [
        python, str(REPO / "bench/ultralytics_baseline.py"), "--data", str(folder), "--model", "yolov10n.yaml",
        "--epochs", str(epochs or train["epochs"]), "--imgsz", str(train["imgsz"]), "--batch", str(train["batch"]),
        "--optimizer", train["optimizer"], "--lr0", str(train["lr0"]), "--nbs", str(train["nbs"]),
        "--seed", str(train["seed"]), "--fliplr", str(train["augment"]["fliplr"]), "--nms-free",
        "--latency-runs", "5", "--export-safetensors", str(exported), "--out", str(out),
    ]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"Ultralytics failed:\n{done.stderr[-4000:]}")
    report = json.loads((out / "ultralytics.json").read_text())
    return exported, report, seconds, command


def write_history(report, path):
    """Ultralytics' results.csv in roadsign's history columns: the evaluator
    draws the training curves from it (in this temporary project only)."""
    with open(Path(report["train"]["save_dir"]) / "results.csv") as f:
        rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(f)]
    images = report["dataset"]["train_images_used"]
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["epoch", "box_loss", "cls_loss", "dfl_loss", "images_per_s", "data_wait_s", "lr",
                      "map50", "map50_95", "precision", "recall"])
        for row, epoch in zip(rows, report["train"]["epochs"]):
            out.writerow([row["epoch"], row["train/box_loss"], row["train/cls_loss"], row["train/dfl_loss"],
                          images / epoch["train_s"], 0.0,  # Ultralytics loads in the training process: no wait apart
                          row["lr/pg0"], row["metrics/mAP50(B)"], row["metrics/mAP50-95(B)"],
                          row["metrics/precision(B)"], row["metrics/recall(B)"]])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, help="override train.epochs (default: parameters.yml's)")
    parser.add_argument("--data", choices=["synthetic", "real"], default="synthetic")
    parser.add_argument("--ultralytics", metavar="PYTHON",
                        help="also train Ultralytics' YOLOv10n with this interpreter (torch, ultralytics, safetensors)")
    args = parser.parse_args()
    extra = f",train.epochs={args.epochs}" if args.epochs else ""
    results = {"data": args.data, "command": "python3 bench/yolov10_vs_yolov8.py " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items() if v is not None), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_project(work)
        train_env = ["--env", real_env(work)] if args.data == "real" else []
        for arch in ["yolov8n", "yolov10n"]:
            seconds = run(["run", *train_env, "--to-nodes", "train_yolo", "--force",
                           "--params", f"train.model={arch}{extra}"], work)
            model, history_csv = (("bench_trained.safetensors", "bench_history.csv") if args.data == "real"
                                  else ("yolov8.safetensors", "training_history.csv"))
            shutil.copy(work / "data/06_models" / model, work / f"bench/{arch}.safetensors")
            shutil.copy(work / "data/08_reporting" / history_csv, work / f"bench/{arch}.history.csv")
            with open(work / f"bench/{arch}.history.csv") as f:
                history = list(csv.DictReader(f))
            modes = [True, False] if arch == "yolov10n" else [True]
            for end2end in modes:
                metrics = evaluate(work, train_env, arch, work / f"bench/{arch}.safetensors", end2end, args.data)
                key = arch if arch == "yolov8n" else f"{arch}_{'end2end' if end2end else 'nms'}"
                results["runs"][key] = {
                    "train_seconds_incl_data": round(seconds, 1),
                    "epochs": len(history),
                    "best_val_map50_95": max(float(r["map50_95"]) for r in history),
                    "train_images_per_s_mean": round(sum(float(r["images_per_s"]) for r in history) / len(history), 2),
                    **test_figures(metrics),
                }
        if args.ultralytics:
            exported, report, seconds, command = ultralytics_yolov10n(args.ultralytics, work, args.data, args.epochs)
            results["ultralytics_command"] = " ".join(command).replace(tmp, "$WORK")
            results["ultralytics_versions"] = report["versions"]
            write_history(report, work / ("data/08_reporting/bench_history.csv" if args.data == "real"
                                          else "bench/ultralytics_yolov10n.history.csv"))
            val_check = evaluate_on_val(work, train_env, exported, args.data)
            for end2end in [True, False]:
                metrics = evaluate(work, train_env, "ultralytics_yolov10n", exported, end2end, args.data)
                key = f"ultralytics_yolov10n_{'end2end' if end2end else 'nms'}"
                results["runs"][key] = {
                    "train_seconds_incl_val": round(seconds, 1),
                    "epochs": report["train"]["epochs_run"],
                    "own_val_map50_95_best_checkpoint": report["val"]["map50_95"],
                    "roadsign_val_map50_95_end2end": val_check["map50_95"],
                    "train_images_per_s_mean": report["train"]["train_images_per_s"],
                    **test_figures(metrics),
                }
    runs = results["runs"]
    v8, v10 = runs["yolov8n"], runs["yolov10n_end2end"]

    def ratio(a, b):
        return round(a / b, 3) if b else None

    results["ratios"] = {
        "v10_over_v8_test_map50_95": ratio(v10["test_map50_95"], v8["test_map50_95"]),
        "v10_over_v8_train_images_per_s": ratio(v10["train_images_per_s_mean"], v8["train_images_per_s_mean"]),
        "v10_end2end_over_nms_ms_per_image": ratio(v10["ms_per_image"], runs["yolov10n_nms"]["ms_per_image"]),
    }
    if "ultralytics_yolov10n_end2end" in runs:
        theirs = runs["ultralytics_yolov10n_end2end"]
        results["ratios"]["roadsign_over_ultralytics_v10_test_map50_95"] = ratio(
            v10["test_map50_95"], theirs["test_map50_95"])
        results["ratios"]["roadsign_over_ultralytics_v10_train_images_per_s"] = ratio(
            v10["train_images_per_s_mean"], theirs["train_images_per_s_mean"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
