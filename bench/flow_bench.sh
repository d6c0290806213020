#!/usr/bin/env bash
# forklift run against make and ninja on the anchors' layered DAG (dag_gen.py): 30 x 100 =
# 3,000 tasks of `/bin/true && touch NAME`, 2 at a time; then 300 x 100 = 30,000 tasks to
# show the scheduling cost per task does not grow with the DAG. Runs alternate; medians of
# RUNS. Needs ../shared/anchors/dag_gen.py (says so and stops without it).
# usage: bench/flow_bench.sh BUILD_DIR      env: RUNS=3
set -euo pipefail
build=$(cd "${1:?usage: bench/flow_bench.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
anchors=$(cd "$here/.." && pwd)/../shared/anchors
runs=${RUNS:-3}
if [ ! -f "$anchors/dag_gen.py" ]; then
  echo "flow: $anchors/dag_gen.py not found (a clone without ../shared): skipped"
  echo "RESULT flow skipped=1"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export FORKLIFT_JOURNAL=$work/journal.db

secs() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null 2>&1; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'; }
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
clean() { find "$1" -maxdepth 1 -name 'o*_*' -delete; rm -rf "$1/.forklift" "$1/.ninja_log" "$1/.ninja_deps"; }

/usr/bin/python3 "$anchors/dag_gen.py" 30 100 "$work/small" > /dev/null
/usr/bin/python3 "$anchors/dag_gen.py" 300 100 "$work/large" > /dev/null
# ninja's version of the same graph, written from the Makefile's rules.
for d in small large; do
  awk 'BEGIN { print "rule t\n  command = /bin/true && touch $out\n" }
       /^o[0-9]+_[0-9]+:/ { sub(":", "", $1); out = $1; $1 = ""; printf "build %s: t%s\n", out, $0 }
       /^all:/ { sub("all:", ""); targets = $0 }
       END { print "default" targets }' "$work/$d/Makefile" > "$work/$d/build.ninja"
done

fk=() mk=() nj=()
for ((i = 1; i <= runs; i++)); do
  clean "$work/small"; mk+=("$(cd "$work/small" && secs make -j2 -s)")
  clean "$work/small"; nj+=("$(cd "$work/small" && secs ninja -j2)")
  n=$(find "$work/small" -maxdepth 1 -name 'o*_*' | wc -l)
  [ "$n" -eq 3000 ] || { echo "flow: ninja made $n of 3000 outputs" >&2; exit 1; }
  clean "$work/small"; fk+=("$(cd "$work/small" && secs "$build/forklift" run flow.toml --jobs 2)")
  n=$(find "$work/small" -maxdepth 1 -name 'o*_*' | wc -l)
  [ "$n" -eq 3000 ] || { echo "flow: forklift made $n of 3000 outputs" >&2; exit 1; }
  echo "flow: run $i/$runs (3,000 tasks): make ${mk[-1]}s ninja ${nj[-1]}s forklift ${fk[-1]}s"
done
clean "$work/large"
big=$(cd "$work/large" && secs "$build/forklift" run flow.toml --jobs 2)
mfk=$(printf '%s\n' "${fk[@]}" | median)
mmk=$(printf '%s\n' "${mk[@]}" | median)
mnj=$(printf '%s\n' "${nj[@]}" | median)
per_small=$(awk -v t="$mfk" 'BEGIN {printf "%.3f", t * 1000 / 3000}')
per_large=$(awk -v t="$big" 'BEGIN {printf "%.3f", t * 1000 / 30000}')
echo "flow: medians (3,000 tasks): forklift ${mfk}s, make ${mmk}s, ninja ${mnj}s; 30,000 tasks: forklift ${big}s"
echo "RESULT flow forklift_s=$mfk make_s=$mmk ninja_s=$mnj vs_make=$(awk -v a="$mfk" -v b="$mmk" 'BEGIN {printf "%.2f", a / b}') vs_ninja=$(awk -v a="$mfk" -v b="$mnj" 'BEGIN {printf "%.2f", a / b}') ms_per_task_3k=$per_small ms_per_task_30k=$per_large"
