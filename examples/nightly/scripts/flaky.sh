#!/bin/sh
# Fails on its first attempt and succeeds on the next: a scraper hitting a transient
# error. forklift tells each attempt its number in FORKLIFT_ATTEMPT.
# usage: flaky.sh NAME
if [ "${FORKLIFT_ATTEMPT:-1}" = 1 ]; then
  echo "$1: upstream answered 503" >&2
  exit 75
fi
echo "$1: done on attempt $FORKLIFT_ATTEMPT"
