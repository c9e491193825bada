#!/usr/bin/env bash
# Installs the Debian packages the tests use that a fresh machine lacks: nmap (scanner
# comparison), nftables and iproute2 (doctor tests in network namespaces), lsof and
# openssh-server (real peers for benchmarks and the SSH probe), chromium (dashboard
# tests in a real browser), etcd-server (the etcd behind the Kubernetes API server that
# internal/kube's integration tests start), sqlite3 (test/faults holds a lock on the
# store from another process), skopeo, umoci, podman and runc (test/install reads and
# runs the OCI image with them). Only what is missing is installed; without root it says
# what to install and carries on. memcached is the real server of the memcached probe's
# tests.
set -u
want=(nmap nft ip lsof ss etcd sqlite3 skopeo umoci podman runc memcached)
pkgs=(nmap nftables iproute2 lsof iproute2 etcd-server sqlite3 skopeo umoci podman runc memcached)
missing=()
for i in "${!want[@]}"; do
  command -v "${want[$i]}" >/dev/null 2>&1 || missing+=("${pkgs[$i]}")
done
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-dejavu-core)
[ ${#missing[@]} -eq 0 ] && { echo "deps: all present"; exit 0; }
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 0
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
