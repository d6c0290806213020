#!/usr/bin/env bash
# CI's sanitizer builds (issue 16), each in its own build directory, with GCC (clang 14
# cannot compile libstdc++ 12's std::views::iota, which the batch tests use; `make fuzz`
# has clang build only the fuzz targets):
#   asan  the unit tests of every module, the 1 MB input tests and the fuzz corpus
#         replays under AddressSanitizer + UBSan, in build-asan
#   tsan  the unit tests of core, batch, process, flow and queue under ThreadSanitizer, in
#         build-tsan
# usage: scripts/ci-sanitizers.sh asan|tsan [BUILD_DIR]
# The end-to-end tests (tests/*.py) run in `make test` only: they drive the CLI binary,
# whose code the unit tests already cover here.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: ci-sanitizers.sh asan|tsan [BUILD_DIR]}
jobs=${JOBS:-$(nproc)}
modules=(core process journal batch queue map flow sources sinks load)

case "$kind" in
  asan)
    build=${2:-build-asan}
    flags=(-DFORKLIFT_SANITIZE=address,undefined)
    targets=("${modules[@]/%/_test}")
    targets=("${targets[@]/#/forklift_}")
    targets+=(forklift_long_inputs_test fuzz_csv_reader fuzz_csv_split fuzz_jsonl_reader fuzz_shell_quote
              fuzz_command_template fuzz_input_source fuzz_joblog fuzz_duration fuzz_flow fuzz_dsn)
    # Unit tests only (the *_e2e tests need the CLI, examples/ its programs: not built here).
    select=(-E '(_e2e|_NOT_BUILT)$')
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    ;;
  tsan)
    build=${2:-build-tsan}
    flags=(-DFORKLIFT_SANITIZE=thread)
    targets=(forklift_core_test forklift_batch_test forklift_process_test forklift_flow_test
             forklift_queue_test)
    select=(-L '^(core|batch|process|flow|queue)$' -E '_NOT_BUILT')
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
    ;;
  *) echo "ci-sanitizers.sh: unknown kind '$kind' (asan or tsan)" >&2; exit 2 ;;
esac

# -O1 -g1 (line tables for the reports) compiles in half the time of -O2 -g, and is what
# the sanitizers' documentation suggests; NDEBUG as in the tested release build.
if [ ! -f "$build/build.ninja" ]; then
  CXX=${SANITIZER_CXX:-g++} cmake -S . -B "$build" -G Ninja -DFORKLIFT_BENCH=OFF \
    -DFORKLIFT_WERROR="${FORKLIFT_WERROR:-OFF}" -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_CXX_FLAGS="-O1 -g1 -DNDEBUG" "${flags[@]}" >/dev/null
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]}"
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 300 "${select[@]}"
