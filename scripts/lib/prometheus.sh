#!/usr/bin/env bash
# Installs Debian's `prometheus` package (it ships `prometheus` and `promtool`), which the alert
# rule tests (`promtool check rules`, `promtool test rules`) and the end-to-end alert test
# (operator/tests/e2e/alerts.rs) run. Idempotent: does nothing when both are on PATH.
# Usage: scripts/lib/prometheus.sh   (scripts/test.sh calls it)
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "scripts/lib/prometheus.sh: prometheus/promtool are missing and installing them needs root (no sudo here): run 'apt-get install -y --no-install-recommends prometheus' as root" >&2
    exit 1
  fi
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends prometheus; then
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends prometheus
fi
# The package's service is not wanted: the tests start their own Prometheus.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  $sudo systemctl stop prometheus || true
fi
command -v prometheus >/dev/null && command -v promtool >/dev/null
