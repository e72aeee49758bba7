#!/usr/bin/env bash
# Fetches the stock OHIF viewer (the built `dist/` of the npm package
# @ohif/app) into DEST (default: sample-data/ohif), for the test and the
# benchmark that point it at Telediag. `npm pack` downloads the one tarball
# without installing its dependencies; its sha512 is pinned here. Nothing
# fetched is committed.
#   usage: tests/dicomweb/fetch-ohif.sh [DEST]
set -euo pipefail
VERSION=3.13.2
INTEGRITY='sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA=='
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEST=${1:-"$ROOT/sample-data/ohif"}
if [ -f "$DEST/.complete-$VERSION" ]; then
  echo "OHIF $VERSION already in $DEST"; exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "@ohif/app@$VERSION" >/dev/null)
TARBALL="$WORK/ohif-app-$VERSION.tgz"
GOT="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
if [ "$GOT" != "$INTEGRITY" ]; then
  echo "@ohif/app@$VERSION: expected $INTEGRITY, got $GOT" >&2; exit 1
fi
rm -rf "$DEST"
mkdir -p "$DEST"
tar -xzf "$TARBALL" -C "$DEST" --strip-components=2 package/dist
touch "$DEST/.complete-$VERSION"
echo "OHIF $VERSION unpacked into $DEST"
