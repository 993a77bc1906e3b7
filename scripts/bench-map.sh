#!/usr/bin/env bash
# End-to-end mapping benchmark: `azlog-hub map` over >= 100 MB of records (the test fixtures,
# replicated), next to a serde_json parse-only baseline of the same bytes, in the same run.
# The two alternate RUNS times (default 3); the best run of each is compared (wall clock),
# and CPU time (user + sys) is shown beside it, which suffers less on a loaded machine.
# Usage: scripts/bench-map.sh [MB] [RUNS] [ORDER]     (defaults 100, 3, mix)
# ORDER `mix`: one round is every fixture record once, file after file, so a family's records
# come 1-6 at a time (the figure the issue's target is judged on). ORDER `runs`: the same
# records with the same weights, each family's records repeated 10 times in a row (runs of
# 10-60), as Event Hubs events carry a batch of one category; with only 1-6 distinct fixtures
# per family the branch predictor learns them, so this is an optimistic bound for that shape.
# ORDER `varied`: the runs again, with the GUIDs, IPv4 addresses and ISO-8601 seconds of every
# copy rewritten, so no two records are byte-identical (scripts/bench_records.py).
# ORDER `samples`: not the fixtures but the real public logs in ../shared/samples (outside the
# repo; the order fails when that folder is absent), every record that maps, file after file.
# Two baselines: `parse_only` (the same envelope reader as `map`, then serde_json per record;
# the figure quoted since the start), and `parse_only --lines` (serde_json alone on each line,
# no envelope reader: the strictest reading of "serde_json parse-only of the same bytes").
# Both binaries use mimalloc (the baseline on the system allocator would read ≈ 10 % slower).
# AZLOG_BENCH_SKIP_BUILD=1 AZLOG_BENCH_BIN_DIR=DIR: use the azlog-hub and parse_only already in DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
mb="${1:-100}"
runs="${2:-3}"
order="${3:-mix}"
case "$order" in mix | runs | varied | samples) ;; *) echo "ORDER must be mix, runs, varied or samples" >&2; exit 2 ;; esac
samples_dir="$(pwd)/../shared/samples"
if [ "$order" = samples ] && [ ! -d "$samples_dir" ]; then
  echo "ORDER samples needs $samples_dir (the shared public samples); it is not there" >&2
  exit 2
fi
work=.tools/bench
mkdir -p "$work"
data="$work/records-${mb}mb.ndjson"
[ "$order" != mix ] && data="$work/records-${mb}mb-$order.ndjson"
. scripts/map-bench-bins.sh

if [ ! -s "$data" ]; then
  if [ "$order" = samples ]; then
    mapfile -t inputs < <(find "$samples_dir" -type f \( -name '*.json' -o -name '*.ndjson' -o -name '*.jsonl' \) | sort)
  else
    inputs=(tests/fixtures/records/*.json)
  fi
  for f in "${inputs[@]}"; do
    echo "#family $f"
    "$hub" map --format ecs "$f" 2>/dev/null
  done | python3 scripts/bench_records.py "$order" "$mb" "$data"
fi
size=$(stat -c %s "$data")
echo "input: $data ($(( size / 1024 / 1024 )) MB, order $order), $runs runs each, alternated"
# Ratios differ between CPU models (mapping gains less than parsing from a wider core), so
# say which one ran.
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
model=$(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
echo "cpu: ${cpu:-unknown} (model ${model:-?}), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"

times="$work/times.txt"
: > "$times"
for _ in $(seq 1 "$runs"); do
  /usr/bin/time -f "parse %e %U %S" -a -o "$times" "$parse" "$data" > "$work/parse.out" 2>/dev/null
  /usr/bin/time -f "lines %e %U %S" -a -o "$times" "$parse" --lines "$data" > /dev/null 2>&1
  /usr/bin/time -f "map %e %U %S" -a -o "$times" \
    "$hub" map --no-original --dead-letter "$work/dead.ndjson" "$data" > /dev/null 2> "$work/map.err"
  /usr/bin/time -f "map1 %e %U %S" -a -o "$times" \
    "$hub" map --jobs 1 --no-original --dead-letter "$work/dead.ndjson" "$data" > /dev/null 2>&1
done
recs=$(cut -d' ' -f1 "$work/parse.out")
python3 - "$recs" "$size" "$times" "$(nproc)" <<'PY'
import sys
recs, size, path, cores = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
runs = {"parse": [], "lines": [], "map": [], "map1": []}
for line in open(path):
    kind, wall, user, sys_ = line.split()
    runs[kind].append((float(wall), float(user) + float(sys_)))
mb = size / 1e6
# /usr/bin/time resolves 10 ms: a run over a few MB can read 0.00 s, so no time is taken as
# less than that.
best = {k: (max(min(w for w, _ in v), 0.01), max(min(c for _, c in v), 0.01)) for k, v in runs.items()}
print(f"{'run (best of ' + str(len(runs['map'])) + ')':<34}{'wall s':>8}{'records/s':>12}{'MB/s':>8}{'CPU s':>8}")
for k, label in (
    ("parse", "serde_json parse-only (baseline)"),
    ("lines", "serde_json alone, lines (strict)"),
    ("map1", "azlog-hub map --jobs 1"),
    ("map", f"azlog-hub map ({cores} mapping threads)"),
):
    w, c = best[k]
    print(f"{label:<34}{w:>8.2f}{recs / w:>12,.0f}{mb / w:>8.1f}{c:>8.2f}")
(pw, pc), (lw, lc), (m1w, m1c), (mw, mc) = best["parse"], best["lines"], best["map1"], best["map"]
# serde_json parses on one thread; `map` maps on every core by default. Per core the fair
# comparison is --jobs 1 by CPU time; by wall clock, the default run is what a user waits for.
print(f"map per core (--jobs 1, CPU time) = {pc / m1c:.0%} of parse-only; against serde_json alone on the lines: {lc / m1c:.0%} (target >= 50%)")
print(f"map on {cores} threads, wall clock = {pw / mw:.0%} of parse-only (one thread); against serde_json alone: {lw / mw:.0%}; {m1w / mw:.2f}x --jobs 1")
if min(min(v) for v in best.values()) < 0.1:
    print("  (some runs took under 0.1 s, near /usr/bin/time's 10 ms resolution: these ratios mean little; use MB >= 100)")
PY
cat "$work/map.err"
