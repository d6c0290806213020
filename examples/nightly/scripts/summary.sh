#!/bin/sh
# on_finish hook: what the night did, in reports/summary.txt, and the run's HTML report.
# Runs in the flow's directory after the run is recorded; the run's summary JSON is on
# stdin (not needed here: `forklift report` reads the journal). The table counts come from
# sqlite3 (market.db) or, with FORKLIFT_PG set, psql, when the client is installed.
set -u
mkdir -p reports
out=reports/summary.txt
if [ -n "${FORKLIFT_PG:-}" ]; then
  where="PostgreSQL"
  client=psql
  count() { psql "$FORKLIFT_PG" -XAtqc "SELECT count(*) FROM $1" 2>/dev/null || echo "?"; }
else
  where="market.db"
  client=sqlite3
  count() { sqlite3 market.db "SELECT count(*) FROM $1" 2>/dev/null || echo "?"; }
fi
field() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "reports/$1.json" 2>/dev/null; }
{
  echo "nightly run $FORKLIFT_RUN_ID: $FORKLIFT_STATUS"
  for l in load_prices load_macro; do
    [ -f "reports/$l.json" ] || continue
    echo "  $l: $(field "$l" rows_read) rows read, $(field "$l" rows_loaded) loaded," \
         "$(field "$l" rows_skipped) already loaded, $(field "$l" rows_rejected) rejected"
  done
  if command -v "$client" >/dev/null; then
    echo "  $where: $(count candles) candles, $(count macro) macro observations," \
         "$(count daily_stats) days of stats"
  fi
  [ -f reports/matches.txt ] && echo "  scan: $(tail -n 1 reports/matches.txt)"
} > "$out"
"$FORKLIFT" report "$FORKLIFT_RUN_ID" --flow flow.toml -o reports/report.html
