#!/bin/sh
# Before removal (.deb: "remove"; .rpm: 0): stop and disable the service. An upgrade
# (.deb "upgrade", .rpm 1) leaves it running; postinstall restarts it on the new binary.
set -e
case "$1" in
  remove|0) ;;
  *) exit 0 ;;
esac
if [ -d /run/systemd/system ]; then
  systemctl stop portpatrol.service >/dev/null 2>&1 || true
fi
if command -v deb-systemd-helper >/dev/null 2>&1; then
  deb-systemd-helper disable portpatrol.service >/dev/null 2>&1 || true
elif command -v systemctl >/dev/null 2>&1; then
  systemctl disable portpatrol.service >/dev/null 2>&1 || true
fi
exit 0
