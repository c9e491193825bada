#!/usr/bin/env bash
# Prints the path of a Go tool built from the module proxy, building it first when this
# machine has none for that version: scripts/gotool.sh NAME PACKAGE@VERSION. The binary is
# cached as ${XDG_CACHE_HOME:-~/.cache}/portpatrol/NAME-VERSION and reused while the
# version is unchanged (release, package and CI steps call it on every run). Progress goes
# to stderr, the path alone to stdout. Concurrent callers wait for one build (flock).
# GOTOOL_TAGS, if set, are the build tags.
set -euo pipefail
if [ $# -ne 2 ] || [[ "$2" != *@* ]]; then
  echo "usage: gotool.sh NAME PACKAGE@VERSION" >&2
  exit 2
fi
name=$1 pkg=$2 version=${2##*@}
cache="${XDG_CACHE_HOME:-$HOME/.cache}/portpatrol"
bin="$cache/$name-$version"
mkdir -p "$cache"
if [ ! -x "$bin" ]; then
  exec 9>"$bin.lock"
  flock 9
  if [ ! -x "$bin" ]; then
    echo "gotool.sh: building $pkg" >&2
    start=$(date +%s)
    tmp=$(mktemp -d "$cache/.build-$name.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$tmp" go install -tags "${GOTOOL_TAGS:-}" -trimpath -ldflags='-s -w' "$pkg") >&2
    mv "$tmp/$(basename "${pkg%@*}")" "$bin"
    echo "gotool.sh: built $bin in $(( $(date +%s) - start ))s" >&2
  fi
fi
echo "$bin"
