#!/bin/sh
# A stand-in for one nightly step: says what it does, works for a while, succeeds.
# usage: step.sh NAME SECONDS
echo "$1: starting (TZ=${TZ:-local})"
sleep "$2"
echo "$1: done"
