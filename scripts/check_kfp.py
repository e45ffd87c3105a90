#!/usr/bin/env python3
"""Checks compiled Kubeflow pipeline specs with the real kfp SDK, strictly,
plus the references the SDK does not check.

    python scripts/check_kfp.py SPEC.yaml...

For each file: the first YAML document parses strictly as a PipelineSpec
protobuf (unknown fields fail), the SDK loads the file as a component, and
every reference resolves: component -> executor, task -> component,
dependent task, producer task and input parameter -> something that exists;
the task graph has no cycle; the platform spec names real executors.
"""
import sys

import yaml
from google.protobuf import json_format
from kfp import components
from kfp.pipeline_spec import pipeline_spec_pb2


def check(path: str) -> None:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    spec = docs[0]
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)
    components.load_component_from_file(path)

    comps = spec["components"]
    execs = spec["deploymentSpec"]["executors"]
    root = spec["root"]
    tasks = root["dag"]["tasks"]
    root_params = root.get("inputDefinitions", {}).get("parameters", {})
    errors = []
    for name, comp in comps.items():
        if comp.get("executorLabel") not in execs:
            errors.append(f"component {name}: executor {comp.get('executorLabel')} missing")
    for name in execs:
        if not any(c.get("executorLabel") == name for c in comps.values()):
            errors.append(f"executor {name} belongs to no component")
    for name, task in tasks.items():
        ref = task["componentRef"]["name"]
        if ref not in comps:
            errors.append(f"task {name}: component {ref} missing")
            continue
        wanted = comps[ref].get("inputDefinitions", {}).get("parameters", {})
        for dep in task.get("dependentTasks", []):
            if dep not in tasks:
                errors.append(f"task {name}: dependent task {dep} missing")
        for param, value in task.get("inputs", {}).get("parameters", {}).items():
            if param not in wanted:
                errors.append(f"task {name}: input {param} not defined by {ref}")
            if "componentInputParameter" in value and value["componentInputParameter"] not in root_params:
                errors.append(f"task {name}: pipeline parameter {value['componentInputParameter']} missing")
            producer = value.get("taskOutputParameter", {}).get("producerTask")
            if producer is not None and producer not in tasks:
                errors.append(f"task {name}: producer task {producer} missing")
        for param in wanted:
            if param not in task.get("inputs", {}).get("parameters", {}):
                errors.append(f"task {name}: input {param} of {ref} not given")
    # No cycle among tasks (Kahn).
    indegree = {t: len(tasks[t].get("dependentTasks", [])) for t in tasks}
    ready = [t for t, d in indegree.items() if d == 0]
    seen = 0
    while ready:
        t = ready.pop()
        seen += 1
        for other, task in tasks.items():
            if t in task.get("dependentTasks", []):
                indegree[other] -= 1
                if indegree[other] == 0:
                    ready.append(other)
    if seen != len(tasks):
        errors.append("the task graph has a cycle")
    if len(docs) > 1:
        platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        for name in platform:
            if name not in execs:
                errors.append(f"platform spec: executor {name} missing")
    if errors:
        sys.exit(f"{path}:\n  " + "\n  ".join(errors))
    print(f"{path}: {len(tasks)} task(s), {len(comps)} component(s): ok")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: check_kfp.py SPEC.yaml...")
    for p in sys.argv[1:]:
        check(p)
