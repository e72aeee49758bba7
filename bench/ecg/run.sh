#!/usr/bin/env bash
# ECG analysis beside neurokit2, in one run, on the same samples:
#   - a 10 s 12-lead 500 Hz ECG (ECGToolkit Example.scp)
#   - the 30-minute MIT-BIH record 100 (2 leads, 360 Hz)
# then every cart format alone (SCP-ECG, HL7 aECG, DICOM, GE MUSE, Philips):
# file size, read time and analyse time, read time beside SCP-ECG's.
# Telediag: read + analyse all leads (filters, QRS detection, median beats,
# delineation, measurements) + the SVG page + PNG. neurokit2: ecg_clean +
# ecg_peaks + ecg_delineate (DWT) on one lead. Medians of $RUNS runs.
# Needs ../shared/corpus/ecg and `pip install neurokit2`.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
CORPUS=${CORPUS:-../shared/corpus/ecg}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cargo build -q --release -p telediag-ecg --example ecg_bench
echo "== telediag-ecg (all leads) =="
for f in "$CORPUS/ecgtoolkit/Example.scp" "$CORPUS/wfdb/100.hea"; do
  ./target/release/examples/ecg_bench "$f" --runs "$RUNS" --export "$OUT"
done | tee "$OUT/ours.jsonl"
echo "== neurokit2 (one lead) =="
python3 bench/ecg/neurokit_peer.py "$RUNS" "$OUT/Example.csv" "$OUT/100.csv" | tee "$OUT/peer.jsonl"
python3 - "$OUT/ours.jsonl" "$OUT/peer.jsonl" <<'PY'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
peer = [json.loads(l) for l in open(sys.argv[2])]
print("\n| record | telediag analyse (all leads) | + SVG + PNG | neurokit2 detect+delineate (1 lead) | speed-up (analysis) |")
print("|---|---|---|---|---|")
for o, p in zip(ours, peer):
    total = o["analyse_ms"] + o["svg_ms"] + o["png_ms"]
    print(f"| {o['file'].split('/')[-1]} ({o['leads']} leads, {o['seconds']:.0f} s, {o['qrs']} QRS) | {o['analyse_ms']:.1f} ms | {total:.1f} ms "
          f"| {p['total_ms']:.1f} ms ({p['qrs']} R peaks) | {p['total_ms'] / o['analyse_ms']:.0f}× |")
PY

echo "== telediag-ecg, one row per cart format =="
for f in "$CORPUS/ecgtoolkit/Example.scp" "$CORPUS/ecgtoolkit/Example.xml" "$CORPUS/ecgtoolkit/Example.dcm" \
         "$CORPUS/muse/muse_example1.xml" "$CORPUS/muse/muse_example2.xml" \
         "$CORPUS/philips/129DYPRG.XML" "$CORPUS/philips/3191723_ZZDEMOPTONLY_1-04_orig.xml" "$CORPUS/philips/2020-5-18_15-48-11.xml"; do
  ./target/release/examples/ecg_bench "$f" --runs "$RUNS"
done > "$OUT/formats.jsonl"
python3 - "$OUT/formats.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
scp = next(r for r in rows if r["format"] == "SCP-ECG")
print("\n| file | format | size | leads × s @ Hz | read | read ÷ SCP-ECG's | analyse |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['file'].split('/')[-1]} | {r['format']} | {r['bytes'] / 1024:.0f} KB | {r['leads']} × {r['seconds']:.1f} s @ {r['rate_hz']:.0f} "
          f"| {r['read_ms']:.2f} ms | {r['read_ms'] / scp['read_ms']:.2f}× | {r['analyse_ms']:.2f} ms |")
PY
