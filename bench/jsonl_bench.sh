#!/usr/bin/env bash
# JSON Lines into PostgreSQL (issue 14): forklift load of 1,000,000 JSON objects vs the
# shell pipeline it replaces, `jq -r '[...] | @csv' | psql "\copy ... csv"`, side by side
# on a throwaway server; runs alternate, medians of REPS (default 3). Beside them, the same
# rows as CSV through forklift load (what the JSON parsing costs over the CSV path).
# Target: forklift >= 1.0x the jq pipeline. Every run is checked: exit status, the table's
# row count and sum(volume) against the file's. Then forklift's peak RSS (--json
# peak_rss_mb) loading the 1M file and it repeated BIG_COPIES times (default 10: 10M rows;
# RSS=0 skips it): target within 10 %.
# Prints `RESULT jsonl ...`.
# usage: bench/jsonl_bench.sh [REPS]    env: FORKLIFT=build/forklift  DATA=<dir>/bench-data
#                                            BIG_COPIES=10  RSS=1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/pg_serve.sh"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

reps=${1:-3}
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/jsonl_bench.sh [REPS]" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
forklift=${FORKLIFT:-$root/build/forklift}
[ -x "$forklift" ] || { echo "jsonl_bench.sh: $forklift not built" >&2; exit 1; }
forklift=$(cd "$(dirname "$forklift")" && pwd)/$(basename "$forklift")
data=${DATA:-$(dirname "$forklift")/bench-data}
for tool in psql jq; do
  command -v "$tool" > /dev/null || { echo "jsonl_bench.sh: $tool missing (scripts/install-deps.sh bench)" >&2; exit 1; }
done
mkdir -p "$data"
work=$(mktemp -d /tmp/forklift-jsonl-bench.XXXXXX)
chmod 755 "$work"
cleanup() { pg_stop; rm -rf "$work"; }
trap cleanup EXIT
cp "$forklift" "$work/forklift"  # others may rebuild build/forklift meanwhile
forklift=$work/forklift
fail() { echo "jsonl: FAILED: $1" >&2; [ -s "${2:-}" ] && tail -n 20 "$2" >&2; exit 1; }

# 1,000,000 candles, as JSON Lines and as the same rows in CSV (made once).
jsonl=$data/prices-1m.jsonl
csv=$data/prices-1m-jsonl.csv
if [ ! -s "$jsonl" ] || [ ! -s "$csv" ]; then
  echo "jsonl: generating $jsonl"
  /usr/bin/python3 - "$jsonl" "$csv" <<'PY'
import json, random, sys
random.seed(11)
with open(sys.argv[1] + ".tmp", "w") as j, open(sys.argv[2] + ".tmp", "w") as c:
    c.write("symbol,date,open,high,low,close,volume\n")
    for i in range(1_000_000):
        o = {"symbol": f"SYM{i % 2000:05d}", "date": f"20{20 + i // 24000 % 5}-{1 + i // 2000 % 12:02d}-{1 + i // 48000 % 28:02d}",
             "open": round(random.uniform(10, 200), 4), "high": round(random.uniform(10, 200), 4),
             "low": round(random.uniform(10, 200), 4), "close": round(random.uniform(10, 200), 4),
             "volume": random.randint(1000, 10**6)}
        j.write(json.dumps(o) + "\n")
        c.write(",".join(str(v) for v in o.values()) + "\n")
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
PY
fi
want="1000000 $(awk -F, 'NR > 1 {v += $7} END {printf "%.0f", v}' "$csv")"

pg_serve "$work" || fail "no PostgreSQL server"
echo "jsonl: PostgreSQL $(pg -c 'show server_version') at $dsn; $(nproc) cores"
cols="symbol text, date date, open float8, high float8, low float8, close float8, volume bigint"

check() {  # check NAME: the table holds the file's rows
  local got
  got=$(pg -c "select count(*) || ' ' || coalesce(sum(volume), 0) from t")
  [ "$got" = "$want" ] || fail "$1: table holds '$got', the file '$want'"
}
fresh() { PGOPTIONS="-c client_min_messages=warning" pg -c "drop table if exists t; drop table if exists forklift_load_chunks; create table t ($cols)"; }

jq_pipe() {
  jq -r '[.symbol, .date, .open, .high, .low, .close, .volume] | @csv' "$jsonl" |
    psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "\\copy t from stdin with (format csv)"
}
fk_jsonl() { "$forklift" load "$jsonl" --to "$dsn" --table t --workers 4 --progress none --journal "$work/j.db"; }
fk_csv() { "$forklift" load "$csv" --to "$dsn" --table t --workers 4 --progress none --journal "$work/j.db"; }

a=() f=() c=()
for ((r = 1; r <= reps; r++)); do
  fresh; timed jq jq_pipe; a+=("$T"); check jq
  fresh; rm -f "$work"/j.db*; timed fk_jsonl fk_jsonl; f+=("$T"); check fk_jsonl
  fresh; rm -f "$work"/j.db*; timed fk_csv fk_csv; c+=("$T"); check fk_csv
  echo "jsonl: run $r: jq | psql ${a[-1]} s, forklift jsonl ${f[-1]} s, forklift csv ${c[-1]} s"
done
am=$(echo "${a[*]}" | median)
fm=$(echo "${f[*]}" | median)
cm=$(echo "${c[*]}" | median)
ratio=$(ratio "$am" "$fm")
over_csv=$(ratio "$fm" "$cm")
echo "jsonl: medians of $reps: jq | psql \\copy $am s, forklift load .jsonl $fm s (${ratio}x), the same rows as CSV $cm s (JSON costs ${over_csv}x)"

rss1=NA rssbig=NA growth=NA copies=${BIG_COPIES:-10}
if [ "${RSS:-1}" != 0 ]; then
  rss() {  # rss FILE: forklift's peak RSS (MB) loading it into an emptied t
    fresh; rm -f "$work"/j.db*
    "$forklift" load "$1" --to "$dsn" --table t --workers 4 --progress none --journal "$work/j.db" \
      --json < /dev/null 2> "$work/rss.err" | sed -n 's/.*"peak_rss_mb":\([0-9.]*\).*/\1/p'
  }
  rss1=$(rss "$jsonl"); check "forklift jsonl (RSS)"
  big_jsonl=$work/prices-big.jsonl
  for ((i = 0; i < copies; i++)); do cat "$jsonl"; done > "$big_jsonl"
  want_1m=$want
  want="$((1000000 * copies)) $(( ${want_1m#* } * copies ))"
  rssbig=$(rss "$big_jsonl"); check "forklift jsonl (RSS, ${copies}M rows)"
  rm -f "$big_jsonl"
  growth=$(awk -v a="$rss1" -v b="$rssbig" 'BEGIN {printf "%+.1f", (b - a) * 100 / a}')
  echo "jsonl: peak RSS ${rss1} MB at 1M rows, ${rssbig} MB at ${copies}M (${growth}%, target within 10 %)"
fi
echo "RESULT jsonl anchor_s=$am forklift_s=$fm ratio=$ratio csv_s=$cm jsonl_over_csv=$over_csv rss_1m_mb=$rss1 rss_big_mb=$rssbig big_rows=$((1000000 * copies)) rss_growth=$growth"
