# shellcheck shell=bash
# Source this file, then call `apt_ensure PACKAGE...`: installs the Debian packages the tests
# need (never the product) when they are missing, with `apt-get install -y
# --no-install-recommends`. Idempotent: packages already installed are skipped, and nothing runs
# apt-get when all are present. Uses sudo when not root.
# (No `set -e` here: a sourced file must not change its caller's shell options.)

apt_ensure() {
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  echo "apt-ensure: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq || return 1
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" || return 1
}
