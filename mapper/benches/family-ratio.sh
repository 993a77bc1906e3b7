#!/usr/bin/env bash
# Instructions (callgrind) of `azlog-hub map --jobs 1` and of `parse_only` per family: each
# fixture file's records repeated to about KB kilobytes, start-up (a run over an empty file)
# subtracted on both sides. Shows which families keep the mix below parse-only (repeatable on a
# shared machine, unlike time; instructions are not time: mapping runs at a lower IPC). The
# start-up differs by up to 0.2 M instructions between builds: compare builds by whole runs.
# Usage: mapper/benches/family-ratio.sh [KB]   (default 400; needs valgrind; builds release
# unless AZLOG_BENCH_SKIP_BUILD=1; AZLOG_BENCH_BIN_DIR=DIR takes azlog-hub and parse_only from DIR)
set -euo pipefail
cd "$(dirname "$0")/../.."
kb="${1:-400}"
mb=$(python3 -c "print($kb * 1000 / 1048576)")
. scripts/map-bench-bins.sh
work=.tools/bench/families
mkdir -p "$work"
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null | sed -n 's/.*Collected : //p'; }
: > "$work/empty.ndjson"
m0=$(ir "$hub" map --jobs 1 --no-original "$work/empty.ndjson")
p0=$(ir "$parse" "$work/empty.ndjson")
echo "start-up: map ${m0} Ir, parse_only ${p0} Ir (subtracted below)"
for f in tests/fixtures/records/*.json; do
  name=$(basename "$f" .json)
  data="$work/$name.ndjson"
  # The records as the mapper sees them (event.original), repeated to the size.
  { echo "#family $f"; "$hub" map --format ecs "$f" 2>/dev/null; } |
    python3 scripts/bench_records.py mix "$mb" "$data"
  m=$(ir "$hub" map --jobs 1 --no-original "$data")
  p=$(ir "$parse" "$data")
  echo "$name $((m - m0)) $((p - p0))"
done > "$work/ir.txt"
python3 - "$work/ir.txt" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rows = [(n, int(m), int(p)) for n, m, p in rows]
print("%-34s %10s %10s  parse/map" % ("family", "map Ir", "parse Ir"))
for n, m, p in sorted(rows, key=lambda r: r[2] / r[1]):
    print("%-34s %9.1fM %9.1fM  %5.1f %%" % (n, m / 1e6, p / 1e6, 100 * p / m))
tm, tp = sum(r[1] for r in rows), sum(r[2] for r in rows)
print("%-34s %9.1fM %9.1fM  %5.1f %%" % ("all (each family the same bytes)", tm / 1e6, tp / 1e6, 100 * tp / tm))
PY
