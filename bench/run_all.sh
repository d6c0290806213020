#!/usr/bin/env bash
# Every forklift benchmark beside its anchor, then one table of the figures (`make bench`).
# usage: bench/run_all.sh BUILD_DIR
# See bench/README.md for what each measures. Quote the ratios, not the absolute times:
# the machines are shared and noisy. A missed target is reported, not an error; a
# benchmark whose correctness check fails (different matches, lost items) is an error.
set -uo pipefail

build=$(cd "${1:?usage: bench/run_all.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log=$build/bench-data/run_all.log
mkdir -p "$build/bench-data"
: > "$log"
status=0
rows=()

field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" | tail -n 1; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {
  if (v == "NA" || v == "") { print "n/a"; exit }
  ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 <= t + 0); print ok ? "met" : "MISSED" }'; }

echo "== a. scan: forklift-scan vs scan_ppe.py"
if out=$("$here/scan_bench.sh" "$build" | tee -a "$log" /dev/stderr); then
  r=$(grep '^RESULT scan' <<< "$out")
  ratio=$(field ratio <<< "$r")
  rows+=("scan 2,500 x 504, 2 workers|$(field forklift_s <<< "$r") s|$(field anchor_s <<< "$r") s (scan_ppe.py)|${ratio}x faster (wall $(field wall_ratio <<< "$r")x)|>= 20x|$(verdict "$ratio" 20 '>=')")
else
  status=1
  rows+=("scan 2,500 x 504, 2 workers|FAILED|||>= 20x|see $log")
fi

echo "== b. executor overhead: forklift TaskGroup vs tbb::task_group, empty tasks"
if [ -x "$build/bench/executor_overhead" ] &&
   out=$("$build/bench/executor_overhead" --tasks 1000000 --runs 7 --workers 2 | tee -a "$log" /dev/stderr); then
  r=$(tail -n 1 <<< "$out")
  ratio=$(field ratio <<< "$r")
  rows+=("empty task, 1M x 7 runs, 2 threads|$(field forklift_ns_per_task <<< "$r") ns/task|$(field tbb_ns_per_task <<< "$r") ns/task (oneTBB)|${ratio}x the anchor's cost|<= 2x|$(verdict "$ratio" 2 '<=')")
else
  status=1
  rows+=("empty task, 1M x 7 runs, 2 threads|FAILED (not built?)|||<= 2x|see $log")
fi

echo "== b2. the CSV reader alone, 1M generated rows: default dialect (quoted, unquoted), --quote/--escape"
for input in quoted unquoted escape; do
  if [ -x "$build/bench/csv_reader_bench" ] &&
     out=$("$build/bench/csv_reader_bench" 1000000 7 "$input" | tee -a "$log" /dev/stderr); then
    mapfile -t -O "${#rows[@]}" rows < <(sed -n 's/^ROW //p' <<< "$out")
  else
    status=1
    rows+=("CSV reader, 1000000 rows, $input|FAILED (not built?)|||-|see $log")
  fi
done

echo "== c. run_batch peak RSS, streaming 1M and 10M generated items"
rss=()
for n in 1000000 10000000; do
  if [ -x "$build/bench/batch_rss" ] && out=$("$build/bench/batch_rss" "$n" 2 | tee -a "$log" /dev/stderr); then
    rss+=("$(field peak_rss_kb <<< " $out")")
  else
    status=1
    rss+=("NA")
  fi
done
if [ "${rss[0]}" != NA ] && [ "${rss[1]}" != NA ]; then
  mb1=$(awk -v k="${rss[0]}" 'BEGIN {printf "%.1f", k / 1024}')
  mb10=$(awk -v k="${rss[1]}" 'BEGIN {printf "%.1f", k / 1024}')
  growth=$(awk -v a="${rss[0]}" -v b="${rss[1]}" 'BEGIN {printf "%+.1f", (b - a) * 100 / a}')
  ok=$(awk -v a="${rss[0]}" -v b="${rss[1]}" 'BEGIN {print (b < 64 * 1024 && b <= a * 1.10) ? "met" : "MISSED"}')
  rows+=("run_batch streaming, peak RSS|${mb10} MB at 10M|${mb1} MB at 1M|${growth}% from 1M to 10M|< 64 MB, <= +10%|$ok")
else
  rows+=("run_batch streaming, peak RSS|FAILED|||< 64 MB, <= +10%|see $log")
fi

echo "== d. forklift map vs xargs and GNU parallel: 3,000 x /bin/true, -j2, --joblog"
if out=$("$here/map_bench.sh" "$build" | tee -a "$log" /dev/stderr); then
  r=$(grep '^RESULT map' <<< "$out")
  vx=$(field vs_xargs <<< "$r")
  vg=$(field parallel_ratio <<< "$r")
  rows+=("map 3,000 x /bin/true, -j2|$(field forklift_s <<< "$r") s|$(field xargs_s <<< "$r") s (xargs -P2 -n1)|${vx}x xargs's time (floor: $(field vs_floor <<< "$r")x)|<= 1.2x|$(verdict "$vx" 1.2 '<=')")
  rows+=("map 3,000 x /bin/true, -j2, joblog|$(field forklift_s <<< "$r") s|$(field parallel_s <<< "$r") s (GNU parallel)|${vg}x faster|>= 8x|$(verdict "$vg" 8 '>=')")
else
  status=1
  rows+=("map 3,000 x /bin/true, -j2|FAILED|||<= 1.2x|see $log")
fi

echo "== e. forklift run vs make and ninja: the 3,000-task layered DAG, --jobs 2"
if out=$("$here/flow_bench.sh" "$build" | tee -a "$log" /dev/stderr); then
  r=$(grep '^RESULT flow' <<< "$out")
  if [ -z "$(field skipped <<< "$r")" ]; then
    vm=$(field vs_make <<< "$r")
    rows+=("run 3,000-task DAG, --jobs 2|$(field forklift_s <<< "$r") s|$(field make_s <<< "$r") s (make -j2), $(field ninja_s <<< "$r") s (ninja)|${vm}x make's time|<= 1.05x|$(verdict "$vm" 1.05 '<=')")
    rows+=("run per-task cost, 3k vs 30k tasks|$(field ms_per_task_30k <<< "$r") ms at 30k|$(field ms_per_task_3k <<< "$r") ms at 3k|-|flat|-")
  fi
else
  status=1
  rows+=("run 3,000-task DAG, --jobs 2|FAILED|||<= 1.0x|see $log")
fi

echo "== e3. a flow's fan-out task vs forklift map of the same 3,000 items"
if out=$("$here/flow_foreach_bench.sh" "$build" | tee -a "$log" /dev/stderr); then
  r=$(grep '^RESULT flow_foreach' <<< "$out")
  vs=$(field vs_map <<< "$r")
  rows+=("run fan-out, 3,000 x /bin/true, -j2|$(field flow_s <<< "$r") s|$(field map_s <<< "$r") s (forklift map)|${vs}x map's time|<= 1.2x|$(verdict "$vs" 1.2 '<=')")
else
  status=1
  rows+=("run fan-out, 3,000 x /bin/true, -j2|FAILED|||<= 1.2x|see $log")
fi

echo "== e2. a flow's SQL phase: 6 VACUUM ANALYZE tasks vs the slowest statement alone"
if out=$("$here/flow_sql_bench.sh" "$build" | tee -a "$log" /dev/stderr); then
  r=$(grep '^RESULT flow_sql' <<< "$out")
  vs=$(field vs_slowest <<< "$r")
  rows+=("run SQL phase, 6 x VACUUM ANALYZE|$(field phase_s <<< "$r") s|$(field slowest_alone_s <<< "$r") s (slowest alone), floor $(field floor_s <<< "$r") s on $(field cores <<< "$r") cores|${vs}x the slowest, $(field vs_floor <<< "$r")x the floor|<= 1.1x|$(verdict "$vs" 1.1 '<=')")
else
  status=1
  rows+=("run SQL phase, 6 x VACUUM ANALYZE|FAILED|||<= 1.1x|see $log")
fi

echo "== f2. forklift load of JSON Lines vs jq | psql \\copy"
if out=$(FORKLIFT="$build/forklift" "$here/jsonl_bench.sh" "${LOAD_REPS:-3}" | tee -a "$log" /dev/stderr); then
  r=$(grep '^RESULT jsonl' <<< "$out")
  ratio=$(field ratio <<< "$r")
  rows+=("load JSON Lines, 1M rows into PostgreSQL|$(field forklift_s <<< "$r") s|$(field anchor_s <<< "$r") s (jq | psql \\copy)|${ratio}x faster; $(field jsonl_over_csv <<< "$r")x the CSV load|>= 1.0x|$(verdict "$ratio" 1.0 '>=')")
else
  status=1
  rows+=("load JSON Lines, 1M rows into PostgreSQL|FAILED|||>= 1.0x|see $log")
fi

echo "== f3. forklift load --from/--query vs psql \\copy (query) | psql \\copy"
if out=$(FORKLIFT="$build/forklift" "$here/load_query_bench.sh" "${LOAD_REPS:-3}" | tee -a "$log" /dev/stderr); then
  r=$(grep '^RESULT load_query' <<< "$out")
  ratio=$(field ratio <<< "$r")
  ratio4=$(field ratio4 <<< "$r")
  rows+=("load a query PG->PG, 1M rows|$(field forklift_s <<< "$r") s|$(field anchor_s <<< "$r") s (psql \\copy | psql \\copy); floors read $(field read_floor_s <<< "$r") s, write $(field write_floor_s <<< "$r") s|${ratio}x faster|>= 1.0x|$(verdict "$ratio" 1.0 '>=')")
  rows+=("load a query PG->PG, 1M rows, --partitions 4|$(field partitions4_s <<< "$r") s|$(field anchor_s <<< "$r") s (psql \\copy | psql \\copy)|${ratio4}x faster|>= 1.3x|$(verdict "$ratio4" 1.3 '>=')")
  growth=$(field rss_growth <<< "$r")
  ok=$(awk -v g="$growth" 'BEGIN {print (g + 0 <= 10) ? "met" : "MISSED"}')
  rows+=("load a query, peak RSS|$(field rss_big_mb <<< "$r") MB at $(field big_rows <<< "$r") rows|$(field rss_1m_mb <<< "$r") MB at 1M|${growth}%|<= +10%|$ok")
else
  status=1
  rows+=("load a query PG->PG, 1M rows|FAILED|||>= 1.0x|see $log")
fi

echo "== f4. forklift load --transform: cat vs none, --cpu-workers 2 vs 1"
if out=$(FORKLIFT="$build/forklift" "$here/load_transform_bench.sh" "${LOAD_REPS:-3}" | tee -a "$log" /dev/stderr); then
  mapfile -t -O "${#rows[@]}" rows < <(sed -n 's/^ROW //p' <<< "$out")
else
  status=1
  rows+=("forklift load --transform|FAILED|||-|see $log")
fi

echo "== f. forklift load vs psql \\copy, seed_upsert.py, COPY + INSERT..ON CONFLICT, sqlite3 .import"
if out=$(FORKLIFT="$build/forklift" "$here/load_bench.sh" "${LOAD_REPS:-3}" | tee -a "$log" /dev/stderr); then
  mapfile -t -O "${#rows[@]}" rows < <(sed -n 's/^ROW //p' <<< "$out")
else
  status=1
  rows+=("forklift load|FAILED|||-|see $log")
fi
echo "== g. the work queue: map --queue vs local map, run_batch through the queue (dispatch)"
if out=$("$here/queue_bench.sh" "$build" | tee -a "$log" /dev/stderr); then
  mapfile -t -O "${#rows[@]}" rows < <(sed -n 's/^ROW //p' <<< "$out")
else
  status=1
  rows+=("forklift map --queue / run_batch + queue|FAILED|||-|see $log")
fi
echo "== h. map --queue scaling: 50 ms jobs on 1, 2, 4 network-namespace worker hosts x 16 slots"
if [ "$(id -u)" -ne 0 ]; then
  rows+=("map --queue scaling over netns hosts|skipped (needs root for ip netns)|||>= 0.9x|n/a")
elif out=$("$here/queue_scale_bench.sh" "$build" | tee -a "$log" /dev/stderr); then
  mapfile -t -O "${#rows[@]}" rows < <(sed -n 's/^ROW //p' <<< "$out")
else
  status=1
  rows+=("map --queue scaling over netns hosts|FAILED|||>= 0.9x|see $log")
fi
echo
echo "== results ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores; log: $log)"
{
  echo "benchmark|forklift|anchor|ratio|target|verdict"
  printf '%s\n' "${rows[@]}"
} | awk -F'|' '{ for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NF }
  END { for (r = 1; r <= NR; r++) { line = ""
          for (i = 1; i <= n; i++) line = line (i < n ? sprintf("%-" w[i] "s  ", cell[r, i]) : cell[r, i])
          print line } }'
exit $status
