#!/usr/bin/env bash
# Starts Telediag's DICOM receiver for ../shared/bench/ingest_peers.sh:
# an empty data directory "$DATA", DICOM on "$PORT", called AE TELEDIAG,
# accepting calling AE BENCH. HTTP listens on a free port (0).
#   OURS_CMD=bench/ingest-server.sh ../shared/bench/ingest_peers.sh CORPUS N
# The server's log is appended to $SERVER_LOG (default
# /tmp/telediag-bench.log); its "stopped" line carries the peak RSS.
set -euo pipefail
: "${DATA:?set DATA to an empty directory}" "${PORT:?set PORT}"
BIN=${TELEDIAG_BIN:-"$(cd "$(dirname "$0")/.." && pwd)/target/release/telediag"}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 2; }
export RUST_LOG=${RUST_LOG:-warn,telediag=info}
"$BIN" --data "$DATA" site add Bench --ae BENCH >/dev/null
exec "$BIN" --data "$DATA" serve --no-demo --dicom-port "$PORT" --http-port 0 --ae-title TELEDIAG \
  2>>"${SERVER_LOG:-/tmp/telediag-bench.log}"
