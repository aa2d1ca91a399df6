#!/usr/bin/env bash
# Headless Chromium and chromedriver for the dashboard's browser tests (cli/tests/dashboard.rs),
# from Debian's `chromium` and `chromium-driver` packages (scripts/lib/apt-ensure.sh: skipped
# when installed). scripts/test.sh runs it before the tests.
set -euo pipefail
# shellcheck source=scripts/lib/apt-ensure.sh
source "$(dirname "$0")/apt-ensure.sh"
apt_ensure chromium chromium-driver
