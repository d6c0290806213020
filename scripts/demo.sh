#!/usr/bin/env bash
# The demo `make demo` runs, on the embedded default (SQLite, no server):
#  1. the seeds' scan (SMA20/SMA50 crossovers with RSI14 < 60 over 2,500 symbols x 504 days
#     of candles) on forklift::run_batch with 2 workers;
#  2. the seeds' heaviest job, the nightly upsert: those 1.26 million candles, as CSV, upserted
#     into an SQLite table with `forklift load --mode upsert` (exactly-once chunks, a ledger,
#     dead letters), then the same command again, which resumes and skips every chunk.
# usage: scripts/demo.sh BUILD_DIR
# The candles are generated once, deterministically, into BUILD_DIR/demo/scan.db; nothing
# is written outside BUILD_DIR.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: scripts/demo.sh BUILD_DIR" >&2
  exit 2
fi
build=$1
scan=$build/forklift-scan
if [ ! -x "$scan" ]; then
  echo "demo.sh: $scan not found; build first (make build BUILD=$build)" >&2
  exit 1
fi

db=$build/demo/scan.db
if [ ! -f "$db" ]; then
  mkdir -p "$build/demo"
  echo "demo: generating 2,500 symbols x 504 days of candles into $db"
  # Written aside and renamed, so an interrupted run never leaves a half-filled db behind.
  "$scan" --generate "$db.tmp" --symbols 2500 --days 504 --seed 7
  mv "$db.tmp" "$db"
fi
echo "demo: forklift-scan --db $db --workers 2  (SMA20 crossing above SMA50 with RSI14 < 60, per symbol)"
"$scan" --db "$db" --workers 2

forklift=$build/forklift
csv=$build/demo/prices.csv
market=$build/demo/market.db
if [ ! -f "$csv" ]; then
  sqlite3 -csv -header "$db" \
    "SELECT symbol, date, open, high, low, close, volume FROM candles ORDER BY symbol, date" >"$csv.tmp"
  mv "$csv.tmp" "$csv"
fi
rm -f "$market" "$market-wal" "$market-shm" "$build/demo/journal.db"*
sqlite3 "$market" "CREATE TABLE prices(symbol TEXT NOT NULL, date TEXT NOT NULL, open REAL,
  high REAL, low REAL, close REAL, volume INTEGER, PRIMARY KEY(symbol, date))"
load=("$forklift" load "$csv" --to "sqlite:$market" --table prices --mode upsert
      --key symbol,date --journal "$build/demo/journal.db")
echo
echo "demo: ${load[*]}"
"${load[@]}"
echo
echo "demo: the same command again: every chunk is in the ledger, nothing is loaded twice"
"${load[@]}"
echo
echo "demo: sqlite3 $market 'SELECT count(*) FROM prices' -> $(sqlite3 "$market" 'SELECT count(*) FROM prices')"
