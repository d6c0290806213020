#!/usr/bin/env bash
# CI's static analysis (issue 16): clang-tidy with the checked-in .clang-tidy (warnings
# are errors) and cppcheck, over src/. Uses the compile_commands.json of BUILD_DIR (the
# main build, `make build`), so nothing is compiled again.
# usage: scripts/ci-lint.sh [BUILD_DIR] [tidy|cppcheck|format]...   (default: build, all)
# clang-tidy runs over the library sources only (src/**/*.cc without the *_test.cc files),
# in parallel (run-clang-tidy -j): the tests and fuzz targets are checked by the compilers
# with -Werror and by the sanitizer runs, and tidying them too doubled the step's time.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
steps=("${@:-tidy cppcheck format}")
steps=(${steps[@]})
jobs=${JOBS:-$(nproc)}
root=$(pwd -P)

for step in "${steps[@]}"; do
  case "$step" in
    tidy)
      [ -f "$build/compile_commands.json" ] || { echo "ci-lint.sh: no $build/compile_commands.json (run make build)" >&2; exit 2; }
      # Files already found clean, with the same preprocessed text and checks, are skipped
      # (scripts/tidy_cache.py: delete ~/.cache/forklift/clang-tidy, or point
      # FORKLIFT_TIDY_CACHE elsewhere, to check every file again).
      mapfile -t todo < <(python3 scripts/tidy_cache.py todo "$build" "^${root}/src/.*(?<!_test)\.cc\$")
      if [ ${#todo[@]} -eq 0 ]; then
        echo "ci-lint.sh: clang-tidy clean (every file as when last found clean)"
        continue
      fi
      regex="^($(printf '%s\n' "${todo[@]}" | sed 's/[][\.*^$+?(){}|]/\\&/g' | paste -sd '|'))\$"
      # run-clang-tidy prints every file's command line; keep the findings only.
      out=$(mktemp)
      if ! run-clang-tidy -p "$build" -j "$jobs" -quiet "$regex" >"$out" 2>&1; then
        grep -E 'error:|warning:' -A3 "$out" | head -200 >&2
        echo "ci-lint.sh: clang-tidy found problems (full output: $out)" >&2
        exit 1
      fi
      rm -f "$out"
      python3 scripts/tidy_cache.py done "$build" "${todo[@]}"
      echo "ci-lint.sh: clang-tidy clean (${#todo[@]} files checked)"
      ;;
    cppcheck)
      # Suppressions, each with its reason, are in .cppcheck-suppressions.
      cppcheck --quiet --error-exitcode=1 -j "$jobs" --std=c++20 --language=c++ \
        --enable=warning,performance,portability --inline-suppr \
        --suppressions-list=.cppcheck-suppressions -I include -I src \
        -D__linux__ -D__GNUC__ $(find src -name '*.cc' ! -name '*_test.cc' | sort)
      echo "ci-lint.sh: cppcheck clean"
      ;;
    format)
      # The tree stays as clang-format (.clang-format) writes it.
      # Tracked and new (not ignored) files that exist: a deletion not yet committed is no file.
      if ! git ls-files --cached --others --exclude-standard '*.cc' '*.h' |
           while read -r f; do [ -f "$f" ] && printf '%s\n' "$f"; done |
           xargs clang-format --dry-run --Werror 2> "${TMPDIR:-/tmp}/forklift-format.log"; then
        head -20 "${TMPDIR:-/tmp}/forklift-format.log" >&2
        echo "ci-lint.sh: files not as clang-format writes them (clang-format -i FILE)" >&2
        exit 1
      fi
      echo "ci-lint.sh: clang-format clean"
      ;;
    *) echo "ci-lint.sh: unknown step '$step' (tidy, cppcheck or format)" >&2; exit 2 ;;
  esac
done
