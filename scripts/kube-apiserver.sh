#!/usr/bin/env bash
# Prints the path of a kube-apiserver binary for the integration tests of internal/kube,
# building it first when this machine has none for the pinned version. The version is the
# k8s.io/kubernetes release required by test/kubeapiserver/go.mod; the binary is cached as
# ${XDG_CACHE_HOME:-~/.cache}/portpatrol/kube-apiserver-<version> and reused while that
# version is unchanged. A cold build takes several minutes on two cores; progress goes to
# stderr, the path alone to stdout. Concurrent callers wait for one build (flock).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/test/kubeapiserver"
version=$(awk '$1 == "k8s.io/kubernetes" || ($1 == "require" && $2 == "k8s.io/kubernetes") {print ($1 == "require" ? $3 : $2)}' "$mod/go.mod")
if [ -z "$version" ]; then
  echo "kube-apiserver.sh: no k8s.io/kubernetes version in $mod/go.mod" >&2
  exit 1
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/portpatrol"
bin="$cache/kube-apiserver-$version"
mkdir -p "$cache"

if [ ! -x "$bin" ]; then
  exec 9>"$bin.lock"
  flock 9
  if [ ! -x "$bin" ]; then
    echo "kube-apiserver.sh: building kube-apiserver $version (cold builds take several minutes)" >&2
    start=$(date +%s)
    tmp="$bin.tmp.$$"
    (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp" k8s.io/kubernetes/cmd/kube-apiserver) >&2
    mv "$tmp" "$bin"
    echo "kube-apiserver.sh: built $bin in $(( $(date +%s) - start ))s" >&2
  fi
fi
echo "$bin"
