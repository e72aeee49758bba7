#!/usr/bin/env bash
# The index's ingest rate as it grows from empty to a million instances, on
# SQLite and on PostgreSQL, in one run (crates/archive/examples/index_growth.rs:
# a sample indexed as C-STORE ingest indexes, every 50,000 instances; the
# rest filled through the direct import path), plotted as index_growth.png.
#   usage: bench/scaleout/index_growth.sh [total=1000000] [every=50000] [sample=3000]
#   ENGINES="sqlite postgres" (the default) or either alone; the plot reads every TSV there.
#   PG_SHARED_BUFFERS=2GB sizes PostgreSQL's buffer cache (default: its own, 128MB); a
#   run with it set writes index_growth_postgres_<size>.tsv beside the default's.
# needs: postgresql, python3 with matplotlib (for the plot).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
TOTAL=${1:-1000000}; EVERY=${2:-50000}; SAMPLE=${3:-3000}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
(cd "$ROOT" && cargo build --release --example index_growth -p telediag-archive)
BIN=$ROOT/target/release/examples/index_growth
W=$(mktemp -d); chmod 755 "$W"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$W"
as_pg "$PGBIN/initdb" --auth=trust --username=postgres -D "$W/pg" >/dev/null
# fsync on, as a centre runs it; the index's commits are redoable, its sync points durable.
as_pg "$PGBIN/postgres" -D "$W/pg" -h 127.0.0.1 -p 15433 -k "$W" ${PG_SHARED_BUFFERS:+-c shared_buffers=$PG_SHARED_BUFFERS} >"$W/pg.log" 2>&1 &
# The postmaster is runuser's child: stopped by the PID it wrote.
stop_pg() { local pid; pid=$(head -1 "$W/pg/postmaster.pid" 2>/dev/null || true)
  [ -n "$pid" ] && { kill -INT "$pid"; for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; }
  rm -rf "$W"; }
trap stop_pg EXIT
for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/15433) 2>/dev/null && break; sleep 0.1; done
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p 15433 -U postgres growth
mkdir -p "$W/sqlite"
for engine in ${ENGINES:-sqlite postgres}; do
  echo "== $engine"
  case $engine in
    sqlite) url="sqlite://$W/sqlite/index.db" ;;
    postgres) url="postgres://postgres@127.0.0.1:15433/growth" ;;
  esac
  out="$HERE/index_growth_$engine.tsv"
  [ "$engine" = postgres ] && [ -n "${PG_SHARED_BUFFERS:-}" ] && out="$HERE/index_growth_postgres_$PG_SHARED_BUFFERS.tsv"
  "$BIN" "$url" "$TOTAL" "$EVERY" "$SAMPLE" | tee "$out"
done
du -sh "$W/sqlite" "$W/pg"
python3 "$HERE/plot_index_growth.py" "$HERE/index_growth.png" "$HERE"/index_growth_*.tsv
