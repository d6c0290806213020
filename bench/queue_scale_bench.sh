#!/usr/bin/env bash
# Scaling of map --queue over worker hosts: I/O-bound jobs (each sleeps 50 ms) on 1, 2 and 4
# worker "hosts" (network namespaces, each joined to the fixture's PostgreSQL by a veth
# pair, as tests/queue_netns_test.py makes them) x 16 slots. ITEMS_PER_HOST jobs per host,
# so each run would take the same time if scaling were linear; throughput is jobs/s, and
# linearity is throughput(H) / (H x throughput(1)). Medians of RUNS. Needs root (ip netns).
# usage: bench/queue_scale_bench.sh BUILD_DIR      env: RUNS=3 ITEMS_PER_HOST=640 SLOTS=16
# Prints `RESULT queue_scale ...` and `ROW ...` lines (bench/run_all.sh).
set -euo pipefail
build=$(cd "${1:?usage: bench/queue_scale_bench.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
runs=${RUNS:-3}
per_host=${ITEMS_PER_HOST:-640}
slots=${SLOTS:-16}
hosts_max=4
work=$(mktemp -d)
tag=$(($$ % 100000))
net="10.$((100 + $$ % 150)).$(($$ / 150 % 256))"
pids=()
dsn=
names=()
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -n "${DEBUG:-}" ]; then psql -X -A -t -d "$dsn" -c "select state, worker_id, count(*) from forklift.slices group by 1,2" -c "select * from forklift.workers" -c "select * from forklift.runs" >&2 || true; fi
  if [ "$rc" -ne 0 ]; then for f in "$work"/w*.log; do [ -e "$f" ] && { echo "== $f" >&2; tail -n 5 "$f" >&2; }; done; fi
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  for ns in "${names[@]}"; do ip netns del "$ns" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
listen=()
for ((i = 0; i < hosts_max; i++)); do
  ns=fkqb$tag-$i
  ip netns add "$ns" || { echo "queue_scale: ip netns add refused (needs root)" >&2; exit 1; }
  names+=("$ns")
  ip link add "fqb${tag}h$i" type veth peer name "fqb${tag}n$i" netns "$ns"
  ip addr add "$net.$((4 * i + 1))/30" dev "fqb${tag}h$i"
  ip link set "fqb${tag}h$i" up
  ip -n "$ns" addr add "$net.$((4 * i + 2))/30" dev "fqb${tag}n$i"
  ip -n "$ns" link set "fqb${tag}n$i" up
  listen+=(--listen "$net.$((4 * i + 1))/30")
done
export FORKLIFT_JOURNAL=$work/journal.db
mkfifo "$work/hold"
python3 "$here/../tests/pg_fixture.py" serve --max-connections 60 "${listen[@]}" < "$work/hold" > "$work/dsn" &
pids+=($!)
exec 9> "$work/hold"
for _ in $(seq 300); do [ -s "$work/dsn" ] && break; sleep 0.1; done
dsn=$(head -n 1 "$work/dsn")
[ -n "$dsn" ] || { echo "queue_scale: no PostgreSQL" >&2; exit 1; }
port=${dsn##*:}
port=${port%%/*}

secs() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'; }
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

declare -A rate
for h in 1 2 4; do
  wp=()
  for ((i = 0; i < h; i++)); do
    log=$work/w$h-$i.log
    ip netns exec "fkqb$tag-$i" "$build/forklift" worker -j "$slots" --lease 10s \
      --queue "postgresql://postgres@$net.$((4 * i + 1)):$port/forklift_test" 2> "$log" &
    wp+=($!)
    pids+=($!)
    for _ in $(seq 300); do grep -q 'slot(s) on' "$log" && break; sleep 0.05; done
    grep -q 'slot(s) on' "$log" || { echo "queue_scale: worker $i did not start: $(cat "$log")" >&2; exit 1; }
  done
  n=$((per_host * h))
  awk -v n="$n" 'BEGIN {for (i = 0; i < n; i++) print "0.05"}' > "$work/in"  # each job: sleep 0.05
  ts=()
  for ((r = 1; r <= runs; r++)); do
    # Twice the slots in flight, slices of 4: no slot waits for the coordinator.
    ts+=("$(secs "$build/forklift" map --queue "$dsn" -j $((2 * slots * h)) --queue-slice 4 \
      --joblog "$work/j.log" sleep < "$work/in")")
    got=$(($(wc -l < "$work/j.log") - 1))
    [ "$got" -eq "$n" ] || { echo "queue_scale: joblog has $got rows, expected $n" >&2; exit 1; }
    echo "queue_scale: $h host(s) x $slots slots, $n jobs: ${ts[-1]}s"
  done
  t=$(printf '%s\n' "${ts[@]}" | median)
  rate[$h]=$(awk -v n="$n" -v t="$t" 'BEGIN {printf "%.1f", n / t}')
  for p in "${wp[@]}"; do kill -TERM "$p"; done
  for p in "${wp[@]}"; do wait "$p" || true; done
done
ideal=$(awk -v s="$slots" 'BEGIN {printf "%.0f", s / 0.05}')
lin2=$(awk -v a="${rate[2]}" -v b="${rate[1]}" 'BEGIN {printf "%.2f", a / (2 * b)}')
lin4=$(awk -v a="${rate[4]}" -v b="${rate[1]}" 'BEGIN {printf "%.2f", a / (4 * b)}')
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v + 0 >= t) ? "met" : "MISSED"}'; }
load=$(cut -d' ' -f1 /proc/loadavg)
echo "queue_scale: jobs/s: 1 host ${rate[1]} (ideal $ideal), 2 hosts ${rate[2]} (${lin2}x linear), 4 hosts ${rate[4]} (${lin4}x linear); load avg $load, $(nproc) cores"
echo "RESULT queue_scale rate1=${rate[1]} rate2=${rate[2]} rate4=${rate[4]} lin2=$lin2 lin4=$lin4"
echo "ROW map --queue scaling, 2 netns hosts x $slots slots, 50 ms jobs|${rate[2]} jobs/s|${rate[1]} jobs/s (1 host)|${lin2}x linear|>= 0.9x|$(verdict "$lin2" 0.9) (load avg $load)"
echo "ROW map --queue scaling, 4 netns hosts x $slots slots, 50 ms jobs|${rate[4]} jobs/s|${rate[1]} jobs/s (1 host)|${lin4}x linear|>= 0.9x|$(verdict "$lin4" 0.9) (load avg $load)"
