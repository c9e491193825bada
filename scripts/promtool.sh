#!/usr/bin/env bash
# Prints the path of a promtool binary for the tests of deploy/prometheus (promtool test
# rules), building it from the module proxy the first time (scripts/gotool.sh caches it
# as ${XDG_CACHE_HOME:-~/.cache}/portpatrol/promtool-<version>). When that build fails,
# Debian's promtool (package prometheus) is used if it is installed. remove_all_sd leaves
# out the cloud service discoveries (AWS, Azure, GCE…), which rule tests never use: a
# third fewer dependencies and a much shorter cold build.
set -euo pipefail
version=v0.316.0
if bin=$(GOTOOL_TAGS=remove_all_sd "$(dirname "$0")/gotool.sh" promtool "github.com/prometheus/prometheus/cmd/promtool@$version"); then
  echo "$bin"
elif command -v promtool >/dev/null 2>&1; then
  echo "promtool.sh: building promtool $version failed; using $(command -v promtool)" >&2
  command -v promtool
else
  echo "promtool.sh: building promtool $version failed and no promtool is installed (apt-get install prometheus)" >&2
  exit 1
fi
