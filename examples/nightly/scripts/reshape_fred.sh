#!/bin/sh
# The re-shaping step: FRED's wide rows (date, one column per series) into the long rows
# the macro table takes (series, date, value), skipping blank values.
set -eu
awk -F, 'NR == 1 { for (i = 2; i <= NF; i++) name[i] = $i; print "series,date,value"; next }
         { for (i = 2; i <= NF; i++) if ($i != "") print name[i] "," $1 "," $i }' \
  raw/fred_wide.csv > raw/fred.csv.tmp
mv raw/fred.csv.tmp raw/fred.csv
echo "reshaped: $(($(wc -l < raw/fred.csv) - 1)) observations"
