#!/bin/sh
# The re-shaping step, as load_macro's --transform: each chunk of FRED's wide rows (date,
# one column per series) arrives on stdin as CSV with its header; the long rows the macro
# table takes (series, date, value) leave on stdout, blank values skipped. forklift runs it
# once per chunk (and once on the header alone, to learn the output's columns).
set -eu
exec awk -F, 'NR == 1 { for (i = 2; i <= NF; i++) name[i] = $i; print "series,date,value"; next }
              { for (i = 2; i <= NF; i++) if ($i != "") print name[i] "," $1 "," $i }'
