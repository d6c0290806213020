#!/usr/bin/env bash
# The demo `make demo` runs: forklift's main job, the seeds' nightly pipeline
# (examples/nightly/flow.toml), on the embedded default (SQLite, no server):
#   scrapers fan out in parallel (the news one fails, non-critically) -> a re-shape ->
#   `forklift load` upserts 1.26 million candles and the macro series exactly once ->
#   the scan on forklift::run_batch -> a SQL maintenance phase -> a summary and the HTML
#   report, written by the flow's on_finish hook.
# Run it again: the scrapers fetch the same rows and every load finds its chunks in the
# ledger, so nothing is loaded twice.
# usage: scripts/demo.sh BUILD_DIR
# FORKLIFT_PG=postgres://... runs the same flow against that PostgreSQL database instead
# (the tables are created there; the scan streams the candles out into a scratch SQLite
# file). Everything else is written under BUILD_DIR/demo/nightly. NIGHTLY_SYMBOLS (per exchange,
# default 625) and NIGHTLY_DAYS (default 504) size the market.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: scripts/demo.sh BUILD_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)/examples/nightly
forklift=$build/forklift
for p in "$forklift" "$build/forklift-scan"; do
  if [ ! -x "$p" ]; then
    echo "demo.sh: $p not found; build first (make build BUILD=$1)" >&2
    exit 1
  fi
done
export FORKLIFT_SCAN=$build/forklift-scan

# The flow, its scripts and SQL are copied in; what the runs wrote (raw files, market.db,
# the journal, logs, reports) stays between demos.
demo=$build/demo/nightly
mkdir -p "$demo"
cp -R "$src/flow.toml" "$src/exchanges.txt" "$src/scripts" "$src/sql" "$demo/"
shopt -s nullglob
earlier=("$demo"/logs/nightly-*)
runs=${#earlier[@]}

echo "demo: forklift run $demo/flow.toml --jobs 4"
if [ "$runs" -gt 0 ]; then
  echo "demo: (run $((runs + 1)): the loads should find every chunk already loaded)"
fi
set +e
"$forklift" run "$demo/flow.toml" --jobs 4
rc=$?
set -e
echo
cat "$demo/reports/summary.txt" 2>/dev/null || echo "demo: no summary was written"
echo
echo "demo: the report:   $demo/reports/report.html"
echo "demo: task logs:    $demo/logs/  (one directory per run)"
if [ -n "${FORKLIFT_PG:-}" ]; then
  # The DSN as given, its password (postgres://user:PASSWORD@host) masked.
  echo "demo: the database: $(printf '%s' "$FORKLIFT_PG" | sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#')"
else
  echo "demo: the database: sqlite3 $demo/market.db 'SELECT count(*) FROM candles'"
fi
echo "demo: run it again (make demo) to see the resume: nothing is loaded twice"
exit $rc
