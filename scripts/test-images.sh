#!/usr/bin/env bash
# Builds the tipoff-operator and tipoff-processor images with buildah (scripts/images.sh) from
# the binaries in BIN_DIR, into a throwaway storage, and checks what a cluster relies on:
# the entrypoint is the binary, the user is 65532, the commit is in the labels and (for the
# processor) compiled into the binary, there is no shell, and each binary starts inside the
# image's root filesystem as uid 65532 with only the libraries the image carries.
# Needs root (buildah with the vfs driver, chroot): re-runs itself with sudo when not root.
# scripts/test.sh runs it.
#
# Usage: scripts/test-images.sh BIN_DIR    (e.g. target/debug, holding both binaries)
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir=${1:?usage: scripts/test-images.sh BIN_DIR}
if [[ $(id -u) -ne 0 ]]; then exec sudo "$0" "$@"; fi
store=$(mktemp -d)
opts=(--root "$store/root" --runroot "$store/run" --storage-driver vfs)
cleanup() {
  buildah "${opts[@]}" umount --all >/dev/null 2>&1 || true
  buildah "${opts[@]}" rm --all >/dev/null 2>&1 || true
  rm -rf "$store"
}
trap cleanup EXIT
fail() { echo "test-images: $*" >&2; exit 1; }

# The commit compiled into the processor binary is what its --version reports.
commit=$("$bin_dir/tipoff-processor" --version | sed -n 's/.*(\(.*\)).*/\1/p')
[[ -n $commit ]] || fail "cannot read the commit from $bin_dir/tipoff-processor --version"

BUILDAH_OPTS="${opts[*]}" scripts/images.sh "$bin_dir/tipoff-operator" "$bin_dir/tipoff-processor" \
  "$commit" v0.0.0-test localhost/tipoff-test

for name in tipoff-operator tipoff-processor; do
  image="localhost/tipoff-test/$name:v0.0.0-test"
  config=$(buildah "${opts[@]}" inspect --type image --format '{{.OCIv1.Config.User}}|{{.OCIv1.Config.Entrypoint}}|{{index .OCIv1.Config.Labels "org.opencontainers.image.revision"}}|{{index .OCIv1.Config.Labels "org.opencontainers.image.version"}}' "$image")
  expected="65532:65532|[/usr/local/bin/$name]|$commit|v0.0.0-test"
  [[ $config == "$expected" ]] || fail "$name: image config is '$config', expected '$expected'"
  ctr=$(buildah "${opts[@]}" from --quiet "$image")
  root=$(buildah "${opts[@]}" mount "$ctr")
  [[ -f $root/usr/share/zoneinfo/America/New_York ]] || fail "$name: no time-zone database"
  for shell in bin/sh bin/bash usr/bin/sh; do
    [[ ! -e $root/$shell ]] || fail "$name: the image has a shell ($shell)"
  done
  # Run the binary inside the image's filesystem as the image's user: it must find every
  # library it needs there.
  version=$(chroot --userspec=65532:65532 "$root" "/usr/local/bin/$name" --version) \
    || fail "$name does not start inside its image as uid 65532"
  echo "$name: $version (user 65532, revision $commit, no shell)"
  if [[ $name == tipoff-processor && $version != *"($commit)"* ]]; then
    fail "$name --version is '$version': the commit $commit is not compiled in"
  fi
  buildah "${opts[@]}" umount "$ctr" >/dev/null
  buildah "${opts[@]}" rm "$ctr" >/dev/null
done
echo "test-images: both images build and check out"
