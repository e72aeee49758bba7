#!/usr/bin/env bash
# The centre under load, in one run (issue "safe to go live"):
#   - 32 DICOM associations pushing a study in a loop (storescu);
#   - 200 HTTP clients browsing the study list, study details and
#     thumbnails (wrk, with a session token);
#   - a flood of idle TCP connections to the DICOM port (500 held open,
#     reopened as soon as they are closed) from 127.0.0.2;
#   - a flood of wrong passwords to /api/login from 127.0.0.3;
# the floods come from other loopback addresses, as attackers are other
# hosts than the hospitals and readers (127.0.0.1).
# for DURATION seconds (default 120). Reports stores done and failed, HTTP
# latency percentiles and errors, logins refused, idle connections opened,
# and the server's peak RSS.
#
#   cargo build --release && bench/load.sh [DURATION] [CORPUS_DIR]
#
# CORPUS_DIR defaults to bench/corpus/ct40: 40 copies of pydicom-data's
# 693_UNCI CT slice (sample-data/fetch-pydicom.sh) with fresh UIDs, made
# here when missing; any folder of Part 10 files will do. After the first
# round the pushes are duplicates: the whole receive path (staging, hash,
# byte comparison, acknowledgement) without new files. Needs dcmtk, wrk,
# curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-120}
CORPUS=${2:-bench/corpus/ct40}
BIN=${TELEDIAG_BIN:-target/release/telediag}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 2; }
if [ ! -d "$CORPUS" ] && [ "$CORPUS" = bench/corpus/ct40 ]; then
  source=sample-data/pydicom/pydicom-data/693_UNCI.dcm
  [ -f "$source" ] || sample-data/fetch-pydicom.sh
  mkdir -p "$CORPUS"; root=1.2.826.0.1.3680043.10.1.$RANDOM$RANDOM
  for i in $(seq 1 40); do
    f="$CORPUS/IM$(printf %05d "$i").dcm"; cp "$source" "$f"
    dcmodify -nb -q -m "(0020,000D)=$root.1" -m "(0020,000E)=$root.2" -m "(0008,0018)=$root.3.$i" -i "(0020,0013)=$i" "$f"
  done
fi
[ -d "$CORPUS" ] || { echo "no corpus at $CORPUS" >&2; exit 2; }
for tool in storescu wrk curl python3; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }; done

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])'; }
DICOM=$(free_port); HTTP=$(free_port)
export TELEDIAG_ADMIN_PASSWORD=load-test-admin RUST_LOG=warn,telediag=info
"$BIN" --data "$work/data" site add 负载县医院 --ae LOAD >/dev/null
"$BIN" --data "$work/data" serve --no-demo --dicom-port "$DICOM" --http-port "$HTTP" 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do curl -sf "localhost:$HTTP/api/health" >/dev/null && break; sleep 0.1; done

# One push first, so there are studies and thumbnails to browse.
storescu -aet LOAD -aec TELEDIAG 127.0.0.1 "$DICOM" "$CORPUS"/*.dcm
token=$(curl -s -X POST "localhost:$HTTP/api/login" -H 'content-type: application/json' \
  -d '{"username":"admin","password":"load-test-admin"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
sleep 3 # thumbnails
curl -s "localhost:$HTTP/api/studies?limit=50" -H "authorization: Bearer $token" > "$work/studies.json"
python3 - "$work" "$HTTP" "$token" <<'PY'
import json, sys, urllib.request
work, port, token = sys.argv[1], sys.argv[2], sys.argv[3]
studies = json.load(open(f"{work}/studies.json"))["studies"]
paths = ["/api/studies?limit=50", "/api/requests", "/api/dashboard"]
for s in studies:
    uid = s["study_uid"]
    paths.append(f"/api/studies/{uid}")
    req = urllib.request.Request(f"http://localhost:{port}/api/studies/{uid}", headers={"authorization": f"Bearer {token}"})
    detail = json.load(urllib.request.urlopen(req))
    for series in detail["series"]:
        for inst in series["instances"][:20]:
            paths.append(f"/api/instances/{inst['sop_instance_uid']}/thumbnail")
open(f"{work}/paths.txt", "w").write("\n".join(paths) + "\n")
print(f"{len(paths)} paths to browse")
PY

echo "load: ${DURATION}s of 32 pushing associations, 200 browsing clients, 500 idle sockets, wrong passwords"
end=$((SECONDS + DURATION))
for i in $(seq 32); do
  ( ok=0; failed=0
    while [ $SECONDS -lt $end ]; do
      if storescu -aet LOAD -aec TELEDIAG 127.0.0.1 "$DICOM" "$CORPUS"/*.dcm 2>>"$work/push-$i.err"; then ok=$((ok+1)); else failed=$((failed+1)); fi
    done
    echo "$ok $failed" > "$work/push-$i.result" ) &
done
python3 bench/load/idle_flood.py 127.0.0.1 "$DICOM" 500 "$DURATION" 127.0.0.2 > "$work/idle.result" &
( n401=0; n429=0; other=0
  while [ $SECONDS -lt $end ]; do
    code=$(curl -s --interface 127.0.0.3 -o /dev/null -w '%{http_code}' -X POST "127.0.0.1:$HTTP/api/login" -H 'content-type: application/json' \
      -d "{\"username\":\"doctor$RANDOM\",\"password\":\"wrong\"}")
    case $code in 401) n401=$((n401+1));; 429) n429=$((n429+1));; *) other=$((other+1)); echo "$code" >> "$work/logins.other";; esac
  done
  echo "$n401 $n429 $other" > "$work/logins.result" ) &
TOKEN=$token PATHS="$work/paths.txt" wrk -t2 -c200 -d"${DURATION}s" --latency -s bench/load/browse.lua "http://localhost:$HTTP" > "$work/wrk.txt"
wait $(jobs -p | grep -v "^$server$") 2>/dev/null || true

pushes=0; push_failed=0
for f in "$work"/push-*.result; do read -r a b < "$f"; pushes=$((pushes+a)); push_failed=$((push_failed+b)); done
files=$(ls "$CORPUS"/*.dcm | wc -l)
store_errors=$(cat "$work"/push-*.err | grep -c '^[EF]:' || true)
first_error=$(cat "$work"/push-*.err | grep -m1 '^[EF]:' || true)
read -r n401 n429 other < "$work/logins.result"
rss=$(awk '/VmHWM/ {print $2}' /proc/$server/status)
kill -TERM $server; wait $server 2>/dev/null || true
echo "---"
echo "DICOM: $pushes pushes of $files objects by 32 associations ($((pushes * files)) C-STOREs), $push_failed pushes failed, $store_errors storescu errors${first_error:+ (first: $first_error)}"
grep -E "Requests/sec|Latency |50%|90%|99%|Non-2xx|Socket errors|requests in" "$work/wrk.txt" | sed 's/^/HTTP: /'
echo "logins: $n401 wrong passwords answered 401, $n429 answered 429 (rate limit), $other other$( [ -f "$work/logins.other" ] && echo " (HTTP $(sort "$work/logins.other" | uniq -c | xargs))")"
echo "idle: $(cat "$work/idle.result") idle connections opened against the DICOM port"
echo "peak RSS: $((rss / 1024)) MiB"
echo "associations refused as busy: $(grep -c 'association refused: too many' "$work/server.log" || true)"
echo "HTTP requests that failed in the server (5xx): $(grep -c 'request failed' "$work/server.log" || true)"
cp "$work/server.log" "${SERVER_LOG:-/tmp/telediag-load.log}"
