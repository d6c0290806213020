#!/usr/bin/env bash
# End-to-end test of examples/scan (forklift-scan), registered with ctest as scan_e2e.
# usage: tests/scan_test.sh FORKLIFT_SCAN SOURCE_DIR WORK_DIR
#
# Generates a small candles db with forklift-scan's own generator, scans it with 1 and 2
# workers (the matches must be identical, non-empty and agree with the summary line), checks
# that bad options fail with one line naming the option, and, only where the anchors and
# Debian's pandas are present (../shared/anchors, /usr/bin/python3), checks the matches
# against scan_ppe.py's own code on the same db. Needs nothing outside the repository.
set -euo pipefail

scan=$1
src=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

"$scan" --generate small.db --symbols 50 --days 504 --seed 7
[ -s small.db ] || fail "--generate wrote no database"

"$scan" --db small.db --workers 1 --symbols 50 --print-matches > w1.txt
"$scan" --db small.db --workers 2 --symbols 50 --print-matches > w2.txt
summary1=$(tail -n 1 w1.txt)
summary2=$(tail -n 1 w2.txt)
head -n -1 w1.txt > m1.txt
head -n -1 w2.txt > m2.txt
echo "1 worker:  $summary1"
echo "2 workers: $summary2"
[[ $summary1 =~ ^symbols=50\ matches=([0-9]+)\ elapsed=[0-9]+\.[0-9]{2}$ ]] ||
  fail "summary line '$summary1' is not 'symbols=50 matches=M elapsed=S.SS'"
matches=${BASH_REMATCH[1]}
[ "$matches" -gt 0 ] || fail "no matches in 50 symbols x 504 days"
[ "$(wc -l < m1.txt)" -eq "$matches" ] || fail "printed $(wc -l < m1.txt) matches, summary says $matches"
cmp -s m1.txt m2.txt || { diff m1.txt m2.txt | head >&2; fail "1 and 2 workers disagree"; }
sort -c m1.txt || fail "--print-matches output is not sorted"
grep -qvE '^SYM000[0-4][0-9] 202[01]-[0-9]{2}-[0-9]{2}$' m1.txt &&
  fail "a match line is not 'SYMnnnnn YYYY-MM-DD' within 2020-2021 and the first 50 symbols"
# The first 50 rows of a symbol cannot match: SMA50 is undefined on rows 0-48, so the
# "previous row had SMA20 <= SMA50" half is false through row 49 (2020-02-19).
grep -qE ' 2020-0(1-|2-0|2-1[0-9])' m1.txt && fail "a match before SMA50 is defined"

# --symbols limits the scan to a prefix of the same symbols.
"$scan" --db small.db --workers 2 --symbols 10 --print-matches | head -n -1 > m10.txt
grep -E '^SYM0000[0-9] ' m1.txt | cmp -s - m10.txt || fail "--symbols 10 is not the first 10 symbols' matches"

# The generator is deterministic, and its seed matters.
"$scan" --generate again.db --symbols 50 --days 504 --seed 7
"$scan" --db again.db --workers 2 --symbols 50 --print-matches | head -n -1 | cmp -s - m1.txt ||
  fail "the same seed generated different candles"
"$scan" --generate other.db --symbols 50 --days 504 --seed 8
"$scan" --db other.db --workers 2 --symbols 50 --print-matches | head -n -1 | cmp -s - m1.txt &&
  fail "seeds 7 and 8 generated the same matches"

# Bad options: non-zero exit, one line on stderr naming the option.
expect_error() {
  local option=$1
  shift
  if "$scan" "$@" > out.txt 2> err.txt; then fail "'$*' succeeded"; fi
  [ "$(wc -l < err.txt)" -eq 1 ] || fail "'$*' wrote $(wc -l < err.txt) lines to stderr: $(cat err.txt)"
  grep -q -- "$option" err.txt || fail "'$*' error does not name $option: $(cat err.txt)"
}
expect_error --workers --db small.db --workers 0
expect_error --workers --db small.db --workers two
expect_error --db --workers 2
expect_error --db --db missing.db --workers 2
expect_error --db --db m1.txt --workers 2
expect_error --symbols --db small.db --workers 2 --symbols 0
echo "bad options: each fails with one line naming the option"

# Against the anchor, where it can run.
anchors=$src/../shared/anchors
if [ ! -f "$anchors/scan_ppe.py" ]; then
  echo "SKIP anchor comparison: $anchors/scan_ppe.py not found (a fresh clone has no ../shared)"
elif ! /usr/bin/python3 -c 'import pandas' 2> /dev/null; then
  echo "SKIP anchor comparison: /usr/bin/python3 has no pandas (scripts/install-deps.sh bench)"
else
  anchor=$(/usr/bin/python3 "$anchors/scan_ppe.py" small.db 2 50)
  echo "scan_ppe.py: $anchor"
  [[ $anchor =~ ^symbols=50\ matches=$matches\  ]] ||
    fail "scan_ppe.py counts differently: '$anchor' against $matches"
  /usr/bin/python3 "$src/bench/scan_matches.py" "$anchors" small.db 2 50 > anchor.txt
  cmp -s anchor.txt m1.txt || { diff anchor.txt m1.txt | head >&2; fail "match dates differ from scan_ppe.py's"; }
  echo "anchor comparison: the same $matches matches, date for date"
fi
echo "PASS"
