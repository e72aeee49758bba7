#!/usr/bin/env bash
# C-STORE ingest of one corpus on the scale-out engines, beside Orthanc, in
# one run: every receiver starts empty every round (a fresh database, a
# fresh bucket, empty data directories).
#
#   telediag-sqlite   `telediag serve`: SQLite + local files (the default)
#   telediag-pg       `telediag serve`: PostgreSQL + local files
#   telediag-pg-s3    `telediag serve`: PostgreSQL + an S3 bucket (moto_server)
#   telediag-1gw      `telediag gateway` + `telediag worker` on PostgreSQL + S3
#   telediag-2gw      two `telediag gateway`s + one worker on PostgreSQL + S3,
#                     the associations split between the two gateways
#   telediag-1gw-pg   `telediag gateway` + `telediag worker` on PostgreSQL + local files
#   telediag-2gw-pg   two gateways + one worker on PostgreSQL, sharing one
#                     data directory's objects (each its own staging)
#   moto-put          boto3 PUTting the corpus into moto on as many threads
#                     as associations: the bucket's own ceiling
#   orthanc-sqlite    Orthanc with its default SQLite index
#   orthanc-pg        Orthanc with orthanc-postgresql's index plugin
#
# usage: bench/scaleout/ingest.sh CORPUS_DIR [associations=1] [rounds=3]
# needs: target/release/telediag, dcmtk, postgresql, moto_server, orthanc,
# orthanc-postgresql. Prints one line per receiver and round, then medians.
set -uo pipefail
export TCP_NODELAY=1
CORPUS=$(cd "${1:?corpus dir}" && pwd); PAR=${2:-1}; ROUNDS=${3:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${TELEDIAG_BIN:-"$HERE/../../target/release/telediag"}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 2; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
W=$(mktemp -d); chmod 755 "$W"
BYTES=$(du -sb "$CORPUS" | cut -f1); N=$(find "$CORPUS" -type f | wc -l)
mkdir -p "$W/parts" "$W/logs"; find "$CORPUS" -type f | sort > "$W/list"; split -n r/"$PAR" "$W/list" "$W/parts/p."
PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done; kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  PIDS=(); }
# The postmaster is runuser's child, not ours: stopped by the PID it wrote.
stop_servers() { [ -n "$S3_PID" ] && kill "$S3_PID" 2>/dev/null
  local pid; pid=$(head -1 "$W/pg/data/postmaster.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then kill -INT "$pid"; for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; fi; }
trap 'stop_all; stop_servers; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
wait_port() { for _ in $(seq 1 300); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

# PostgreSQL: one cluster for the run (fsync on, as a centre runs it), a
# fresh database per round. moto: restarted per round (it keeps objects in memory).
PGPORT=15432; S3PORT=15000; S3_PID=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$W/pg"; [ "$(id -u)" = 0 ] && chown postgres "$W/pg"
as_pg "$PGBIN/initdb" --auth=trust --username=postgres -D "$W/pg/data" >/dev/null || exit 1
as_pg "$PGBIN/postgres" -D "$W/pg/data" -h 127.0.0.1 -p $PGPORT -k "$W/pg" -c max_connections=300 >"$W/pg.log" 2>&1 &
wait_port $PGPORT
fresh_db() { as_pg "$PGBIN/dropdb" -h 127.0.0.1 -p $PGPORT -U postgres --if-exists "$1" 2>/dev/null; as_pg "$PGBIN/createdb" -h 127.0.0.1 -p $PGPORT -U postgres "$1"; }
fresh_bucket() { [ -n "$S3_PID" ] && { kill "$S3_PID"; wait "$S3_PID" 2>/dev/null; }
  moto_server -H 127.0.0.1 -p $S3PORT >"$W/moto.log" 2>&1 & S3_PID=$!; wait_port $S3PORT
  curl -sf -X PUT "http://127.0.0.1:$S3PORT/bench" >/dev/null; }

telediag_env() { # the environment of a Telediag process on PostgreSQL + S3
  echo TELEDIAG_DATABASE_URL=postgres://postgres@127.0.0.1:$PGPORT/telediag TELEDIAG_S3_BUCKET=bench \
    TELEDIAG_S3_ENDPOINT=http://127.0.0.1:$S3PORT TELEDIAG_S3_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench; }
run_telediag() { # run_telediag DATA ENV ARGS... (in the background)
  local data=$1 env=$2; shift 2
  env $env RUST_LOG=warn "$BIN" --data "$data" "$@" >>"$W/logs/telediag.log" 2>&1 & PIDS+=($!); }

start() { # start NAME PORT -> starts the receiver(s); sets PORTS (one per gateway), AET
  local name=$1 port=$2 data="$W/data.$1"; rm -rf "$data"*; mkdir -p "$data"; AET=TELEDIAG; PORTS=("$port")
  case $name in
    telediag-sqlite)
      "$BIN" --data "$data" site add Bench --ae BENCH >/dev/null
      run_telediag "$data" "" serve --no-demo --dicom-port "$port" --http-port 0 ;;
    telediag-pg)
      fresh_db telediag; local env="TELEDIAG_DATABASE_URL=postgres://postgres@127.0.0.1:$PGPORT/telediag"
      env $env "$BIN" --data "$data" site add Bench --ae BENCH >/dev/null
      run_telediag "$data" "$env" serve --no-demo --dicom-port "$port" --http-port 0 ;;
    telediag-1gw-pg | telediag-2gw-pg)
      fresh_db telediag; local env="TELEDIAG_DATABASE_URL=postgres://postgres@127.0.0.1:$PGPORT/telediag"
      env $env "$BIN" --data "$data" site add Bench --ae BENCH >/dev/null
      run_telediag "$data" "$env" gateway --dicom-port "$port"
      if [ $name = telediag-2gw-pg ]; then PORTS=("$port" "$((port + 50))"); run_telediag "$data" "$env" gateway --dicom-port "$((port + 50))"; fi
      run_telediag "$data" "$env" worker ;;
    moto-put) fresh_bucket; PORTS=() ;;
    telediag-pg-s3 | telediag-1gw | telediag-2gw)
      fresh_db telediag; fresh_bucket; local env; env=$(telediag_env)
      env $env "$BIN" --data "$data" site add Bench --ae BENCH >/dev/null 2>&1
      case $name in
        telediag-pg-s3) run_telediag "$data" "$env" serve --no-demo --dicom-port "$port" --http-port 0 ;;
        telediag-1gw) run_telediag "$data.g1" "$env" gateway --dicom-port "$port"
          run_telediag "$data.w" "$env" worker ;;
        telediag-2gw) PORTS=("$port" "$((port + 50))")
          run_telediag "$data.g1" "$env" gateway --dicom-port "$port"
          run_telediag "$data.g2" "$env" gateway --dicom-port "$((port + 50))"
          run_telediag "$data.w" "$env" worker ;;
      esac ;;
    orthanc-sqlite | orthanc-pg)
      AET=ORTHANC; local plugins="[]" pg=""
      if [ "$name" = orthanc-pg ]; then
        fresh_db orthanc; plugins='["/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"]'
        pg=', "PostgreSQL": { "EnableIndex": true, "EnableStorage": false, "Host": "127.0.0.1", "Port": '$PGPORT', "Database": "orthanc", "Username": "postgres", "Password": "", "Lock": false }'
      fi
      cat > "$W/orthanc.json" <<JSON
{ "Name": "bench", "StorageDirectory": "$data", "IndexDirectory": "$data",
  "DicomAet": "ORTHANC", "DicomPort": $port, "HttpPort": 18042, "RemoteAccessAllowed": false,
  "DicomCheckCalledAet": false, "UnknownSopClassAccepted": true, "Plugins": $plugins,
  "DicomThreadsCount": 8, "StorageCompression": false, "AuthenticationEnabled": false $pg }
JSON
      Orthanc "$W/orthanc.json" >"$W/logs/orthanc.log" 2>&1 & PIDS+=($!) ;;
  esac
  for p in "${PORTS[@]}"; do wait_port "$p"; done
}
put_all() { # boto3 PUTs of every file, one thread per part
  python3 - "$W/parts" $S3PORT <<'PY'
import os, sys, boto3, concurrent.futures
parts, port = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id="bench", aws_secret_access_key="bench")
def put(part):
    for path in open(os.path.join(parts, part)).read().split():
        with open(path, "rb") as f:
            s3.put_object(Bucket="bench", Key=path.lstrip("/"), Body=f.read())
with concurrent.futures.ThreadPoolExecutor(len(os.listdir(parts))) as pool:
    list(pool.map(put, os.listdir(parts)))
PY
}
push() { # push -> seconds and ok/FAIL; association i goes to gateway i mod #PORTS
  local t0 t1 rc=0 pids=() i=0
  t0=$(date +%s.%N)
  if [ ${#PORTS[@]} = 0 ]; then put_all || rc=1; t1=$(date +%s.%N)
    echo "$(echo "$t1 - $t0" | bc -l) $([ $rc = 0 ] && echo ok || echo FAIL)"; return; fi
  for p in "$W"/parts/p.*; do
    local port=${PORTS[$((i % ${#PORTS[@]}))]}; i=$((i + 1))
    storescu -R -aec "$AET" -aet BENCH 127.0.0.1 "$port" $(cat "$p") >"$W/logs/$(basename "$p").log" 2>&1 & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  t1=$(date +%s.%N)
  echo "$(echo "$t1 - $t0" | bc -l) $([ $rc = 0 ] && echo ok || echo FAIL)"
}
PEERS=${PEERS:-"telediag-sqlite telediag-pg telediag-1gw-pg telediag-2gw-pg telediag-pg-s3 telediag-1gw telediag-2gw moto-put orthanc-sqlite orthanc-pg"}
printf "%-16s %5s %9s %9s %s\n" receiver round inst/s MB/s ok
for r in $(seq 1 "$ROUNDS"); do
  for peer in $PEERS; do
    port=$((11300 + r)); start "$peer" "$port"; sleep 0.5
    read -r secs ok < <(push)
    stop_all
    awk -v p="$peer" -v r="$r" -v n="$N" -v b="$BYTES" -v d="$secs" -v ok="$ok" \
      'BEGIN{printf "%-16s %5d %9.1f %9.1f %s\n", p, r, n/d, b/d/1e6, ok}' | tee -a "$W/results"
  done
done
for peer in $PEERS; do
  grep "^$peer " "$W/results" | awk '{print $3}' | sort -n | awk -v p="$peer" '{a[NR]=$1} END{printf "median %-16s %9.1f inst/s\n", p, a[int((NR+1)/2)]}'
done
