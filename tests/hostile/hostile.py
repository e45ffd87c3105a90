#!/usr/bin/env python3
"""Hostile clients against a release `roadsign serve`: memory under full load, and a soak.

Standard library only (plus ffmpeg and ffprobe on PATH, which make the large
and video inputs at run time). Each mode starts its own server the way
k8s/deployment.yaml runs it: `serve.workers=2` (the Deployment's CPU limit is
2), every other setting at its default, TMPDIR a fresh folder; it waits for
/ready, runs, stops the server with SIGTERM, prints a summary, writes its raw
measurements as JSON to --out, and exits 1 if any check failed (each failure
says what and by how much), 2 if it could not run at all.

  python3 tests/hostile/hostile.py memory --binary target/release/roadsign-torch --out F
      Fills every admission slot at once with the largest inputs the defaults
      allow: uploads of a noisy 8000x5000 JPEG (40 MP, just under
      max_upload_mb) on /predict, /predict/image and /v2/.../infer (raw and
      multipart) until upload_memory_mb is spent, and two more (503), and
      `workers` (2) uploads of a 1080p MP4 padded to just under max_video_mb
      on /predict/video; small images in every image place left (workers +
      queue: 2 + 32); then two small images and a small video, which find no
      place (503). Two large images go first, so that they are being decoded
      while every other body arrives and is held.
      Every 100 ms it reads process_resident_memory_bytes from /metrics, and
      the memory of the server with its ffmpeg children from /proc (their PSS
      summed: shared libraries counted once, as a container's limit counts
      them); VmHWM catches a peak of the server between two samples.
      Checks: every admitted request answers 200 or 504 (a job that waited
      past timeout_s), never 503 after its upload (the worker queue has room
      for them all; which of the last small images find a place is a race);
      large images beyond the upload memory 503, at least one; the overflow
      video 503; every route served at least
      once; every slot in flight at once; the peak RSS of the server, and the
      peak PSS of the server with its children, under the memory limit of the
      container (resources.limits.memory, read from k8s/deployment.yaml);
      afterwards no temporary file and no child process left; SIGTERM exits 0.
      About a minute.

  python3 tests/hostile/hostile.py soak --binary target/release/roadsign-torch --seconds 150 --out F
      After a warm-up round of every valid request (twice; the RSS after it is
      the baseline), --clients threads send a seeded random mix of the cases
      of soak_cases() for --seconds: valid images (JPEG, PNG, WebP; raw and
      multipart; /predict, /predict/image, /v2 JSON and binary), 1-2 s videos
      (MP4, AVI), a 1 s video with 8 s of sound (its answer must last about
      1 s), bad inputs each with its status (a PNG declaring 100000x100000,
      a 6000x6000 16-bit RGBA PNG, a 70000x1 PNG on /predict/image, 21 MiB,
      a 2048x1152 video and an AVI of 121 s at 1000 fps: 413; truncated JPEG,
      garbage, empty bodies, a form without `file`, JSON that is not: 400;
      GIF, text/plain, an image on /predict/video: 415), slow senders (1 KiB/s:
      408, or cut), clients that leave mid-upload and clients that leave
      after sending a whole video. A request may also get 503 when the server
      is full, except what is refused from its headers alone. Checks, once the
      server has settled (30 s at most): every answer had an allowed status
      and body (errors as {"error": ...}), every case got its own answer at
      least once, no temporary file and no child process of the server left,
      RSS within 64 MiB of the baseline, /ready 200, a valid /predict 200,
      SIGTERM exits 0. --seconds plus about 15 s.

The committed corpus (tests/hostile/corpus/, about 330 KB, rebuilt by
make_corpus.py) holds the small attack files; everything large or video is
made with ffmpeg into a temporary folder that is removed at the end (--keep
keeps it, with the server's log). --project runs the server on another
project folder than a copy of this repository's YAML files (say, one whose
parameters.yml an older binary still accepts).
"""
import argparse
import base64
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CORPUS = HERE / "corpus"
DEPLOYMENT = REPO / "k8s/deployment.yaml"
SHIPPED_MODEL = REPO / "models/yolov8n-roadsign.safetensors"

WORKERS = 2
# The server's defaults (parameters.yml `serve:` and Settings::default in
# src/bin/roadsign-torch/serve/mod.rs) that the inputs are sized against.
QUEUE = 32
MAX_UPLOAD = 20 * 2**20
MAX_VIDEO = 200 * 2**20
MAX_PIXELS = 40_000_000
MAX_VIDEO_SIZE = (1920, 1080)
UPLOAD_MEMORY = 256 * 2**20
# What a request adds around its file (form framing, a v2 JSON header).
FRAMING = 4096

BOUNDARY = "roadsign-hostile-7d41"
FORM_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


# What a request can fail with, short of an answer.
REQUEST_ERRORS = (OSError, http.client.HTTPException)


class SetupError(Exception):
    """The run could not happen (exit 2), as opposed to a failed check (exit 1)."""


# ---------------------------------------------------------------- HTTP ----

@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def error_message(self):
        """The `error` of a JSON error body, or None."""
        try:
            error = json.loads(self.body).get("error")
        except (ValueError, AttributeError):
            return None
        return error if isinstance(error, str) and error else None


def split_address(address):
    host, port = address.rsplit(":", 1)
    return host, int(port)


def exchange(address, method, path, parts=(), headers=None, timeout=180.0, on_sent=None):
    """One request on its own connection; the body goes out as `parts`,
    unjoined (a 200 MiB body is not copied). `on_sent` is called once the
    whole body is out (or the server has stopped taking it)."""
    headers = dict(headers or {})
    headers["Content-Length"] = str(sum(len(p) for p in parts))
    conn = http.client.HTTPConnection(*split_address(address), timeout=timeout)
    try:
        try:
            conn.request(method, path, body=list(parts), headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered (413, 503) before the whole body was out: read it
        finally:
            if on_sent:
                on_sent()
        reply = conn.getresponse()
        return Reply(reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read())
    finally:
        conn.close()


def form_parts(data, content_type, field_name="file"):
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field_name}"; '
            f'filename="upload"\r\nContent-Type: {content_type}\r\n\r\n').encode()
    return [head, data, f"\r\n--{BOUNDARY}--\r\n".encode()]


def v2_parts(data, binary):
    """An Open Inference Protocol request for one encoded image: base64 in
    JSON, or the binary data extension (JSON header, then length and bytes)."""
    if not binary:
        body = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                            "data": [base64.b64encode(data).decode()]}]}
        return [json.dumps(body).encode()], {"Content-Type": "application/json"}
    element = struct.pack("<I", len(data))
    size = {"binary_data_size": len(element) + len(data)}
    header = json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                     "parameters": size}]})
    return ([header.encode(), element, data],
            {"Content-Type": "application/octet-stream",
             "Inference-Header-Content-Length": str(len(header))})


def request_for(send, data, content_type, field_name="file"):
    """The parts and headers of an upload sent as `send`: form, raw, v2-json, v2-binary."""
    if send == "form":
        return form_parts(data, content_type, field_name), {"Content-Type": FORM_TYPE}
    if send == "raw":
        return [data], ({"Content-Type": content_type} if content_type else {})
    return v2_parts(data, binary=send == "v2-binary")


def status_of(answer):
    """The status of a raw HTTP answer's first line, or None."""
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return int(match.group(1)) if match else None


def request_head(address, path, content_type, length):
    return (f"POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def trickle(address, path, content_type, length=2**20, seconds=20.0):
    """Declares `length` bytes, then sends 200 bytes every 0.2 s (1 KiB/s)
    until the server answers or closes: its status, or "closed"."""
    with socket.create_connection(split_address(address), timeout=5) as sock:
        sock.sendall(request_head(address, path, content_type, length))
        sock.settimeout(0.2)
        answer = b""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                sock.sendall(bytes(200))
            except OSError:
                pass  # the server stopped reading: its answer may be there
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
            if b"\r\n" in answer:
                break
        else:
            return "no answer"
    return status_of(answer) or "closed"


def leave(address, path, parts, content_type, fraction):
    """Sends the head and `fraction` of the body, then closes without reading."""
    body = b"".join(parts)
    with socket.create_connection(split_address(address), timeout=30) as sock:
        sock.sendall(request_head(address, path, content_type, len(body)))
        sock.sendall(body[: int(len(body) * fraction)])
    return "left mid-upload" if fraction < 1 else "left after sending"


# ---------------------------------------------------------- processes ----

def process_table():
    """pid -> (parent pid, command name) of every process now."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # ended meanwhile
        # The name is in parentheses and may hold spaces or parentheses.
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        table[int(entry)] = (parent, name)
    return table


def descendants(pid):
    """(pid, name) of every process below `pid`."""
    table = process_table()
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [(p, name) for p, (pp, name) in table.items() if pp == parent]
        found += children
        frontier += [p for p, _ in children]
    return found


def status_bytes(pid, field_name, source="status"):
    """A memory line of /proc/PID/status (VmRSS, VmHWM) or of
    /proc/PID/smaps_rollup (Pss) in bytes, 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def command_line(pid, length=120):
    """The start of a process's command line (which ffmpeg is which)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:length]
    except OSError:
        return None


def open_files(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


# -------------------------------------------------------------- server ----

class Server:
    """`roadsign serve` on 127.0.0.1 and a free port, with its own TMPDIR."""

    def __init__(self, binary, project, model, workdir):
        self.tmpdir = workdir / "server-tmp"
        self.tmpdir.mkdir()
        self.log_path = workdir / "server.log"
        env = dict(os.environ, TMPDIR=str(self.tmpdir))
        env.pop("RUST_LOG", None)
        command = [str(binary), "serve", "--port", "0", "--project-dir", str(project),
                   "--model", str(model), "--params", f"serve.workers={WORKERS}"]
        with open(self.log_path, "wb") as log:
            try:
                self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log,
                                                env=env)
            except OSError as e:
                raise SetupError(f"cannot start {binary}: {e}") from e
        self.pid = self.process.pid
        try:
            self.address = self._wait_listening(60)
        except SetupError:
            self.stop()
            raise

    def _wait_listening(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            match = re.search(r"listening on http://(\S+)", self.log_path.read_text())
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise SetupError(f"the server did not start; its log:\n{self.log_tail()}")

    def log_tail(self, lines=15):
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def get(self, path, timeout=10.0):
        return exchange(self.address, "GET", path, timeout=timeout)

    def wait_ready(self, seconds=120):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if self.get("/ready").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SetupError(f"the server never became ready; its log:\n{self.log_tail()}")

    def metrics(self, timeout=2.0):
        """The unlabelled samples of /metrics (name -> value), None if unanswered."""
        try:
            text = self.get("/metrics", timeout).body.decode()
        except OSError:
            return None
        return {m.group(1): float(m.group(2))
                for m in re.finditer(r"^([a-z_]+) ([0-9.e+-]+)$", text, re.M)}

    def rss(self):
        """process_resident_memory_bytes as the server reports it."""
        metrics = self.metrics() or {}
        return int(metrics.get("process_resident_memory_bytes", status_bytes(self.pid, "VmRSS")))

    def children(self):
        return descendants(self.pid)

    def tree_memory(self):
        """The memory of the server and every process below it, which a
        container's limit counts together: their RSS summed (pages they share,
        such as ffmpeg's libraries, counted once per process), and their PSS
        summed (shared pages divided among the processes sharing them)."""
        children = {p: (command_line(p) or name, status_bytes(p, "VmRSS"))
                    for p, name in self.children()}
        server_rss = status_bytes(self.pid, "VmRSS")
        children_rss = sum(rss for _, rss in children.values())
        return {"server_rss": server_rss, "children_rss": children_rss,
                "tree_rss": server_rss + children_rss,
                "tree_pss": sum(status_bytes(p, "Pss", "smaps_rollup")
                                for p in [self.pid, *children]),
                "children": sorted(children.values(), key=lambda c: -c[1])}

    def settle(self, seconds=30.0):
        """Waits until only the asking request is in flight and no child
        process or temporary file is left; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            metrics = self.metrics() or {}
            if (metrics.get("roadsign_http_requests_in_flight") == 1 and not self.children()
                    and not files_under(self.tmpdir)):
                break
            time.sleep(0.25)
        return round(time.monotonic() - started, 1)

    def stop(self, seconds=40.0):
        """SIGTERM and the exit code (None if it had to be killed)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


class Sampler(threading.Thread):
    """Samples the server's memory every `period` seconds until stopped."""

    def __init__(self, server, period):
        super().__init__(daemon=True)
        self.server, self.period = server, period
        self.samples = []
        self.peak_pss, self.children_at_peak = 0, []
        self.halt = threading.Event()

    def run(self):
        started = time.monotonic()
        while not self.halt.is_set():
            metrics = self.server.metrics(timeout=1.0) or {}
            sample = {
                "t": round(time.monotonic() - started, 2),
                "rss": metrics.get("process_resident_memory_bytes"),
                # The sampling request itself is one of them.
                "in_flight": metrics.get("roadsign_http_requests_in_flight"),
                **self.server.tree_memory(),
            }
            # Which children (name, RSS) there were at the peak, and only
            # then: the other samples keep their count.
            if sample["tree_pss"] > self.peak_pss:
                self.peak_pss, self.children_at_peak = sample["tree_pss"], sample["children"]
            sample["children"] = len(sample["children"])
            self.samples.append(sample)
            self.halt.wait(self.period)

    def stop(self):
        self.halt.set()
        if self.ident is not None:  # started
            self.join()

    def peak(self, key):
        return max((s[key] for s in self.samples if s[key] is not None), default=0)


# -------------------------------------------------------------- inputs ----

def ffmpeg(*args):
    try:
        subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True,
                       stdin=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as e:
        raise SetupError(f"ffmpeg could not make an input ({e}): is ffmpeg installed?") from e


def noise_jpeg(path, width, height, max_bytes):
    """A JPEG of seeded colour noise (which compresses badly), at the best
    quality that stays under `max_bytes`."""
    for quality in range(2, 32):
        ffmpeg("-f", "lavfi", "-i",
               f"color=c=gray:s={width}x{height},noise=alls=60:allf=u:all_seed=1",
               "-frames:v", 1, "-q:v", quality, "-pix_fmt", "yuvj420p", path)
        if path.stat().st_size <= max_bytes:
            return path.read_bytes()
    raise SetupError(f"no noise JPEG of {width}x{height} fits in {max_bytes} bytes")


def padded_mp4(path, width, height, seconds, size):
    """A real H.264 clip, then a `free` box (which every MP4 reader skips) up
    to `size` bytes: a body as large as allowed, for little decoding work."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25:duration={seconds}",
           "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", path)
    with open(path, "ab") as f:
        f.write(struct.pack(">I", size - f.tell()) + b"free")
        f.truncate(size)  # zeros up to the box's declared end
    return path.read_bytes()


def clip(path, seconds, fps=15, size="320x240", codec="libx264", sound_s=None):
    """A test-pattern clip; with `sound_s`, a tone that long."""
    args = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}:duration={seconds}"]
    if sound_s:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={sound_s}", "-c:a", "aac"]
    args += ["-c:v", codec]
    if codec == "libx264":
        args += ["-pix_fmt", "yuv420p"]
    ffmpeg(*args, path)
    return path.read_bytes()


def fast_avi(path, seconds):
    """An AVI at 1000 frames a second lasting `seconds`: one second made,
    then looped by copying (121000 tiny frames in half a second)."""
    one = path.with_suffix(".one.avi")
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=16x16:r=1000:d=1", "-c:v", "mpeg4", one)
    ffmpeg("-stream_loop", seconds - 1, "-i", one, "-c", "copy", path)
    return path.read_bytes()


def media_seconds(data, workdir):
    """The duration ffprobe reads in an MP4 answer."""
    with tempfile.NamedTemporaryFile(dir=workdir, suffix=".mp4") as f:
        f.write(data)
        f.flush()
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                              "-of", "csv=p=0", f.name], capture_output=True, text=True)
    try:
        return float(out.stdout.strip())
    except ValueError:
        return None


def corpus():
    return {p.name: p.read_bytes() for p in CORPUS.iterdir() if p.is_file()}


def memory_limit(path):
    """resources.limits.memory of a manifest, in bytes (read without a YAML
    library: the `memory:` line inside the `limits:` block)."""
    limits_indent = None
    for line in Path(path).read_text().splitlines():
        text = line.split("#", 1)[0].rstrip()
        if not text.strip():
            continue
        indent = len(text) - len(text.lstrip())
        if text.strip() == "limits:":
            limits_indent = indent
        elif limits_indent is not None and indent <= limits_indent:
            limits_indent = None
        elif limits_indent is not None and text.strip().startswith("memory:"):
            return parse_quantity(text.split(":", 1)[1].strip().strip("\"'"))
    raise SetupError(f"no resources.limits.memory in {path}")


def parse_quantity(text):
    """A Kubernetes quantity (1536Mi, 2Gi, 1.5G, 512000000) in bytes."""
    match = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T)?", text)
    if not match:
        raise SetupError(f"not a memory quantity: {text!r}")
    scale = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[match.group(2)]
    return int(float(match.group(1)) * scale)


def model_name(model):
    """The name the server gives the model on /v2: the safetensors `name`
    metadata, else the file's stem (serve.model_name is left at its default)."""
    try:
        with open(model, "rb") as f:
            length = struct.unpack("<Q", f.read(8))[0]
            name = json.loads(f.read(length)).get("__metadata__", {}).get("name")
    except (OSError, ValueError, struct.error):
        name = None  # not safetensors: start_server says if the stem is wrong
    return name or Path(model).stem


def project_copy(workdir):
    project = workdir / "project"
    project.mkdir()
    for name in ("pipelines.yml", "catalog.yml", "parameters.yml"):
        shutil.copy(REPO / name, project)
    return project


def mib(n):
    return f"{n / 2**20:.0f} MiB" if n is not None else "-"


# -------------------------------------------------------------- checks ----

class Checks:
    def __init__(self):
        self.results = []

    def expect(self, name, ok, detail=""):
        self.results.append({"check": name, "ok": bool(ok), "detail": detail})
        print(f"  {'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")

    def failed(self):
        return [r for r in self.results if not r["ok"]]


# ------------------------------------------------------------- memory ----

@dataclass
class Flight:
    """One request of the memory run and what came of it."""
    name: str
    route: str
    parts: list
    headers: dict
    stage: str
    allowed: tuple = (200, 504)
    sent: threading.Event = field(default_factory=threading.Event)
    outcome: object = None
    seconds: float = None
    answer_bytes: int = 0

    def fly(self, address):
        started = time.monotonic()
        try:
            reply = exchange(address, "POST", self.route, self.parts, self.headers,
                             timeout=300, on_sent=self.sent.set)
            self.outcome, self.answer_bytes = reply.status, len(reply.body)
            # Refused after its upload, by a full worker queue: the pool is
            # sized so that an admitted request never is.
            if reply.status == 503 and b"every worker and every place" in reply.body:
                self.outcome = "503 after its upload"
        except REQUEST_ERRORS as e:
            self.outcome = f"error: {type(e).__name__}"
        finally:
            self.sent.set()
            self.seconds = round(time.monotonic() - started, 2)

    def report(self):
        return {"name": self.name, "route": self.route, "stage": self.stage,
                "body_bytes": sum(len(p) for p in self.parts), "outcome": self.outcome,
                "seconds": self.seconds, "answer_bytes": self.answer_bytes}


def memory_flights(inputs, model):
    """Every admission slot filled, in four stages, and the overflow: large
    images until the upload memory is spent (and a few more, refused), then
    small ones in every place left."""
    big, video = inputs["noise.jpg"], inputs["padded_1080p.mp4"]
    v2 = f"/v2/models/{model}/infer"

    def flight(name, route, send, data, content_type, stage, allowed=(200, 504)):
        parts, headers = request_for(send, data, content_type)
        return Flight(name, route, parts, headers, stage, allowed)

    first = [flight(f"image-form-{i}", "/predict/image", "form", big, "image/jpeg", "1 decoding")
             for i in range(WORKERS)]
    videos = [flight(f"video-{i}", "/predict/video", "form", video, "video/mp4", "2 videos")
              for i in range(WORKERS)]
    shapes = [("/predict", "form"), ("/predict", "raw"), ("/predict/image", "form"),
              ("/predict/image", "raw"), (v2, "v2-binary")]
    rest = []
    large = UPLOAD_MEMORY // len(big) + 2 - len(first)
    for i in range(large):
        route, send = shapes[i % len(shapes)]
        rest.append(flight(f"{route.rsplit('/', 1)[-1]}-{send}-{i}", route, send, big,
                           "image/jpeg", "3 images", allowed=(200, 503, 504)))
    # Which of the small images and the overflow find the last places is a
    # race: either may be refused at admission (503), none after its upload.
    small = [flight(f"small-{i}", "/predict", "raw", inputs["scene.jpg"], "image/jpeg",
                    "4 small", allowed=(200, 503, 504))
             for i in range(WORKERS + QUEUE - len(first) - large + 2)]
    overflow = [flight(f"overflow-image-{i}", "/predict", "form", inputs["scene.jpg"],
                       "image/jpeg", "5 overflow", allowed=(200, 503, 504)) for i in range(2)]
    overflow.append(flight("overflow-video", "/predict/video", "form", inputs["clip.mp4"],
                           "video/mp4", "5 overflow", allowed=(503,)))
    return [first, videos, rest, small, overflow]


def memory_inputs(workdir):
    """The largest bodies the defaults take, and small ones for the overflow."""
    width = 8000
    return {
        "noise.jpg": noise_jpeg(workdir / "noise.jpg", width, MAX_PIXELS // width,
                                MAX_UPLOAD - FRAMING),
        "padded_1080p.mp4": padded_mp4(workdir / "padded.mp4", *MAX_VIDEO_SIZE, 3,
                                       MAX_VIDEO - FRAMING),
        "clip.mp4": clip(workdir / "clip.mp4", 1),
        "scene.jpg": (CORPUS / "scene.jpg").read_bytes(),
    }


def run_memory(args, workdir, checks, record):
    limit = memory_limit(DEPLOYMENT)
    record["memory_limit_bytes"] = limit
    print("making inputs ...", flush=True)
    inputs = memory_inputs(workdir)
    record["inputs"] = {name: len(data) for name, data in inputs.items()}
    server = start_server(args, workdir, record)
    sampler = Sampler(server, 0.1)
    try:
        stages = memory_flights(inputs, model_name(args.model))
        sampler.start()
        fly_in_stages(server, stages, record)
        record["settle_s"] = server.settle()
        # The true peak of the server process, which 100 ms polling may miss.
        record["vm_hwm_bytes"] = status_bytes(server.pid, "VmHWM")
        record["leftovers"] = {"files": files_under(server.tmpdir),
                               "children": server.children()}
    finally:
        sampler.stop()
        record["exit_code"] = server.stop()
    judge_memory([f for stage in stages for f in stage], sampler, limit, checks, record)


def judge_memory(flights, sampler, limit, checks, record):
    peak_rss = max(sampler.peak("rss"), record["vm_hwm_bytes"])
    peak_pss, peak_tree_rss = sampler.peak("tree_pss"), sampler.peak("tree_rss")
    # Each sample's own /metrics request is counted in flight.
    peak_in_flight = int(sampler.peak("in_flight")) - 1
    record.update(requests=[f.report() for f in flights], samples=sampler.samples,
                  peak_rss_polled_bytes=sampler.peak("rss"), peak_rss_bytes=peak_rss,
                  peak_tree_pss_bytes=peak_pss, peak_tree_rss_bytes=peak_tree_rss,
                  peak_children_rss_bytes=sampler.peak("children_rss"),
                  children_at_peak_pss=sampler.children_at_peak, peak_in_flight=peak_in_flight)
    print_memory_table(flights)
    slots = WORKERS + QUEUE + WORKERS
    print(f"\npeak in flight {peak_in_flight} (slots {slots}); limit {mib(limit)}\n"
          f"peak RSS of the server {mib(peak_rss)} (polled /metrics "
          f"{mib(sampler.peak('rss'))}, VmHWM {mib(record['vm_hwm_bytes'])})\n"
          f"peak of the server with its children: PSS {mib(peak_pss)}, RSS summed "
          f"{mib(peak_tree_rss)}; children then:")
    for command, rss in sampler.children_at_peak:
        print(f"  {mib(rss):>9}  {command[:100]}")
    print("checks:")
    unexpected = [f"{f.name}: {f.outcome}" for f in flights if f.outcome not in f.allowed]
    checks.expect("every request answered as its place allows (200 or 504 once admitted, "
                  "503 only at admission)", not unexpected,
                  "; ".join(unexpected))
    for route in sorted({f.route for f in flights}):
        served = sum(f.outcome == 200 for f in flights if f.route == route)
        checks.expect(f"{route} served at least once under full load", served > 0,
                      f"{served} of {sum(f.route == route for f in flights)} answered 200")
    checks.expect("every admission slot was in flight at once", peak_in_flight >= slots,
                  f"at most {peak_in_flight} requests in flight, {slots} slots")
    large = [f for f in flights if f.stage == "3 images"]
    refused = sum(f.outcome == 503 for f in large)
    checks.expect("large bodies beyond the upload memory refused with 503", refused > 0,
                  f"{refused} of {len(large)} large images refused "
                  f"(upload memory {mib(UPLOAD_MEMORY)}, bodies of "
                  f"{mib(sum(len(p) for p in large[0].parts)) if large else '-'})")
    checks.expect("peak RSS of the server under the memory limit", 0 < peak_rss < limit,
                  f"{mib(peak_rss)} against {mib(limit)} ({peak_rss / limit:.0%})")
    checks.expect("peak PSS of the server and its children under the memory limit",
                  0 < peak_pss < limit,
                  f"{mib(peak_pss)} against {mib(limit)} ({peak_pss / limit:.0%})")
    leftovers = record["leftovers"]
    checks.expect("no temporary file left", not leftovers["files"], str(leftovers["files"][:5]))
    checks.expect("no child process left", not leftovers["children"], str(leftovers["children"]))
    checks.expect("SIGTERM exits 0", record["exit_code"] == 0, f"exit code {record['exit_code']}")


def fly_in_stages(server, stages, record):
    """Starts each stage's requests once the previous stage's bodies are out,
    and waits for every answer."""
    started = time.monotonic()
    threads = []
    for stage in stages:
        for f in stage:
            threads.append(threading.Thread(target=f.fly, args=(server.address,)))
            threads[-1].start()
        for f in stage:
            f.sent.wait(120)
        print(f"  stage {stage[0].stage}: {len(stage)} bodies out at "
              f"{time.monotonic() - started:.1f} s", flush=True)
    for t in threads:
        t.join()
    record["answered_in_s"] = round(time.monotonic() - started, 1)


def print_memory_table(flights):
    rows = defaultdict(lambda: {"n": 0, "bytes": 0, "outcomes": Counter(), "max_s": 0.0})
    for f in flights:
        row = rows[(f.stage, f.route)]
        row["n"] += 1
        row["bytes"] += sum(len(p) for p in f.parts)
        row["outcomes"][str(f.outcome)] += 1
        row["max_s"] = max(row["max_s"], f.seconds or 0)
    print(f"\n{'stage':<12} {'route':<40} {'n':>3} {'body':>9} {'slowest':>8}  outcomes")
    for (stage, route), row in sorted(rows.items()):
        outcomes = " ".join(f"{k}x{v}" for k, v in sorted(row["outcomes"].items()))
        print(f"{stage:<12} {route:<40} {row['n']:>3} {mib(row['bytes']):>9} "
              f"{row['max_s']:>7.1f}s  {outcomes}")


def start_server(args, workdir, record):
    project = Path(args.project) if args.project else project_copy(workdir)
    server = Server(args.binary, project, args.model, workdir)
    try:
        server.wait_ready()
        name = model_name(args.model)
        if server.get(f"/v2/models/{name}/ready").status != 200:
            raise SetupError(f"the server does not serve the model as '{name}' on /v2")
    except BaseException:
        server.stop()
        raise
    record["server"] = {"binary": str(args.binary), "pid": server.pid, "address": server.address,
                        "params": f"serve.workers={WORKERS}", "project": str(project),
                        "model": str(args.model), "log": str(server.log_path)}
    return server


# --------------------------------------------------------------- soak ----

@dataclass
class Case:
    """One kind of soak request and the answers it may get."""
    name: str
    category: str
    route: str
    file: str = None          # an input's name; None: an empty body
    content_type: str = None
    send: str = "form"        # form, raw, v2-json, v2-binary
    expect: object = 200
    # 503 may answer when the server is full, except for what is refused
    # from the headers alone, before any admission.
    busy_ok: bool = True
    kind: str = "upload"      # upload, trickle, leave-mid, leave-after
    field_name: str = "file"
    check: str = None         # what a 200 must hold: prediction, jpeg, v2, mp4, short-mp4
    weight: float = 1.0

    def allowed(self):
        allowed = {self.expect, 503} if self.busy_ok else {self.expect}
        if self.kind == "trickle":
            allowed.add("closed")  # cut without an answer is fine too
        return allowed

    def own_answers(self):
        """What shows the case was really tried (not only refused for load)."""
        return self.allowed() - {503}


def soak_cases(model):
    v2 = f"/v2/models/{model}/infer"
    valid_image = [
        Case("predict-form-jpeg", "valid image", "/predict", "scene.jpg", "image/jpeg",
             check="prediction"),
        Case("predict-raw-png", "valid image", "/predict", "scene.png", "image/png", "raw",
             check="prediction"),
        Case("predict-form-webp", "valid image", "/predict", "scene.webp", "image/webp",
             check="prediction"),
        Case("image-raw-jpeg", "valid image", "/predict/image", "scene.jpg", "image/jpeg", "raw",
             check="jpeg"),
        Case("image-form-png", "valid image", "/predict/image", "scene.png", "image/png",
             check="jpeg"),
        Case("image-raw-untyped", "valid image", "/predict/image", "scene.jpg",
             "application/octet-stream", "raw", check="jpeg"),
        Case("v2-json", "valid image", v2, "scene.jpg", send="v2-json", check="v2"),
        Case("v2-binary", "valid image", v2, "scene.jpg", send="v2-binary", check="v2"),
    ]
    for case in valid_image:
        case.weight = 3
    valid_video = [
        Case("video-form-mp4", "valid video", "/predict/video", "clip_2s.mp4", "video/mp4",
             check="mp4"),
        Case("video-raw-avi", "valid video", "/predict/video", "clip_1s.avi", "video/x-msvideo",
             "raw", check="mp4"),
        # One second of pictures, eight of sound: about one second back.
        Case("video-long-sound", "valid video", "/predict/video", "long_sound.mp4", "video/mp4",
             check="short-mp4"),
    ]
    bad_image = [
        Case("bomb-png-100000x100000", "bad image", "/predict", "bomb_100000x100000.png",
             "image/png", expect=413),
        Case("rgba16-png-6000x6000", "bad image", "/predict", "rgba16_6000x6000.png",
             "image/png", "raw", expect=413),
        Case("wide-png-70000x1", "bad image", "/predict/image", "wide_70000x1.png", "image/png",
             expect=413),
        Case("oversized-21mib", "bad image", "/predict", "oversized.bin", "image/jpeg", "raw",
             expect=413, weight=0.3),
        Case("truncated-jpeg", "bad image", "/predict", "truncated.jpg", "image/jpeg",
             expect=400),
        Case("garbage", "bad image", "/predict", "garbage.bin", "image/jpeg", expect=400),
        Case("empty-form", "bad image", "/predict/image", None, "image/png", expect=400),
        Case("empty-raw", "bad image", "/predict", None, "image/jpeg", "raw", expect=400),
        Case("no-file-field", "bad image", "/predict", "scene.jpg", "image/jpeg", expect=400,
             field_name="picture"),
        Case("gif-form", "bad image", "/predict", "tiny.gif", "image/gif", expect=415),
        Case("gif-raw-untyped", "bad image", "/predict", "tiny.gif", "application/octet-stream",
             "raw", expect=415),
        Case("text-type-field", "bad image", "/predict", "scene.jpg", "text/plain", expect=415),
        Case("text-type-header", "bad image", "/predict", "scene.jpg", "text/plain", "raw",
             expect=415, busy_ok=False),
        Case("v2-not-json", "bad image", v2, "garbage.bin", "application/json", "raw",
             expect=400),
        Case("v2-text-type", "bad image", v2, "scene.jpg", "text/plain", "raw", expect=415,
             busy_ok=False),
    ]
    bad_video = [
        Case("video-garbage", "bad video", "/predict/video", "garbage.bin", "video/mp4",
             expect=400),
        Case("video-empty", "bad video", "/predict/video", None, "video/mp4", "raw", expect=400),
        Case("video-image-type-field", "bad video", "/predict/video", "scene.jpg", "image/jpeg",
             expect=415),
        Case("video-image-type-header", "bad video", "/predict/video", "scene.jpg",
             "image/jpeg", "raw", expect=415, busy_ok=False),
        # 1000 frames a second for 121 s: refused from its probe. (At the
        # defaults, a shorter one is refused only once 7201 frames are
        # decoded and detected: about 5 minutes of a worker here.)
        Case("avi-1000fps-121s", "bad video", "/predict/video", "fast_1000fps.avi",
             "video/x-msvideo", "raw", expect=413),
        Case("video-2048x1152", "bad video", "/predict/video", "over_1080p.mp4", "video/mp4",
             expect=413),
    ]
    hostile_clients = [
        Case("trickle-image", "slow sender", "/predict", content_type="image/jpeg",
             kind="trickle", expect=408),
        Case("trickle-video", "slow sender", "/predict/video", content_type="video/mp4",
             kind="trickle", expect=408),
        Case("leave-mid-image", "client leaves", "/predict", "scene.jpg", "image/jpeg",
             kind="leave-mid", expect="left mid-upload", busy_ok=False),
        Case("leave-mid-video", "client leaves", "/predict/video", "clip_2s.mp4", "video/mp4",
             kind="leave-mid", expect="left mid-upload", busy_ok=False),
        Case("leave-after-video", "client leaves", "/predict/video", "clip_2s.mp4", "video/mp4",
             kind="leave-after", expect="left after sending", busy_ok=False),
    ]
    return valid_image + valid_video + bad_image + bad_video + hostile_clients


def soak_inputs(workdir):
    inputs = corpus()
    scene = CORPUS / "scene.jpg"
    for name in ("scene.png", "scene.webp"):
        ffmpeg("-i", scene, workdir / name)
        inputs[name] = (workdir / name).read_bytes()
    inputs["clip_2s.mp4"] = clip(workdir / "clip_2s.mp4", 2)
    inputs["clip_1s.avi"] = clip(workdir / "clip_1s.avi", 1, codec="mpeg4")
    inputs["long_sound.mp4"] = clip(workdir / "long_sound.mp4", 1, fps=10, sound_s=8)
    inputs["over_1080p.mp4"] = clip(workdir / "over_1080p.mp4", 0.1, fps=10, size="2048x1152")
    inputs["fast_1000fps.avi"] = fast_avi(workdir / "fast_1000fps.avi", 121)
    inputs["oversized.bin"] = bytes(21 * 2**20)
    return inputs


def answer_problem(case, reply, workdir):
    """What is wrong with an answer's body, or None."""
    if reply.status != 200:
        if reply.error_message():
            return None
        return f"the error body is not {{\"error\": ...}}: {reply.body[:80]!r}"
    kind = reply.headers.get("content-type", "")
    if case.check == "prediction":
        try:
            found = json.loads(reply.body)
            ok = found["image"] == {"width": 640, "height": 640} and len(found["detections"]) > 0
        except (ValueError, KeyError, TypeError):
            ok = False
        return None if ok else f"not a prediction of the scene: {reply.body[:120]!r}"
    if case.check == "jpeg":
        ok = (kind == "image/jpeg" and reply.body[:2] == b"\xff\xd8"
              and reply.body[-2:] == b"\xff\xd9")
        return None if ok else f"not a whole JPEG ({kind}, {len(reply.body)} bytes)"
    if case.check == "v2":
        try:
            names = {o["name"] for o in json.loads(reply.body)["outputs"]}
        except (ValueError, KeyError, TypeError):
            names = set()
        ok = {"boxes", "scores", "classes", "texts"} <= names
        return None if ok else f"not a v2 answer: {reply.body[:120]!r}"
    if kind != "video/mp4" or reply.body[4:8] != b"ftyp":
        return f"not an MP4 ({kind}, {len(reply.body)} bytes)"
    if case.check == "short-mp4":
        seconds = media_seconds(reply.body, workdir)
        if seconds is None or seconds > 1.6:
            return f"the answer lasts {seconds} s, the video 1 s (sound not cut with the pictures)"
    return None


def run_case(case, address, inputs, workdir):
    """Sends one request of `case`: (outcome, problem with the answer or None)."""
    data = inputs[case.file] if case.file else b""
    if case.kind == "trickle":
        return trickle(address, case.route, case.content_type), None
    parts, headers = request_for(case.send, data, case.content_type, case.field_name)
    if case.kind.startswith("leave"):
        fraction = 0.5 if case.kind == "leave-mid" else 1.0
        return leave(address, case.route, parts, headers["Content-Type"], fraction), None
    reply = exchange(address, "POST", case.route, parts, headers, timeout=120)
    return reply.status, answer_problem(case, reply, workdir)


class Tally:
    """Outcomes by case, with their times and problems (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.outcomes = defaultdict(Counter)
        self.seconds = defaultdict(list)
        self.problems = []

    def run(self, case, address, inputs, workdir):
        started = time.monotonic()
        try:
            outcome, problem = run_case(case, address, inputs, workdir)
        except REQUEST_ERRORS as e:
            outcome, problem = f"error: {type(e).__name__}", None
        with self.lock:
            self.outcomes[case.name][outcome] += 1
            self.seconds[case.name].append(time.monotonic() - started)
            if outcome not in case.allowed():
                allowed = ", ".join(sorted(map(str, case.allowed())))
                self.problems.append(f"{case.name}: {outcome} (allowed: {allowed})")
            elif problem:
                self.problems.append(f"{case.name}: {outcome}, {problem}")
        return outcome


def run_soak(args, workdir, checks, record):
    print("making inputs ...", flush=True)
    inputs = soak_inputs(workdir)
    record["inputs"] = {name: len(data) for name, data in sorted(inputs.items())}
    server = start_server(args, workdir, record)
    cases = soak_cases(model_name(args.model))
    scene_case = cases[0]  # a valid /predict of the scene
    warm_up, tally = Tally(), Tally()
    sampler = Sampler(server, 1.0)
    try:
        for case in [c for c in cases if c.category.startswith("valid")] * 2:
            warm_up.run(case, server.address, inputs, workdir)
        time.sleep(2)
        record.update(baseline_rss_bytes=server.rss(), baseline_open_files=open_files(server.pid))
        print(f"warm-up done; baseline RSS {mib(record['baseline_rss_bytes'])}; soaking "
              f"{args.seconds:.0f} s with {args.clients} clients ...", flush=True)
        sampler.start()
        end = time.monotonic() + args.seconds
        clients = [threading.Thread(target=soak_client, args=(i, end, cases, tally, server,
                                                              inputs, workdir, args.seed))
                   for i in range(args.clients)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        sampler.stop()
        record["settle_s"] = server.settle()
        record.update(leftovers={"files": files_under(server.tmpdir),
                                 "children": server.children()},
                      final_rss_bytes=server.rss(), final_open_files=open_files(server.pid),
                      ready_after=server.get("/ready").status,
                      predict_after=run_case(scene_case, server.address, inputs, workdir))
    finally:
        sampler.stop()
        record["exit_code"] = server.stop()
    judge_soak(cases, warm_up, tally, sampler, checks, record)


def judge_soak(cases, warm_up, tally, sampler, checks, record):
    warm = Counter(o for outcomes in warm_up.outcomes.values() for o in outcomes.elements())
    baseline, final = record["baseline_rss_bytes"], record["final_rss_bytes"]
    record.update(peak_rss_bytes=sampler.peak("rss"), peak_tree_pss_bytes=sampler.peak("tree_pss"),
                  samples=sampler.samples, warm_up={str(k): v for k, v in warm.items()},
                  outcomes={c: {str(k): v for k, v in o.items()}
                            for c, o in tally.outcomes.items()},
                  seconds={c: {"mean": round(sum(s) / len(s), 3), "max": round(max(s), 3)}
                           for c, s in tally.seconds.items()},
                  problems=tally.problems)
    print_soak_table(cases, tally)
    print(f"\nwarm-up {dict(warm)}; RSS baseline {mib(baseline)}, peak "
          f"{mib(record['peak_rss_bytes'])}, final {mib(final)}; open files "
          f"{record['baseline_open_files']} -> {record['final_open_files']}; "
          f"settled in {record['settle_s']} s")
    print("checks:")
    checks.expect("warm-up: every valid request answered 200 with a good body",
                  set(warm) == {200} and not warm_up.problems,
                  f"{dict(warm)} {'; '.join(warm_up.problems[:4])}")
    checks.expect("every answer had an allowed status and body", not tally.problems,
                  f"{len(tally.problems)} problems, first: " + "; ".join(tally.problems[:8])
                  if tally.problems else "")
    missing = [c.name for c in cases if not set(tally.outcomes[c.name]) & c.own_answers()]
    checks.expect("every case got its own answer at least once (not only 503)", not missing,
                  ", ".join(missing))
    leftovers = record["leftovers"]
    checks.expect("no temporary file left in the server's TMPDIR", not leftovers["files"],
                  str(leftovers["files"][:5]))
    checks.expect("no child process of the server left", not leftovers["children"],
                  str(leftovers["children"]))
    checks.expect("RSS within 64 MiB of the baseline", final - baseline <= 64 * 2**20,
                  f"{mib(baseline)} -> {mib(final)} ({(final - baseline) / 2**20:+.0f} MiB)")
    checks.expect("/ready answers 200", record["ready_after"] == 200, str(record["ready_after"]))
    checks.expect("a valid /predict still answers 200", record["predict_after"] == (200, None),
                  str(record["predict_after"]))
    checks.expect("SIGTERM exits 0", record["exit_code"] == 0, f"exit code {record['exit_code']}")


def soak_client(index, end, cases, tally, server, inputs, workdir, seed):
    rng = random.Random(seed * 1000 + index)
    weights = [c.weight for c in cases]
    while time.monotonic() < end:
        tally.run(rng.choices(cases, weights)[0], server.address, inputs, workdir)


def print_soak_table(cases, tally):
    print(f"\n{'category':<14} {'case':<26} {'n':>5} {'mean':>7} {'max':>7}  outcomes")
    for case in cases:
        outcomes = tally.outcomes[case.name]
        seconds = tally.seconds[case.name]
        text = " ".join(f"{k}x{v}" for k, v in sorted(outcomes.items(), key=lambda kv: str(kv[0])))
        mean = sum(seconds) / len(seconds) if seconds else 0
        print(f"{case.category:<14} {case.name:<26} {sum(outcomes.values()):>5} "
              f"{mean:>6.2f}s {max(seconds, default=0):>6.2f}s  {text}")
    totals = defaultdict(Counter)
    for case in cases:
        totals[case.category].update(tally.outcomes[case.name])
    print()
    for category, outcomes in totals.items():
        print(f"{category:<14} " + " ".join(f"{k}x{v}" for k, v in
                                            sorted(outcomes.items(), key=lambda kv: str(kv[0]))))


# ---------------------------------------------------------------- main ----

def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["memory", "soak"])
    parser.add_argument("--binary", default=str(REPO / "target/release/roadsign-torch"))
    parser.add_argument("--out", required=True, help="where the raw measurements go (JSON)")
    parser.add_argument("--seconds", type=float, default=150, help="soak: how long")
    parser.add_argument("--clients", type=int, default=4, help="soak: concurrent clients")
    parser.add_argument("--seed", type=int, default=1, help="soak: the request mix's seed")
    parser.add_argument("--model", default=str(SHIPPED_MODEL))
    parser.add_argument("--project", help="the server's project folder (default: a copy of "
                                          "this repository's YAML files)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    binary = Path(args.binary)
    record = {"mode": args.mode, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "binary_mtime": time.strftime("%Y-%m-%dT%H:%M:%S%z",
                                            time.localtime(binary.stat().st_mtime))
              if binary.exists() else None,
              "workers": WORKERS}
    if args.mode == "soak":
        record.update(seconds=args.seconds, clients=args.clients, seed=args.seed)
    checks = Checks()
    workdir = Path(tempfile.mkdtemp(prefix="roadsign-hostile-"))
    started = time.monotonic()
    code = 0
    try:
        (run_memory if args.mode == "memory" else run_soak)(args, workdir, checks, record)
        failed = checks.failed()
        if failed:
            print(f"\nFAILED: {len(failed)} of {len(checks.results)} checks:", file=sys.stderr)
            for r in failed:
                print(f"  {r['check']}: {r['detail']}", file=sys.stderr)
            code = 1
        else:
            print(f"\nall {len(checks.results)} checks passed")
    except SetupError as e:
        print(f"hostile.py {args.mode}: could not run: {e}", file=sys.stderr)
        record["setup_error"] = str(e)
        code = 2
    finally:
        record.update(checks=checks.results, wall_s=round(time.monotonic() - started, 1),
                      exit_code_of_driver=code)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=1, default=str) + "\n")
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
