#!/usr/bin/env python3
"""Differential test: roadsign's pipeline building and filtering against Kedro's.

For every seed this script generates a random `pipelines.yml` (random DAGs of
`noop` nodes, `params:` inputs, tags, composed pipelines, pipelines reused
under a namespace with `inputs:`/`outputs:`/`parameters:` mappings and `tags:`,
and now and then something invalid: a cycle, two writers of one dataset, a
mapping of a dataset that does not exist, ...), builds the same pipelines with
Kedro (`node`, `Pipeline`, `pipeline(..., namespace=, inputs=, outputs=,
parameters=, tags=)`, composition with `+` as `KedroSession.run` combines
`--pipelines`), applies the same random filters with `Pipeline.filter(...)`, and
compares Kedro's answer with `roadsign run --dry-run --format json`:

* the node names in execution order (`Pipeline.nodes` order),
* `free_inputs` against `sorted(Pipeline.inputs())`,
* `outputs` against `sorted(Pipeline.outputs())`,
* each node's inputs, outputs and tags (after namespacing and mapping),
* and whether each side reported an error (roadsign: exit status 2, empty stdout).

Usage (from the repository root, after `cargo build --release`):

    /tmp/kedro-venv/bin/python bench/kedro_parity.py --seeds 0..300

Options: `--bin PATH` (default target/release/roadsign), `--show N` (how many
disagreements to print, default 20), `--keep DIR` (write every generated project
under DIR instead of a temporary folder), `-v` (print every case),
`--out FILE` (every case's verdict and the summary as JSON),
`--skip-known` (leave out the cases that hit a known Kedro 1.7 behaviour
roadsign does not copy, listed below, so that nothing else hides behind them).

Known differences (each disagreement is labelled with its category):
* a node reached twice with different tags (`pipelines: [a, tagged_a]`): Kedro's
  `+` merges them (Node equality is name+inputs+outputs, first copy kept),
  roadsign rejects the pipeline for duplicate node names;
* a node selected twice by `--namespaces ns,ns.inner` or `--nodes x,x`
  (also --from-nodes/--to-nodes): Kedro's `Pipeline(nodes)` raises on the
  repeated name, roadsign selects the node once;
* a node without inputs and outputs: Kedro's `node()` raises, roadsign accepts.
After the summary, cases where both sides fail but with different messages are
listed for information (several faults in one project can trip different checks
first; they do not count as disagreements).

Exit status: 0 when every case agrees, 1 otherwise. Stdlib + kedro only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

try:
    from kedro.pipeline import Pipeline, node, pipeline
except ImportError:  # pragma: no cover
    sys.exit(
        "kedro is not importable; run this script with the Kedro venv's python "
        "(e.g. /tmp/kedro-venv/bin/python)"
    )

REPO = Path(__file__).resolve().parent.parent

FILTER_KINDS = [
    # (Pipeline.filter keyword, roadsign flag)
    ("tags", "--tags"),
    ("from_nodes", "--from-nodes"),
    ("to_nodes", "--to-nodes"),
    ("node_names", "--nodes"),
    ("from_inputs", "--from-inputs"),
    ("to_outputs", "--to-outputs"),
    ("node_namespaces", "--namespaces"),
]


def noop(*args, **kwargs):
    """The Kedro twin of roadsign's built-in `noop` (never called here)."""
    return None


# --------------------------------------------------------------------------
# Random project generation
# --------------------------------------------------------------------------

NODE_WORDS = ["load", "clean", "split", "train", "eval", "join", "Agg", "Zed",
              "fit", "b", "a-x", "a_x", "A1", "prep", "score", "x9", "merge"]
DATA_WORDS = ["raw", "feat", "model", "table", "img", "lbl", "Z", "m-1", "m_1",
              "rep", "stats", "vec", "q", "raw.x", "m.v"]
TAG_POOL = ["t0", "t1", "prep", "ml", "report", "T-2"]
NODE_NS_POOL = ["nsx", "nsx.inner", "nsy"]
REUSE_NS_POOL = ["eu", "us", "eu.sub", "e", "us_x", "nsx", "apac.north"]
PARAM_POOL = ["p0", "p1", "p2", "lr", "model.depth"]


class Gen:
    """Name factories that never repeat within one project."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()

    def fresh(self, words: list[str]) -> str:
        while True:
            name = f"{self.rng.choice(words)}{self.rng.randint(0, 99)}"
            if name not in self.used:
                self.used.add(name)
                return name


def gen_nodes(rng: random.Random, gen: Gen) -> tuple[list[dict], list[str]]:
    """A random DAG of node specs (YAML-shaped dicts) and the injected faults."""
    n_nodes = rng.randint(1, 40)
    sources = [gen.fresh(DATA_WORDS) for _ in range(max(1, n_nodes // 4))]
    produced: list[str] = []
    nodes: list[dict] = []
    for _ in range(n_nodes):
        n_in = rng.choices([0, 1, 2, 3], weights=[1, 4, 3, 2])[0]
        inputs: list[str] = []
        for _ in range(n_in):
            r = rng.random()
            if r < 0.6 and produced:
                inputs.append(rng.choice(produced))
            elif r < 0.85:
                inputs.append(rng.choice(sources))
            elif r < 0.98:
                inputs.append("params:" + rng.choice(PARAM_POOL))
            else:
                inputs.append("parameters")
        n_out = rng.choices([0, 1, 2], weights=[1 if inputs else 0, 6, 3])[0]
        outputs = [gen.fresh(DATA_WORDS) for _ in range(n_out)]
        produced.extend(outputs)
        spec: dict = {"func": "noop", "name": gen.fresh(NODE_WORDS)}
        spec["inputs"] = inputs
        spec["outputs"] = outputs
        tags = rng.sample(TAG_POOL, rng.choices([0, 1, 2], weights=[3, 4, 2])[0])
        if tags:
            spec["tags"] = tags if len(tags) > 1 or rng.random() < 0.5 else tags[0]
        if rng.random() < 0.06:
            spec["namespace"] = rng.choice(NODE_NS_POOL)
        nodes.append(spec)

    faults: list[str] = []
    # Invalid or borderline constructs, each now and then.
    if rng.random() < 0.06 and len(nodes) >= 2:
        # A back edge: an earlier node reads a later node's output (a cycle
        # when the later node depends on the earlier one).
        i, j = sorted(rng.sample(range(len(nodes)), 2))
        if nodes[j]["outputs"]:
            nodes[i]["inputs"] = nodes[i]["inputs"] + [rng.choice(nodes[j]["outputs"])]
            faults.append("back-edge")
    if rng.random() < 0.04:
        # A plain two-node cycle.
        a, b = gen.fresh(DATA_WORDS), gen.fresh(DATA_WORDS)
        nodes.append({"func": "noop", "name": gen.fresh(NODE_WORDS), "inputs": [a], "outputs": [b]})
        nodes.append({"func": "noop", "name": gen.fresh(NODE_WORDS), "inputs": [b], "outputs": [a]})
        faults.append("cycle")
    if rng.random() < 0.05 and len(nodes) >= 2:
        # Two writers of one dataset.
        i, j = rng.sample(range(len(nodes)), 2)
        if nodes[j]["outputs"] and nodes[j]["outputs"][0] not in nodes[i]["inputs"]:
            nodes[i]["outputs"] = nodes[i]["outputs"] + [nodes[j]["outputs"][0]]
            faults.append("dup-output")
    if rng.random() < 0.02:
        # A node reading its own output.
        k = rng.randrange(len(nodes))
        if nodes[k]["outputs"]:
            nodes[k]["inputs"] = nodes[k]["inputs"] + [nodes[k]["outputs"][0]]
            faults.append("self-loop")
    if rng.random() < 0.03 and len(nodes) >= 2:
        # Two different nodes with one name.
        i, j = rng.sample(range(len(nodes)), 2)
        nodes[i]["name"] = nodes[j]["name"]
        nodes[i]["namespace"] = nodes[j].get("namespace")
        if nodes[i]["namespace"] is None:
            del nodes[i]["namespace"]
        faults.append("dup-name")
    if rng.random() < 0.015:
        # A node with neither inputs nor outputs.
        nodes.append({"func": "noop", "name": gen.fresh(NODE_WORDS), "inputs": [], "outputs": []})
        faults.append("empty-node")

    # Vary how inputs/outputs are written: a string, a list, or a map.
    for spec in nodes:
        for key in ("inputs", "outputs"):
            vals = spec[key]
            r = rng.random()
            if not vals:
                if r < 0.5:
                    del spec[key]
            elif len(vals) == 1 and r < 0.3:
                spec[key] = vals[0]
            elif r > 0.92 and len(set(vals)) == len(vals):
                spec[key] = {f"arg{k}": v for k, v in enumerate(vals)}
    return nodes, faults


def node_datasets(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return list(value.values())
    return list(value)


def gen_project(seed: int):
    """Returns (pipelines dict in YAML order, target names, filters, faults)."""
    rng = random.Random(seed)
    gen = Gen(rng)
    all_nodes, faults = gen_nodes(rng, gen)

    # Split the DAG into 1-4 leaf pipelines (edges cross between them).
    n_leaves = rng.randint(1, min(4, len(all_nodes)))
    leaves: list[list[dict]] = [[] for _ in range(n_leaves)]
    for k, spec in enumerate(all_nodes):
        leaves[k if k < n_leaves else rng.randrange(n_leaves)].append(spec)
    if rng.random() < 0.03 and n_leaves >= 2:
        # The very same node written in two leaves (Kedro dedupes it on `+`).
        leaves[1].append(dict(rng.choice(leaves[0])))
        faults.append("same-node-twice")

    pipes: dict[str, dict] = {}
    for k, nodes in enumerate(leaves):
        pipes[f"p{k}"] = {"nodes": nodes}

    # Reuses and compositions, each referring only to earlier pipelines.
    n_extra = rng.randint(0, 5)
    for k in range(n_extra):
        names = list(pipes)
        if rng.random() < 0.6:
            base = rng.choice(names)
            spec = reuse_spec(rng, gen, base, pipes, faults)
            pipes[f"r{k}"] = spec
        else:
            spec = {"pipelines": rng.sample(names, rng.randint(1, min(3, len(names))))}
            if rng.random() < 0.25:
                spec["tags"] = rng.sample(TAG_POOL, rng.randint(1, 2))
            pipes[f"c{k}"] = spec
    names = list(pipes)
    default = rng.sample(names, rng.randint(1, len(names)))
    pipes["__default__"] = {"pipelines": default}

    r = rng.random()
    if r < 0.4:
        target = ["__default__"]
    elif r < 0.9:
        target = [rng.choice(list(pipes))]
    else:
        target = rng.sample(list(pipes), min(2, len(pipes)))
    return rng, pipes, target, faults


def reuse_spec(rng, gen, base, pipes, faults) -> dict:
    """`pipeline: base` with a namespace and/or mappings and/or tags."""
    spec: dict = {"pipeline": base}
    if rng.random() < 0.85:
        spec["namespace"] = rng.choice(REUSE_NS_POOL)
    # What the base pipeline holds, as Kedro sees it (if it builds).
    try:
        kp = build_kedro(pipes, base, {}, [])
        free = sorted(d for d in kp.inputs() if not d.startswith("params:") and d != "parameters")
        outs = sorted(kp.all_outputs())
        params = sorted(d for d in kp.all_inputs() if d.startswith("params:"))
        if "parameters" in kp.all_inputs() and rng.random() < 0.3:
            params.append("parameters")  # Kedro keeps `parameters` as it is
        inter = sorted(kp.all_inputs() & kp.all_outputs())
    except Exception:
        free, outs, params, inter = [], [], [], []
    other_outputs = []
    for other in pipes.values():
        for n in other.get("nodes", []):
            other_outputs.extend(node_datasets(n.get("outputs")))

    def mapping(keys, new_name):
        chosen = rng.sample(keys, rng.randint(0, min(3, len(keys)))) if keys else []
        if not chosen:
            return None
        r = rng.random()
        if r < 0.15:
            return list(chosen)  # identity: keep the names, unprefixed
        if r < 0.2 and len(chosen) == 1:
            return chosen[0]
        return {c: (c if rng.random() < 0.2 else new_name(c)) for c in chosen}

    def new_input(_c):
        if other_outputs and rng.random() < 0.3:
            return rng.choice(other_outputs)  # connect to another pipeline
        return gen.fresh(["ext", "in"])

    if rng.random() < 0.6:
        m = mapping(free, new_input)
        if m is not None:
            spec["inputs"] = m
    if rng.random() < 0.5:
        m = mapping(outs, lambda _c: gen.fresh(["out", "pub"]))
        if m is not None:
            spec["outputs"] = m
    if rng.random() < 0.5:
        m = mapping(params, lambda _c: "params:" + gen.fresh(["q", "hp"]))
        if m is not None:
            # Keys and values may drop the `params:` prefix.
            def strip(s):
                return s[len("params:"):] if rng.random() < 0.4 and s.startswith("params:") else s
            if isinstance(m, dict):
                m = {strip(k): strip(v) for k, v in m.items()}
            elif isinstance(m, list):
                m = [strip(x) for x in m]
            else:
                m = strip(m)
            spec["parameters"] = m
    if rng.random() < 0.35:
        spec["tags"] = rng.sample(TAG_POOL, rng.randint(1, 2))

    # Invalid mappings, now and then.
    r = rng.random()
    if r < 0.03:
        key = rng.choice(["inputs", "outputs", "parameters"])
        spec[key] = as_dict(spec.get(key))
        spec[key]["ghost" + str(rng.randint(0, 9))] = "whatever"
        faults.append(f"map-missing-{key}")
    elif r < 0.045 and inter:
        spec["inputs"] = as_dict(spec.get("inputs"))
        spec["inputs"][rng.choice(inter)] = gen.fresh(["ext"])
        faults.append("map-intermediate-input")
    elif r < 0.06 and free:
        spec["outputs"] = as_dict(spec.get("outputs"))
        spec["outputs"][rng.choice(free)] = gen.fresh(["out"])
        faults.append("map-free-input-as-output")
    elif r < 0.07 and params:
        spec["inputs"] = as_dict(spec.get("inputs"))
        spec["inputs"][rng.choice(params)] = "x"
        faults.append("map-param-as-input")
    elif r < 0.09 and free and outs:
        # An output renamed onto what a free input becomes: a loop, or a
        # node reading its own output, or nothing wrong at all.
        ins = as_dict(spec.get("inputs"))
        src = rng.choice(free)
        target = ins.get(src) or (f"{spec['namespace']}.{src}" if spec.get("namespace") else src)
        spec["outputs"] = as_dict(spec.get("outputs"))
        spec["outputs"][rng.choice(outs)] = target
        faults.append("map-output-onto-input")
    return spec


def as_dict(m) -> dict:
    if m is None:
        return {}
    if isinstance(m, str):
        return {m: m}
    if isinstance(m, list):
        return {x: x for x in m}
    return dict(m)


# --------------------------------------------------------------------------
# Kedro side
# --------------------------------------------------------------------------

def kedro_node(spec: dict):
    return node(
        noop,
        spec.get("inputs"),
        spec.get("outputs"),
        name=spec.get("name"),
        tags=spec.get("tags"),
        namespace=spec.get("namespace"),
    )


def kedro_add(a: Pipeline, b: Pipeline, quirks: list | None) -> Pipeline:
    """`a + b`, noting when it merges two nodes that differ only in tags
    (Kedro's Node equality is name + inputs + outputs; the set keeps `a`'s)."""
    if quirks is not None:
        mine = {n.name: n for n in a.nodes}
        for n in b.nodes:
            m = mine.get(n.name)
            if m is not None and m == n and m.tags != n.tags:
                quirks.append(f"tag-variant:{n.name}")
                break
    return a + b


def build_kedro(pipes: dict, name: str, memo: dict, stack: list,
                quirks: list | None = None) -> Pipeline:
    """The Kedro pipeline a `pipelines.yml` entry stands for."""
    if name in memo:
        return memo[name]
    if name not in pipes:
        raise KeyError(f"unknown pipeline {name!r}")
    if name in stack:
        raise RecursionError(f"pipelines include each other: {stack + [name]}")
    spec = pipes[name]
    stack.append(name)
    try:
        union = Pipeline([])
        own = [kedro_node(n) for n in spec.get("nodes", [])]
        if own:
            union = Pipeline(own)
        children = list(spec.get("pipelines", []))
        if "pipeline" in spec:
            children.append(spec["pipeline"])
        for child in children:
            union = kedro_add(union, build_kedro(pipes, child, memo, stack, quirks), quirks)
        if not union.nodes:
            raise ValueError(f"pipeline {name!r} has no nodes")
        keys = ("namespace", "inputs", "outputs", "parameters", "tags")
        if any(spec.get(k) for k in keys):
            union = pipeline(
                union,
                namespace=spec.get("namespace"),
                inputs=spec.get("inputs"),
                outputs=spec.get("outputs"),
                parameters=spec.get("parameters"),
                tags=spec.get("tags"),
            )
    finally:
        stack.pop()
    memo[name] = union
    return union


def kedro_target(pipes: dict, target: list[str], quirks: list | None = None) -> Pipeline:
    """What `KedroSession.run(pipeline_names=target)` combines."""
    memo: dict = {}
    combined = Pipeline([])
    for name in target:
        combined = kedro_add(combined, build_kedro(pipes, name, memo, [], quirks), quirks)
    return combined


def filter_quirks(full: Pipeline | None, filters: dict) -> list[str]:
    """Filters on which Kedro 1.7 raises for a reason of its own: a node
    selected twice by only_nodes / only_nodes_with_namespaces."""
    quirks = []
    for kind in ("node_names", "from_nodes", "to_nodes"):
        vals = filters.get(kind, [])
        if len(set(vals)) != len(vals):
            quirks.append(f"repeated-name:{kind}")
    nss = filters.get("node_namespaces", [])
    if full is not None and nss:
        for n in full.nodes:
            hits = [ns for ns in nss if n.namespace and
                    (n.namespace == ns or n.namespace.startswith(ns + "."))]
            if len(hits) > 1:
                quirks.append("overlapping-namespaces")
                break
    return quirks


def describe(p: Pipeline) -> dict:
    return {
        "nodes": [n.name for n in p.nodes],
        "free_inputs": sorted(p.inputs()),
        "outputs": sorted(p.outputs()),
        "details": {
            n.name: {"inputs": list(n.inputs), "outputs": list(n.outputs), "tags": sorted(n.tags)}
            for n in p.nodes
        },
    }


# --------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------

def gen_filters(rng: random.Random, full: Pipeline | None, pipes: dict) -> dict[str, list[str]]:
    if full is not None:
        node_names = [n.name for n in full.nodes]
        datasets = sorted(full.datasets())
        tags = sorted(set().union(*(n.tags for n in full.nodes)))
        namespaces = sorted({p for n in full.nodes for p in n.namespace_prefixes})
    else:
        node_names, datasets, tags, namespaces = [], [], [], []
        for spec in pipes.values():
            for n in spec.get("nodes", []):
                node_names.append(n["name"])
                datasets += node_datasets(n.get("inputs")) + node_datasets(n.get("outputs"))
        tags = list(TAG_POOL)
        namespaces = list(REUSE_NS_POOL)
    node_names = node_names or ["nothing"]
    datasets = datasets or ["nothing"]
    tags = tags or list(TAG_POOL)

    def pick(pool, unknown):
        vals = rng.sample(pool, rng.randint(1, min(3, len(pool))))
        if rng.random() < 0.08:
            vals.append(unknown())
        rng.shuffle(vals)
        return vals

    def unknown_node():
        dotted = [n for n in node_names if "." in n]
        if dotted and rng.random() < 0.5:
            return dotted[0].split(".", 1)[1]  # the name without its namespace
        return "nope"

    def unknown_ns():
        if namespaces and rng.random() < 0.6:
            ns = rng.choice(namespaces)
            return ns[:-1] if len(ns) > 1 else ns + "z"  # a string prefix, not a namespace
        return "nowhere"

    n = rng.choices([0, 1, 2, 3], weights=[10, 45, 30, 15])[0]
    filters: dict[str, list[str]] = {}
    kinds = [k for k, _ in FILTER_KINDS]
    if not namespaces and rng.random() < 0.8:
        kinds.remove("node_namespaces")
    for kind in rng.sample(kinds, n):
        if kind == "tags":
            filters[kind] = pick(tags, lambda: "no_such_tag")
        elif kind in ("from_nodes", "to_nodes", "node_names"):
            filters[kind] = pick(node_names, unknown_node)
        elif kind in ("from_inputs", "to_outputs"):
            filters[kind] = pick(datasets, lambda: "no_such_dataset")
        else:
            filters[kind] = pick(namespaces, unknown_ns) if namespaces else [unknown_ns()]
    return filters


# --------------------------------------------------------------------------
# YAML writing (a small block-style emitter; no third-party YAML library)
# --------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def scalar(s) -> str:
    s = str(s)
    if _PLAIN.match(s) and s.lower() not in _RESERVED:
        return s
    return json.dumps(s)


def flow(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{scalar(k)}: {scalar(x)}" for k, x in v.items()) + "}"
    return scalar(v)


def pipelines_yaml(pipes: dict) -> str:
    out = ["pipelines:"]
    for name, spec in pipes.items():
        out.append(f"  {scalar(name)}:")
        for key, value in spec.items():
            if key == "nodes":
                out.append("    nodes:")
                for n in value:
                    first = True
                    for k, v in n.items():
                        lead = "      - " if first else "        "
                        out.append(f"{lead}{k}: {flow(v)}")
                        first = False
            else:
                out.append(f"    {key}: {flow(value)}")
    return "\n".join(out) + "\n"


def project_names(full: Pipeline | None, pipes: dict, with_outputs: bool) -> set[str]:
    """Every name the project's nodes take (and give, `with_outputs`): those
    of the pipeline Kedro built and, where it could not, of the specs."""
    names: set[str] = set()
    if full is not None:
        names |= set(full.all_inputs()) | (set(full.all_outputs()) if with_outputs else set())
    for spec in pipes.values():
        for n in spec.get("nodes", []):
            names |= set(node_datasets(n.get("inputs")))
            if with_outputs:
                names |= set(node_datasets(n.get("outputs")))
    return names


def parameters_yaml(full: Pipeline | None, pipes: dict) -> str:
    """A parameter tree holding every `params:` name the project may use.

    Every leaf is itself a mapping, so that `a` and `a.b` can both exist."""
    names = {d[len("params:"):] for d in project_names(full, pipes, False) if d.startswith("params:")}
    tree: dict = {}
    for name in names:
        cur = tree
        for part in name.split("."):
            cur = cur.setdefault(part, {})
        cur.setdefault("value", 1)

    def emit(d, indent):
        lines = []
        for k in sorted(d):
            v = d[k]
            if isinstance(v, dict):
                lines.append(" " * indent + f"{scalar(k)}:")
                lines.extend(emit(v, indent + 2))
            else:
                lines.append(" " * indent + f"{scalar(k)}: {v}")
        return lines

    return "\n".join(emit(tree, 0)) + "\n" if tree else "{}\n"


def write_catalog(project: Path, full: Pipeline | None, pipes: dict) -> None:
    """Every dataset the project may name, declared and present on disk.

    roadsign's dry run checks what a run checks: a free input of the selected
    nodes (which a filter such as --from-nodes makes of an intermediate
    output) must be a catalog entry whose data exists. Kedro's
    Pipeline.filter looks at no catalog, so every name is declared and
    written, and the plans are compared as before."""
    names = {d for d in project_names(full, pipes, True) if not d.startswith("params:") and d != "parameters"}
    (project / "data").mkdir(exist_ok=True)
    lines = []
    for i, name in enumerate(sorted(names)):
        (project / "data" / f"d{i}.json").write_text("{}\n")
        lines.append(f"{scalar(name)}: {{type: json.JSONDataset, filepath: data/d{i}.json}}")
    (project / "catalog.yml").write_text("\n".join(lines) + "\n" if lines else "{}\n")


# --------------------------------------------------------------------------
# One case
# --------------------------------------------------------------------------

def run_case(seed: int, binary: Path, workdir: Path) -> dict:
    rng, pipes, target, faults = gen_project(seed)
    quirks: list[str] = []
    try:
        full = kedro_target(pipes, target, quirks)
        build_error = None
    except Exception as exc:  # noqa: BLE001
        full, build_error = None, f"{type(exc).__name__}: {exc}"
    filters = gen_filters(rng, full, pipes)
    quirks += filter_quirks(full, filters)
    if build_error and "must have some 'inputs' or 'outputs'" in build_error:
        quirks.append("empty-node")

    if build_error is not None:
        kedro = {"error": build_error, "stage": "build"}
    else:
        try:
            # Kedro's CLI strips each comma-separated item and drops empty ones
            # before calling Pipeline.filter; roadsign gets the raw flags.
            cli = {k: [x.strip() for x in v if x.strip()] for k, v in filters.items()}
            kedro = describe(full.filter(**{k: v for k, v in cli.items() if v}))
        except Exception as exc:  # noqa: BLE001
            kedro = {"error": f"{type(exc).__name__}: {exc}", "stage": "filter"}

    project = workdir / f"case{seed}"
    project.mkdir(parents=True, exist_ok=True)
    yml = pipelines_yaml(pipes)
    (project / "pipelines.yml").write_text(yml)
    (project / "parameters.yml").write_text(parameters_yaml(full, pipes))
    write_catalog(project, full, pipes)

    flags: list[str] = []
    if len(target) == 1:
        flags += ["--pipeline", target[0]]
    else:
        flags += ["--pipelines", ",".join(target)]
    for kind, flag in FILTER_KINDS:
        if kind in filters:
            flags += [flag, ",".join(filters[kind])]
    cmd = [str(binary), "run", "--dry-run", "--format", "json", "--project-dir", str(project)] + flags
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode == 0:
        try:
            plan = json.loads(proc.stdout)
            roadsign = {
                "nodes": [n["name"] for n in plan["nodes"]],
                "free_inputs": plan["free_inputs"],
                "outputs": plan["outputs"],
                "details": {
                    n["name"]: {"inputs": n["inputs"], "outputs": n["outputs"], "tags": sorted(n["tags"])}
                    for n in plan["nodes"]
                },
            }
        except (ValueError, KeyError, TypeError) as exc:
            roadsign = {"bad_output": f"{exc}: {proc.stdout[:500]}"}
    else:
        roadsign = {"error": proc.stderr.strip()[:800], "rc": proc.returncode,
                    "stdout": proc.stdout[:300]}

    verdict = compare(kedro, roadsign)
    return {
        "seed": seed, "yaml": yml, "flags": flags, "faults": faults,
        "kedro": kedro, "roadsign": roadsign, "verdict": verdict, "quirks": quirks,
    }


def compare(kedro: dict, roadsign: dict) -> list[str]:
    """The list of differences (empty when both sides agree)."""
    if "bad_output" in roadsign:
        return ["roadsign exited 0 but its stdout is not a plan"]
    if "error" in kedro and "error" in roadsign:
        problems = []
        if roadsign["rc"] != 2:
            problems.append(f"roadsign error exit status {roadsign['rc']} (expected 2)")
        if roadsign["stdout"].strip():
            problems.append("roadsign printed on stdout on error")
        return problems
    if "error" in kedro:
        return ["kedro raised, roadsign printed a plan"]
    if "error" in roadsign:
        return [f"roadsign failed (exit {roadsign['rc']}), kedro gave a plan"]
    problems = []
    for key in ("nodes", "free_inputs", "outputs"):
        if kedro[key] != roadsign[key]:
            if key == "nodes" and sorted(kedro[key]) == sorted(roadsign[key]):
                problems.append("same nodes, different order")
            else:
                problems.append(f"{key} differ")
    if not problems:
        for name, d in kedro["details"].items():
            r = roadsign["details"].get(name)
            for field in ("inputs", "outputs", "tags"):
                if r is None or d[field] != r[field]:
                    problems.append(f"node {name}: {field} differ")
    return problems


# Kedro's error (a phrase of its message) and the phrase roadsign's message
# should hold for the same fault.
ERROR_PHRASES = [
    ("Circular dependencies", "Circular dependencies"),
    ("are returned by more than one nodes", "more than one node"),
    ("must have unique names", "unique names"),
    ("Failed to map datasets and/or parameters", "Failed to map datasets"),
    ("Parameters should be specified in the 'parameters'", "Parameters should be specified"),
    ("Inputs must not be outputs from another node", "Inputs must not be outputs"),
    ("All outputs must be generated by some node", "All outputs must be generated"),
    ("cannot have the same inputs and outputs", "reads and writes the same dataset"),
    ("does not contain nodes named", "does not contain nodes named"),
    ("does not contain datasets named", "does not contain datasets named"),
    ("does not contain nodes with the following namespaces",
     "does not contain nodes with the following namespaces"),
    ("contains no nodes after applying", "no nodes after applying"),
]


def error_reason_mismatch(case: dict) -> str | None:
    """When both sides fail, whether they fail for the same reason."""
    kedro, roadsign = case["kedro"], case["roadsign"]
    if "error" not in kedro or "error" not in roadsign:
        return None
    for k_phrase, r_phrase in ERROR_PHRASES:
        if k_phrase in kedro["error"]:
            if r_phrase in roadsign["error"]:
                return None
            return f"kedro: {k_phrase!r}; roadsign: {roadsign['error'].splitlines()[0][:160]}"
    return f"unclassified kedro error: {kedro['error'].splitlines()[0][:120]}"


def category(case: dict) -> str:
    """A short label grouping disagreements of the same kind."""
    kedro, roadsign, flags = case["kedro"], case["roadsign"], case["flags"]
    if "error" in kedro and "error" not in roadsign:
        if "must have unique names" in kedro["error"] and kedro["stage"] == "filter":
            if "--namespaces" in flags:
                return ("overlapping/repeated --namespaces: Kedro's only_nodes_with_namespaces "
                        "collects a node once per matching namespace and Pipeline(nodes) rejects "
                        "the repeat; roadsign accepts")
            return ("repeated node name in --nodes/--from-nodes/--to-nodes: Kedro's only_nodes "
                    "builds Pipeline([n, n]) and rejects it; roadsign accepts")
        return "kedro raised, roadsign printed a plan: " + kedro["error"].splitlines()[0][:80]
    if "error" in roadsign and "error" not in kedro:
        if "must have unique names" in roadsign["error"]:
            return ("one node reached twice with different tags (composition of a pipeline and a "
                    "tagged copy of it): Kedro's `+` treats them as one node (Node equality is "
                    "name+inputs+outputs) and keeps the first; roadsign rejects")
        return "roadsign failed, kedro gave a plan: " + roadsign["error"][:80]
    return "; ".join(case["verdict"])


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        if ".." in part:
            a, b = part.split("..")
            seeds.extend(range(int(a), int(b)))
        else:
            seeds.append(int(part))
    return seeds


def show(case: dict) -> str:
    lines = [f"--- seed {case['seed']}: {'; '.join(case['verdict'])}"]
    if case["faults"]:
        lines.append(f"injected: {', '.join(case['faults'])}")
    if case["quirks"]:
        lines.append(f"known Kedro quirks hit: {', '.join(sorted(set(case['quirks'])))}")
    lines.append("pipelines.yml:")
    lines.extend("    " + l for l in case["yaml"].rstrip().splitlines())
    lines.append("flags: " + " ".join(case["flags"]))
    for side in ("kedro", "roadsign"):
        res = dict(case[side])
        res.pop("details", None)
        lines.append(f"{side}: {json.dumps(res)}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0..300", help="e.g. 0..300 or 1,5,9..20")
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "roadsign"))
    ap.add_argument("--show", type=int, default=20)
    ap.add_argument("--keep", default=None, help="write the projects under this folder")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--out", type=Path, help="write every case's verdict and the summary as JSON here")
    ap.add_argument("--skip-known", action="store_true",
                    help="leave out cases that hit a known Kedro quirk (a node merged with a "
                         "tag variant of itself by `+`, a node selected twice by the node or "
                         "namespace filters, a node without inputs and outputs), so that other "
                         "differences are not hidden behind them")
    args = ap.parse_args()

    binary = Path(args.bin)
    if not binary.exists():
        print(f"no roadsign binary at {binary}; build it first (cargo build --release)")
        return 2
    seeds = parse_seeds(args.seeds)
    start = time.time()
    tmp = None
    if args.keep:
        workdir = Path(args.keep)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="kedro_parity_")
        workdir = Path(tmp)
    cases = []
    try:
        for seed in seeds:
            case = run_case(seed, binary, workdir)
            cases.append(case)
            if args.verbose:
                state = "ok" if not case["verdict"] else "DISAGREE"
                side = "error" if "error" in case["kedro"] else f"{len(case['kedro']['nodes'])} nodes"
                print(f"seed {seed}: {state} (kedro: {side})")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    skipped = 0
    if args.skip_known:
        kept = [c for c in cases if not c["quirks"]]
        skipped = len(cases) - len(kept)
        cases = kept
    bad = [c for c in cases if c["verdict"]]
    reasons = [(c["seed"], r) for c in cases if (r := error_reason_mismatch(c))]
    both_err = sum(1 for c in cases if "error" in c["kedro"] and "error" in c["roadsign"])
    kinds: dict[str, int] = {}
    for c in cases:
        if "error" in c["kedro"]:
            k = c["kedro"]["error"].split(":")[0] + f" ({c['kedro']['stage']})"
            kinds[k] = kinds.get(k, 0) + 1
    for c in bad[: args.show]:
        print(show(c))
        print()
    cats: dict[str, list[int]] = {}
    for c in bad:
        cats.setdefault(category(c), []).append(c["seed"])
    for cat, seeds_of in sorted(cats.items(), key=lambda kv: -len(kv[1])):
        print(f"[{len(seeds_of)}] {cat}\n      seeds: {' '.join(map(str, seeds_of[:15]))}"
              + (" ..." if len(seeds_of) > 15 else ""))
    if reasons:
        print(f"{len(reasons)} cases where both fail but for different reasons "
              "(several faults in one project can legitimately trip different checks first):")
        for seed, r in reasons[: args.show]:
            print(f"  seed {seed}: {r}")
    print(f"{len(cases)} cases, {len(cases) - len(bad)} agree, {len(bad)} disagree "
          f"({both_err} cases where both sides report an error; "
          + (f"{skipped} skipped as known Kedro quirks; " if args.skip_known else "")
          + f"{time.time() - start:.1f}s)")
    if kinds:
        print("kedro errors: " + ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())))
    if args.out:
        import kedro

        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "command": "python bench/kedro_parity.py " + " ".join(sys.argv[1:]),
            "kedro": kedro.__version__,
            "cases": len(cases), "agree": len(cases) - len(bad), "disagree": len(bad),
            "both_error": both_err, "skipped_known_quirks": skipped, "kedro_errors": kinds,
            "disagreements": {cat: seeds_of for cat, seeds_of in cats.items()},
            "both_fail_different_reasons": [{"seed": seed, "reason": r} for seed, r in reasons],
            "per_case": [{"seed": c["seed"], "agree": not c["verdict"],
                          "kedro_error": "error" in c["kedro"], "roadsign_error": "error" in c["roadsign"],
                          "nodes": len(c["kedro"].get("nodes", []))} for c in cases],
        }, indent=1) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
