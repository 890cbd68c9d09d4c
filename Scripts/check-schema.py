#!/usr/bin/python3
"""Checks pipelines against the JSON Schema that `ganflow schema` generates, with a real validator.

Usage: /usr/bin/python3 Scripts/check-schema.py path/to/ganflow   (run by `make check-schema`)

1. pipelines/ganflow.schema.json is what the binary generates now (else: run `make schema`).
2. It is a valid draft 2020-12 schema, and every pipeline under pipelines/ and every valid fixture
   under Fixtures/pipelines/ (all but invalid/) validates against it.
3. The invalid fixtures whose problems a schema can see are rejected at exactly the JSON paths of
   their `.expected` messages; the others (cycles, wires, shapes: problems only the graph builder
   finds) are flagged, if at all, only at paths their `.expected` names.

Needs Debian's python3-jsonschema (Scripts/setup.sh installs it), hence /usr/bin/python3.
"""
import glob
import json
import os
import re
import subprocess
import sys

import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = os.path.join(ROOT, "pipelines", "ganflow.schema.json")
INVALID = os.path.join(ROOT, "Fixtures", "pipelines", "invalid")
# Invalid fixtures every one of whose problems the schema must find.
SCHEMA_SEES = {"config-keys", "top-level", "unknown-stage-type"}


def json_path(components):
    """The path as GANFlow prints it: $.stages.D.inputs.real, $.schedule[1].run, $["a b"]."""
    out = "$"
    for c in components:
        if isinstance(c, int):
            out += f"[{c}]"
        elif c and all(ch.isalnum() or ch in "_-" for ch in c):
            out += "." + c
        else:
            out += "[" + json.dumps(c) + "]"
    return out


def flagged_paths(validator, document):
    """The paths the schema rejects: an unknown key at the key itself, anything else where it is."""
    paths = set()
    for error in validator.iter_errors(document):
        where = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            declared = error.schema.get("properties", {})
            paths.update(json_path(where + [k]) for k in error.instance if k not in declared)
        else:
            paths.add(json_path(where))
    return paths


def expected_paths(name):
    """The paths in NAME.expected (`file:line:col: $.path: message`); a problem of the whole file is $."""
    paths = set()
    with open(os.path.join(INVALID, name + ".expected"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"[^:]+:\d+:\d+: (\$[^:]*): ", line)
            paths.add(m.group(1) if m else "$")
    return paths


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    failures = []

    generated = subprocess.run([sys.argv[1], "schema"], check=True, capture_output=True, text=True).stdout
    try:
        with open(SCHEMA, encoding="utf-8") as f:
            shipped = f.read()
    except FileNotFoundError:
        shipped = None
    if shipped != generated:
        failures.append("pipelines/ganflow.schema.json is not what `ganflow schema` generates now: run `make schema`")
    schema = json.loads(generated)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)

    valid = sorted(glob.glob(os.path.join(ROOT, "pipelines", "*.json")))
    valid = [p for p in valid if p != SCHEMA]
    valid += sorted(p for p in glob.glob(os.path.join(ROOT, "Fixtures", "pipelines", "**", "*.json"), recursive=True)
                    if not p.startswith(INVALID + os.sep))
    for path in valid:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
        for error in validator.iter_errors(document):
            failures.append(f"{os.path.relpath(path, ROOT)}: {json_path(error.absolute_path)}: {error.message}")

    names = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(INVALID, "*.json")))
    seen = 0
    for name in names:
        try:
            with open(os.path.join(INVALID, name + ".json"), encoding="utf-8") as f:
                document = json.load(f)
        except json.JSONDecodeError:
            continue  # malformed JSON: nothing for a schema to check
        flagged, expected = flagged_paths(validator, document), expected_paths(name)
        if name in SCHEMA_SEES:
            seen += 1
            if flagged != expected:
                failures.append(f"invalid/{name}.json: the schema flags {sorted(flagged)}, "
                                f"but {name}.expected names {sorted(expected)}")
        elif not flagged <= expected:
            failures.append(f"invalid/{name}.json: the schema flags {sorted(flagged - expected)}, "
                            f"which {name}.expected does not name")
    if seen != len(SCHEMA_SEES):
        failures.append(f"invalid fixtures missing: {sorted(SCHEMA_SEES - set(names))}")

    if failures:
        print("check-schema: FAILED", file=sys.stderr)
        for f in failures:
            print("  " + f, file=sys.stderr)
        sys.exit(1)
    print(f"check-schema: {len(valid)} pipelines valid against pipelines/ganflow.schema.json; "
          f"{len(SCHEMA_SEES)} invalid fixtures rejected at their expected paths")


if __name__ == "__main__":
    main()
