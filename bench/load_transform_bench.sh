#!/usr/bin/env bash
# forklift load --transform, side by side in one run on a throwaway PostgreSQL
# (tests/pg_fixture.py serve); runs alternate, medians of REPS (default 3):
#   cat   300,000 rows (gen_prices.py 600 500) into an unindexed table, --workers 2:
#         no transform vs --transform cat (target: cat costs <= 15 %)
#   cpu   the same rows through a CPU-bound awk transform (60 sin() per row, the row
#         written back unchanged): --cpu-workers 2 vs --cpu-workers 1 (target >= 1.7x; on a
#         machine with 2 cores shared with others, read it with the load average printed)
# Beside them the floors: the CPU (user + sys) of the awk transform run alone over the whole
# CSV (one process: what --cpu-workers 1 cannot go below, and that N workers can at best
# divide by min(N, cores)), and cat alone. Then forklift's peak RSS (--json peak_rss_mb) with
# --transform cat at 0.9M rows (the CSV 3 times) and at 9M (30 times; RSS=0 skips it):
# target within 10 %.
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

# Its CPU (user + sys) is the floor: on a shared machine its wall time is mostly waiting.
awk_alone() { /usr/bin/time -f "%U %S" -o "$work/cpu.awk" sh -c "$cpu_awk" < "$csv" > /dev/null; }
cat_alone() { cat < "$csv" > /dev/null; }
plain=() cat_t=() cpu1=() cpu2=() awk_f=() awk_w=() cat_f=()
for ((r = 1; r <= reps; r++)); do
  fk plain; plain+=("$T")
  fk cat --transform cat; cat_t+=("$T")
  fk cpu1 --transform "$cpu_awk" --cpu-workers 1; cpu1+=("$T")
  fk cpu2 --transform "$cpu_awk" --cpu-workers 2; cpu2+=("$T")
  timed awk_alone awk_alone; awk_w+=("$T"); awk_f+=("$(awk '{printf "%.3f", $1 + $2}' "$work/cpu.awk")")
  timed cat_alone cat_alone; cat_f+=("$T")
  echo "load_transform: rep $r: plain ${plain[-1]} s, cat ${cat_t[-1]} s, cpu-workers 1 ${cpu1[-1]} s, cpu-workers 2 ${cpu2[-1]} s; floors: awk alone ${awk_f[-1]} s CPU (${awk_w[-1]} s wall), cat alone ${cat_f[-1]} s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
pm=$(printf '%s\n' "${plain[@]}" | median)
cm=$(printf '%s\n' "${cat_t[@]}" | median)
c1=$(printf '%s\n' "${cpu1[@]}" | median)
c2=$(printf '%s\n' "${cpu2[@]}" | median)
af=$(printf '%s\n' "${awk_f[@]}" | median)
cf=$(printf '%s\n' "${cat_f[@]}" | median)
cores=$(nproc)
# The best --cpu-workers 2 can do: the transform's CPU split over min(2, cores) cores (the
# rest of the load overlaps it), and the speedup that allows over --cpu-workers 1.
floor2=$(awk -v a="$af" -v c="$cores" 'BEGIN {printf "%.3f", a / (c < 2 ? c : 2)}')
best=$(awk -v c1="$c1" -v a="$af" -v f="$floor2" 'BEGIN {m = a > f ? a - f : 0; printf "%.2f", c1 / (c1 - m)}')
overhead=$(awk -v c="$cm" -v p="$pm" 'BEGIN {printf "%.1f", (c / p - 1) * 100}')
speedup=$(ratio "$c1" "$c2")
load=$(cut -d' ' -f1-3 /proc/loadavg)
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {ok = op == "<=" ? v + 0 <= t + 0 : v + 0 >= t + 0; print ok ? "met" : "MISSED"}'; }
echo "load_transform: 300k rows, medians of $reps, $(nproc) cores, load average $load"
echo "  no transform ${pm} s, --transform cat ${cm} s: ${overhead} % more (target <= 15 %)"
echo "  CPU-bound transform: --cpu-workers 1 ${c1} s, --cpu-workers 2 ${c2} s: ${speedup}x (target >= 1.7x)"
echo "  floors: the awk transform alone ${af} s of CPU (user + sys; the per-core floor of --cpu-workers 1), ${floor2} s split over min(2, ${cores}) cores: at best ${best}x for --cpu-workers 2 when the rest of the load stays as it was; cat alone ${cf} s"

rss1=NA rssbig=NA growth=NA
if [ "${RSS:-1}" != 0 ]; then
  rss() {  # rss COPIES: forklift's peak RSS (MB), --transform cat, the CSV COPIES times
    local f=$work/rss.csv got
    { cat "$csv"; for ((i = 1; i < $1; i++)); do tail -n +2 "$csv"; done; } > "$f"
    pg -c "truncate prices" -c checkpoint
    "$forklift" load "$f" --to "$dsn" --table prices --workers 2 --progress none --load-id \
      "bench-$$-rss$1" --journal "$work/j-rss$1.db" --transform cat --json < /dev/null 2> "$work/rss.err" |
      sed -n 's/.*"peak_rss_mb":\([0-9.]*\).*/\1/p'
    got=$(pg -c "select count(*) || ' ' || coalesce(sum(volume), 0) from prices")
    [ "$got" = "$(awk -v w="$want" -v k="$1" 'BEGIN {split(w, a, " "); printf "%.0f %.0f", a[1] * k, a[2] * k}')" ] ||
      fail "rss $1: prices holds '$got'" "$work/rss.err"
    rm -f "$f"
  }
  rss1=$(rss 3)
  rssbig=$(rss 30)
  growth=$(awk -v a="$rss1" -v b="$rssbig" 'BEGIN {printf "%+.1f", (b - a) * 100 / a}')
  echo "  peak RSS with --transform cat: ${rss1} MB at 0.9M rows, ${rssbig} MB at 9M (${growth}%, target within 10 %)"
fi
echo "RESULT load_transform plain_s=$pm cat_s=$cm cat_overhead_pct=$overhead cpu1_s=$c1 cpu2_s=$c2 speedup=$speedup awk_alone_s=$af cpu2_floor_s=$floor2 best_speedup=$best cat_alone_s=$cf rss_0_9m_mb=$rss1 rss_9m_mb=$rssbig rss_growth=$growth loadavg=${load// /,}"
echo "ROW load --transform cat, 300k rows|$cm s|$pm s (no transform)|+${overhead} %|<= 15 %|$(verdict "$overhead" 15 '<=')"
echo "ROW load CPU-bound transform, --cpu-workers 2 vs 1|$c2 s|$c1 s (--cpu-workers 1)|${speedup}x|>= 1.7x|$(verdict "$speedup" 1.7 '>=') (load avg $load)"
