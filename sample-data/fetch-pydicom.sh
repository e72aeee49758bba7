#!/usr/bin/env bash
# Downloads the public pydicom and pydicom-data wheels from PyPI and unpacks
# their DICOM test files into DEST (default: sample-data/pydicom), for the
# conformance tests. Nothing downloaded here is committed.
#   usage: sample-data/fetch-pydicom.sh [DEST]
set -euo pipefail
DEST=${1:-"$(cd "$(dirname "$0")" && pwd)/pydicom"}
if [ -f "$DEST/.complete" ]; then
  echo "pydicom corpus already in $DEST"; exit 0
fi
mkdir -p "$DEST"
WHEELS=$(mktemp -d)
trap 'rm -rf "$WHEELS"' EXIT
python3 -m pip download -q --no-deps -d "$WHEELS" pydicom==3.0.2 pydicom-data==1.0.0
python3 - "$WHEELS" "$DEST" <<'PY'
import sys, zipfile, pathlib
wheels, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
prefixes = {"pydicom/data/test_files/": "pydicom", "pydicom/data/charset_files/": "charset", "data_store/data/": "pydicom-data"}
count = 0
for wheel in wheels.glob("*.whl"):
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            for prefix, sub in prefixes.items():
                if name.startswith(prefix) and not name.endswith("/"):
                    rel = name[len(prefix):]
                    if rel.endswith((".py", ".pyc", ".txt", ".md", ".json", ".gz", ".bz2", ".zip")):
                        continue
                    target = dest / sub / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(z.read(name))
                    count += 1
print(f"unpacked {count} files into {dest}")
PY
touch "$DEST/.complete"
