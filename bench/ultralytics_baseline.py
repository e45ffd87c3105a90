#!/usr/bin/env python3
"""Ultralytics YOLOv8n baseline, to benchmark the Rust YOLO trainer against.

Trains YOLOv8n (or ``--model``, e.g. ``yolov10n.yaml``; with ``--optimizer``,
``--lr0``, ``--nbs`` the optimiser settings of roadsign's profile, with
``--nms-free`` YOLOv10's best epoch chosen end to end, with
``--export-safetensors`` the best checkpoint written as a roadsign model
file) from scratch (``yolov8n.yaml``, no pretrained weights) with
Ultralytics' defaults (mosaic, close_mosaic=10, optimizer=auto, val every
epoch, ...) except ``fliplr`` (0.0 here, like roadsign: mirrored text is not a
road sign), then validates the best checkpoint and times single-image
inference. Writes every figure to ``OUT/ultralytics.json`` and prints it.

Setup (not part of the project; Ultralytics needs torch, which PyPI only ships
as the CUDA build, it runs on CPU all the same)::

    python3 -m venv /tmp/ultra-venv
    /tmp/ultra-venv/bin/pip install torch==2.15.0 torchvision ultralytics==8.4.190

Full run (from the repository root)::

    /tmp/ultra-venv/bin/python bench/ultralytics_baseline.py \\
        --data data/05_model_input/yolo --epochs 30 --out bench/out/ultralytics

No network at run time
    ``YOLO_OFFLINE=1`` is set, the model comes from the yaml bundled with
    Ultralytics, plots are off (they draw with Arial.ttf), and AMP is never
    checked on CPU (that check downloads yolo11n.pt on CUDA only). On top of
    that every socket connect / DNS lookup made by this process is refused and
    recorded under ``network_attempts`` in the JSON (``--allow-network`` lifts
    the block, still recording). One attempt remains and is expected:
    ``check_det_dataset`` calls ``check_font('Arial.ttf')`` whatever ``plots``
    says, which probes github.com (``is_url(check=True)``); refused, it
    downloads nothing and training goes on. Ultralytics' settings.json goes to
    ``OUT/config`` (``YOLO_CONFIG_DIR``) rather than ~/.config.

Threads
    Ultralytics sets ``OMP_NUM_THREADS=1`` on import when unset and, in
    ``select_device``, calls ``torch.set_num_threads(min(8, cpu_count - 1))``,
    i.e. 1 thread on a 2-core machine. This script sets OMP/MKL_NUM_THREADS
    before importing torch, calls ``torch.set_num_threads(--threads)`` and
    overrides the ``NUM_THREADS`` that ``select_device`` uses, so training and
    inference run on ``--threads`` intra-op threads. The thread count seen
    inside the training loop (sampled at every batch) and at inference is
    reported under ``threads``. Data loading: on CPU the Ultralytics trainer
    and validator force ``workers=0`` whatever is passed (batches are loaded
    and augmented in the training process, between steps). That is kept by
    default; ``--workers N`` forces N loader processes for training (and 2N
    for its per-epoch validation loader) through a callback.

Dataset
    ``--data`` is a YOLO folder (images/{train,val}, labels/{train,val},
    data.yaml). Ultralytics writes a labels cache (``labels/train.cache``)
    next to the label folders (after resolving symlinks), so rather than write
    into the project's data folder, the script stages ``OUT/dataset``: images
    and labels hard-linked (copied when on another filesystem), and a
    data.yaml with an absolute ``path:``, train: images/train, val:
    images/val and the class names of the original data.yaml.

What is measured (all wall clock, ``time.perf_counter``)
    train_wall_s      the whole ``model.train()`` call: setup (model build,
                      label caching, dataloaders), every epoch with its
                      validation and checkpoint saving, and Ultralytics' final
                      validation of best.pt.
    train_phase_s     sum over epochs of the time between the
                      on_train_epoch_start and on_train_epoch_end callbacks:
                      the forward/backward/optimizer loop over the train
                      loader, data loading included, validation excluded.
    train_images_per_s  train images x epochs / train_phase_s (train images is
                      the count actually used, after --fraction).
    epochs[]          per epoch: train_s, then val_s (validation + metrics +
                      checkpoint save, from on_train_epoch_end to
                      on_fit_epoch_end); Ultralytics' own cumulative
                      results.csv ``time`` column is copied alongside.
    peak_rss_mib      resource.getrusage ru_maxrss of this process (self) and
                      of its reaped children (the largest single child; Linux
                      copies the parent's high-water mark into a forked child,
                      so this mostly reports the parent's RSS at the fork),
                      plus the peak of the summed RSS of this process and its
                      live children sampled every 0.5 s (counts pages shared
                      with forked workers more than once, misses short peaks).
                      Taken after training and again at the end. About
                      530 MiB of it is importing torch (the CUDA build).
    val               ``YOLO(best.pt).val(split='val')`` at --imgsz,
                      --batch, Ultralytics' defaults conf=0.001, iou=0.7:
                      mAP50, mAP50-95, precision, recall, and per class (only
                      classes with val instances) AP50, AP50-95, instances.
    latency           single image, batch 1, at --imgsz, the first val image
                      (sorted by name) decoded once beforehand, so decoding is
                      not timed: median/mean/min/p90 of 50 timed
                      ``model.predict(img, imgsz=..., verbose=False)`` calls
                      after 5 warm-up calls (letterbox + forward + NMS +
                      Results), Ultralytics' own per-stage split of those
                      calls, and the raw forward of the fused network on the
                      preprocessed tensor (torch.inference_mode, no NMS).
"""
import argparse
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import sys
import threading
import time
import traceback
from pathlib import Path

NETWORK_ATTEMPTS = []


def guard_network(block):
    """Record (and unless told otherwise refuse) every connect and DNS lookup."""

    def note(kind, target):
        frames = traceback.extract_stack()[:-2]
        ours = [f for f in frames if "/ultralytics/" in f.filename] + frames[-1:]  # the caller chain that matters
        where = [f"{f.filename.split('site-packages/')[-1]}:{f.lineno} {f.name}" for f in ours]
        NETWORK_ATTEMPTS.append({"kind": kind, "target": str(target), "blocked": block, "stack": where[-8:]})
        print(f"[ultralytics_baseline] network {kind} {target}{' refused' if block else ''}", file=sys.stderr)
        if block:
            raise OSError(f"network disabled by ultralytics_baseline.py ({kind} {target})")

    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, *a, **k):
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            note("dns", host)
        return real_getaddrinfo(host, *a, **k)

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            note("connect", address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            note("connect", address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex


class RssSampler:
    """Peak of the summed RSS of this process and its children, sampled."""

    def __init__(self, period=0.5):
        import psutil

        self.proc = psutil.Process()
        self.period = period
        self.peak = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self):
        total = 0
        for p in [self.proc] + self.proc.children(recursive=True):
            try:
                total += p.memory_info().rss
            except Exception:  # a worker that just exited
                pass
        self.peak = max(self.peak, total)

    def run(self):
        while not self.stop_event.wait(self.period):
            self.sample()

    def __enter__(self):
        self.sample()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join()
        self.sample()


def maxrss_mib(who):
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # Linux: KiB


def link_or_copy(a, b):
    try:
        os.link(a, b)
    except OSError:
        shutil.copy2(a, b)


def stage_dataset(src, dst):
    """OUT/dataset: images and labels hard-linked (copied across filesystems), data.yaml with absolute path.

    Not symlinks: Ultralytics resolves the image folder and would put its labels cache in the source tree.
    """
    import yaml

    src = src.resolve()
    meta = yaml.safe_load((src / "data.yaml").read_text())
    names = meta["names"]
    if isinstance(names, list):
        names = dict(enumerate(names))
    counts = {}
    for split in ("train", "val"):
        img_dir, lbl_dir = src / "images" / split, src / "labels" / split
        if not img_dir.is_dir() or not lbl_dir.is_dir():
            sys.exit(f"{src} lacks images/{split} or labels/{split}")
        for kind, d in (("images", img_dir), ("labels", lbl_dir)):
            target = dst / kind / split
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(d, target, copy_function=link_or_copy)
        (dst / "labels" / f"{split}.cache").unlink(missing_ok=True)
        counts[split] = sum(1 for p in img_dir.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"})
    data_yaml = dst / "data.yaml"
    data_yaml.write_text(
        yaml.safe_dump({"path": str(dst), "train": "images/train", "val": "images/val", "names": names}, sort_keys=False)
    )
    return data_yaml, names, counts


def export_safetensors(checkpoint, dst, names, imgsz):
    """The checkpoint's (EMA) weights as roadsign reads a model file: float32
    tensors under Ultralytics' state_dict names, and the metadata that says
    which network, which classes and which image size."""
    import torch
    from safetensors.torch import save_file

    model = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"].float()
    head = type(model.model[-1]).__name__  # v10Detect or Detect
    tensors = {
        k: v.detach().contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")
    }
    yaml_scale = model.yaml.get("scale") or "n"
    metadata = {
        "names": json.dumps([names[i] for i in sorted(names)]),
        "imgsz": str(imgsz),
        "arch": "yolov10" if head == "v10Detect" else "yolov8",
        "scale": yaml_scale,
    }
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dst), metadata=metadata)


def summarize(xs):
    xs = sorted(xs)
    return {
        "median": round(statistics.median(xs), 3),
        "mean": round(statistics.fmean(xs), 3),
        "min": round(xs[0], 3),
        "p90": round(xs[min(len(xs) - 1, int(0.9 * len(xs)))], 3),
        "runs": len(xs),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="YOLO folder with images/, labels/, data.yaml")
    ap.add_argument("--epochs", type=int, default=30, help="default: parameters.yml train epochs")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (Ultralytics alone would use 1 here)")
    ap.add_argument(
        "--workers", type=int, default=None,
        help="force this many dataloader worker processes (default: Ultralytics' CPU behaviour, 0: load in the "
        "training process; Ultralytics ignores its own workers= argument on CPU, this overrides it)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="yolov8n.yaml", help="the network, from Ultralytics' bundled yaml (from scratch)")
    ap.add_argument("--optimizer", default="auto", help="Ultralytics' optimizer= (auto: its own rule)")
    ap.add_argument("--lr0", type=float, default=None, help="initial learning rate (default: Ultralytics')")
    ap.add_argument("--nbs", type=int, default=None, help="nominal batch size (default: Ultralytics' 64)")
    ap.add_argument(
        "--nms-free", action="store_true",
        help="validate end to end (nms=False: YOLOv10's one-to-one head) during training, for the best epoch, and after",
    )
    ap.add_argument(
        "--export-safetensors", type=Path, default=None,
        help="write the best checkpoint's weights here (float32, Ultralytics' names, roadsign's metadata)",
    )
    ap.add_argument("--cache", choices=["false", "ram", "disk"], default="false",
                    help="Ultralytics' cache= (default False: images decoded in the training loop)")
    ap.add_argument("--fliplr", type=float, default=0.0, help="horizontal flip probability (Ultralytics default 0.5)")
    ap.add_argument("--fraction", type=float, default=1.0, help="fraction of the train split to use (smoke tests)")
    ap.add_argument("--no-val", action="store_true", help="validate only after the last epoch, not every epoch")
    ap.add_argument("--latency-runs", type=int, default=50)
    ap.add_argument("--latency-warmup", type=int, default=5)
    ap.add_argument("--allow-network", action="store_true", help="record network use instead of refusing it")
    ap.add_argument("--out", type=Path, default=Path("bench/out/ultralytics"))
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    # Before torch / ultralytics are imported.
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(out / "config"))  # settings.json, fonts: not in ~/.config
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    guard_network(block=not args.allow_network)
    load_before = os.getloadavg()

    import torch

    torch.set_num_threads(args.threads)
    import cv2
    import ultralytics
    import ultralytics.utils.torch_utils as torch_utils
    from ultralytics import YOLO

    torch_utils.NUM_THREADS = args.threads  # select_device() would reset torch to min(8, cpu_count - 1)
    # The import baseline: what torch (PyPI's CUDA build) and Ultralytics hold
    # before any model or image, subtracted where memory is compared without it.
    rss_after_import = maxrss_mib(resource.RUSAGE_SELF)

    data_yaml, names, counts = stage_dataset(args.data, out / "dataset")

    # ---- training -------------------------------------------------------------------------------------------
    model = YOLO(args.model)
    epochs, threads_seen, state = [], set(), {}

    def on_pretrain_routine_start(trainer):
        if args.workers is not None:  # the trainer has just set workers=0 for CPU; dataloaders are built later
            trainer.args.workers = args.workers

    def on_train_start(trainer):
        state["train_images"] = len(trainer.train_loader.dataset)
        state["workers_used"] = trainer.train_loader.num_workers

    def on_train_epoch_start(trainer):
        state["t_epoch"] = time.perf_counter()

    def on_train_batch_end(trainer):
        threads_seen.add(torch.get_num_threads())

    def on_train_epoch_end(trainer):
        state["t_train_end"] = time.perf_counter()
        epochs.append({"epoch": trainer.epoch + 1, "train_s": round(state["t_train_end"] - state["t_epoch"], 3)})

    def on_fit_epoch_end(trainer):
        epochs[-1]["val_s"] = round(time.perf_counter() - state["t_train_end"], 3)

    for event, fn in [
        ("on_pretrain_routine_start", on_pretrain_routine_start),
        ("on_train_start", on_train_start),
        ("on_train_epoch_start", on_train_epoch_start),
        ("on_train_batch_end", on_train_batch_end),
        ("on_train_epoch_end", on_train_epoch_end),
        ("on_fit_epoch_end", on_fit_epoch_end),
    ]:
        model.add_callback(event, fn)

    with RssSampler() as rss:
        t0 = time.perf_counter()
        optimiser = {"optimizer": args.optimizer}
        if args.lr0 is not None:
            optimiser["lr0"] = args.lr0
        if args.nbs is not None:
            optimiser["nbs"] = args.nbs
        if args.cache != "false":
            optimiser["cache"] = args.cache  # Ultralytics decodes every image once, before the first epoch
        if args.nms_free:
            optimiser["nms"] = False  # the validator then reads the one-to-one head (model.end2end = nms is False)
        model.train(
            **optimiser,
            data=str(data_yaml),
            epochs=args.epochs,
            imgsz=args.imgsz,
            batch=args.batch,
            device="cpu",
            seed=args.seed,
            fliplr=args.fliplr,
            fraction=args.fraction,
            val=not args.no_val,
            pretrained=False,
            plots=False,
            project=str(out),
            name="train",
            exist_ok=True,
        )
        train_wall = time.perf_counter() - t0
        rss_after_train = {
            "self": maxrss_mib(resource.RUSAGE_SELF),
            "children": maxrss_mib(resource.RUSAGE_CHILDREN),
            "tree_sum_sampled": round(rss.peak / 2**20, 1),
        }
        save_dir = Path(model.trainer.save_dir)
        best = save_dir / "weights" / "best.pt"
        if not best.exists():
            best = save_dir / "weights" / "last.pt"

        results_csv = save_dir / "results.csv"
        if results_csv.exists():
            import csv

            with open(results_csv) as f:
                rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(f)]
            for e, r in zip(epochs, rows):
                if "time" in r:
                    e["results_csv_cumulative_s"] = round(float(r["time"]), 3)

        # ---- validation ---------------------------------------------------------------------------------------
        if args.export_safetensors:
            export_safetensors(best, args.export_safetensors, names, args.imgsz)
        trained = YOLO(str(best))
        t0 = time.perf_counter()
        m = trained.val(
            **({"nms": False} if args.nms_free else {}),
            data=str(data_yaml), split="val", imgsz=args.imgsz, batch=args.batch, device="cpu", plots=False, verbose=False, project=str(out), name="val", exist_ok=True,
        )
        val_wall = time.perf_counter() - t0
        box = m.box
        per_class = {}
        for i, c in enumerate(box.ap_class_index):
            c = int(c)
            per_class[names[c]] = {
                "ap50": round(float(box.ap50[i]), 5),
                "ap50_95": round(float(box.ap[i]), 5),
                "instances": int(m.nt_per_class[c]) if m.nt_per_class is not None else None,
            }

        # ---- latency ------------------------------------------------------------------------------------------
        img_path = sorted(p for p in (args.data / "images" / "val").iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[0]
        img = cv2.imread(str(img_path))
        predict_ms, stage_ms = [], {"preprocess": [], "inference": [], "postprocess": []}
        for i in range(args.latency_warmup + args.latency_runs):
            t0 = time.perf_counter()
            res = trained.predict(img, imgsz=args.imgsz, device="cpu", verbose=False)
            dt = (time.perf_counter() - t0) * 1000
            if i >= args.latency_warmup:
                predict_ms.append(dt)
                for k in stage_ms:
                    stage_ms[k].append(res[0].speed[k])
        threads_inference = torch.get_num_threads()
        predictor = trained.predictor
        x = predictor.preprocess([img])
        net = predictor.model
        forward_ms = []
        with torch.inference_mode():
            for i in range(args.latency_warmup + args.latency_runs):
                t0 = time.perf_counter()
                net(x)
                dt = (time.perf_counter() - t0) * 1000
                if i >= args.latency_warmup:
                    forward_ms.append(dt)

    result = {
        "tool": "ultralytics",
        "model": f"{args.model} (from scratch, no pretrained weights)",
        "versions": {
            "ultralytics": ultralytics.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "opencv": cv2.__version__,
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        },
        "args": {
            "data": str(args.data.resolve()), "epochs": args.epochs, "imgsz": args.imgsz, "batch": args.batch,
            "threads": args.threads, "workers": args.workers, "seed": args.seed, "fliplr": args.fliplr,
            "fraction": args.fraction, "val_every_epoch": not args.no_val, "model": args.model,
            "optimizer": args.optimizer, "lr0": args.lr0, "nbs": args.nbs, "nms_free": args.nms_free,
            "cache": args.cache,
        },
        "threads": {
            "torch_in_train_loop": sorted(threads_seen),
            "torch_at_inference": threads_inference,
            "torch_interop": torch.get_num_interop_threads(),
            "dataloader_workers_train": state.get("workers_used"),
        },
        "dataset": {"train_images": counts["train"], "val_images": counts["val"], "train_images_used": state.get("train_images")},
        "train": {
            "epochs_run": len(epochs),
            "train_wall_s": round(train_wall, 3),
            "train_phase_s": round(sum(e["train_s"] for e in epochs), 3),
            "val_phase_s": round(sum(e.get("val_s", 0.0) for e in epochs), 3),
            "train_images_per_s": round(state.get("train_images", 0) * len(epochs) / max(1e-9, sum(e["train_s"] for e in epochs)), 3),
            "epochs": epochs,
            "save_dir": str(save_dir),
            "checkpoint": str(best),
        },
        "peak_rss_mib": {
            "note": "self/children: getrusage ru_maxrss; a forked child inherits its parent's high-water mark, so "
            "children is the parent's RSS at the time of a fork rather than extra memory. tree_sum_sampled: summed "
            "RSS of the process tree every 0.5 s (misses short peaks, double-counts pages shared with workers)",
            "after_import": rss_after_import,
            "after_train": rss_after_train,
            "end": {
                "self": maxrss_mib(resource.RUSAGE_SELF),
                "children": maxrss_mib(resource.RUSAGE_CHILDREN),
                "tree_sum_sampled": round(rss.peak / 2**20, 1),
            },
        },
        "val": {
            "conf": 0.001,
            "iou": 0.7,
            "images": counts["val"],
            "instances": int(m.nt_per_class.sum()) if m.nt_per_class is not None else None,
            "map50": round(float(box.map50), 5),
            "map50_95": round(float(box.map), 5),
            "precision": round(float(box.mp), 5),
            "recall": round(float(box.mr), 5),
            "per_class": per_class,
            "wall_s": round(val_wall, 3),
        },
        "latency_ms": {
            "image": str(img_path.resolve()),
            "imgsz": args.imgsz,
            "input_shape": list(x.shape),
            "predict": summarize(predict_ms),
            "predict_stages_median": {k: round(statistics.median(v), 3) for k, v in stage_ms.items()},
            "forward": summarize(forward_ms),
        },
        "network_attempts": NETWORK_ATTEMPTS,
    }
    (out / "ultralytics.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
