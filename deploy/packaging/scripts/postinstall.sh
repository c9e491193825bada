#!/bin/sh
# After install or upgrade (.deb: "configure"; .rpm: 1 on install, 2 on upgrade): the
# system user, the state directory, and the unit enabled but not started.
set -e

upgrade=no
case "$1" in
  configure) [ -n "$2" ] && upgrade=yes ;;
  abort-*) exit 0 ;;
  [0-9]*) [ "$1" -gt 1 ] && upgrade=yes ;;
esac

if ! getent passwd portpatrol >/dev/null; then
  useradd --system --user-group --home-dir /var/lib/portpatrol --no-create-home \
    --shell /usr/sbin/nologin --comment "portpatrol daemon" portpatrol
fi
# The state directory is the user's own and nobody else's; an upgrade keeps its data.
install -d -o portpatrol -g portpatrol -m 0700 /var/lib/portpatrol
chown portpatrol:portpatrol /var/lib/portpatrol
chmod 0700 /var/lib/portpatrol
# The config may hold tokens and receiver secrets: readable by root and the daemon.
chgrp portpatrol /etc/portpatrol/portpatrol.yaml
chmod 0640 /etc/portpatrol/portpatrol.yaml

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
# Enable at boot on first install (an upgrade keeps the administrator's choice). This
# works with or without a running systemd (containers, image builds, chroots).
if command -v deb-systemd-helper >/dev/null 2>&1; then
  deb-systemd-helper unmask portpatrol.service >/dev/null 2>&1 || true
  if deb-systemd-helper --quiet was-enabled portpatrol.service; then
    deb-systemd-helper enable portpatrol.service >/dev/null 2>&1 || true
  else
    deb-systemd-helper update-state portpatrol.service >/dev/null 2>&1 || true
  fi
elif [ "$upgrade" = no ] && command -v systemctl >/dev/null 2>&1; then
  systemctl enable portpatrol.service >/dev/null 2>&1 || true
fi
# Never started here: the administrator reviews /etc/portpatrol/portpatrol.yaml first.
# An upgrade restarts it only if it was running, on the new binary.
if [ "$upgrade" = yes ] && [ -d /run/systemd/system ]; then
  systemctl try-restart portpatrol.service >/dev/null 2>&1 || true
fi
if [ "$upgrade" = no ]; then
  echo "portpatrol: enabled, not started. Edit /etc/portpatrol/portpatrol.yaml, then: systemctl start portpatrol"
fi
exit 0
