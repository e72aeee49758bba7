#!/usr/bin/env bash
# Signed-report benchmark: our form rendering and PAdES signing (B-B and
# B-LT) beside pyHanko (pip install pyhanko) signing the same PDF with the
# same keys;
# poppler's pdfsig checks both outputs. Usage: bench/reports/run.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-50}
out=$(mktemp -d)
cargo run --release --quiet -p telediag-reports --example report_bench -- "$out" "$rounds"
python3 bench/reports/pyhanko_peer.py "$out" "$rounds"
for f in telediag-signed pyhanko-signed telediag-lt pyhanko-lt; do
  echo "pdfsig $f.pdf: $(pdfsig "$out/$f.pdf" 2>/dev/null | grep -c 'Signature is Valid') valid signature(s)"
done
# Telediag's B-LT output validated by pyHanko offline against the CA.
echo "pyHanko validates telediag-lt.pdf: $(python3 crates/reports/tests/pades_validate.py "$out/telediag-lt.pdf" "$out/ca-cert.der")"
rm -rf "$out"
