#!/usr/bin/env bash
# Runs a command beside a PostgreSQL server and an S3-compatible server
# (moto), started for it and stopped after: TELEDIAG_TEST_POSTGRES (a server
# URL without a database) and TELEDIAG_TEST_S3 (the endpoint) name them, and
# every test server (tests/common) then takes a database and a bucket of its
# own there. `.ci/run` runs the binary-level suite this way a second time.
#   usage: tests/with-shared-backends.sh COMMAND...
set -euo pipefail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }
command -v moto_server >/dev/null || { echo "moto_server is not installed (pip install 'moto[server]')" >&2; exit 2; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "$2 did not listen on port $1" >&2; return 1; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

dir=$(mktemp -d); chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
pg_port=$(free_port); s3_port=$(free_port)
as_postgres "$PGBIN/initdb" --auth=trust --username=postgres --encoding=UTF8 --locale=C --no-sync -D "$dir/data" >/dev/null
# Throwaway data: no fsync; every test server's processes may hold up to ~45 connections.
as_postgres "$PGBIN/postgres" -D "$dir/data" -h 127.0.0.1 -p "$pg_port" -k "$dir" \
  -c fsync=off -c full_page_writes=off -c max_connections=500 >"$dir/postgres.log" 2>&1 &
moto_server -H 127.0.0.1 -p "$s3_port" >"$dir/moto.log" 2>&1 &
s3_pid=$!
# The postmaster is runuser's child, not ours: it is stopped by the PID it
# wrote (a fast shutdown), and waited for by polling.
stop_servers() {
  local pid; pid=$(head -1 "$dir/data/postmaster.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill -INT "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  kill "$s3_pid" 2>/dev/null; wait "$s3_pid" 2>/dev/null
  rm -rf "$dir"
}
trap stop_servers EXIT
wait_port "$pg_port" postgres
wait_port "$s3_port" moto_server
echo "PostgreSQL on 127.0.0.1:$pg_port, S3 (moto) on 127.0.0.1:$s3_port"
TELEDIAG_TEST_POSTGRES=postgres://postgres@127.0.0.1:$pg_port TELEDIAG_TEST_S3=http://127.0.0.1:$s3_port "$@"
