#!/bin/sh
# Always fails: the notification relay is unreachable.
# usage: fail.sh NAME
echo "$1: connecting to relay <mail.internal> & sending summary" 
echo "$1: connection refused" >&2
exit 1
