#!/usr/bin/env bash
# Runs shell commands alternately, RUNS times each, and prints the minimum and the median CPU time
# (user + sys, from /usr/bin/time) of each: for A/B comparisons of two builds on a shared,
# noisy machine, where alternating spreads the other load over both sides.
# Usage: scripts/bench-alternate.sh RUNS "command 1" "command 2" ...
# Each command runs under `bash -c` with stdout and stderr discarded. Example:
#   scripts/bench-alternate.sh 9 "old/azlog-hub map --no-original --dead-letter /tmp/a big.ndjson" \
#     "new/azlog-hub map --no-original --dead-letter /tmp/b big.ndjson" "old/parse_only big.ndjson"
set -euo pipefail
if [ $# -lt 2 ] || ! [[ "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 RUNS COMMAND..." >&2
  exit 2
fi
runs=$1
shift
[ -x /usr/bin/time ] || { echo "bench-alternate: needs /usr/bin/time (Debian package time)" >&2; exit 2; }
times=$(mktemp)
trap 'rm -f "$times"' EXIT
for _ in $(seq 1 "$runs"); do
  k=0
  for c in "$@"; do
    if ! /usr/bin/time -f "$k %U %S" -a -o "$times" bash -c "$c" > /dev/null 2>&1; then
      echo "bench-alternate: command $((k + 1)) failed: $c" >&2
      exit 1
    fi
    k=$((k + 1))
  done
done
k=0
for c in "$@"; do
  awk -v k="$k" '$1 == k { print $2 + $3 }' "$times" | sort -n |
    awk -v c="$c" '{ a[NR] = $1 } END { printf "min %.2f s  median %.2f s  %s\n", a[1], a[int((NR + 1) / 2)], c }'
  k=$((k + 1))
done
