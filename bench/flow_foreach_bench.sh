#!/usr/bin/env bash
# A flow's fan-out task against forklift map of the same items, side by side: 3,000 x
# `/bin/true ITEM`, 2 at a time, each with a joblog and the journal (the fan-out runs its
# items through forklift map itself, so the difference is the flow around it: the plan,
# the lock, the watchdog, the task's log and record). Target: <= 1.2x map.
# Runs alternate; medians of RUNS (default 5).
# usage: bench/flow_foreach_bench.sh BUILD_DIR      env: RUNS=5 ITEMS=3000
set -euo pipefail
build=$(cd "${1:?usage: bench/flow_foreach_bench.sh BUILD_DIR}" && pwd)
runs=${RUNS:-5}
items=${ITEMS:-3000}
work=$(mktemp -d /tmp/forklift-foreach-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$build/forklift" "$work/forklift"  # others may rebuild build/forklift meanwhile
seq 1 "$items" > "$work/items.txt"
printf '[tasks.fan]\ncmd = "/bin/true {}"\nforeach = "items.txt"\njobs = 2\n' > "$work/flow.toml"
secs() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null 2>&1; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'; }
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
fl=() mp=()
for ((i = 1; i <= runs; i++)); do
  rm -rf "$work/.forklift" "$work/map.db" "$work/jl"
  mp+=("$(cd "$work" && secs env FORKLIFT_JOURNAL="$work/map.db" ./forklift map -j2 --joblog jl '/bin/true {}' :::: items.txt)")
  rm -rf "$work/.forklift"
  fl+=("$(cd "$work" && secs env -u FORKLIFT_JOURNAL ./forklift run flow.toml --jobs 2)")
  n=$(env -u FORKLIFT_JOURNAL sqlite3 "$work/.forklift/journal.db" "select count(*) from items where status = 'succeeded' and run_id like '%.fan'")
  [ "$n" -eq "$items" ] || { echo "flow_foreach: the fan-out recorded $n of $items items" >&2; exit 1; }
  echo "flow_foreach: run $i/$runs ($items items): map ${mp[-1]}s, flow fan-out ${fl[-1]}s"
done
mfl=$(printf '%s\n' "${fl[@]}" | median)
mmp=$(printf '%s\n' "${mp[@]}" | median)
echo "RESULT flow_foreach flow_s=$mfl map_s=$mmp vs_map=$(awk -v a="$mfl" -v b="$mmp" 'BEGIN {printf "%.2f", a / b}') items=$items"
