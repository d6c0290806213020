#!/usr/bin/env bash
# forklift load --transform, side by side in one run on a throwaway PostgreSQL
# (tests/pg_fixture.py serve); runs alternate, medians of REPS (default 3):
#   cat   300,000 rows (gen_prices.py 600 500) into an unindexed table, --workers 2:
#         no transform vs --transform cat (target: cat costs <= 15 %)
#   cpu   the same rows through a CPU-bound awk transform (60 sin() per row, the row
#         written back unchanged): --cpu-workers 2 vs --cpu-workers 1 (target >= 1.7x; on a
#         machine with 2 cores shared with others, read it with the load average printed)
# Every run is checked: exit status and the table's row count and sum(volume) against the
# CSV's. Prints a summary, then `RESULT load_transform ...` and `ROW ...` lines
# (bench/run_all.sh's table).
# usage: bench/load_transform_bench.sh [REPS]     env: FORKLIFT=build/forklift  DATA=...
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/pg_serve.sh"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

reps=${1:-3}
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/load_transform_bench.sh [REPS]" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
anchors=$root/../shared/anchors
forklift=${FORKLIFT:-$root/build/forklift}
[ -x "$forklift" ] || { echo "load_transform_bench.sh: $forklift not built" >&2; exit 1; }
forklift=$(cd "$(dirname "$forklift")" && pwd)/$(basename "$forklift")
data=${DATA:-$(dirname "$forklift")/bench-data}
if [ ! -f "$anchors/gen_prices.py" ]; then
  echo "load_transform: $anchors/gen_prices.py not found (a clone without ../shared): skipped"
  echo "RESULT load_transform skipped=1"
  exit 0
fi
mkdir -p "$data"
fail() {
  echo "load_transform: FAILED: $1" >&2
  [ -n "${2:-}" ] && [ -s "$2" ] && tail -n 20 "$2" | sed 's/^/  | /' >&2
  exit 1
}
work=$(mktemp -d /tmp/forklift-transform-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
  pg_stop
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp "$forklift" "$work/forklift"  # others may rebuild build/forklift meanwhile
forklift=$work/forklift

csv=$data/prices-300k.csv
if [ ! -s "$csv" ]; then
  /usr/bin/python3 "$anchors/gen_prices.py" 600 500 > "$csv.tmp"
  mv "$csv.tmp" "$csv"
fi
want=$(awk -F, 'NR > 1 { n++; v += $7 } END { printf "%.0f %.0f\n", n, v }' "$csv")

pg_serve "$work" || fail "no PostgreSQL server"
pg -c "create table prices (symbol text, date date, open float8, high float8, low float8, close float8, volume bigint)"
cpu_awk="awk -F, 'NR == 1 { print; next } { s = 0; for (i = 0; i < 60; i++) s += sin(i * \$6); print }'"

# fk NAME ARGS...: one load into an emptied table, fresh load id and journal; time in T.
n=0
fk() {
  local name=$1 got
  shift
  n=$((n + 1))
  pg -c "truncate prices" -c checkpoint
  timed "$name" "$forklift" load "$csv" --to "$dsn" --table prices --workers 2 --progress none \
    --load-id "bench-$$-$n" --journal "$work/j$n.db" "$@"
  got=$(pg -c "select count(*) || ' ' || coalesce(sum(volume), 0) from prices")
  [ "$got" = "$want" ] || fail "$name: prices holds '$got', expected '$want'" "$work/$name.err"
}

plain=() cat_t=() cpu1=() cpu2=()
for ((r = 1; r <= reps; r++)); do
  fk plain; plain+=("$T")
  fk cat --transform cat; cat_t+=("$T")
  fk cpu1 --transform "$cpu_awk" --cpu-workers 1; cpu1+=("$T")
  fk cpu2 --transform "$cpu_awk" --cpu-workers 2; cpu2+=("$T")
  echo "load_transform: rep $r: plain ${plain[-1]} s, cat ${cat_t[-1]} s, cpu-workers 1 ${cpu1[-1]} s, cpu-workers 2 ${cpu2[-1]} s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
pm=$(printf '%s\n' "${plain[@]}" | median)
cm=$(printf '%s\n' "${cat_t[@]}" | median)
c1=$(printf '%s\n' "${cpu1[@]}" | median)
c2=$(printf '%s\n' "${cpu2[@]}" | median)
overhead=$(awk -v c="$cm" -v p="$pm" 'BEGIN {printf "%.1f", (c / p - 1) * 100}')
speedup=$(ratio "$c1" "$c2")
load=$(cut -d' ' -f1-3 /proc/loadavg)
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {ok = op == "<=" ? v + 0 <= t + 0 : v + 0 >= t + 0; print ok ? "met" : "MISSED"}'; }
echo "load_transform: 300k rows, medians of $reps, $(nproc) cores, load average $load"
echo "  no transform ${pm} s, --transform cat ${cm} s: ${overhead} % more (target <= 15 %)"
echo "  CPU-bound transform: --cpu-workers 1 ${c1} s, --cpu-workers 2 ${c2} s: ${speedup}x (target >= 1.7x)"
echo "RESULT load_transform plain_s=$pm cat_s=$cm cat_overhead_pct=$overhead cpu1_s=$c1 cpu2_s=$c2 speedup=$speedup loadavg=${load// /,}"
echo "ROW load --transform cat, 300k rows|$cm s|$pm s (no transform)|+${overhead} %|<= 15 %|$(verdict "$overhead" 15 '<=')"
echo "ROW load CPU-bound transform, --cpu-workers 2 vs 1|$c2 s|$c1 s (--cpu-workers 1)|${speedup}x|>= 1.7x|$(verdict "$speedup" 1.7 '>=') (load avg $load)"
