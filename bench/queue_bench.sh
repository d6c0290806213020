#!/usr/bin/env bash
# map --queue against a local map: the same 3,000 x /bin/true as bench/map_bench.sh, with
# one local worker (-j2) on the fixture's PostgreSQL, and the dispatch rate of empty jobs
# (coordinator + 2 workers). Runs alternate; medians of RUNS.
# Beside each figure its floor: the spawn loop's and local map's times, the WAL flushes
# (durable commits) a map --queue run cost.
# usage: bench/queue_bench.sh BUILD_DIR      env: JOBS=3000 RUNS=3 QUEUE_J=64
set -euo pipefail
build=$(cd "${1:?usage: bench/queue_bench.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
jobs=${JOBS:-3000}
runs=${RUNS:-3}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
seq "$jobs" > "$work/in"
export FORKLIFT_JOURNAL=$work/journal.db
# A throwaway server for the run (tests/pg_fixture.py prints its DSN, serves until stdin ends).
mkfifo "$work/hold"
python3 "$here/../tests/pg_fixture.py" serve < "$work/hold" > "$work/dsn" &
pids+=($!)
exec 9> "$work/hold"
for _ in $(seq 100); do [ -s "$work/dsn" ] && break; sleep 0.1; done
dsn=$(head -n 1 "$work/dsn")
[ -n "$dsn" ] || { echo "queue: no PostgreSQL" >&2; exit 1; }

secs() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'; }
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
rows_ok() {
  local n=$(($(wc -l < "$1") - 1))
  [ "$n" -eq "$jobs" ] || { echo "queue: joblog has $n rows, expected $jobs" >&2; exit 1; }
}

# The server's counters around a run: WAL flushes (each commit that must be durable waits
# for one; on this kind of machine they, not CPU, bound the queue) and transactions.
counters() {
  command -v psql > /dev/null || { echo "NA NA"; return; }
  psql "$dsn" -Atc "SELECT (SELECT wal_sync FROM pg_stat_wal), xact_commit FROM pg_stat_database
    WHERE datname = current_database()" | tr '|' ' '
}
"$build/forklift" worker --queue "$dsn" -j 2 2> "$work/w1.log" &
pids+=($!)
qj=${QUEUE_J:-64}
loc=() que=() flo=() syn=() xac=()
for ((i = 1; i <= runs; i++)); do
  # The floors: the worker's own spawn rate (a bare posix_spawn loop, 2 at a time) and
  # local map's time.
  flo+=("$(secs "$build/bench/spawn_floor" "$jobs" 2 /bin/true)")
  loc+=("$(secs "$build/forklift" map -j2 --joblog "$work/l.log" /bin/true < "$work/in")")
  rows_ok "$work/l.log"
  read -r s0 x0 < <(counters)
  que+=("$(secs "$build/forklift" map --queue "$dsn" -j "$qj" --joblog "$work/q.log" /bin/true < "$work/in")")
  read -r s1 x1 < <(counters)
  rows_ok "$work/q.log"
  if [ "$s0" != NA ]; then syn+=($((s1 - s0))) xac+=($((x1 - x0))); else syn+=(0) xac+=(0); fi
  echo "queue: run $i/$runs: spawn floor ${flo[-1]}s, local map ${loc[-1]}s, map --queue -j $qj" \
    "+ 1 worker (-j2) ${que[-1]}s (${syn[-1]} WAL flushes, ${xac[-1]} transactions)"
done
"$build/forklift" worker --queue "$dsn" -j 2 2> "$work/w2.log" &
pids+=($!)
# Dispatch: empty jobs (the command 'true' is a shell builtin? no: exec'd /bin/true is the
# cheapest job there is), 256 in flight, slices of 100, two workers.
n=${DISPATCH_JOBS:-10000}
seq "$n" > "$work/in2"
dis=()
for ((i = 1; i <= runs; i++)); do
  dis+=("$(secs "$build/forklift" map --queue "$dsn" -j 256 --queue-slice 100 /bin/true < "$work/in2")")
  echo "queue: dispatch run $i/$runs: $n jobs in ${dis[-1]}s"
done
# run_batch with a queue (examples/queue_batch): empty items, the coordinator + 2 serve_queue
# workers (-j1 each), slices of 2,000 (4,000 items prefetched, 2 slices a claim). Claim latency: a Claim's request to its return
# (with the round's outcomes recorded in the same transaction), over
# claims that returned slices, from the workers' reports (the median of their p50/p99).
bn=${BATCH_ITEMS:-50000}
bat=() cp50=() cp99=()
for ((i = 1; i <= runs; i++)); do
  for w in 1 2; do
    "$build/forklift-queue-batch" serve "$dsn" --empty -j 1 --prefetch 4000 --claim-slices 2 \
      --max-idle-ms 1500 > "$work/s$w.out" 2> "$work/s$w.err" &
    pids+=($!)
    eval "sp$w=\$!"
  done
  bat+=("$(secs "$build/forklift-queue-batch" coordinate "$dsn" "$bn" --empty --quiet --slice 2000)")
  wait "$sp1" "$sp2"
  for w in 1 2; do
    read -r p50 p99 < <(sed -n 's/.*claim_p50_us=\([0-9]*\) claim_p99_us=\([0-9]*\).*/\1 \2/p' "$work/s$w.out")
    cp50+=("$p50") cp99+=("$p99")
  done
  echo "queue: run_batch run $i/$runs: $bn empty items in ${bat[-1]}s"
done
ml=$(printf '%s\n' "${loc[@]}" | median)
mf=$(printf '%s\n' "${flo[@]}" | median)
msyn=$(printf '%s\n' "${syn[@]}" | median)
mxac=$(printf '%s\n' "${xac[@]}" | median)
mq=$(printf '%s\n' "${que[@]}" | median)
md=$(printf '%s\n' "${dis[@]}" | median)
ratio=$(awk -v a="$mq" -v b="$ml" 'BEGIN {printf "%.2f", a / b}')
rate=$(awk -v t="$md" -v n="$n" 'BEGIN {printf "%.0f", n / t}')
mb=$(printf '%s\n' "${bat[@]}" | median)
brate=$(awk -v t="$mb" -v n="$bn" 'BEGIN {printf "%.0f", n / t}')
p50=$(printf '%s\n' "${cp50[@]}" | median)
p99=$(printf '%s\n' "${cp99[@]}" | median)
echo "queue: medians: spawn floor ${mf}s, local ${ml}s, queue ${mq}s (${ratio}x;" \
  "${msyn} WAL flushes, ${mxac} transactions per $jobs jobs); dispatch ${rate} jobs/s;" \
  "run_batch ${brate} items/s, claim p50 ${p50}us p99 ${p99}us; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "RESULT queue local_s=$ml queue_s=$mq vs_local=$ratio floor_s=$mf wal_flushes=$msyn" \
  "transactions=$mxac dispatch_per_s=$rate batch_items_per_s=$brate claim_p50_us=$p50 claim_p99_us=$p99"
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {ok = op == "<=" ? v + 0 <= t + 0 : v + 0 >= t + 0; print ok ? "met" : "MISSED"}'; }
echo "ROW map --queue 3,000 x /bin/true, 1 worker -j2|$mq s|$ml s (local map -j2), spawn floor $mf s, $msyn WAL flushes|${ratio}x local's time|<= 1.5x|$(verdict "$ratio" 1.5 '<=')"
echo "ROW run_batch + queue, empty items, 2 workers|$brate items/s|claim p50 ${p50} us, p99 ${p99} us|-|>= 20,000 items/s|$(verdict "$brate" 20000 '>=')"
