#!/bin/sh
# A macro-data scraper: FRED-style series in the "wide" shape such sites export (one
# column per series), in raw/fred_wide.csv. Deterministic, like the price scrapers.
set -eu
awk -v days="${NIGHTLY_DAYS:-504}" 'BEGIN {
  print "date,DGS10,DFF,UNRATE"
  for (d = 0; d < days; d++) {
    t = 1577836800 + d * 86400   # 2020-01-01 UTC
    printf "%s,%.2f,%.2f,%.1f\n", strftime("%Y-%m-%d", t, 1), 1.5 + (d % 97) / 60, \
      0.1 + (d % 53) / 40, 3.5 + (d % 31) / 10
  }
}' > raw/fred_wide.csv.tmp
mv raw/fred_wide.csv.tmp raw/fred_wide.csv
echo "fred: $(($(wc -l < raw/fred_wide.csv) - 1)) days of DGS10, DFF, UNRATE"
