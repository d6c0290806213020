#!/usr/bin/env bash
# A flow's SQL maintenance phase against its floor: 6 `VACUUM ANALYZE` tasks of a flow
# (one SQL task per table, --jobs 6) against the slowest of the six statements run alone
# by psql — what a perfectly parallel phase cannot beat. Each timed run starts from the same
# dirty state (every row updated, so VACUUM has dead tuples to remove). Target: the phase
# in <= 1.1x its slowest statement. On a machine with fewer cores than statements the
# server cannot run six at once, so the floor (the slowest, or the six statements' time
# per core if larger) is printed beside it. Runs alternate; medians of RUNS (default 3).
# usage: bench/flow_sql_bench.sh BUILD_DIR      env: RUNS=3 ROWS=200000
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/pg_serve.sh"
build=$(cd "${1:?usage: bench/flow_sql_bench.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-3}
rows=${ROWS:-200000}
py=/usr/bin/python3
command -v psql > /dev/null || { echo "flow_sql_bench.sh: psql missing" >&2; exit 1; }

work=$(mktemp -d /tmp/forklift-flow-sql-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
  pg_stop
  rm -rf "$work"
}
trap cleanup EXIT
cp "$build/forklift" "$work/forklift"  # others may rebuild build/forklift meanwhile

pg_serve "$work" || exit 1

# Tables of different sizes, so one statement is the slowest: 1/6 .. 6/6 of ROWS.
for k in 1 2 3 4 5 6; do
  n=$((rows * k / 6))
  pg -c "create table m$k (id int primary key, v int, pad text)" \
     -c "alter table m$k set (autovacuum_enabled = false)" \
     -c "insert into m$k select g, g, repeat('x', 40) from generate_series(1, $n) g"
done
dirty() { for k in 1 2 3 4 5 6; do pg -c "update m$k set v = v + 1"; done; pg -c "checkpoint"; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null 2>&1; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'; }
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

{
  echo 'name = "maintenance"'
  for k in 1 2 3 4 5 6; do
    printf '[tasks.vacuum_m%d]\nsql = "VACUUM ANALYZE m%d"\ndb = "%s"\ngroup = "maintenance"\n' "$k" "$k" "$dsn"
  done
} > "$work/flow.toml"

fk=() slow=() floor=()
cores=$(nproc)
for ((i = 1; i <= runs; i++)); do
  dirty
  worst=0 sum=0
  for k in 1 2 3 4 5 6; do
    # The statement's own time (psql's \timing), without psql's start and connection.
    t=$(psql -X -A -t -d "$dsn" -c '\timing on' -c "VACUUM ANALYZE m$k" |
        sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | awk '{printf "%.3f", $1 / 1000}')
    worst=$(awk -v a="$worst" -v b="$t" 'BEGIN {print (b > a) ? b : a}')
    sum=$(awk -v a="$sum" -v b="$t" 'BEGIN {print a + b}')
    # Each statement alone starts dirty too: dirty only the table just vacuumed again.
    pg -c "update m$k set v = v + 1" -c "checkpoint"
  done
  slow+=("$worst")
  # With fewer cores than statements the server cannot run all six at once: the phase's
  # floor is the larger of the slowest statement and the six statements' work per core.
  floor+=("$(awk -v w="$worst" -v s="$sum" -v c="$cores" 'BEGIN {f = s / (c < 6 ? c : 6); printf "%.3f", (f > w) ? f : w}')")
  rm -rf "$work/.forklift"
  t=$(secs "$work/forklift" run "$work/flow.toml" --jobs 6)
  fk+=("$t")
  echo "flow_sql: run $i/$runs: slowest VACUUM alone ${worst}s (all six ${sum}s; floor on $cores cores ${floor[-1]}s), the 6-task phase ${t}s"
done
mfk=$(printf '%s\n' "${fk[@]}" | median)
msl=$(printf '%s\n' "${slow[@]}" | median)
mfl=$(printf '%s\n' "${floor[@]}" | median)
echo "RESULT flow_sql phase_s=$mfk slowest_alone_s=$msl floor_s=$mfl vs_slowest=$(awk -v a="$mfk" -v b="$msl" 'BEGIN {printf "%.2f", a / b}') vs_floor=$(awk -v a="$mfk" -v b="$mfl" 'BEGIN {printf "%.2f", a / b}') cores=$cores rows=$rows"
