#!/usr/bin/env bash
# Renders every image of the public corpus (or the files and folders given)
# as a labelled thumbnail on contact-sheet pages, to look at windowing,
# inversion and colour the way a radiologist would.
#
#   bench/contact-sheet.sh [PATH...]     -> target/contact-sheet/page-N.png
#
# Needs Python 3 with Pillow (pip install pillow) for the page layout.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/contact-sheet
rm -rf "$out" && mkdir -p "$out/thumbs"
if [ $# -eq 0 ]; then set -- sample-data/pydicom; fi
cargo run --release -q -- thumbnails "$@" --out "$out/thumbs" --size 192
python3 bench/contact_sheet.py "$out/thumbs" "$out"
