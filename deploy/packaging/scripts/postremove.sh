#!/bin/sh
# After removal. A plain remove keeps the data, the config and the user, so a reinstall
# carries on where it stopped. `dpkg --purge` removes them: /var/lib/portpatrol (the
# SQLite store), the enable state, and the portpatrol user and group.
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ]; then
  if command -v deb-systemd-helper >/dev/null 2>&1; then
    deb-systemd-helper purge portpatrol.service >/dev/null 2>&1 || true
    deb-systemd-helper unmask portpatrol.service >/dev/null 2>&1 || true
  fi
  rm -rf /var/lib/portpatrol
  rmdir /etc/portpatrol 2>/dev/null || true
  if getent passwd portpatrol >/dev/null; then
    userdel portpatrol >/dev/null 2>&1 || true
  fi
  if getent group portpatrol >/dev/null; then
    groupdel portpatrol >/dev/null 2>&1 || true
  fi
fi
exit 0
