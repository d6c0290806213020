#!/usr/bin/env bash
# forklift load against its anchors, side by side in one run, on a throwaway PostgreSQL 15
# (tests/pg_fixture.py serve) and on SQLite; runs alternate, medians of REPS (default 3):
#   insert  1,000,000 rows (gen_prices.py 2000 500) into an empty table with a primary key:
#           psql "\copy" (one COPY) vs forklift load --workers 1, 2, 4, 8
#   upsert  the same rows, --mode upsert --key symbol,date --workers 4, into an empty table
#           into one that holds every key with other values (every row updated), and into
#           one that holds the same rows (a rerun of the same data: forklift rewrites no
#           row that would not change; the anchors rewrite them all), vs
#           seed_upsert.py (5,000-row INSERT .. ON CONFLICT, 4 connections) and vs one
#           COPY into a temp table + one INSERT .. SELECT .. ON CONFLICT DO UPDATE (psql),
#           and (no target: the server's own floor for 4 connections) the same in 4 psql
#           sessions at once, each on a quarter of the rows (rows dealt round-robin)
#   memory  forklift's peak RSS loading 1,000,000 and 10,000,000 rows (gen_prices.py 20000
#           500, ~600 MB, made once) into an unindexed table, 4 workers, one run each
#   sqlite  1,000,000 rows into a fresh SQLite file: sqlite3 ".import --csv" vs forklift
# Ratios are anchor time / forklift time (> 1: forklift is faster), wall time of each whole
# process. Every run of every program is checked: exit status, then the table's row count
# and a checksum (sum of volume, sum of close x 10^4) against the CSV's own; forklift's
# --json rows_loaded too; after an "every row updated" upsert no row may keep its old
# version (xmin). A check that fails stops the benchmark (exit 1); a missed target is only
# reported. Prints a summary block, then `RESULT load ...` and `ROW ...` lines
# (bench/run_all.sh's table).
# usage: bench/load_bench.sh [REPS]
#   env: FORKLIFT=build/forklift  DATA=<dir of FORKLIFT>/bench-data  SKIP_10M=1 (skip the 10M)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/pg_serve.sh"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

reps=${1:-3}
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/load_bench.sh [REPS]" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
anchors=$root/../shared/anchors
forklift=${FORKLIFT:-$root/build/forklift}
[ -x "$forklift" ] || { echo "load_bench.sh: $forklift not built (ninja -C build forklift)" >&2; exit 1; }
forklift=$(cd "$(dirname "$forklift")" && pwd)/$(basename "$forklift")
data=${DATA:-$(dirname "$forklift")/bench-data}
py=/usr/bin/python3
if [ ! -f "$anchors/gen_prices.py" ]; then
  echo "load: $anchors/gen_prices.py not found (a clone without ../shared): skipped"
  echo "RESULT load skipped=1"
  exit 0
fi
for tool in psql sqlite3 /usr/bin/time; do
  command -v "$tool" > /dev/null || { echo "load_bench.sh: $tool missing (scripts/install-deps.sh bench)" >&2; exit 1; }
done
have_psycopg2=1
$py -c 'import psycopg2' 2> /dev/null || have_psycopg2=0
mkdir -p "$data"

fail() {  # fail MESSAGE [FILE whose tail explains it]
  echo "load: FAILED: $1" >&2
  [ -n "${2:-}" ] && [ -s "$2" ] && tail -n 20 "$2" | sed 's/^/  | /' >&2
  exit 1
}
work=$(mktemp -d /tmp/forklift-load-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
  pg_stop
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A private copy of the binary: others may rebuild build/forklift while this runs.
cp "$forklift" "$work/forklift"
forklift_src=$forklift
forklift=$work/forklift
"$forklift" load --help > /dev/null 2>&1 || fail "$forklift_src has no working \`load\` command"

verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v + 0 >= t + 0) ? "met" : "MISSED"}'; }

# --- data (made once, kept in $data) ---------------------------------------------------
gen() {  # gen FILE SYMBOLS DAYS [SEED]
  if [ ! -s "$1" ]; then
    echo "load: gen_prices.py ${*:2} -> $1"
    $py "$anchors/gen_prices.py" "${@:2}" > "$1.tmp"
    mv "$1.tmp" "$1"
  fi
}
# The expected table contents, from the CSV itself: "rows sum(volume) sum(close * 10^4)"
# (close has 4 decimals, so the last is an exact integer; all three fit a double exactly).
checksum_of() {
  if [ ! -s "$1.check" ] || [ "$1.check" -ot "$1" ]; then
    awk -F, 'NR > 1 { n++; v += $7; c = $6; sub(/\./, "", c); s += c }
             END { printf "%.0f %.0f %.0f\n", n, v, s }' "$1" > "$1.check.tmp"
    mv "$1.check.tmp" "$1.check"
  fi
  cat "$1.check"
}
csv1m=$data/prices-1m.csv
csvold=$data/prices-1m-seed8.csv  # the same keys with other values: the "every row updated" case
gen "$csv1m" 2000 500
gen "$csvold" 2000 500 8
want1m=$(checksum_of "$csv1m")
wantold=$(checksum_of "$csvold")
[ "${want1m%% *}" = 1000000 ] || fail "$csv1m has ${want1m%% *} rows, expected 1000000"
[ "$want1m" != "$wantold" ] || fail "the seed-8 file has the same checksum as the seed-7 one"
# The 1M rows dealt round-robin into 4 headerless quarters (keys are unique, so the four
# sessions of the 4-connection SQL anchor never touch one row).
parts=()
for k in 0 1 2 3; do parts+=("$data/prices-1m.part$k.csv"); done
if [ ! -s "${parts[3]}" ] || [ "${parts[3]}" -ot "$csv1m" ]; then
  awk -v base="$data/prices-1m.part" 'NR > 1 { print > (base ((NR - 2) % 4) ".tmp") }' "$csv1m"
  for k in 0 1 2 3; do mv "$data/prices-1m.part$k.tmp" "${parts[$k]}"; done
fi

# --- the PostgreSQL server ---------------------------------------------------------------
pg_serve "$work" || fail "no PostgreSQL server"
echo "load: PostgreSQL $(psql -X -A -t -d "$dsn" -c 'show server_version') at $dsn; $(nproc) cores"
pg_checksum() { pg -c "select count(*) || ' ' || coalesce(sum(volume), 0) || ' ' || coalesce(sum(round(close * 10000)::bigint), 0) from $1"; }
cols="symbol text, date date, open float8, high float8, low float8, close float8, volume bigint"
pg -c "create table prices ($cols, primary key (symbol, date))" -c "create table prices_rss ($cols)"
# reset TABLE [CSV]: empty TABLE (or fill it with CSV by one COPY), then a checkpoint, so that
# every timed run starts from the same state.
reset() {
  pg -c "truncate $1"
  [ -z "${2:-}" ] || pg -c "\\copy $1 from '$2' csv header"
  pg -c checkpoint
}
# expect WHAT TABLE WANT: the table's checksum must be WANT.
expect() {
  local got
  got=$(pg_checksum "$2")
  [ "$got" = "$3" ] || fail "$1: $2 holds (rows sum(volume) sum(close*1e4)) '$got', expected '$3'"
}
# expect_rewritten WHAT X0: every row of prices written by a transaction after X0.
expect_rewritten() {
  local old
  old=$(pg -c "select count(*) from prices where xmin::text::bigint < $2")
  [ "$old" = 0 ] || fail "$1: $old rows of prices kept their old version (not updated)"
}
# check_json WHAT FILE ROWS: forklift --json's summary says succeeded, ROWS loaded, none
# rejected; sets FK_SELF="elapsed_s peak_rss_mb" from it.
check_json() {
  $py - "$2" "$3" > "$work/json.res" 2> "$work/json.err" << 'EOF' || fail "$1: forklift's --json summary" "$work/json.err"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.lstrip().startswith("{")]
if not lines:
    sys.exit(f"no JSON object on stdout: {open(sys.argv[1]).read()[:500]!r}")
s = json.loads(lines[-1])
want = int(sys.argv[2])
if s.get("status") != "succeeded" or s.get("rows_loaded") != want or s.get("rows_rejected", 0) != 0:
    sys.exit(f"status={s.get('status')} rows_loaded={s.get('rows_loaded')} (expected {want}) "
             f"rows_rejected={s.get('rows_rejected')} error={s.get('error')!r}")
print(f"{s.get('elapsed_s', 0):.3f} {s.get('peak_rss_mb', 0):.1f}")
EOF
  FK_SELF=$(cat "$work/json.res")
}
n=0
# fk NAME ARGS...: one `forklift load ARGS` with a fresh load id and journal, timed into T,
# its --json checked (want_rows rows); sets FK_SELF="elapsed_s peak_rss_mb".
FK_SELF=
fk_wrap=()  # a command to run forklift under (/usr/bin/time for the memory workload)
fk() {
  local name=$1
  shift
  n=$((n + 1))
  timed "$name" ${fk_wrap[@]+"${fk_wrap[@]}"} "$forklift" load "$@" --load-id "bench-$$-$RANDOM-$n" \
    --journal "$work/journal-$n.db" --progress none --json
  rm -f "$work/journal-$n.db"*
  check_json "$name" "$work/$name.out" "${want_rows:?}"
}

declare -A t  # workload -> the times of its runs, space-separated
add() { t[$1]="${t[$1]:-} $2"; }
workers=(1 2 4 8)
want_rows=${want1m%% *}
cat > "$work/upsert.sql" << EOF
create temp table prices_stage (like prices);
\\copy prices_stage from '$csv1m' csv header
insert into prices select * from prices_stage on conflict (symbol, date) do update set
  open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
  volume = excluded.volume;
EOF
# sql4: the upsert.sql anchor in 4 sessions at once, each on its quarter; fails if any does.
sql4() {
  local pids=() k rc=0
  for k in 0 1 2 3; do
    psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" \
      -c "create temp table prices_stage (like prices)" \
      -c "\\copy prices_stage from '${parts[$k]}' csv" \
      -c "insert into prices select * from prices_stage on conflict (symbol, date) do update set
            open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
            volume = excluded.volume" &
    pids+=($!)
  done
  for k in 0 1 2 3; do wait "${pids[$k]}" || rc=$?; done
  return $rc
}
# upsert_run KEY WHAT CMD...: one upsert run of the current $case: the table reset to
# $prefill, CMD (timed or fk: sets T), the table checked (and, for "full", every row
# rewritten), T added to KEY's times.
upsert_run() {
  local key=$1 what=$2 x0
  shift 2
  reset prices "$prefill"
  x0=$(pg -c "select txid_current()")
  "$@"
  expect "$what ($case)" prices "$want1m"
  if [ "$case" = full ]; then expect_rewritten "$what ($case)" "$x0"; fi
  add "$key" "$T"
}
sqlite_schema="create table prices (symbol text, date text, open real, high real, low real, close real, volume integer, primary key (symbol, date))"
sq_checksum() { sqlite3 "$1" "select count(*) || ' ' || coalesce(sum(volume), 0) || ' ' || coalesce(sum(cast(round(close * 10000) as integer)), 0) from prices"; }

for ((r = 1; r <= reps; r++)); do
  # 2. insert into an empty table with a primary key
  reset prices
  timed copy psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "\\copy prices from '$csv1m' csv header"
  expect "psql \\copy" prices "$want1m"
  add copy "$T"
  line="copy ${T}s"
  for w in "${workers[@]}"; do
    reset prices
    fk "insert-w$w" "$csv1m" --to "$dsn" --table prices --workers "$w"
    expect "forklift load --workers $w" prices "$want1m"
    add "fk_w$w" "$T"
    line="$line, forklift -w$w ${T}s (own ${FK_SELF%% *}s)"
  done
  echo "load: run $r/$reps insert: $line"

  # 3. upsert: an empty table, one holding every key with other values (every row
  #    updated), and one holding the same rows (a rerun of the same data)
  for case in empty full rerun; do
    line=
    prefill=
    [ $case = full ] && prefill=$csvold
    [ $case = rerun ] && prefill=$csv1m
    if [ $have_psycopg2 = 1 ]; then
      upsert_run "seed_$case" seed_upsert.py timed "seed-$case" $py "$anchors/seed_upsert.py" "$csv1m" "$dsn" 4
      line="seed_upsert.py ${T}s, "
    fi
    upsert_run "sql_$case" "COPY + INSERT .. ON CONFLICT" \
      timed "sql-$case" psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" -f "$work/upsert.sql"
    line="${line}COPY+INSERT..ON CONFLICT ${T}s, "
    upsert_run "sql4_$case" "4 sessions of COPY + INSERT .. ON CONFLICT" timed "sql4-$case" sql4
    line="${line}the same in 4 sessions ${T}s, "
    upsert_run "fk_up_$case" "forklift load --mode upsert" \
      fk "upsert-$case" "$csv1m" --to "$dsn" --table prices --mode upsert --key symbol,date --workers 4
    case $case in
      empty) what="n empty table" ;;
      full) what=" full table (every row updated)" ;;
      rerun) what=" table holding the same rows (a rerun)" ;;
    esac
    echo "load: run $r/$reps upsert into a$what: ${line}forklift -w4 ${T}s (own ${FK_SELF%% *}s)"
  done

  # 5. SQLite: a fresh file each run
  rm -f "$work/anchor.db" && sqlite3 "$work/anchor.db" "$sqlite_schema"
  timed sqlite-import sqlite3 -bail "$work/anchor.db" ".import --csv --skip 1 $csv1m prices"
  got=$(sq_checksum "$work/anchor.db")
  [ "$got" = "$want1m" ] || fail "sqlite3 .import: the table holds '$got', expected '$want1m'" "$work/sqlite-import.err"
  add sq_import "$T"
  line="sqlite3 .import ${T}s"
  rm -f "$work/fk.db"* && sqlite3 "$work/fk.db" "$sqlite_schema"
  fk sqlite "$csv1m" --to "sqlite:$work/fk.db" --table prices
  got=$(sq_checksum "$work/fk.db")
  [ "$got" = "$want1m" ] || fail "forklift load --to sqlite: the table holds '$got', expected '$want1m'" "$work/sqlite.err"
  add fk_sq "$T"
  echo "load: run $r/$reps sqlite: $line, forklift ${T}s (own ${FK_SELF%% *}s)"
  rm -f "$work/anchor.db"* "$work/fk.db"*
done

# 4. memory: one run each of 1M and 10M rows into an unindexed table, 4 workers
rss1=NA rss10=NA rss_self1=NA rss_self10=NA rss_note=
csv10m=$data/prices-10m.csv
avail_mb() { df -Pk "$1" | awk 'NR == 2 {printf "%d", $4 / 1024}'; }
pgdir_avail=$(avail_mb "${TMPDIR:-/tmp}")
data_avail=$(avail_mb "$data")
if [ "${SKIP_10M:-0}" = 1 ]; then
  rss_note="skipped (SKIP_10M=1)"
elif { [ -s "$csv10m" ] || [ "$data_avail" -ge 1500 ]; } && [ "$pgdir_avail" -ge 4000 ]; then
  gen "$csv10m" 20000 500
  want10m=$(checksum_of "$csv10m")
  [ "${want10m%% *}" = 10000000 ] || fail "$csv10m has ${want10m%% *} rows, expected 10000000"
  for size in 1m 10m; do
    csv=$data/prices-$size.csv
    want=$want1m
    [ $size = 10m ] && want=$want10m
    want_rows=${want%% *}
    reset prices_rss
    fk_wrap=(/usr/bin/time -f %M -o "$work/rss-$size.kb")
    fk "rss-$size" "$csv" --to "$dsn" --table prices_rss --workers 4
    fk_wrap=()
    expect "forklift load, $size rows into prices_rss" prices_rss "$want"
    kb=$(tail -n 1 "$work/rss-$size.kb")
    [[ $kb =~ ^[0-9]+$ ]] || fail "/usr/bin/time wrote '$kb' for forklift's peak RSS"
    mb=$(awk -v k="$kb" 'BEGIN {printf "%.1f", k / 1024}')
    echo "load: memory, ${size%m}M rows, 4 workers, unindexed table: peak RSS $mb MB (--json peak_rss_mb ${FK_SELF#* }), ${T}s, $(awk -v n="$want_rows" -v s="$T" 'BEGIN {printf "%.0f", n / s}') rows/s"
    if [ $size = 1m ]; then rss1=$mb rss_self1=${FK_SELF#* }; else rss10=$mb rss_self10=${FK_SELF#* }; fi
  done
  pg -c "truncate prices_rss"
else
  rss_note="skipped: short of disk (need 4 GB free for PostgreSQL under ${TMPDIR:-/tmp}, have ${pgdir_avail} MB; 1.5 GB for the 10M CSV in $data, have ${data_avail} MB)"
  echo "load: memory: $rss_note"
fi

# --- medians, ratios, summary ----------------------------------------------------------------
m() { median <<< "${t[$1]:-}"; }
mcopy=$(m copy)
best_w=
for w in "${workers[@]}"; do
  if [ -z "$best_w" ] || awk -v a="$(m "fk_w$w")" -v b="$(m "fk_w$best_w")" 'BEGIN {exit !(a < b)}'; then best_w=$w; fi
done
summary=() rows=() ratios=
# item LABEL ANCHOR-KEY ANCHOR-NAME FORKLIFT-KEY TARGET RESULT-NAME: one ratio and its
# target (ratio >= TARGET; "-": none set)
item() {
  local ma mf r v tg
  ma=$(m "$2")
  mf=$(m "$4")
  r=$(ratio "$ma" "$mf")
  if [ "$5" = - ]; then v=- tg="no target"; else v=$(verdict "$r" "$5") tg="target >= $5"; fi
  echo "$1|$3|$ma s|$mf s|${r}x" >> "$work/medians"
  summary+=("$1 vs $3: ${r}x ($tg) $v")
  rows+=("$1|$mf s|$ma s ($3)|${r}x $(awk -v r="$r" 'BEGIN {print (r >= 1) ? "faster" : "(slower)"}')|$([ "$5" = - ] && echo - || echo ">= ${5}x")|$v")
  ratios="$ratios $6=$r"
}
echo "workload|anchor|anchor s|forklift s|anchor/forklift" > "$work/medians"
for w in "${workers[@]}"; do
  # The target is for the default (4 workers); the other counts are the curve.
  item "load insert 1M rows, $w worker$([ "$w" = 1 ] || echo s)" copy 'psql \copy' "fk_w$w" \
    "$([ "$w" = 4 ] && echo 1.0 || echo -)" "insert_w$w"
done
[ $have_psycopg2 = 0 ] ||
  item "load upsert 1M rows, empty table, 4 workers" seed_empty "seed_upsert.py 4 conns" fk_up_empty 3 upsert_empty_vs_seed
item "load upsert 1M rows, empty table, 4 workers" sql_empty "COPY + INSERT..ON CONFLICT" fk_up_empty 1.0 upsert_empty_vs_sql
item "load upsert 1M rows, empty table, 4 workers" sql4_empty "4 x (COPY + INSERT..ON CONFLICT)" fk_up_empty - upsert_empty_vs_sql4
[ $have_psycopg2 = 0 ] ||
  item "load upsert 1M rows, every row updated, 4 workers" seed_full "seed_upsert.py 4 conns" fk_up_full 3 upsert_full_vs_seed
item "load upsert 1M rows, every row updated, 4 workers" sql_full "COPY + INSERT..ON CONFLICT" fk_up_full 1.0 upsert_full_vs_sql
item "load upsert 1M rows, every row updated, 4 workers" sql4_full "4 x (COPY + INSERT..ON CONFLICT)" fk_up_full - upsert_full_vs_sql4
[ $have_psycopg2 = 0 ] ||
  item "load upsert 1M rows, same-data rerun, 4 workers" seed_rerun "seed_upsert.py 4 conns" fk_up_rerun 3 upsert_rerun_vs_seed
item "load upsert 1M rows, same-data rerun, 4 workers" sql_rerun "COPY + INSERT..ON CONFLICT" fk_up_rerun 1.0 upsert_rerun_vs_sql
item "load upsert 1M rows, same-data rerun, 4 workers" sql4_rerun "4 x (COPY + INSERT..ON CONFLICT)" fk_up_rerun - upsert_rerun_vs_sql4
item "load sqlite 1M rows, fresh file" sq_import "sqlite3 .import" fk_sq 1.0 sqlite
echo
echo "== forklift load: medians of $reps runs, wall seconds (anchor/forklift > 1: forklift is faster)"
awk -F'|' '{ for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NF }
  END { for (r = 1; r <= NR; r++) { line = ""
          for (i = 1; i <= n; i++) line = line (i < n ? sprintf("%-" w[i] "s  ", cell[r, i]) : cell[r, i])
          print line } }' "$work/medians"
[ $have_psycopg2 = 1 ] || echo "(seed_upsert.py not run: /usr/bin/python3 has no psycopg2; scripts/install-deps.sh bench)"
if [ "$rss1" != NA ]; then
  growth=$(awk -v a="$rss1" -v b="$rss10" 'BEGIN {printf "%+.1f", (b - a) * 100 / a}')
  rss_ratio=$(awk -v a="$rss1" -v b="$rss10" 'BEGIN {printf "%.2f", b / a}')
  v=$(awk -v a="$rss1" -v b="$rss10" 'BEGIN {print (b < 150 && b <= a * 1.10) ? "met" : "MISSED"}')
  echo "memory (one run each, 4 workers, unindexed table): peak RSS $rss1 MB at 1M rows, $rss10 MB at 10M rows (--json peak_rss_mb: $rss_self1, $rss_self10)"
  summary+=("load peak RSS at 10M vs 1M rows, 4 workers: $rss10 MB vs $rss1 MB = ${rss_ratio}x (${growth}%) (target < 150 MB and <= +10%) $v")
  rows+=("load peak RSS, 4 workers|$rss10 MB at 10M rows|$rss1 MB at 1M rows|${growth}% from 1M to 10M|< 150 MB, <= +10%|$v")
else
  summary+=("load peak RSS at 10M vs 1M rows: $rss_note")
fi

echo
echo "== forklift load summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, medians of $reps; best insert worker count: $best_w)"
printf '%s\n' "${summary[@]}"
echo "RESULT load copy_s=$mcopy$(for w in "${workers[@]}"; do printf ' fk_w%s_s=%s' "$w" "$(m "fk_w$w")"; done) best_workers=$best_w$ratios rss_1m_mb=$rss1 rss_10m_mb=$rss10"
printf 'ROW %s\n' "${rows[@]}"
