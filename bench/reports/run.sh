#!/usr/bin/env bash
# Signed-report benchmark: our form rendering and PAdES signing beside
# pyHanko (pip install pyhanko) signing the same PDF with the same key;
# poppler's pdfsig checks both outputs. Usage: bench/reports/run.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-50}
out=$(mktemp -d)
cargo run --release --quiet -p telediag-reports --example report_bench -- "$out" "$rounds"
python3 bench/reports/pyhanko_peer.py "$out" "$rounds"
for f in telediag-signed pyhanko-signed; do
  echo "pdfsig $f.pdf: $(pdfsig "$out/$f.pdf" 2>/dev/null | grep -c 'Signature is Valid') valid signature(s)"
done
rm -rf "$out"
