#!/usr/bin/env bash
# bench/pipeline: thumbnail speed and latency, beside DCMTK, in one run.
#
#   cargo build --release
#   bash ../shared/bench/gen_corpus.sh bench/corpus     # ct300, ct300_{jpegll,jls,j2k,rle}, cr12
#   bench/pipeline.sh [ROUNDS]                          # default 3 rounds, medians
#
# 1. frames/s making 256-px JPEG thumbnails (`telediag thumbnails`) with 1
#    thread and with every core, beside DCMTK's dcmj2pnm (dcml2pnm for
#    JPEG-LS), one process per file, as many at once as cores.
# 2. latency: ct300 pushed by storescu over one association into a running
#    server; the time from storescu's exit (the last acknowledgement) until
#    the index holds all 300 thumbnails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
BIN=target/release/telediag
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 2; }
CORES=$(nproc)
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

ours() { # corpus threads -> frames/s
  # Into an empty directory each round, as the peer writes: rewriting
  # existing files makes ext4 flush them on close (auto_da_alloc).
  rm -rf "$tmp/ours"
  RUST_LOG=error "$BIN" thumbnails "bench/corpus/$1" --out "$tmp/ours" --threads "$2" \
    | sed -n 's/.*(\([0-9.]*\) frames\/s.*/\1/p'
}
peer() { # corpus -> frames/s (0 when the peer cannot read the corpus)
  # dcml2pnm (DCMTK's JPEG-LS build) has no JPEG writer: it writes PNG.
  local tool="dcmj2pnm +oj"; [ "$1" = ct300_jls ] && tool="dcml2pnm +on"
  rm -rf "$tmp/peer" && mkdir -p "$tmp/peer"
  local n t0 t1 made
  n=$(find "bench/corpus/$1" -type f | wc -l)
  t0=$(date +%s.%N)
  find "bench/corpus/$1" -type f | xargs -P "$CORES" -I{} sh -c \
    "$tool -q +Sxv 256 +Wm '{}' '$tmp/peer/'\$(basename '{}').img 2>/dev/null || true"
  t1=$(date +%s.%N)
  made=$(ls "$tmp/peer" | wc -l)
  if [ "$made" -lt "$n" ]; then echo 0; else echo "$n / ($t1 - $t0)" | bc -l; fi
}

tmp=$(mktemp -d); trap 'rm -rf "$tmp"; [ -n "${server:-}" ] && kill "$server" 2>/dev/null' EXIT
echo "## Thumbnails, 256 px JPEG ($ROUNDS rounds, medians; $CORES cores)"
echo
echo "| corpus | Telediag 1 thread | Telediag $CORES threads | scaling | DCMTK, $CORES processes | Telediag / DCMTK |"
echo "| --- | --- | --- | --- | --- | --- |"
for c in ct300 ct300_jpegll ct300_jls ct300_j2k ct300_rle cr12; do
  [ -d "bench/corpus/$c" ] || { echo "| $c | (corpus missing) | | | | |"; continue; }
  ours "$c" 1 >/dev/null # warm the page cache
  one=$(for _ in $(seq "$ROUNDS"); do ours "$c" 1; done | median)
  all=$(for _ in $(seq "$ROUNDS"); do ours "$c" "$CORES"; done | median)
  theirs=$(for _ in $(seq "$ROUNDS"); do peer "$c"; done | median)
  if [ "$(echo "$theirs > 0" | bc)" = 1 ]; then
    ratio=$(printf '%.1f×' "$(echo "$all / $theirs" | bc -l)"); theirs=$(printf '%.1f' "$theirs")
  else ratio="—"; theirs="cannot read it"; fi
  printf '| %s | %.1f | %.1f | %.2f× | %s | %s |\n' "$c" "$one" "$all" "$(echo "$all / $one" | bc -l)" "$theirs" "$ratio"
done

echo
echo "## Latency: ct300 over one association, last acknowledgement to all thumbnails indexed"
echo
data="$tmp/data"; mkdir -p "$data"; port=$((20000 + RANDOM % 10000))
export TELEDIAG_ADMIN_PASSWORD=bench-only-password
"$BIN" --data "$data" site add Bench --ae BENCH >/dev/null
RUST_LOG=warn "$BIN" --data "$data" serve --no-demo --dicom-port "$port" --http-port 0 2>"$tmp/server.log" &
server=$!
for _ in $(seq 100); do echoscu -aet BENCH -aec TELEDIAG 127.0.0.1 "$port" 2>/dev/null && break; sleep 0.1; done
t0=$(date +%s.%N)
storescu -aet BENCH -aec TELEDIAG +sd -R 127.0.0.1 "$port" bench/corpus/ct300
t_ack=$(date +%s.%N)
python3 - "$data/index.db" "$t_ack" "$t0" <<'PY'
import sqlite3, sys, time
db, t_ack, t0 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
while True:
    n = con.execute("SELECT count(*) FROM derived WHERE kind = 'thumbnail'").fetchone()[0]
    if n >= 300:
        break
    time.sleep(0.005)
done = time.time()
print(f"push of 300 instances: {t_ack - t0:.2f} s; thumbnails: all 300 indexed "
      f"{(done - t_ack) * 1000:.0f} ms after the last acknowledgement")
PY
