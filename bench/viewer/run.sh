#!/usr/bin/env bash
# The web application's viewer beside stock OHIF reading the same studies
# from Orthanc 1.10's DICOMweb plugin, headless Chromium on loopback, one
# run: time to the first image of the 300-slice CT and of a 7 MB CR
# (the shared corpus's cr12, pydicom-data's RG1: MONOCHROME1 1841×1955,
# Pixel Spacing 0\0), time until the whole CT
# stack has arrived, and requestAnimationFrame frame rate while the loaded
# stack is scrolled. Each opening in a fresh browser context.
# Results go to bench/README.md by hand; raw JSON stays in $WORK.
#   usage: bench/viewer/run.sh              (RUNS=5)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CORPUS=${CORPUS:-$ROOT/bench/corpus}
RUNS=${RUNS:-5}
WORK=${WORK:-$(mktemp -d /tmp/bench-viewer.XXXX)}
CR=${CR:-$CORPUS/cr12/IM00001.dcm}
TD_HTTP=18090 TD_DICOM=11190 OR_HTTP=18043 OR_DICOM=14243 OHIF_OR=13002
PASSWORD=bench-admin-password
for tool in Orthanc node python3 dcmdump; do command -v $tool >/dev/null || { echo "needs $tool (apt-get install orthanc orthanc-dicomweb nodejs dcmtk)" >&2; exit 1; }; done
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || { echo "needs orthanc-dicomweb" >&2; exit 1; }
[ -d "$CORPUS/ct300" ] || "$ROOT/../shared/bench/gen_corpus.sh" "$CORPUS"
"$ROOT/tests/dicomweb/fetch-ohif.sh" >/dev/null
(cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run build --workspace viewer >/dev/null 2>&1 && cargo build --release --quiet)
BIN="$ROOT/target/release/telediag"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
uid() { dcmdump +P "$1" "$2" | sed 's/.*\[\(.*\)\].*/\1/'; }
CT_STUDY=$(uid 0020,000d "$CORPUS/ct300/IM00001.dcm")
CR_STUDY=$(uid 0020,000d "$CR")
mkdir -p "$WORK/cr" && cp "$CR" "$WORK/cr/"

echo "== Telediag ($WORK)"
export TELEDIAG_ADMIN_PASSWORD=$PASSWORD
rm -rf "$WORK/telediag"
"$BIN" --data "$WORK/telediag" site add 基准医院 --ae BENCH >/dev/null
"$BIN" --data "$WORK/telediag" import --site 基准医院 "$CORPUS/ct300" "$WORK/cr" >/dev/null
TELEDIAG_WEB_APP="$ROOT/viewer/dist" TELEDIAG_STUDY_STABLE_SECS=1 RUST_LOG=warn "$BIN" --data "$WORK/telediag" serve --no-demo \
  --http-port $TD_HTTP --dicom-port $TD_DICOM >"$WORK/telediag.log" 2>&1 &
pids+=($!)
wait_port $TD_HTTP
TOKEN=$(curl -s -XPOST "http://127.0.0.1:$TD_HTTP/api/login" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
request_of() {
  for _ in $(seq 120); do
    id=$(curl -s "http://127.0.0.1:$TD_HTTP/api/requests?limit=500" -H "authorization: Bearer $TOKEN" |
      python3 -c "import json,sys; print(next((r['id'] for r in json.load(sys.stdin) if r['study_uid'] == '$1'), ''))")
    [ -n "$id" ] && { echo "$id"; return; }
    sleep 0.5
  done
  echo "no read request for study $1" >&2; exit 1
}
CT_REQUEST=$(request_of "$CT_STUDY")
CR_REQUEST=$(request_of "$CR_STUDY")

echo "== Orthanc"
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
pids+=($!)
wait_port $OR_HTTP
for f in "$CORPUS"/ct300/* "$CR"; do
  curl -s -o /dev/null -w '%{http_code}\n' -XPOST "http://127.0.0.1:$OR_HTTP/instances" -H 'content-type: application/dicom' --data-binary @"$f"
done | sort | uniq -c

M="$ROOT/bench/viewer/measure.mjs"
echo "== the CT: $RUNS openings each, scrolling 299 images"
node "$M" --viewer telediag --url "http://127.0.0.1:$TD_HTTP" --login "admin:$PASSWORD" --open "/read/$CT_REQUEST" \
  --frames 300 --runs "$RUNS" --scroll 299 --screenshots "$WORK" --name ct >"$WORK/telediag-ct.json"
node "$M" --viewer ohif --ohif "$ROOT/sample-data/ohif" --port $OHIF_OR --proxy "http://127.0.0.1:$OR_HTTP" --study "$CT_STUDY" \
  --frames 300 --runs "$RUNS" --scroll 299 --screenshots "$WORK" --name ct >"$WORK/ohif-ct.json"
echo "== the 7 MB CR: $RUNS openings each"
node "$M" --viewer telediag --url "http://127.0.0.1:$TD_HTTP" --login "admin:$PASSWORD" --open "/read/$CR_REQUEST" \
  --frames 1 --runs "$RUNS" --screenshots "$WORK" --name cr >"$WORK/telediag-cr.json"
node "$M" --viewer ohif --ohif "$ROOT/sample-data/ohif" --port $OHIF_OR --proxy "http://127.0.0.1:$OR_HTTP" --study "$CR_STUDY" \
  --frames 1 --runs "$RUNS" --timeout 30 --screenshots "$WORK" --name cr >"$WORK/ohif-cr.json"

python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
d = {n: json.load(open(f"{w}/{n}.json")) for n in ("telediag-ct", "ohif-ct", "telediag-cr", "ohif-cr")}
def row(name, key, unit, a, b):
    va, vb = d[a]["medians"][key], d[b]["medians"][key]
    ratio = f"{va / vb:.2f}" if va and vb else "-"
    print(f"{name:38} {str(va) + unit:>12} {str(vb) + unit:>12}   Telediag/OHIF {ratio}")
print(f"{'median of the openings':38} {'Telediag':>12} {'OHIF+Orthanc':>12}")
row("CT 300: first image", "firstImageMs", " ms", "telediag-ct", "ohif-ct")
row("CT 300: whole stack arrived", "stackMs", " ms", "telediag-ct", "ohif-ct")
row("CT 300: scrolling, rAF fps", "scrollFps", "", "telediag-ct", "ohif-ct")
row("CT 300: scrolling, p95 frame", "p95FrameMs", " ms", "telediag-ct", "ohif-ct")
row("CR 7 MB: first image", "firstImageMs", " ms", "telediag-cr", "ohif-cr")
for n, v in d.items():
    print(n, [r["firstImageMs"] for r in v["runs"]], [r["stackMs"] for r in v["runs"]], "errors", len(v["errors"]))
PY
