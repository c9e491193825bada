#!/usr/bin/env bash
# Runs every Fuzz target in the repository, one after another, for a duration each:
#   scripts/fuzz.sh [DURATION] [PACKAGES...]     (default 60s over ./...)
# This is the nightly fuzzing job; CI runs each target only briefly. A target that
# fails leaves its input under its package's testdata/fuzz/<Name>/: commit it, and it
# runs as an ordinary test in `go test` from then on. Exits non-zero when any fails.
# FUZZ_PARALLEL sets the fuzzing workers per target (default: go's, GOMAXPROCS).
set -u
cd "$(dirname "$0")/.."

dur=${1:-60s}
shift || true
pkgs=("$@")
[ ${#pkgs[@]} -eq 0 ] && pkgs=(./...)
par=()
[ -n "${FUZZ_PARALLEL:-}" ] && par=(-parallel "$FUZZ_PARALLEL")

# `go test -list` prints a package's matching names, then "ok <package> <time>".
if ! listing=$(go test -list '^Fuzz' "${pkgs[@]}"); then
  echo "fuzz: listing the fuzz targets failed" >&2
  exit 2
fi
targets=$(awk '/^Fuzz/ { names[n++] = $1; next }
  /^ok / { for (i = 0; i < n; i++) print $2, names[i]; n = 0 }' <<<"$listing")
if [ -z "$targets" ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 2
fi

failed=()
count=0
while read -r pkg name; do
  count=$((count + 1))
  echo "fuzz: $pkg $name for $dur"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$dur" "${par[@]}" "$pkg"; then
    failed+=("$pkg $name")
  fi
done <<<"$targets"

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} of $count targets failed:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "fuzz: all $count targets passed ($dur each)"
