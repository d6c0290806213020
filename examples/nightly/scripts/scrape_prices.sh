#!/bin/sh
# A price scraper: one exchange's daily candles as CSV in raw/prices_EXCHANGE.csv. Here the
# "exchange" is forklift-scan's deterministic generator (symbols NUMBER*N .. NUMBER*N+N-1,
# N = $NIGHTLY_SYMBOLS, default 625), so a rerun scrapes the same rows and the load after
# it finds every chunk already in its ledger.
# usage: scrape_prices.sh EXCHANGE NUMBER   (NUMBER: 1-based, forklift map's {#})
set -eu
exchange=$1
n=${NIGHTLY_SYMBOLS:-625}
first=$(( ($2 - 1) * n ))
"${FORKLIFT_SCAN:?set FORKLIFT_SCAN to the forklift-scan program (make demo does)}" \
  --csv "raw/prices_$exchange.csv" --first "$first" --symbols "$n" --days "${NIGHTLY_DAYS:-504}"
echo "$exchange: $n symbols from SYM$(printf %05d "$first") -> raw/prices_$exchange.csv"
