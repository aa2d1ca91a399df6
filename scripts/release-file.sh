#!/usr/bin/env bash
# Writes the release file that `tipoff run --release FILE`, `tipoff backfill --release FILE` and
# a PipelineSchedule's `spec.release` pin: the processor image by digest, the commit it was
# built from, and the version (the `Release` type in crds/src/pipeline_run.rs).
# The release workflow (.github/workflows/release.yaml) calls it after pushing the images;
# cli/tests/release_file.rs checks that what it writes parses with the CLI's reader and passes
# the PipelineRun CRD's rules.
#
# Usage: scripts/release-file.sh PROCESSOR_REPOSITORY DIGEST COMMIT VERSION > release.yaml
#   e.g. scripts/release-file.sh ghcr.io/tipoff-dev/tipoff-processor sha256:ab12... 4f1c2e9... v0.4.2
set -euo pipefail

[[ $# -eq 4 ]] || { sed -n '2,11p' "$0" >&2; exit 2; }
repository=$1 digest=$2 commit=$3 version=$4

[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "release-file.sh: digest must be sha256:<64 hex>, got '$digest'" >&2; exit 1; }
[[ $commit =~ ^[0-9a-f]{7,40}$ ]] || { echo "release-file.sh: commit must be 7-40 lowercase hex digits, got '$commit'" >&2; exit 1; }
[[ $repository != *@* ]] || { echo "release-file.sh: give the repository without a digest, got '$repository'" >&2; exit 1; }

cat <<YAML
# tipoff release $version: pin it with \`tipoff run DATE --release release.yaml\` or a
# PipelineSchedule's spec.release (docs/releasing.md).
image: "$repository@$digest"
commit: "$commit"
version: "$version"
YAML
