#!/usr/bin/env bash
# Headless Chromium and chromedriver for the dashboard's browser tests (cli/tests/dashboard.rs),
# from Debian's `chromium` and `chromium-driver` packages. Idempotent: does nothing when both
# binaries are already on PATH. scripts/test.sh runs it before the tests.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "chromium and chromedriver present: $(chromium --version 2>/dev/null || echo chromium)"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y --no-install-recommends chromium chromium-driver
fi
