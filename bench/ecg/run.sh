#!/usr/bin/env bash
# ECG analysis beside neurokit2, in one run, on the same samples:
#   - a 10 s 12-lead 500 Hz ECG (ECGToolkit Example.scp)
#   - the 30-minute MIT-BIH record 100 (2 leads, 360 Hz)
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
