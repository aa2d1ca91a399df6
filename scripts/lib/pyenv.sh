# shellcheck shell=bash
# Source this file: it creates (once) and activates the project's Python virtualenv with the
# tools listed in scripts/requirements-dev.txt. The venv lives in a cache directory keyed by the
# requirements hash, so a fresh machine installs everything and later runs reuse it.
# (No `set -e` here: a sourced file must not change its caller's shell options.)

tipoff_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tipoff_python="${TIPOFF_PYTHON:-}"
if [[ -z "$tipoff_python" ]]; then
  for candidate in /root/.pyenv/versions/3.13.0/bin/python3 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then tipoff_python="$(command -v "$candidate")"; break; fi
  done
fi
[[ -n "$tipoff_python" ]] || { echo "pyenv.sh: no python3 found (set TIPOFF_PYTHON)" >&2; return 1; }

tipoff_req="$tipoff_root/scripts/requirements-dev.txt"
tipoff_hash="$( (cat "$tipoff_req"; "$tipoff_python" --version) | sha256sum | cut -c1-16)"
TIPOFF_VENV="${TIPOFF_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tipoff/venv-$tipoff_hash}"
if [[ ! -f "$TIPOFF_VENV/.complete" ]]; then
  echo "pyenv.sh: creating $TIPOFF_VENV" >&2
  rm -rf "$TIPOFF_VENV"
  "$tipoff_python" -m venv "$TIPOFF_VENV" || return 1
  "$TIPOFF_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$tipoff_req" || return 1
  touch "$TIPOFF_VENV/.complete"
fi
export TIPOFF_VENV
# scripts/bin: the project's wrappers around those tools (`helm`, on the Helm SDK).
export PATH="$tipoff_root/scripts/bin:$TIPOFF_VENV/bin:$PATH"
