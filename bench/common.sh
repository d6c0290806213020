# Sourced by the benchmarks: medians, ratios and timed runs.
#   median          the median of the numbers on stdin (blank- or newline-separated), %.3f
#   ratio A B       A / B, %.2f
#   timed NAME CMD  runs CMD (stdin /dev/null, output in $work/NAME.out and .err) and sets T
#                   to its wall seconds; a non-zero exit calls the caller's
#                   `fail MESSAGE FILE`, which exits. Needs $work.
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR] = $1} END {printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
T=
timed() {
  local name=$1 t0 t1 rc=0
  shift
  t0=$(date +%s.%N)
  "$@" > "$work/$name.out" 2> "$work/$name.err" < /dev/null || rc=$?
  t1=$(date +%s.%N)
  [ $rc -eq 0 ] || fail "$name: exit status $rc: $*" "$work/$name.err"
  T=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
}
