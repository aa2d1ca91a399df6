#!/usr/bin/env bash
# Installs Debian's `prometheus` package (it ships `prometheus` and `promtool`), which the alert
# rule tests (`promtool check rules`, `promtool test rules`) and the end-to-end alert test
# (operator/tests/e2e/alerts.rs) run (scripts/lib/apt-ensure.sh: skipped when installed).
# Usage: scripts/lib/prometheus.sh   (scripts/test.sh calls it)
set -euo pipefail
# shellcheck source=scripts/lib/apt-ensure.sh
source "$(dirname "$0")/apt-ensure.sh"
apt_ensure prometheus
# The package's service is not wanted: the tests start their own Prometheus.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then systemctl stop prometheus || true; else sudo systemctl stop prometheus || true; fi
fi
command -v prometheus >/dev/null && command -v promtool >/dev/null
