#!/bin/sh
# The guardian of a test PostgreSQL server (tests/support/pg_server.cc, tests/pg_fixture.py).
# usage: pg_guardian.sh TEMP_DIR, with stdin a pipe from the test process.
# Waits for EOF on stdin (the test process closed its end or died), then shuts the server
# down the way a crash would want it: SIGQUIT to the postmaster is an immediate shutdown;
# SIGKILL after 10 s. Then removes TEMP_DIR. It ignores terminal signals so that a ^C aimed
# at the test still leaves it to clean up.
trap '' HUP INT TERM
while read -r _; do :; done
pidfile="$1/data/postmaster.pid"
if [ -f "$pidfile" ]; then
  pid=$(head -n 1 "$pidfile")
  if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
    i=0
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null
  fi
fi
rm -rf "$1"
