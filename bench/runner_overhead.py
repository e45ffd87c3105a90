#!/usr/bin/env python3
"""Runner-overhead benchmark: roadsign against Kedro on trivial pipelines.

Shapes:
  chain   n0 -> d0 -> n1 -> d1 -> ... (every node reads the previous output)
  fanout  one source node writes `src`; n-1 nodes each read `src` and write
          their own output

roadsign is timed as a whole process, `roadsign run --project-dir DIR
--runner sequential|parallel` (start-up + YAML + planning + running), one
fresh process per measurement; peak RSS comes from one more run under
`/usr/bin/time -f %M` (wait4's ru_maxrss would include the harness's own RSS).

Kedro is timed in-process, the fair way: a Python subprocess imports kedro
once (import time reported separately), then for each repetition builds the
same Pipeline of node(noop, ...) and a DataCatalog() and runs it with
SequentialRunner / ThreadRunner; the time is construction + run. Kedro
refuses to save None, so its noop returns 0 (roadsign's built-in noop
produces an empty value). Kedro's logging is set to WARNING.

Optionally (full mode, --kedro-cli) one `kedro run` of a generated Kedro
project is timed for chain 1 and chain 1000, default logging and quiet.

Only the standard library is used; kedro is imported only inside the Kedro
worker subprocess (`--kedro-worker`), run with the Kedro venv's Python.

`roadsign --version` is timed the same way (start-up alone).

Usage:
  python3 bench/runner_overhead.py [--quick] [--roadsign PATH]
      [--kedro-python PATH] [--no-kedro-cli] [--out FILE] [--json FILE]

--out keeps the Markdown report, --json every figure (bench/guard.py reads
the committed bench/results/runner_overhead.json).
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_ROADSIGN = os.path.join(ROOT, "target", "release", "roadsign")
DEFAULT_KEDRO_PY = "/tmp/kedro-venv/bin/python"
KEDRO_10K_LIMIT_S = 60.0


# --------------------------------------------------------------------------
# shapes


def shape_nodes(shape, n):
    """[(name, inputs, outputs)] for a shape of n nodes."""
    if shape == "chain":
        return [
            (f"n{i}", [] if i == 0 else [f"d{i - 1}"], [f"d{i}"]) for i in range(n)
        ]
    if shape == "fanout":
        nodes = [("n0", [], ["src"])]
        nodes += [(f"n{i}", ["src"], [f"o{i}"]) for i in range(1, n)]
        return nodes
    raise ValueError(shape)


def write_roadsign_project(path, shape, n):
    os.makedirs(path, exist_ok=True)
    lines = ["pipelines:", "  __default__:", "    nodes:"]
    for name, ins, outs in shape_nodes(shape, n):
        lines.append(
            f"      - {{func: noop, name: {name}, inputs: [{', '.join(ins)}], "
            f"outputs: [{', '.join(outs)}]}}"
        )
    with open(os.path.join(path, "pipelines.yml"), "w") as f:
        f.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# process measurement


GNU_TIME = "/usr/bin/time"


def has_gnu_time():
    try:
        r = subprocess.run([GNU_TIME, "-f", "%M", "true"], capture_output=True, text=True)
        return r.returncode == 0 and r.stderr.strip().isdigit()
    except OSError:
        return False


HAS_GNU_TIME = has_gnu_time()


def run_measured(cmd, cwd=None, env=None, timeout=None, rss_wrap=False):
    """Run cmd once; return (wall_s, peak_rss_bytes, rc, stdout, stderr).

    Peak RSS: with rss_wrap and GNU time installed, the command runs under
    `/usr/bin/time -f %M`, which forks it from a small process. Without it,
    ru_maxrss from wait4() is an upper bound only: Linux carries the RSS
    high-water mark of the (v)forking Python parent into the child across
    exec, so a small child reports the harness's own peak RSS.
    """
    rss_file = None
    if rss_wrap and HAS_GNU_TIME:
        fd, rss_file = tempfile.mkstemp(prefix="rss_")
        os.close(fd)
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file] + list(cmd)
    try:
        return _run_measured(cmd, cwd, env, timeout, rss_file)
    finally:
        if rss_file:
            os.unlink(rss_file)


def _run_measured(cmd, cwd, env, timeout, rss_file):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True
        )
        deadline = None if timeout is None else t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG if deadline else 0)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(p.pid, 9)  # the command and, under GNU time, its child
                os.wait4(p.pid, 0)
                p.returncode = -9
                return None, None, "timeout", b"", b""
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        peak = ru.ru_maxrss * 1024  # KiB on Linux
        if rss_file:
            with open(rss_file) as f:
                lines = [x for x in f.read().split() if x.isdigit()]
            if lines:
                peak = int(lines[-1]) * 1024
        return wall, peak, p.returncode, out.read(), err.read()


_DUR = re.compile(r"completed in ([0-9.]+)(ns|µs|us|ms|s)\b")
_UNIT = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
_COUNT = re.compile(r"(\d+) node\(s\) completed")


def roadsign_case(binary, proj, runner, reps):
    # --force: every repetition runs every node (a second run of an unchanged
    # project would otherwise skip them all as up to date)
    cmd = [binary, "run", "--project-dir", proj, "--runner", runner, "--force"]
    return process_case(cmd, reps)


def version_case(binary, reps):
    """`roadsign --version`: start-up and exit, nothing else."""
    return process_case([binary, "--version"], reps)


def process_case(cmd, reps):
    env = dict(os.environ)
    env.pop("RUST_LOG", None)
    walls, rss, inner, count = [], [], [], None
    for i in range(reps + 1):  # first run is a warm-up, not counted
        wall, peak, rc, out, err = run_measured(cmd, env=env)
        text = (out + err).decode("utf-8", "replace")
        if rc != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed (rc={rc}):\n{text}")
        m = _COUNT.search(text)
        count = int(m.group(1)) if m else None
        if i == 0:
            continue
        walls.append(wall)
        rss.append(peak)
        d = _DUR.search(text)
        if d:
            inner.append(float(d.group(1)) * _UNIT[d.group(2)])
    # peak RSS from one extra run under GNU time (see run_measured)
    _, peak, rc, _, _ = run_measured(cmd, env=env, rss_wrap=True)
    if rc == 0:
        rss = [peak]
    return {
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "inner_median_s": statistics.median(inner) if inner else None,
        "peak_rss": max(rss),
        "nodes_reported": count,
        "reps": reps,
    }


# --------------------------------------------------------------------------
# Kedro worker (runs inside the Kedro venv; the only place kedro is imported)


def kedro_worker(shape, n, reps, runners):
    t0 = time.perf_counter()
    import logging

    from kedro.io import DataCatalog
    from kedro.pipeline import Pipeline, node
    from kedro.runner import SequentialRunner, ThreadRunner

    import_s = time.perf_counter() - t0
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("kedro").setLevel(logging.WARNING)

    def noop(*_args):
        return 0  # Kedro refuses to save None

    classes = {"sequential": SequentialRunner, "thread": ThreadRunner}
    spec = shape_nodes(shape, n)
    result = {"import_s": import_s, "runners": {}}
    for rname in runners:
        cls = classes[rname]
        times, build = [], []
        for _ in range(reps):
            t = time.perf_counter()
            nodes = [
                node(noop, ins or None, outs[0], name=name) for name, ins, outs in spec
            ]
            pipe = Pipeline(nodes)
            catalog = DataCatalog()
            tb = time.perf_counter()
            cls().run(pipe, catalog)
            te = time.perf_counter()
            times.append(te - t)
            build.append(tb - t)
        result["runners"][rname] = {
            "median_s": statistics.median(times),
            "min_s": min(times),
            "max_s": max(times),
            "build_median_s": statistics.median(build),
            "reps": reps,
        }
    print("RESULT " + json.dumps(result))


def kedro_case(kedro_py, shape, n, reps, runners, timeout=None):
    cmd = [
        kedro_py,
        os.path.abspath(__file__),
        "--kedro-worker",
        shape,
        str(n),
        str(reps),
        ",".join(runners),
    ]
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    wall, peak, rc, out, err = run_measured(cmd, env=env, timeout=timeout, rss_wrap=True)
    if rc == "timeout":
        return {"timeout": True}
    if rc != 0:
        raise RuntimeError(f"kedro worker failed (rc={rc}):\n{err.decode()[-3000:]}")
    line = [x for x in out.decode().splitlines() if x.startswith("RESULT ")][-1]
    res = json.loads(line[len("RESULT ") :])
    res["process_wall_s"] = wall
    res["peak_rss"] = peak
    return res


# --------------------------------------------------------------------------
# optional: `kedro run` on a generated Kedro project

_QUIET_LOGGING = """version: 1
disable_existing_loggers: False
handlers:
  console: {class: logging.StreamHandler, level: WARNING, stream: ext://sys.stderr}
loggers:
  kedro: {level: WARNING}
root: {level: WARNING, handlers: [console]}
"""


def write_kedro_project(path, shape, n):
    pkg = os.path.join(path, "src", "bench_proj")
    os.makedirs(pkg, exist_ok=True)
    os.makedirs(os.path.join(path, "conf", "base"), exist_ok=True)
    os.makedirs(os.path.join(path, "conf", "local"), exist_ok=True)
    with open(os.path.join(path, "pyproject.toml"), "w") as f:
        f.write(
            '[tool.kedro]\npackage_name = "bench_proj"\nproject_name = "bench"\n'
            'kedro_init_version = "1.7.0"\nsource_dir = "src"\n'
        )
    for name in ("catalog.yml", "parameters.yml"):
        with open(os.path.join(path, "conf", "base", name), "w") as f:
            f.write("{}\n")
    with open(os.path.join(path, "quiet_logging.yml"), "w") as f:
        f.write(_QUIET_LOGGING)
    open(os.path.join(pkg, "__init__.py"), "w").close()
    with open(os.path.join(pkg, "settings.py"), "w") as f:
        f.write("")
    spec = shape_nodes(shape, n)
    with open(os.path.join(pkg, "pipeline_registry.py"), "w") as f:
        f.write(
            "from kedro.pipeline import Pipeline, node\n\n"
            "def noop(*_args):\n    return 0\n\n"
            f"SPEC = {spec!r}\n\n"
            "def register_pipelines():\n"
            "    p = Pipeline([node(noop, i or None, o[0], name=n) for n, i, o in SPEC])\n"
            '    return {"__default__": p}\n'
        )


def kedro_cli_case(kedro_py, path, quiet, timeout=120):
    kedro_bin = os.path.join(os.path.dirname(kedro_py), "kedro")
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["KEDRO_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "1"
    if quiet:
        env["KEDRO_LOGGING_CONFIG"] = os.path.join(path, "quiet_logging.yml")
    wall, peak, rc, out, err = run_measured(
        [kedro_bin, "run"], cwd=path, env=env, timeout=timeout, rss_wrap=True
    )
    if rc == "timeout":
        return {"timeout": True}
    if rc != 0:
        raise RuntimeError(f"kedro run failed (rc={rc}):\n{err.decode()[-3000:]}")
    return {"wall_s": wall, "peak_rss": peak}


# --------------------------------------------------------------------------
# report


def ms(s):
    if s is None:
        return "—"
    v = s * 1000
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def mib(b):
    return "—" if b is None else f"{b / 2**20:.1f}"


def machine_facts():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
    except OSError:
        load = ["?"]
    return cpu, os.cpu_count(), " ".join(load)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="sizes 1,10,100; 3 reps")
    ap.add_argument("--roadsign", default=DEFAULT_ROADSIGN)
    ap.add_argument("--kedro-python", default=DEFAULT_KEDRO_PY)
    ap.add_argument("--no-kedro", action="store_true")
    ap.add_argument("--no-kedro-cli", action="store_true")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--json", help="also write every figure as JSON to this file")
    ap.add_argument("--kedro-worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.kedro_worker:
        shape, n, reps, runners = args.kedro_worker
        kedro_worker(shape, int(n), int(reps), runners.split(","))
        return

    if not os.access(args.roadsign, os.X_OK):
        sys.exit(f"roadsign binary not found: {args.roadsign}")
    use_kedro = not args.no_kedro and os.access(args.kedro_python, os.X_OK)

    shapes = ["chain", "fanout"]
    if args.quick:
        sizes = [1, 10, 100]
        kedro_sizes = sizes
    else:
        sizes = [1, 10, 100, 1000, 10000]
        kedro_sizes = [1, 10, 100, 1000, 10000]

    def reps_for(n):
        if args.quick:
            return 3
        return 7 if n <= 100 else 3

    cpu, ncpu, load0 = machine_facts()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731

    work = tempfile.mkdtemp(prefix="runner_overhead_")
    rows = []  # (shape, n, runner label, rs, kedro)
    kedro_import = []
    kedro_version = None
    log("roadsign --version x7")
    version = version_case(args.roadsign, 7)
    try:
        if use_kedro:
            r = subprocess.run(
                [args.kedro_python, "-c", "import kedro;print(kedro.__version__)"],
                capture_output=True,
                text=True,
            )
            kedro_version = r.stdout.strip() or "?"
        for shape in shapes:
            kedro_seq_time = {}
            for n in sizes:
                proj = os.path.join(work, f"rs_{shape}_{n}")
                write_roadsign_project(proj, shape, n)
                reps = reps_for(n)
                rs = {}
                for runner in ("sequential", "parallel"):
                    log(f"roadsign {shape} {n} {runner} x{reps}")
                    rs[runner] = roadsign_case(args.roadsign, proj, runner, reps)
                    if rs[runner]["nodes_reported"] not in (None, n):
                        raise RuntimeError(
                            f"roadsign reported {rs[runner]['nodes_reported']} nodes, "
                            f"expected {n}"
                        )
                kd = {"sequential": None, "thread": None}
                if use_kedro and n in kedro_sizes:
                    if n >= 10000:
                        # Kedro's SequentialRunner is quadratic: one attempt per
                        # runner, killed past the limit.
                        prev = kedro_seq_time.get(1000)
                        predicted = prev * (n / 1000) ** 2 if prev else None
                        for kr in ("sequential", "thread"):
                            if predicted is not None and predicted > 10 * KEDRO_10K_LIMIT_S:
                                kd[kr] = {"skipped": f"predicted {predicted:.0f} s"}
                                continue
                            log(f"kedro {shape} {n} {kr} x1 (limit {KEDRO_10K_LIMIT_S:.0f} s)")
                            res = kedro_case(
                                args.kedro_python, shape, n, 1, [kr],
                                timeout=KEDRO_10K_LIMIT_S + 15,
                            )
                            if res.get("timeout"):
                                kd[kr] = {"skipped": f"> {KEDRO_10K_LIMIT_S:.0f} s, killed"}
                            else:
                                kedro_import.append(res["import_s"])
                                kd[kr] = res["runners"][kr]
                                kd[kr]["peak_rss"] = res["peak_rss"]
                                if kd[kr]["median_s"] > KEDRO_10K_LIMIT_S:
                                    kd[kr]["note"] = "over the limit"
                    else:
                        krep = reps_for(n)
                        for kr in ("sequential", "thread"):
                            log(f"kedro {shape} {n} {kr} x{krep}")
                            res = kedro_case(args.kedro_python, shape, n, krep, [kr])
                            kedro_import.append(res["import_s"])
                            kd[kr] = res["runners"][kr]
                            kd[kr]["peak_rss"] = res["peak_rss"]
                        kedro_seq_time[n] = kd["sequential"]["median_s"]
                rows.append((shape, n, "sequential", rs["sequential"], kd["sequential"]))
                rows.append((shape, n, "parallel", rs["parallel"], kd["thread"]))

        cli = []
        if use_kedro and not args.quick and not args.no_kedro_cli:
            for n in (1, 1000):
                path = os.path.join(work, f"kedro_chain_{n}")
                write_kedro_project(path, "chain", n)
                for quiet in (False, True):
                    log(f"kedro run chain {n} quiet={quiet}")
                    try:
                        cli.append((n, quiet, kedro_cli_case(args.kedro_python, path, quiet)))
                    except RuntimeError as e:
                        cli.append((n, quiet, {"error": str(e).splitlines()[-1]}))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    _, _, load1 = machine_facts()

    # ---------------------------------------------------------------- report
    out = []
    p = out.append
    p("# Runner overhead: roadsign vs Kedro")
    p("")
    p(f"- started {started}; mode: {'quick' if args.quick else 'full'}")
    p(f"- machine: {ncpu} CPUs, {cpu}; load average at start {load0}, at end {load1}")
    p(f"- roadsign: `{os.path.relpath(args.roadsign, ROOT) if args.roadsign.startswith(ROOT) else args.roadsign}`"
      " timed as a whole process (`roadsign run --project-dir DIR --runner R`: start-up + planning + running), "
      "median of N runs after one warm-up, one fresh process each; peak RSS from one more run "
      + ("under `/usr/bin/time -f %M`" if HAS_GNU_TIME else
         "via wait4 (UPPER BOUND: includes the harness's own RSS, no GNU time here)"))
    if use_kedro:
        p(f"- Kedro {kedro_version} (Python {platform.python_version()} here; worker uses "
          f"`{args.kedro_python}`): in-process, construction of Pipeline + DataCatalog + "
          "`Runner().run`, logging at WARNING, import start-up excluded; "
          "Kedro 'parallel' is ThreadRunner (default workers); Kedro's noop returns 0 "
          "(it refuses to save None)")
    p("")
    p("| shape | nodes | runner | roadsign median ms | Kedro median ms | ratio Kedro/roadsign "
      "| roadsign peak RSS MiB | roadsign self-reported run ms | Kedro of which construction ms "
      "| Kedro process peak RSS MiB | reps (rs/Kedro) |")
    p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for shape, n, runner, rs, kd in rows:
        klabel = runner if runner == "sequential" else "parallel (Thread)"
        if kd is None:
            k_ms, ratio, kb, krss, kreps = "not run", "—", "—", "—", "—"
        elif "skipped" in kd:
            k_ms, ratio, kb, krss, kreps = f"skipped ({kd['skipped']})", "—", "—", "—", "0"
        else:
            k_ms = ms(kd["median_s"])
            r_ = kd["median_s"] / rs["median_s"]
            ratio = f"{r_:.1f}x" if r_ >= 1 else f"{r_:.2f}x"
            kb = ms(kd["build_median_s"])
            krss = mib(kd["peak_rss"])
            kreps = str(kd["reps"])
        p(f"| {shape} | {n} | {klabel} | {ms(rs['median_s'])} | {k_ms} | {ratio} "
          f"| {mib(rs['peak_rss'])} | {ms(rs['inner_median_s'])} | {kb} | {krss} "
          f"| {rs['reps']}/{kreps} |")
    p("")

    p(f"**`roadsign --version` (whole process):** median {ms(version['median_s'])} ms, "
      f"peak RSS {mib(version['peak_rss'])} MiB.")
    p("")
    byk = {(s, n, r): rs for s, n, r, rs, _ in rows}
    starts = [byk[(s, 1, r)]["median_s"] for s in shapes for r in ("sequential", "parallel")
              if (s, 1, r) in byk]
    if starts:
        p(f"**Start-up (1-node run, whole process):** median "
          f"{ms(statistics.median(starts))} ms over the 1-node cases "
          f"(chain sequential {ms(byk[('chain', 1, 'sequential')]['median_s'])} ms, "
          f"parallel {ms(byk[('chain', 1, 'parallel')]['median_s'])} ms).")
        p("")
    big = max(sizes)
    if big >= 10000:
        p("**Linearity (roadsign, µs per node, whole-process median / n; "
          "in brackets with the 1-node time subtracted):**")
        p("")
        for s in shapes:
            for r in ("sequential", "parallel"):
                t1 = byk[(s, 1, r)]["median_s"]
                a, b = byk[(s, 1000, r)]["median_s"], byk[(s, 10000, r)]["median_s"]
                pa, pb = a / 1000 * 1e6, b / 10000 * 1e6
                qa, qb = (a - t1) / 999 * 1e6, (b - t1) / 9999 * 1e6
                p(f"- {s} {r}: 1000 nodes {pa:.1f} µs/node ({qa:.1f}), "
                  f"10000 nodes {pb:.1f} µs/node ({qb:.1f}); "
                  f"10000/1000 time ratio {b / a:.1f}x (linear = 10x)")
        p("")
    peak = max(rs["peak_rss"] for _, _, _, rs, _ in rows)
    p(f"**Peak RSS (roadsign, largest over all cases):** {mib(peak)} MiB.")
    p("")
    if kedro_import:
        p(f"**Kedro import start-up (in worker, excluded above):** median "
          f"{ms(statistics.median(kedro_import))} ms.")
        p("")
    if use_kedro and not args.quick and not args.no_kedro_cli:
        p("**`kedro run` on a generated Kedro project (one run each, whole process):**")
        p("")
        for n, quiet, res in cli:
            lab = "quiet logging (WARNING)" if quiet else "default logging"
            if "error" in res:
                p(f"- chain {n}, {lab}: failed: {res['error']}")
            elif res.get("timeout"):
                p(f"- chain {n}, {lab}: timed out")
            else:
                p(f"- chain {n}, {lab}: {ms(res['wall_s'])} ms, peak RSS {mib(res['peak_rss'])} MiB")
        p("")

    text = "\n".join(out)
    print(text)
    if args.json:
        figures = {
            "started": started,
            "mode": "quick" if args.quick else "full",
            "machine": {"cpus": ncpu, "cpu": cpu, "load_start": load0, "load_end": load1},
            "roadsign": args.roadsign,
            "kedro_version": kedro_version,
            "version": version,
            "cases": [
                {"shape": s, "nodes": n, "runner": r, "roadsign": rs, "kedro": kd}
                for s, n, r, rs, kd in rows
            ],
            "kedro_import_s": kedro_import,
            "kedro_cli": [{"nodes": n, "quiet": q, **res} for n, q, res in cli],
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
