# Sourced by the benchmarks that need PostgreSQL: a throwaway server from
# tests/pg_fixture.py serve, stopped when the benchmark exits.
#   source bench/pg_serve.sh
#   pg_serve WORK_DIR        sets $dsn and $pg_pid (the server lives while fd 3 is open)
#   pg_stop                  stops it (call from the benchmark's EXIT trap)
#   pg ARGS...               psql on $dsn, quiet, unaligned, stopping on the first error
pg_pid=
pg_serve() {
  local work=$1 root i
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  mkfifo "$work/pg.in"
  /usr/bin/python3 "$root/tests/pg_fixture.py" serve < "$work/pg.in" > "$work/pg.out" 2> "$work/pg.err" &
  pg_pid=$!
  exec 3> "$work/pg.in"
  dsn=
  for ((i = 0; i < 600; i++)); do
    dsn=$(head -n 1 "$work/pg.out")
    [ -n "$dsn" ] && return 0
    if ! kill -0 "$pg_pid" 2> /dev/null; then
      echo "pg_serve: tests/pg_fixture.py serve exited:" >&2
      tail -n 20 "$work/pg.err" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "pg_serve: tests/pg_fixture.py serve printed no DSN in 60 s" >&2
  return 1
}
pg_stop() {
  exec 3>&- 2> /dev/null || true  # the server's stdin: closing it stops the server
  if [ -n "$pg_pid" ]; then
    kill -TERM "$pg_pid" 2> /dev/null || true
    wait "$pg_pid" 2> /dev/null || true
    pg_pid=
  fi
}
pg() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$dsn" "$@"; }
