#!/usr/bin/env bash
# Starts every local service the integration tests use that is not already answering:
# PostgreSQL, MariaDB, Redis, NATS (JetStream), RabbitMQ and Mosquitto, with the
# commands this machine's image uses. Safe to run again; it only starts what is down.
set -u

up() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_port() { # name port seconds
  for _ in $(seq 1 "$3"); do up "$2" && return 0; sleep 1; done
  echo "services: $1 did not come up on 127.0.0.1:$2" >&2
  return 1
}

start() { # name port command...
  local name=$1 port=$2; shift 2
  if up "$port"; then echo "services: $name up on :$port"; return 0; fi
  if ! command -v "$1" >/dev/null 2>&1; then echo "services: $name not installed ($1 missing)" >&2; return 1; fi
  echo "services: starting $name"
  "$@" >/dev/null 2>&1 || true
  wait_port "$name" "$port" 60 && echo "services: $name up on :$port"
}

rc=0
start postgresql 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start' || rc=1
start mariadb 3306 start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || rc=1
start redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || rc=1
start nats 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || rc=1
start rabbitmq 5672 rabbitmq-server -detached || rc=1
start mosquitto 1883 mosquitto -d -c /etc/mosquitto/mosquitto.conf || rc=1
exit $rc
