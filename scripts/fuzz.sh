#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan) in their own
# build directory and runs each for SECONDS, printing libFuzzer's final figures per target.
# usage: scripts/fuzz.sh [BUILD_DIR] [SECONDS] [TARGET...]   (default build-fuzz 60, all)
# New inputs go to BUILD_DIR/fuzz-corpus/NAME (the committed seeds in fuzz/corpus/NAME are
# read, never written); crashes to BUILD_DIR/fuzz-artifacts/. Copy a crash into
# fuzz/corpus/NAME/ as a regression input once it is fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
seconds=${2:-60}
shift $(( $# > 2 ? 2 : $# ))
all=(csv_reader csv_split jsonl_reader shell_quote command_template input_source joblog duration flow dsn)
targets=("${@:-${all[@]}}")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

# A unit slower than FUZZ_UNIT_TIMEOUT seconds (default 120: a shared, loaded machine
# stretches wall time) is reported as a hang.
# Inputs past libFuzzer's default 4 KB cap matter (issue 16: crashes at 30 KB).
max_len() {
  case "$1" in
    csv_reader|csv_split|jsonl_reader|input_source|joblog) echo 1048576 ;;
    flow) echo 65536 ;;
    *) echo 4096 ;;
  esac
}

if [ ! -f "$build/build.ninja" ]; then
  CXX=${FUZZ_CXX:-clang++} cmake -S . -B "$build" -G Ninja -DFORKLIFT_FUZZ=ON \
    -DFORKLIFT_SANITIZE=address,undefined -DFORKLIFT_BENCH=OFF >/dev/null
fi
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target "${targets[@]/#/fuzz_}"

mkdir -p "$build/fuzz-artifacts"
status=0
summary=()
for t in "${targets[@]}"; do
  work="$build/fuzz-corpus/$t"
  mkdir -p "$work"
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  log="$build/fuzz-$t.log"
  echo "fuzz: $t for ${seconds}s (max_len $(max_len "$t"), log $log)"
  if ! nice -n 10 "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" \
      -timeout=${FUZZ_UNIT_TIMEOUT:-120} -print_final_stats=1 "${dict[@]}" \
      -artifact_prefix="$build/fuzz-artifacts/$t-" "$work" "fuzz/corpus/$t" >"$log" 2>&1; then
    status=1
    echo "fuzz: $t FAILED, see $log and $build/fuzz-artifacts/" >&2
    tail -30 "$log" >&2
  fi
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)
  cov=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 | grep -o 'cov: [0-9]*' | awk '{print $2}')
  ft=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 | grep -o 'ft: [0-9]*' | awk '{print $2}')
  summary+=("$(printf '%-18s execs %-10s cov %-6s ft %-6s corpus %s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$(ls "$work" | wc -l)")")
done
printf '%s\n' "fuzz summary (${seconds}s each):" "${summary[@]}"
exit $status
