#!/usr/bin/env python3
"""Runs the Argo CD health checks in resource_customizations/ the way Argo CD's own test
harness does: for each case of every `<group>/<Kind>/health_test.yaml`, the object at
`inputPath` is the global `obj`, `health.lua` runs, and the table it returns must have exactly
the expected `status` and `message`. Lua is Debian's `lua5.4` (scripts/lib/apt-ensure.sh);
Argo CD embeds gopher-lua (Lua 5.1), so the checks use only what both have.

Also fails when a testdata file is not used by any case, a kind lacks a Healthy, a
Progressing or a Degraded case, or the argocd-cm snippet in docs/gitops.md or charts/tipoff/README.md is not exactly the
checks in resource_customizations/ (`--argocd-cm` prints it).

Usage: scripts/argocd-health-test.py [resource_customizations]
       scripts/argocd-health-test.py --argocd-cm [resource_customizations]
"""

import json
import pathlib
import subprocess
import sys

import yaml

LUA = "lua5.4"
STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def to_lua(value):
    """A Lua literal for a JSON-like value, as gopher-lua's conversion sees it (null is nil,
    lists are 1-based sequences)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid Lua string literal for our data
    if isinstance(value, list):
        return "{" + ", ".join(to_lua(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{json.dumps(str(k))}] = {to_lua(v)}" for k, v in value.items()) + "}"
    # Timestamps parsed by PyYAML are strings in the API's JSON.
    return json.dumps(str(value))


def run_check(script: str, obj) -> tuple[str, str]:
    program = (
        f"obj = {to_lua(obj)}\n"
        f"local function health()\n{script}\nend\n"
        "local hs = health()\n"
        "io.write(tostring(hs.status), '\\0', tostring(hs.message))\n"
    )
    out = subprocess.run([LUA, "-"], input=program, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    status, _, message = out.stdout.partition("\0")
    return status, message


def load_object(path: pathlib.Path):
    # Dates like 2026-01-29 must stay strings, as in the API's JSON.
    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return yaml.load(path.read_text(), Loader=Loader)


def argocd_cm(kinds) -> str:
    """The argocd-cm `data` entries that install the checks (one key per group and kind)."""
    out = ["data:"]
    for kind in kinds:
        key = f"resource.customizations.health.{kind.parent.name}_{kind.name}"
        out.append(f"  {key}: |")
        out.extend(("    " + line).rstrip() for line in (kind / "health.lua").read_text().splitlines())
    return "\n".join(out) + "\n"


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--argocd-cm"]
    root = pathlib.Path(args[0] if args else "resource_customizations")
    if "--argocd-cm" in sys.argv:
        print(argocd_cm(sorted(p.parent for p in root.glob("*/*/health.lua"))), end="")
        return 0
    failures = []
    cases = 0
    kinds = sorted(p.parent for p in root.glob("*/*/health.lua"))
    if not kinds:
        print(f"no health.lua under {root}", file=sys.stderr)
        return 1
    for kind in kinds:
        script = (kind / "health.lua").read_text()
        test_file = kind / "health_test.yaml"
        if not test_file.exists():
            failures.append(f"{kind}: no health_test.yaml")
            continue
        tests = yaml.safe_load(test_file.read_text()).get("tests") or []
        used = set()
        seen = set()
        for case in tests:
            cases += 1
            want = case["healthStatus"]
            path = kind / case["inputPath"]
            used.add(path.resolve())
            where = f"{kind.relative_to(root)} {case['inputPath']}"
            try:
                status, message = run_check(script, load_object(path))
            except Exception as err:  # noqa: BLE001 - reported as a failed case
                failures.append(f"{where}: {err}")
                continue
            seen.add(status)
            if status not in STATUSES:
                failures.append(f"{where}: status {status!r} is not an Argo CD health status")
            if (status, message) != (want["status"], want.get("message", "")):
                failures.append(
                    f"{where}:\n  expected {want['status']}: {want.get('message', '')!r}\n"
                    f"  got      {status}: {message!r}"
                )
        for data in sorted((kind / "testdata").glob("*.yaml")):
            if data.resolve() not in used:
                failures.append(f"{data}: not used by any case in {test_file}")
        for needed in ("Healthy", "Progressing", "Degraded"):
            if needed not in seen:
                failures.append(f"{kind.relative_to(root)}: no {needed} case")
    for guide in (root.parent / "docs" / "gitops.md", root.parent / "charts" / "tipoff" / "README.md"):
        if not guide.exists() or argocd_cm(kinds) not in guide.read_text():
            failures.append(
                f"{guide}: its argocd-cm snippet is not the checks in {root}; "
                "paste the output of scripts/argocd-health-test.py --argocd-cm"
            )
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    print(f"argocd health checks: {cases} cases in {len(kinds)} kinds, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
