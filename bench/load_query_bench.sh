#!/usr/bin/env bash
# Query sources (issue 14): forklift load --from PG --query ... --to PG of 1,000,000 rows vs
# the shell pipeline it replaces, `psql -c "\copy (query) to stdout" | psql -c "\copy t from
# stdin"`, side by side on one throwaway server; runs alternate, medians of REPS (default 3).
# Also forklift with --partition-by id --partitions 4, the floors (the query's COPY read
# alone into /dev/null, the rows' COPY written alone from a file), and forklift's peak RSS
# at 1M and at BIG rows (default 5,000,000; BIG=10000000 for the issue's 10M).
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
  psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "\\copy ($query) to stdout" |
    psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "\\copy t from stdin"
}
fk() { "$forklift" load --from "$dsn" --query "$query" --to "$dsn" --table t --progress none --journal "$work/j.db" "$@"; }
fk1() { fk; }
fk4() { fk --partition-by id --partitions 4; }
read_floor() { psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "\\copy ($query) to stdout" > /dev/null; }
write_floor() { psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "\\copy t from '$work/rows.txt'"; }
psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "\\copy ($query) to '$work/rows.txt'"

a=() f=() p=() rf=() wf=()
for ((r = 1; r <= reps; r++)); do
  fresh; timed anchor anchor; a+=("$T"); check anchor
  fresh; timed fk1 fk1; f+=("$T"); check forklift
  fresh; timed fk4 fk4; p+=("$T"); check "forklift --partitions 4"
  timed read_floor read_floor; rf+=("$T")
  fresh; timed write_floor write_floor; wf+=("$T"); check write_floor
  echo "load_query: run $r: psql | psql ${a[-1]} s, forklift ${f[-1]} s, forklift --partitions 4 ${p[-1]} s; floors: read ${rf[-1]} s, write ${wf[-1]} s"
done
am=$(echo "${a[*]}" | median)
fm=$(echo "${f[*]}" | median)
pm=$(echo "${p[*]}" | median)
rm_=$(echo "${rf[*]}" | median)
wm=$(echo "${wf[*]}" | median)
ratio1=$(ratio "$am" "$fm")
ratio4=$(ratio "$am" "$pm")

# Peak RSS at 1M and at BIG rows (forklift's summary, --json).
rss() { fk --json --workers 4 | sed -n 's/.*"peak_rss_mb":\([0-9.]*\).*/\1/p'; }
fresh; rss1=$(rss); check "forklift (RSS)"
pg -c "drop table src"
gen src "$big"
want=$(pg -c "select count(*) || ' ' || sum(volume) from src")
fresh; rssbig=$(rss); check "forklift (RSS, $big rows)"
growth=$(awk -v a="$rss1" -v b="$rssbig" 'BEGIN {printf "%+.1f", (b - a) * 100 / a}')
echo "load_query: medians of $reps: psql \\copy | psql \\copy $am s, forklift $fm s (${ratio1}x), forklift --partitions 4 $pm s (${ratio4}x); floors: read alone $rm_ s, write alone $wm s; peak RSS ${rss1} MB at 1M, ${rssbig} MB at $big (${growth}%)"
echo "RESULT load_query anchor_s=$am forklift_s=$fm ratio=$ratio1 partitions4_s=$pm ratio4=$ratio4 read_floor_s=$rm_ write_floor_s=$wm rss_1m_mb=$rss1 rss_big_mb=$rssbig big_rows=$big rss_growth=$growth"
