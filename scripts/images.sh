#!/usr/bin/env bash
# Builds the tipoff-operator and tipoff-processor images with buildah, FROM scratch: for each
# binary it prepares a build context (images/<name>/Containerfile plus rootfs/ holding the
# binary, the shared libraries `ldd` says it loads, CA certificates, the IANA time-zone database
# that PipelineSchedules and dates read, and passwd/group entries for uid 65532), then runs
# `buildah build`. No base image and no network are needed.
#
# Usage: scripts/images.sh OPERATOR_BIN PROCESSOR_BIN COMMIT VERSION REPOSITORY_PREFIX
#   OPERATOR_BIN       the tipoff-operator binary (release: target/operator/tipoff-operator,
#                      built with --profile operator, docs/operations.md)
#   PROCESSOR_BIN      the tipoff-processor binary (release: target/release/tipoff-processor)
#   COMMIT             the git commit they were built from (the binaries must have been built
#                      with TIPOFF_COMMIT=COMMIT, which the processor compiles in)
#   VERSION            the release version, e.g. v0.4.2
#   REPOSITORY_PREFIX  e.g. ghcr.io/tipoff-dev: images are tagged PREFIX/<name>:VERSION
# BUILDAH_OPTS (e.g. "--root DIR --runroot DIR --storage-driver vfs") is passed to buildah.
# Prints "<name> <tag> <image id>" per image.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $# -eq 5 ]] || { sed -n '2,20p' "$0" >&2; exit 2; }
operator_bin=$1 processor_bin=$2 commit=$3 version=$4 prefix=$5
read -r -a buildah_opts <<<"${BUILDAH_OPTS:-}"
command -v buildah >/dev/null || { echo "images.sh: buildah is not installed" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for name in tipoff-operator tipoff-processor; do
  if [[ $name == tipoff-operator ]]; then bin=$operator_bin; else bin=$processor_bin; fi
  [[ -x $bin ]] || { echo "images.sh: no executable $bin; build it first (docs/releasing.md)" >&2; exit 1; }
  ctx="$work/$name"
  root="$ctx/rootfs"
  mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/home/nonroot" "$root/tmp"
  cp images/$name/Containerfile "$ctx/Containerfile"
  install -m 0755 "$bin" "$root/usr/local/bin/$name"
  # Debug info is not needed at run time (panics still name functions from the symbol table).
  if command -v strip >/dev/null; then strip --strip-debug "$root/usr/local/bin/$name"; fi
  # The dynamic loader and every library the binary loads, at the paths it expects.
  while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done < <(ldd "$bin" | grep -o '/[^ ]*' | sort -u)
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  else
    echo "images.sh: /etc/ssl/certs/ca-certificates.crt missing (install ca-certificates)" >&2
    exit 1
  fi
  # Time zones: schedules read spec.timeZone from the system database (jiff), so without it
  # every schedule is Ready=False with reason InvalidTimeZone (docs/operations.md).
  [[ -f /usr/share/zoneinfo/America/New_York ]] || { echo "images.sh: /usr/share/zoneinfo missing (install tzdata)" >&2; exit 1; }
  mkdir -p "$root/usr/share"
  cp -a /usr/share/zoneinfo "$root/usr/share/zoneinfo"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  chown -R 65532:65532 "$root/home/nonroot" 2>/dev/null || true
  tag="$prefix/$name:$version"
  buildah "${buildah_opts[@]}" build --quiet --layers=false \
    --build-arg COMMIT="$commit" --build-arg VERSION="$version" \
    -f "$ctx/Containerfile" -t "$tag" "$ctx" >"$work/$name.id"
  echo "$name $tag $(tail -n1 "$work/$name.id")"
done
