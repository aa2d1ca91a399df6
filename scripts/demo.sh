#!/usr/bin/env bash
# The local demo: one game date through the real operator on one machine.
#
#   dev/cluster   a local Kubernetes-compatible API server (kubectl works against it)
#   operator      the real tipoff-operator, reconciling PipelineRuns into Jobs phase by phase
#   processors    Jobs run as local processes of tipoff-test-processor on the six-phase test
#                 catalog (config/test/pipeline.yaml): the data processors are not built yet,
#                 so every processor here follows the processor contract without doing data work
#
# Usage: scripts/demo.sh [--scenario happy|wrong-code] [--keep-running]
#   wrong-code: the prediction processor that answers is another program (seed 000); the run
#               stops before the publish phase with CodeDrift=True.
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=happy
keep=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scenario) scenario="$2"; shift 2 ;;
    --keep-running) keep=true; shift ;;
    *) echo "usage: scripts/demo.sh [--scenario happy|wrong-code] [--keep-running]" >&2; exit 2 ;;
  esac
done
case "$scenario" in happy|wrong-code) ;; *) echo "unknown scenario $scenario" >&2; exit 2 ;; esac

command -v kubectl >/dev/null || { echo "demo.sh: kubectl is needed (the demo shows what kubectl sees)" >&2; exit 1; }

echo "==> building (first time: a few minutes)"
cargo build --quiet -p tipoff-devcluster -p tipoff-operator -p tipoff-processors --bins
target="${CARGO_TARGET_DIR:-target}/debug"

work="$(mktemp -d "${TMPDIR:-/tmp}/tipoff-demo.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

commit=c4f8f339
image="ghcr.io/tipoff/processor@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
{
  echo "default:"
  echo "  sleepMs: 300"
  echo "  commit: $commit"
  echo "  rows: {nba_demo.rows: 100}"
  echo "  checks:"
  for g in rows-written history-gap player-coverage boxscore-coverage odds-coverage; do
    echo "    - {name: $g, passed: true, observed: 10, expected: 10}"
  done
  echo "processors:"
  if [[ "$scenario" == wrong-code ]]; then
    echo "  player-prop-predictions: {processor: analytics-processors, service: analytics_processors}"
  else
    echo "  {}"
  fi
} > "$work/behaviour.yaml"
cat > "$work/runner.yaml" <<EOF
images:
- image: ghcr.io/tipoff/processor
  command: ["$(cd "$target" && pwd)/tipoff-test-processor"]
  env: {TIPOFF_TEST_BEHAVIOUR: "$work/behaviour.yaml"}
EOF

api_port="$(free_port)"
op_port="$(free_port)"
export KUBECONFIG="$work/kubeconfig"
echo "==> starting dev/cluster on 127.0.0.1:$api_port"
"$target/tipoff-devcluster" --port "$api_port" --kubeconfig-out "$KUBECONFIG" \
  --runner-config "$work/runner.yaml" --data-dir "$work/cluster" > "$work/devcluster.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do kubectl version >/dev/null 2>&1 && break; sleep 0.1; done
kubectl apply -f crds/generated/ >/dev/null
echo "==> starting tipoff-operator (metrics on http://127.0.0.1:$op_port/metrics)"
"$target/tipoff-operator" --catalog config/test/pipeline.yaml --namespace default \
  --listen "127.0.0.1:$op_port" --leader-elect=false --log-format text > "$work/operator.log" 2>&1 &
pids+=($!)

echo "==> kubectl apply: a Production PipelineRun for 2026-01-29, pinned to $commit"
kubectl apply -f - >/dev/null <<EOF
apiVersion: tipoff.dev/v1alpha1
kind: PipelineRun
metadata:
  name: nba-2026-01-29
spec:
  date: "2026-01-29"
  mode: Production
  release:
    image: $image
    commit: $commit
EOF

echo "    point kubectl at it while it runs:  export KUBECONFIG=$KUBECONFIG"
last=""
for _ in $(seq 1 600); do
  line="$(kubectl get pipelinerun nba-2026-01-29 --no-headers 2>/dev/null || true)"
  if [[ "$line" != "$last" && -n "$line" ]]; then echo "    $line"; last="$line"; fi
  state="$(kubectl get pipelinerun nba-2026-01-29 -o jsonpath='{.status.state}' 2>/dev/null || true)"
  case "$state" in Succeeded|Failed|Blocked) break ;; esac
  sleep 0.5
done

echo
echo "\$ kubectl get pipelineruns"; kubectl get pipelineruns
echo; echo "\$ kubectl get phasecompletions"; kubectl get phasecompletions
echo; echo "\$ kubectl get jobs | head"; kubectl get jobs | head -6
echo; echo "\$ kubectl get pipelinerun nba-2026-01-29 -o jsonpath='{range .status.conditions[*]}...'"
kubectl get pipelinerun nba-2026-01-29 -o jsonpath='{range .status.conditions[*]}{.type}{"\t"}{.status}{"\t"}{.reason}{"\t"}{.message}{"\n"}{end}'
echo; echo "\$ kubectl get events --field-selector involvedObject.name=nba-2026-01-29"; kubectl get events --field-selector involvedObject.name=nba-2026-01-29
echo
echo "logs: $work/operator.log, $work/devcluster.log"
if $keep; then
  echo "stack left running; KUBECONFIG=$KUBECONFIG; Ctrl-C to stop"
  wait
fi
