#!/usr/bin/env bash
# The scan benchmark: forklift-scan (run_batch, 2 worker threads) against its anchor
# scan_ppe.py (ProcessPoolExecutor, 2 processes) on the same 2,500 symbols × 504 days, in
# one run, alternating, RUNS times each (default 5). Before timing, checks that both find
# the same matches, date for date (bench/scan_matches.py runs scan_ppe.py's own
# process_symbol). Prints both medians and the ratio; the last line is
#   RESULT scan anchor_s=A forklift_s=F ratio=R anchor_wall_s=.. forklift_wall_s=.. wall_ratio=..
# `*_s` are the programs' own elapsed= figures (submit-all to collect-all, which is what
# both print); `*_wall_s` are whole processes, start-up (Python, pandas import) included.
# Without ../shared/anchors (a fresh clone) it runs forklift alone on its own generated
# candles and says so.
# usage: bench/scan_bench.sh BUILD_DIR   (env: RUNS=5 SYMBOLS=2500 DAYS=504 WORKERS=2)
set -euo pipefail

build=$(cd "${1:?usage: bench/scan_bench.sh BUILD_DIR}" && pwd)
runs=${RUNS:-5}
symbols=${SYMBOLS:-2500}
days=${DAYS:-504}
workers=${WORKERS:-2}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel 2> /dev/null || (cd "$here/.." && pwd))
anchors=$root/../shared/anchors
scan=$build/forklift-scan
[ -x "$scan" ] || { echo "scan_bench.sh: $scan not built" >&2; exit 1; }
data=$build/bench-data
mkdir -p "$data"

now() { date +%s.%N; }
diff_s() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", b - a}'; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
elapsed_of() { sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p'; }
matches_of() { sed -n 's/.*matches=\([0-9]*\).*/\1/p'; }

have_anchor=1
if [ ! -f "$anchors/scan_ppe.py" ]; then
  have_anchor=0
  why="$anchors not found"
elif ! /usr/bin/python3 -c 'import pandas' 2> /dev/null; then
  have_anchor=0
  why="/usr/bin/python3 has no pandas (scripts/install-deps.sh bench)"
fi

if [ $have_anchor = 1 ]; then
  db=$data/anchor-scan-$symbols-$days.db
  if [ ! -f "$db" ]; then
    echo "scan: gen_prices.py $symbols $days | make_scan_db.py -> $db"
    /usr/bin/python3 "$anchors/gen_prices.py" "$symbols" "$days" > "$data/prices.csv"
    /usr/bin/python3 "$anchors/make_scan_db.py" "$data/prices.csv" "$db.tmp"
    rm -f "$data/prices.csv"
    mv "$db.tmp" "$db"
  fi
  echo "scan: checking that scan_ppe.py and forklift-scan find the same matches"
  /usr/bin/python3 "$here/scan_matches.py" "$anchors" "$db" "$workers" "$symbols" > "$data/anchor-matches.txt"
  "$scan" --db "$db" --workers "$workers" --symbols "$symbols" --print-matches > "$data/forklift-matches.txt"
  expected=$(wc -l < "$data/anchor-matches.txt")
  if ! head -n -1 "$data/forklift-matches.txt" | cmp -s - "$data/anchor-matches.txt"; then
    echo "scan: MISMATCH between forklift-scan and scan_ppe.py:" >&2
    head -n -1 "$data/forklift-matches.txt" | diff - "$data/anchor-matches.txt" | head -20 >&2
    exit 1
  fi
  [ "$expected" -gt 0 ] || { echo "scan: no matches at all; nothing was compared" >&2; exit 1; }
  echo "scan: same $expected matches, date for date"
else
  echo "scan: no anchor ($why); timing forklift-scan alone on its own generated candles"
  db=$data/forklift-scan-$symbols-$days.db
  if [ ! -f "$db" ]; then
    "$scan" --generate "$db.tmp" --symbols "$symbols" --days "$days" --seed 7
    mv "$db.tmp" "$db"
  fi
  expected=$("$scan" --db "$db" --workers "$workers" --symbols "$symbols" | matches_of)
fi

: > "$data/anchor.times"
: > "$data/forklift.times"
for ((r = 1; r <= runs; r++)); do
  line=""
  if [ $have_anchor = 1 ]; then
    t0=$(now)
    out=$(/usr/bin/python3 "$anchors/scan_ppe.py" "$db" "$workers" "$symbols")
    t1=$(now)
    [ "$(matches_of <<< "$out")" = "$expected" ] || { echo "scan: scan_ppe.py run $r: $out (expected $expected matches)" >&2; exit 1; }
    echo "$(elapsed_of <<< "$out") $(diff_s "$t0" "$t1")" >> "$data/anchor.times"
    line="scan_ppe.py: $out | "
  fi
  t0=$(now)
  out=$("$scan" --db "$db" --workers "$workers" --symbols "$symbols")
  t1=$(now)
  [ "$(matches_of <<< "$out")" = "$expected" ] || { echo "scan: forklift-scan run $r: $out (expected $expected matches)" >&2; exit 1; }
  echo "$(elapsed_of <<< "$out") $(diff_s "$t0" "$t1")" >> "$data/forklift.times"
  echo "scan: run $r/$runs: ${line}forklift-scan: $out (wall $(printf %.3f "$(diff_s "$t0" "$t1")")s)"
done

f_el=$(cut -d' ' -f1 "$data/forklift.times" | median)
f_wall=$(cut -d' ' -f2 "$data/forklift.times" | median)
if [ $have_anchor = 1 ]; then
  a_el=$(cut -d' ' -f1 "$data/anchor.times" | median)
  a_wall=$(cut -d' ' -f2 "$data/anchor.times" | median)
  # forklift's elapsed= has two decimals; a 0.00 median (a tiny scan) makes no ratio.
  ratio=$(awk -v a="$a_el" -v f="$f_el" 'BEGIN {print (f > 0) ? sprintf("%.0f", a / f) : "NA"}')
  wall_ratio=$(awk -v a="$a_wall" -v f="$f_wall" 'BEGIN {printf "%.0f", a / f}')
  echo "scan: medians of $runs: scan_ppe.py ${a_el}s (wall $(printf %.2f "$a_wall")s), forklift-scan ${f_el}s (wall $(printf %.3f "$f_wall")s); forklift is ${ratio}x faster (${wall_ratio}x wall); target >= 20x"
  echo "RESULT scan anchor_s=$a_el forklift_s=$f_el ratio=$ratio anchor_wall_s=$(printf %.2f "$a_wall") forklift_wall_s=$(printf %.3f "$f_wall") wall_ratio=$wall_ratio matches=$expected"
else
  echo "scan: median of $runs: forklift-scan ${f_el}s (wall $(printf %.3f "$f_wall")s); no anchor, no ratio"
  echo "RESULT scan anchor_s=NA forklift_s=$f_el ratio=NA anchor_wall_s=NA forklift_wall_s=$(printf %.3f "$f_wall") wall_ratio=NA matches=$expected"
fi
