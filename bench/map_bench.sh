#!/usr/bin/env bash
# forklift map against xargs and GNU parallel: 3,000 jobs of /bin/true, 2 at a time,
# forklift and GNU parallel with --joblog (xargs keeps no log), plus a bare posix_spawn
# loop (the floor, with the same argv). Runs alternate; medians of RUNS (GNU parallel: in
# the first PARALLEL_RUNS rounds, since each of its runs takes 10-20 s).
# usage: bench/map_bench.sh BUILD_DIR      env: JOBS=3000 RUNS=5 PARALLEL_RUNS=3
set -euo pipefail
build=$(cd "${1:?usage: bench/map_bench.sh BUILD_DIR}" && pwd)
jobs=${JOBS:-3000}
runs=${RUNS:-5}
gnu_runs=${PARALLEL_RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seq "$jobs" > "$work/in"
export FORKLIFT_JOURNAL=$work/journal.db

secs() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'; }
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

fk=() xa=() fl=() gp=()
for ((i = 1; i <= runs; i++)); do
  fl+=("$(secs "$build/bench/spawn_floor" "$jobs" 2 /bin/true)")
  xa+=("$(secs xargs -P2 -n1 /bin/true < "$work/in")")
  fk+=("$(secs "$build/forklift" map -j2 --joblog "$work/fk.log" /bin/true < "$work/in")")
  line="map: run $i/$runs: floor ${fl[-1]}s xargs ${xa[-1]}s forklift ${fk[-1]}s"
  rows=$(($(wc -l < "$work/fk.log") - 1))
  [ "$rows" -eq "$jobs" ] || { echo "map: forklift's joblog has $rows rows, expected $jobs" >&2; exit 1; }
  # GNU parallel in the same rounds (the machine's speed drifts between minutes).
  if [ "$i" -le "$gnu_runs" ] && command -v parallel > /dev/null; then
    gp+=("$(secs parallel --will-cite -j2 --joblog "$work/gp.log" /bin/true < "$work/in")")
    line="$line GNU parallel ${gp[-1]}s"
  fi
  echo "$line"
done
mfk=$(printf '%s\n' "${fk[@]}" | median)
mxa=$(printf '%s\n' "${xa[@]}" | median)
mfl=$(printf '%s\n' "${fl[@]}" | median)
mgp=NA
[ ${#gp[@]} -gt 0 ] && mgp=$(printf '%s\n' "${gp[@]}" | median)
r_xargs=$(awk -v a="$mfk" -v b="$mxa" 'BEGIN {printf "%.2f", a / b}')
r_floor=$(awk -v a="$mfk" -v b="$mfl" 'BEGIN {printf "%.2f", a / b}')
r_gnu=NA ceiling=NA
[ "$mgp" != NA ] && r_gnu=$(awk -v a="$mfk" -v b="$mgp" 'BEGIN {printf "%.1f", b / a}')
# The most any runner of these 3,000 processes could gain on GNU parallel: its time over
# the floor's.
[ "$mgp" != NA ] && ceiling=$(awk -v a="$mfl" -v b="$mgp" 'BEGIN {printf "%.1f", b / a}')
echo "map: medians: forklift ${mfk}s, xargs ${mxa}s, floor ${mfl}s, GNU parallel ${mgp}s"
echo "RESULT map forklift_s=$mfk xargs_s=$mxa floor_s=$mfl parallel_s=$mgp vs_xargs=$r_xargs vs_floor=$r_floor parallel_ratio=$r_gnu floor_vs_parallel=$ceiling"
