#!/usr/bin/env python3
"""Builds conf/vocabulary/: French commune names for the open-vocabulary OCR
benchmark, split into two disjoint lists, one the scene generator draws from
(`generator`), one the OCR corrector knows (`corrector`). The benchmark
composes street names from each list's own communes (`RUE DE <COMMUNE>`,
...), so a street the generator paints is never in the corrector's list
either.

Source: the npm package @etalab/decoupage-administratif 6.0.0 (INSEE's Code
officiel géographique; data under the Licence Ouverte / Etalab 2.0, code MIT),
downloaded once by this script at development time, checked against the
registry's SHA-1. Nothing reads the network at run time: the lists are
committed.

    python3 scripts/communes.py            # rewrites conf/vocabulary/*.txt
"""
import hashlib
import io
import json
import random
import tarfile
import unicodedata
import urllib.request
from pathlib import Path

URL = "https://registry.npmjs.org/@etalab/decoupage-administratif/-/decoupage-administratif-6.0.0.tgz"
SHA1 = "0330556cf07e21fff21111e5775a316ec18b9636"
OUT = Path(__file__).resolve().parent.parent / "conf/vocabulary"
# Towns a direction panel points to: communes of at least this population
# (signposted places, not hamlets), names short enough for a panel line.
MIN_POPULATION = 2000
MAX_LETTERS = 14
ALLOWED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸ-' ")


def folded(name):
    """The name without accents: two names that differ only there are one
    for the split (else a corrector could know a generator name's twin)."""
    return "".join(c for c in unicodedata.normalize("NFD", name) if unicodedata.category(c) != "Mn")


def main():
    data = urllib.request.urlopen(URL, timeout=120).read()
    if hashlib.sha1(data).hexdigest() != SHA1:
        raise SystemExit(f"{URL}: unexpected SHA-1")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        communes = json.load(tar.extractfile("package/data/communes.json"))
    names = {}
    for c in communes:
        if c.get("type") != "commune-actuelle" or (c.get("population") or 0) < MIN_POPULATION:
            continue
        name = c["nom"].upper().replace("’", "'")
        if len(name) <= MAX_LETTERS and set(name) <= ALLOWED:
            names.setdefault(folded(name), name)
    keys = sorted(names)
    random.Random(2026).shuffle(keys)
    half = len(keys) // 2
    parts = {"generator": sorted(names[k] for k in keys[:half]),
             "corrector": sorted(names[k] for k in keys[half:])}
    assert not {folded(n) for n in parts["generator"]} & {folded(n) for n in parts["corrector"]}
    OUT.mkdir(parents=True, exist_ok=True)
    for part, towns in parts.items():
        (OUT / f"towns_{part}.txt").write_text("\n".join(towns) + "\n")
        print(f"{part}: {len(towns)} towns")


if __name__ == "__main__":
    main()
