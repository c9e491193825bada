#!/usr/bin/env bash
# Prints the path of a helm binary for the chart tests of internal/kube: helm on PATH if
# there is one, else helm v3 built from the Go module proxy and cached as
# ${XDG_CACHE_HOME:-~/.cache}/portpatrol/helm-<version> (about two minutes cold).
set -euo pipefail
version=v3.22.0
if command -v helm >/dev/null 2>&1; then command -v helm; exit 0; fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/portpatrol"
bin="$cache/helm-$version"
if [ ! -x "$bin" ]; then
  mkdir -p "$cache"
  exec 9>"$bin.lock"
  flock 9
  if [ ! -x "$bin" ]; then
    echo "helm.sh: building helm $version" >&2
    tmp=$(mktemp -d)
    GOBIN="$tmp" CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@$version" >&2
    mv "$tmp/helm" "$bin"
    rmdir "$tmp"
  fi
fi
echo "$bin"
