"""Validates custom resources against their CRD's openAPIV3Schema, as the
API server would, with unknown fields rejected (a schema that does not say
x-kubernetes-preserve-unknown-fields prunes them: a typo would vanish
silently in a cluster).

usage: check_crd.py CRD.yaml MANIFEST.yaml...
"""

import sys

import jsonschema
import yaml


def strict(schema):
    """The schema with additionalProperties false wherever properties are
    listed and neither unknown fields nor a map of values are allowed."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    return schema


def main():
    crd_path, *manifests = sys.argv[1:]
    with open(crd_path) as f:
        crd = yaml.safe_load(f)
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    versions = {
        f"{group}/{v['name']}": strict(v["schema"]["openAPIV3Schema"])
        for v in crd["spec"]["versions"]
    }
    failed = False
    for path in manifests:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is None or doc.get("kind") != kind:
                    continue
                schema = versions.get(doc.get("apiVersion"))
                if schema is None:
                    print(f"{path}: {kind} {doc.get('apiVersion')} is not served by the CRD")
                    failed = True
                    continue
                errors = sorted(
                    jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path)
                )
                for e in errors:
                    where = ".".join(str(p) for p in e.path) or "(root)"
                    print(f"{path}: {where}: {e.message}")
                failed |= bool(errors)
                if not errors:
                    print(f"{path}: {kind} {doc['metadata']['name']} conforms to {crd_path}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
