#!/bin/sh
# The scan task: forklift-scan (forklift::run_batch over the symbols) reads candles from a
# SQLite file. On SQLite that is market.db itself; on PostgreSQL (FORKLIFT_PG) the night's
# candles are streamed out first into a scratch scan.db with `forklift load --from ...
# --query` (a fresh file each night, so its ledger starts empty).
set -eu
db=market.db
if [ -n "${FORKLIFT_PG:-}" ]; then
  db=scan.db
  rm -f "$db"
  "$FORKLIFT_SCAN" --generate "$db" --symbols 0 >&2   # the candles table, empty
  "$FORKLIFT" load --from "$FORKLIFT_PG" \
    --query "SELECT symbol, date, open, high, low, close, volume FROM candles" \
    --to "sqlite:$db" --table candles --progress none >&2
fi
exec "$FORKLIFT_SCAN" --db "$db" --symbols $((4 * ${NIGHTLY_SYMBOLS:-625})) --workers 2 \
  --print-matches
