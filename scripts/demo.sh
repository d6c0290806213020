#!/usr/bin/env bash
# The demo `make demo` runs: the seeds' scan (SMA20/SMA50 crossovers with RSI14 < 60 over
# 2,500 symbols × 504 days of candles) on forklift::run_batch with 2 workers.
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
exec "$scan" --db "$db" --workers 2
