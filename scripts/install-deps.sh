#!/usr/bin/env bash
# Installs the Debian packages forklift needs, and only those that are missing.
# usage: scripts/install-deps.sh [build|deb|test|bench|all]   (default: test)
#   build  compiler, CMake and the libraries forklift links
#   deb    build + what `make deb` needs (dpkg-shlibdeps finds the packages' dependencies)
#   test   build + deb + what the tests run against: PostgreSQL, sqlite3, GNU parallel (map is
#          compared with it), Chromium (the flow report is rendered in it), pgrep; and CI's
#          checks: clang with its sanitizer and libFuzzer runtimes (libclang-rt-14-dev),
#          clang-tidy (run-clang-tidy), cppcheck; zsh and groff for the completion and man
#          page tests (tests/install_test.py); iproute2 (`ip netns`: tests/queue_netns_test.py)
#   bench  test + the anchors' and comparison tools (pandas, oneTBB, GNU parallel, hyperfine)
# Idempotent: a second run installs nothing. Uses sudo when not root.
set -euo pipefail

level=${1:-test}
build=(g++ cmake ninja-build make pkg-config ccache
       libexpected-dev libfmt-dev libcli11-dev libtomlplusplus-dev nlohmann-json3-dev
       libsqlite3-dev sqlite3 libpq-dev zlib1g-dev libxxhash-dev libpcre2-dev libsimdjson-dev libgtest-dev libgmock-dev libbenchmark-dev)
deb=(dpkg-dev file)
test=(postgresql sqlite3 python3 parallel chromium procps iproute2
      clang libclang-rt-14-dev clang-tidy cppcheck zsh groff-base)
bench=(python3-pandas python3-psycopg2 libtbb-dev hyperfine time ninja-build jq)

case "$level" in
  build) want=("${build[@]}") ;;
  deb)   want=("${build[@]}" "${deb[@]}") ;;
  test)  want=("${build[@]}" "${deb[@]}" "${test[@]}") ;;
  bench|all) want=("${build[@]}" "${deb[@]}" "${test[@]}" "${bench[@]}") ;;
  *) echo "install-deps.sh: unknown level '$level' (expected build, deb, test, bench or all)" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
