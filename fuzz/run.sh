#!/usr/bin/env bash
# Builds the fuzz driver coverage-instrumented (SanitizerCoverage through
# stable codegen flags) and runs every target, or those named, for a budget:
#
#   fuzz/run.sh 30                # 30 s per target (what .ci/run does)
#   fuzz/run.sh --execs 10000000  # ten million executions per target (bench)
#   fuzz/run.sh 600 scp_ecg aecg
#
# Seeds: the pydicom corpus (sample-data/fetch-pydicom.sh), the shared ECG
# corpus (../shared/corpus/ecg, when present), built-in seeds, and every
# saved regression. Findings go to target/fuzz-findings/<target>/; the
# script exits 1 if there are any. One summary line per target is printed
# (and appended to target/fuzz-findings/summary.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

budget=(--seconds 30)
case "${1:-}" in
  --execs) budget=(--execs "$2"); shift 2 ;;
  ''|*[!0-9]*) ;;
  *) budget=(--seconds "$1"); shift ;;
esac
targets=("$@")

triple=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps the flags off build scripts and proc macros; a target
# directory of its own keeps the main build's cache intact.
RUSTFLAGS="-C passes=sancov-module -C llvm-args=-sanitizer-coverage-level=3 \
-C llvm-args=-sanitizer-coverage-trace-pc-guard -C overflow-checks=on -C debuginfo=1" \
  cargo build --release --locked -p telediag-fuzz --target "$triple" --target-dir target/fuzz
driver="target/fuzz/$triple/release/telediag-fuzz"
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <("$driver" list | awk '{print $1}')
fi

out=target/fuzz-findings
mkdir -p "$out"
seeds=(--seeds sample-data/pydicom)
[ -d ../shared/corpus/ecg ] && seeds+=(--seeds ../shared/corpus/ecg)
status=0
for target in "${targets[@]}"; do
  extra=()
  [ -d "fuzz/regressions/$target" ] && extra=(--seeds "fuzz/regressions/$target")
  if line=$("$driver" run "$target" "${budget[@]}" "${seeds[@]}" "${extra[@]}" --out "$out" --seed "$RANDOM"); then
    echo "$line"
  else
    echo "${line:-target=$target aborted (see $out/$target)}"
    status=1
  fi
  echo "$(date -u +%FT%TZ) ${line:-target=$target aborted}" >> "$out/summary.txt"
done
exit $status
