#!/usr/bin/env python3
"""Renders every kustomization under examples/gitops/ with `kubectl kustomize` and validates
what it renders:

- built-in kinds (ConfigMap, ...) with `kubernetes-validate --strict`;
- tipoff kinds are validated against the committed CRDs (schema and CEL rules) by
  crds/tests/gitops_examples.rs, not here;
- Argo CD and Flux kinds: no schema is available offline, so this checks, honestly but only,
  that the apiVersion/kind pair is one those projects serve and that the fields their CRDs
  mark required (and the ones these examples rely on) are present with the right types. It
  does not check every field name: a typo in an optional field passes.

Usage: scripts/validate-gitops-examples.py [examples/gitops]
"""

import pathlib
import subprocess
import sys
import tempfile

import yaml

# (apiVersion, kind) -> required dotted paths and their Python types.
FOREIGN = {
    ("argoproj.io/v1alpha1", "Application"): {
        "metadata.name": str,
        "spec.project": str,
        "spec.destination": dict,
        "spec.source.repoURL": str,
        "spec.source.path": str,
        "spec.source.targetRevision": str,
    },
    ("source.toolkit.fluxcd.io/v1", "GitRepository"): {
        "metadata.name": str,
        "spec.url": str,
        "spec.interval": str,
    },
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease"): {
        "metadata.name": str,
        "spec.interval": str,
        "spec.chart.spec.chart": str,
        "spec.chart.spec.sourceRef.kind": str,
        "spec.chart.spec.sourceRef.name": str,
    },
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): {
        "metadata.name": str,
        "spec.interval": str,
        "spec.prune": bool,
        "spec.sourceRef.kind": str,
        "spec.sourceRef.name": str,
    },
}
TIPOFF_GROUP = "tipoff.dev/"


def lookup(obj, dotted):
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "examples/gitops")
    repo = pathlib.Path.cwd()
    failures = []
    builtin = []
    counts = {"builtin": 0, "foreign": 0, "tipoff": 0}
    dirs = sorted(p.parent for p in root.glob("*/kustomization.yaml"))
    if not dirs:
        print(f"no kustomization.yaml under {root}", file=sys.stderr)
        return 1
    for d in dirs:
        out = subprocess.run(["kubectl", "kustomize", str(d)], capture_output=True, text=True)
        if out.returncode != 0:
            failures.append(f"{d}: kubectl kustomize failed: {out.stderr.strip()}")
            continue
        for obj in yaml.safe_load_all(out.stdout):
            if not obj:
                continue
            key = (obj.get("apiVersion"), obj.get("kind"))
            where = f"{d}: {key[1]} {lookup(obj, 'metadata.name')}"
            if key in FOREIGN:
                counts["foreign"] += 1
                for path, typ in FOREIGN[key].items():
                    value = lookup(obj, path)
                    if not isinstance(value, typ):
                        failures.append(f"{where}: {path} must be a {typ.__name__}, got {value!r}")
                # Sources must point at what this repository holds.
                for path in ("spec.source.path", "spec.chart.spec.chart", "spec.path"):
                    target = lookup(obj, path)
                    if isinstance(target, str) and target.startswith(("./", "charts/", "examples/")):
                        local = repo / target.removeprefix("./")
                        if not local.exists() and not target.startswith(("charts/", "./charts/")):
                            failures.append(f"{where}: {path} {target} does not exist in this repository")
            elif str(key[0]).startswith(TIPOFF_GROUP):
                counts["tipoff"] += 1  # crds/tests/gitops_examples.rs
            elif "." in str(key[0]).split("/")[0] and "/" in str(key[0]) and not str(key[0]).endswith(".k8s.io/v1"):
                failures.append(f"{where}: {key[0]} {key[1]} is neither built in nor known to this check")
            else:
                counts["builtin"] += 1
                builtin.append(obj)
    if builtin:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump_all(builtin, f)
        out = subprocess.run(["kubernetes-validate", "--strict", "--quiet", f.name], capture_output=True, text=True)
        if out.returncode != 0:
            failures.append(f"kubernetes-validate --strict: {out.stdout}{out.stderr}")
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    print(
        f"gitops examples: {len(dirs)} kustomizations; {counts['builtin']} built-in objects "
        f"(kubernetes-validate --strict), {counts['foreign']} Argo CD/Flux objects (required fields), "
        f"{counts['tipoff']} tipoff objects (crds/tests/gitops_examples.rs); {len(failures)} failures"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
