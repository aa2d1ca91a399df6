#!/usr/bin/env bash
# The project's test command (the README's second command; .ci/run calls exactly this).
# Installs what the tests need, then runs format, lint, generated-file and test checks.
# Usage: scripts/test.sh [extra nextest args]
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Python test tools (cached virtualenv)"
# shellcheck source=scripts/lib/pyenv.sh
source scripts/lib/pyenv.sh

step "alert rules: promtool check rules, promtool test rules (Debian prometheus, scripts/lib/prometheus.sh)"
scripts/lib/prometheus.sh
promtool check rules charts/tipoff/alerts/rules.yaml
promtool test rules charts/tipoff/alerts/tests/*.yaml

step "Chromium and chromedriver for the dashboard's browser tests (Debian packages)"
scripts/lib/chromium.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "production binaries link no development code (cargo tree -e normal)"
# The CLI, the operator and the processors are what a cluster runs or a user installs: none
# of them may link dev/cluster, dev/season, the demo or the test processor, and the CLI does
# not link the operator.
for pkg in tipoff-cli tipoff-operator tipoff-processors; do
  dev=$(cargo tree --locked -p "$pkg" -e normal --prefix none \
    | grep -E '^tipoff-(devcluster|season|demo|test-processor) ' | sort -u || true)
  if [ "$pkg" = tipoff-cli ]; then
    dev+=$(cargo tree --locked -p "$pkg" -e normal --prefix none | grep -E '^tipoff-operator ' | sort -u || true)
  fi
  if [ -n "$dev" ]; then
    echo "$pkg links development crates:" >&2
    echo "$dev" >&2
    exit 1
  fi
done

step "generated CRDs are current"
cargo run --quiet --locked -p tipoff-crds --bin crdgen -- --check

step "generated CRDs and deploy/ manifests are valid Kubernetes objects (kubernetes-validate)"
kubernetes-validate --strict --quiet crds/generated/*.yaml deploy/*.yaml

step "charts/tipoff: its copies of the CRDs and the catalog and deploy/operator.yaml are current; helm lint"
# (operator/tests/chart.rs renders and validates the chart's values sets.)
scripts/render-deploy.sh --check
helm lint --strict charts/tipoff

# --- GitOps, images and releases (issue 19) ---
step "Debian test tools (lua5.4 for the Argo CD health checks; buildah, CA certificates and tzdata for the images)"
# shellcheck source=scripts/lib/apt-ensure.sh
source scripts/lib/apt-ensure.sh
apt_ensure lua5.4 buildah ca-certificates tzdata

step "Argo CD health checks (resource_customizations/, run by lua5.4 like Argo CD's harness)"
python scripts/argocd-health-test.py resource_customizations

step "examples/gitops render (kubectl kustomize) and validate"
python scripts/validate-gitops-examples.py examples/gitops

step "image builds and the release workflow are linted (hadolint, actionlint)"
hadolint images/*/Containerfile
actionlint .github/workflows/*.yaml

step "emulators (local-bigquery, fake-gcs-server) for the warehouse and storage contract tests"
scripts/emulators.sh start
trap 'scripts/emulators.sh stop' EXIT
# shellcheck disable=SC1091
source .tipoff/emulators.env

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  echo "cargo-nextest not found; using cargo test" >&2
  cargo test --workspace --locked --no-fail-fast "$@"
fi

step "the tipoff-operator and tipoff-processor images build FROM scratch (buildah) and check out"
# The test run above built both binaries (debug) with the commit compiled in.
scripts/test-images.sh "${CARGO_TARGET_DIR:-target}/debug"
