#!/usr/bin/env bash
# Query sources (issue 14): forklift load --from PG --query ... --to PG of 1,000,000 rows vs
# the shell pipeline it replaces, `psql -c "\copy (query) to stdout" | psql -c "\copy t from
# stdin"`, side by side on one throwaway server; runs alternate, medians of REPS (default 3).
# Also forklift with --partition-by id --partitions 4, the floors (the query's COPY read
# alone into /dev/null, the rows' COPY written alone from a file), and forklift's peak RSS
# at 1M and at BIG rows (default 5,000,000; BIG=10000000 for the issue's 10M).
# Beside the ratios: forklift's own CPU (user + sys, and per row) against the pipeline's
# two psqls', and where the bound is: one stream cannot beat max(read alone, write alone),
# and the server's COPY FROM (write alone) bounds any number of partitions on one table.
# Targets: forklift >= 1.0x the pipeline; with 4 partitions >= 1.3x; peak RSS within 10 %
# from 1M to BIG. Every run is checked: exit status, the table's count and sum(volume).
# Prints `RESULT load_query ...`.
# usage: bench/load_query_bench.sh [REPS]   env: FORKLIFT=build/forklift  BIG=5000000
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/pg_serve.sh"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

reps=${1:-3}
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/load_query_bench.sh [REPS]" >&2; exit 2; }
big=${BIG:-5000000}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
forklift=${FORKLIFT:-$root/build/forklift}
[ -x "$forklift" ] || { echo "load_query_bench.sh: $forklift not built" >&2; exit 1; }
forklift=$(cd "$(dirname "$forklift")" && pwd)/$(basename "$forklift")
command -v psql > /dev/null || { echo "load_query_bench.sh: psql missing" >&2; exit 1; }
work=$(mktemp -d /tmp/forklift-query-bench.XXXXXX)
chmod 755 "$work"
cleanup() { pg_stop; rm -rf "$work"; }
trap cleanup EXIT
cp "$forklift" "$work/forklift"  # others may rebuild build/forklift meanwhile
forklift=$work/forklift
fail() { echo "load_query: FAILED: $1" >&2; [ -s "${2:-}" ] && tail -n 20 "$2" >&2; exit 1; }

pg_serve "$work" || fail "no PostgreSQL server"
echo "load_query: PostgreSQL $(pg -c 'show server_version') at $dsn; $(nproc) cores"
cols="id bigint, sym text, day date, price float8, volume bigint"
gen() {  # gen TABLE N
  pg -c "create table $1 ($cols); insert into $1 select i, 'SYM' || lpad((i % 2000)::text, 5, '0'),
         date '2020-01-01' + (i % 1500), round((i % 100000) / 7.0, 4)::float8, 1000 + i % 999983
         from generate_series(1, $2) i; alter table $1 add primary key (id); analyze $1"
}
gen src 1000000
query="select id, sym, day, price, volume from src"
want=$(pg -c "select count(*) || ' ' || sum(volume) from src")

check() {  # check NAME: t holds the query's rows
  local got
  got=$(pg -c "select count(*) || ' ' || coalesce(sum(volume), 0) from t")
  [ "$got" = "$want" ] || fail "$1: t holds '$got', the query '$want'"
}
fresh() { PGOPTIONS="-c client_min_messages=warning" pg -c "drop table if exists t; drop table if exists forklift_load_chunks; create table t ($cols)"; rm -f "$work"/j.db*; }

anchor() {
  /usr/bin/time -f "%U %S" -o "$work/cpu.a1" psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "\\copy ($query) to stdout" |
    /usr/bin/time -f "%U %S" -o "$work/cpu.a2" psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "\\copy t from stdin"
}
fk() { "$forklift" load --from "$dsn" --query "$query" --to "$dsn" --table t --progress none --journal "$work/j.db" "$@"; }
# The CPU (user + sys seconds) of the last fk1/fk4 run, and of the last pipeline's psqls.
cpu_of() { awk '{s += $1 + $2} END {printf "%.3f", s}' "$@"; }
fk1() { /usr/bin/time -f "%U %S" -o "$work/cpu.fk1" "$forklift" load --from "$dsn" --query "$query" --to "$dsn" --table t --progress none --journal "$work/j.db"; }
fk4() { /usr/bin/time -f "%U %S" -o "$work/cpu.fk4" "$forklift" load --from "$dsn" --query "$query" --to "$dsn" --table t --progress none --journal "$work/j.db" --partition-by id --partitions 4; }
read_floor() { psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "\\copy ($query) to stdout" > /dev/null; }
write_floor() { psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "\\copy t from '$work/rows.txt'"; }
psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "\\copy ($query) to '$work/rows.txt'"

a=() f=() p=() rf=() wf=() fc=() pc=() ac=()
for ((r = 1; r <= reps; r++)); do
  fresh; timed anchor anchor; a+=("$T"); check anchor; ac+=("$(cpu_of "$work/cpu.a1" "$work/cpu.a2")")
  fresh; timed fk1 fk1; f+=("$T"); check forklift; fc+=("$(cpu_of "$work/cpu.fk1")")
  fresh; timed fk4 fk4; p+=("$T"); check "forklift --partitions 4"; pc+=("$(cpu_of "$work/cpu.fk4")")
  timed read_floor read_floor; rf+=("$T")
  fresh; timed write_floor write_floor; wf+=("$T"); check write_floor
  echo "load_query: run $r: psql | psql ${a[-1]} s (CPU ${ac[-1]} s), forklift ${f[-1]} s (CPU ${fc[-1]} s), forklift --partitions 4 ${p[-1]} s (CPU ${pc[-1]} s); floors: read ${rf[-1]} s, write ${wf[-1]} s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
am=$(echo "${a[*]}" | median)
fm=$(echo "${f[*]}" | median)
pm=$(echo "${p[*]}" | median)
rm_=$(echo "${rf[*]}" | median)
wm=$(echo "${wf[*]}" | median)
ratio1=$(ratio "$am" "$fm")
ratio4=$(ratio "$am" "$pm")
acm=$(echo "${ac[*]}" | median)
fcm=$(echo "${fc[*]}" | median)
pcm=$(echo "${pc[*]}" | median)
us_row=$(awk -v c="$fcm" 'BEGIN {printf "%.2f", c * 1e6 / 1000000}')
floor1=$(awk -v r="$rm_" -v w="$wm" 'BEGIN {printf "%.3f", (r > w ? r : w)}')
of_floor1=$(ratio "$floor1" "$fm")
of_write4=$(ratio "$wm" "$pm")
load=$(cut -d' ' -f1-3 /proc/loadavg)

# Peak RSS at 1M and at BIG rows (forklift's summary, --json).
rss() { fk --json --workers 4 | sed -n 's/.*"peak_rss_mb":\([0-9.]*\).*/\1/p'; }
fresh; rss1=$(rss); check "forklift (RSS)"
pg -c "drop table src"
gen src "$big"
want=$(pg -c "select count(*) || ' ' || sum(volume) from src")
fresh; rssbig=$(rss); check "forklift (RSS, $big rows)"
growth=$(awk -v a="$rss1" -v b="$rssbig" 'BEGIN {printf "%+.1f", (b - a) * 100 / a}')
echo "load_query: medians of $reps: psql \\copy | psql \\copy $am s, forklift $fm s (${ratio1}x), forklift --partitions 4 $pm s (${ratio4}x); floors: read alone $rm_ s, write alone $wm s; peak RSS ${rss1} MB at 1M, ${rssbig} MB at $big (${growth}%)"
echo "load_query: bounds: one stream's floor max(read, write) = $floor1 s: forklift at ${of_floor1}x of it; --partitions 4 at ${of_write4}x of write alone; forklift's own CPU $fcm s (${us_row} us/row; --partitions 4: $pcm s), the pipeline's psqls $acm s; $(nproc) cores, load average $load"
echo "RESULT load_query anchor_s=$am forklift_s=$fm ratio=$ratio1 partitions4_s=$pm ratio4=$ratio4 read_floor_s=$rm_ write_floor_s=$wm floor1_s=$floor1 forklift_of_floor1=$of_floor1 partitions4_of_write=$of_write4 forklift_cpu_s=$fcm forklift_us_per_row=$us_row partitions4_cpu_s=$pcm anchor_cpu_s=$acm rss_1m_mb=$rss1 rss_big_mb=$rssbig big_rows=$big rss_growth=$growth loadavg=${load// /,}"
