#!/usr/bin/env bash
# DICOMweb beside Orthanc 1.10 with its DICOMweb plugin (Debian's orthanc
# and orthanc-dicomweb), same machine, same data, same run, no storage
# compression on either: QIDO study searches over STUDIES small studies,
# the 300-slice CT's series metadata, its frames fetched by 4 concurrent
# clients, and stock OHIF's time to first image of that CT on each server.
# Results go to bench/README.md by hand; raw JSON stays in $WORK.
#   usage: bench/dicomweb/run.sh            (STUDIES=10000 CLIENTS=4 RUNS=20 OHIF_RUNS=5)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/bench/dicomweb"
CORPUS=${CORPUS:-$ROOT/bench/corpus}
STUDIES=${STUDIES:-10000}
CLIENTS=${CLIENTS:-4}
RUNS=${RUNS:-20}
OHIF_RUNS=${OHIF_RUNS:-5}
WORK=${WORK:-$(mktemp -d /tmp/bench-dicomweb.XXXX)}
TD_HTTP=18080 TD_DICOM=11180 OR_HTTP=18042 OR_DICOM=14242 OHIF_TD=13000 OHIF_OR=13001
PASSWORD=bench-admin-password
for tool in Orthanc node python3 dcmdump; do command -v $tool >/dev/null || { echo "needs $tool (apt-get install orthanc orthanc-dicomweb nodejs dcmtk)" >&2; exit 1; }; done
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || { echo "needs orthanc-dicomweb" >&2; exit 1; }
[ -d "$CORPUS/ct300" ] || "$ROOT/../shared/bench/gen_corpus.sh" "$CORPUS"
"$ROOT/tests/dicomweb/fetch-ohif.sh" >/dev/null
(cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && cargo build --release --quiet)
BIN="$ROOT/target/release/telediag"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
peak_rss_mb() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

echo "== data: $STUDIES studies, ct300 ($WORK)"
[ -d "$WORK/studies" ] || python3 "$HERE/make_studies.py" "$WORK/studies" "$STUDIES"
STUDY=$(dcmdump +P 0020,000d "$CORPUS/ct300/IM00001.dcm" | sed 's/.*\[\(.*\)\].*/\1/')
SERIES=$(dcmdump +P 0020,000e "$CORPUS/ct300/IM00001.dcm" | sed 's/.*\[\(.*\)\].*/\1/')

echo "== Telediag: direct import"
export TELEDIAG_ADMIN_PASSWORD=$PASSWORD
rm -rf "$WORK/telediag"
"$BIN" --data "$WORK/telediag" site add 基准医院 --ae BENCH >/dev/null
start=$(date +%s.%N)
"$BIN" --data "$WORK/telediag" import --site 基准医院 "$WORK/studies" "$CORPUS/ct300" >/dev/null
echo "import: $(echo "$(date +%s.%N) - $start" | bc) s"
TELEDIAG_PUBLIC_URL=http://127.0.0.1:$OHIF_TD RUST_LOG=warn "$BIN" --data "$WORK/telediag" serve --no-demo \
  --http-port $TD_HTTP --dicom-port $TD_DICOM >"$WORK/telediag.log" 2>&1 &
TD_PID=$!; pids+=($TD_PID)
wait_port $TD_HTTP
TOKEN=$(curl -s -XPOST "http://127.0.0.1:$TD_HTTP/api/login" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

echo "== Orthanc: REST import"
rm -rf "$WORK/orthanc"; mkdir -p "$WORK/orthanc"
cat >"$WORK/orthanc/config.json" <<JSON
{
  "Name": "bench", "StorageDirectory": "$WORK/orthanc/storage", "IndexDirectory": "$WORK/orthanc/index",
  "StorageCompression": false, "HttpPort": $OR_HTTP, "DicomPort": $OR_DICOM,
  "RemoteAccessAllowed": false, "AuthenticationEnabled": false, "SaveJobs": false,
  "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
  "DefaultEncoding": "Utf8",
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/", "EnableWado": false }
}
JSON
Orthanc "$WORK/orthanc/config.json" >"$WORK/orthanc.log" 2>&1 &
OR_PID=$!; pids+=($OR_PID)
wait_port $OR_HTTP
start=$(date +%s.%N)
python3 - "$OR_HTTP" "$WORK/studies" "$CORPUS/ct300" <<'PY'
import concurrent.futures, http.client, os, sys
port, dirs = int(sys.argv[1]), sys.argv[2:]
files = [os.path.join(d, f) for d in dirs for f in sorted(os.listdir(d))]
def post(chunk):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for path in chunk:
        c.request("POST", "/instances", open(path, "rb").read(), {"Content-Type": "application/dicom"})
        r = c.getresponse(); r.read()
        assert r.status == 200, (path, r.status)
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    list(pool.map(post, [files[i::4] for i in range(4)]))
PY
echo "import: $(echo "$(date +%s.%N) - $start" | bc) s"

echo "== QIDO, metadata, frames ($CLIENTS clients)"
python3 "$HERE/measure.py" --base "http://127.0.0.1:$TD_HTTP/dicom-web" --token "$TOKEN" --study "$STUDY" --series "$SERIES" \
  --clients "$CLIENTS" --runs "$RUNS" >"$WORK/telediag.json"
python3 "$HERE/measure.py" --base "http://127.0.0.1:$OR_HTTP/dicom-web" --study "$STUDY" --series "$SERIES" \
  --clients "$CLIENTS" --runs "$RUNS" >"$WORK/orthanc.json"

echo "== OHIF: time to first image of ct300, $OHIF_RUNS openings each"
node "$ROOT/tests/dicomweb/ohif.mjs" --ohif "$ROOT/sample-data/ohif" --port $OHIF_TD --dicomweb "http://127.0.0.1:$OHIF_TD/dicom-web" \
  --proxy "http://127.0.0.1:$TD_HTTP" --token "$TOKEN" --study "$STUDY" --repeat "$OHIF_RUNS" --name telediag --screenshots "$WORK" >"$WORK/telediag-ohif.json"
node "$ROOT/tests/dicomweb/ohif.mjs" --ohif "$ROOT/sample-data/ohif" --port $OHIF_OR --dicomweb "http://127.0.0.1:$OHIF_OR/dicom-web" \
  --proxy "http://127.0.0.1:$OR_HTTP" --study "$STUDY" --repeat "$OHIF_RUNS" --name orthanc --screenshots "$WORK" >"$WORK/orthanc-ohif.json"

echo "== peak RSS: Telediag $(peak_rss_mb $TD_PID) MB, Orthanc $(peak_rss_mb $OR_PID) MB"
python3 - "$WORK" <<'PY'
import json, statistics, sys
w = sys.argv[1]
t, o = (json.load(open(f"{w}/{n}.json")) for n in ("telediag", "orthanc"))
def ratio(a, b): return f"{b / a:.1f}×" if a else "-"
print(f"{'':34} {'Telediag':>12} {'Orthanc':>12} {'ratio':>7}")
for name in t["qido"]:
    a, b = t["qido"][name], o["qido"][name]
    print(f"QIDO {name:29} {a['median_ms']:>9.1f} ms {b['median_ms']:>9.1f} ms {ratio(a['median_ms'], b['median_ms']):>7}   matches {a['matches']}/{b['matches']}")
a, b = t["metadata"], o["metadata"]
print(f"{'series metadata (first)':34} {a['first_ms']:>9.0f} ms {b['first_ms']:>9.0f} ms {ratio(a['first_ms'], b['first_ms']):>7}")
print(f"{'series metadata (median)':34} {a['median_ms']:>9.0f} ms {b['median_ms']:>9.0f} ms {ratio(a['median_ms'], b['median_ms']):>7}   {a['bytes']}/{b['bytes']} bytes")
a, b = t["frames"], o["frames"]
print(f"{'frames/s, ' + str(a['clients']) + ' clients':34} {a['frames_per_s']:>12} {b['frames_per_s']:>12} {a['frames_per_s'] / b['frames_per_s']:>6.1f}×   statuses {a['statuses']}/{b['statuses']}")
for n in ("telediag", "orthanc"):
    d = json.load(open(f"{w}/{n}-ohif.json"))
    times = [s["firstImageMs"] for s in d["studies"]]
    ok = all(x is not None for x in times)
    print(f"OHIF first image, {n:10} median {statistics.median(times) if ok else 'FAILED'} ms of {times}; errors {len(d['errors'])}")
PY
