#!/usr/bin/env bash
# End-to-end mapping benchmark: `azlog-hub map` over >= 100 MB of records (the test fixtures,
# replicated), next to a serde_json parse-only baseline of the same bytes, in the same run.
# Usage: scripts/bench-map.sh [MB]     (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."
mb="${1:-100}"
work=.tools/bench
mkdir -p "$work"
data="$work/records-${mb}mb.ndjson"
cargo build --release --locked -q -p azlog-hub --bin azlog-hub
cargo build --release --locked -q -p azlog-mapper --example parse_only
target="${CARGO_TARGET_DIR:-target}/release"

if [ ! -s "$data" ]; then
  # One record per line (NDJSON) from every fixture family, repeated to the size asked for.
  "$target/azlog-hub" map --format ecs tests/fixtures/records/*.json 2>/dev/null \
    | python3 -c 'import sys,json; [print(json.loads(l)["event"]["original"]) for l in sys.stdin]' > "$work/one-round.ndjson"
  round=$(stat -c %s "$work/one-round.ndjson")
  n=$(( (mb * 1024 * 1024 + round - 1) / round ))
  for _ in $(seq 1 "$n"); do cat "$work/one-round.ndjson"; done > "$data"
fi
size=$(stat -c %s "$data")
echo "input: $data ($(( size / 1024 / 1024 )) MB)"

read -r recs _ base_s < <("$target/examples/parse_only" "$data" 2>/dev/null)
t0=$(date +%s.%N)
"$target/azlog-hub" map --no-original --dead-letter "$work/dead.ndjson" "$data" > /dev/null 2> "$work/map.err"
t1=$(date +%s.%N)
python3 - "$recs" "$size" "$base_s" "$t0" "$t1" <<'PY'
import sys
recs, size, base_s, t0, t1 = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
map_s = t1 - t0
mb = size / 1e6
print(f"{'run':<34}{'seconds':>9}{'records/s':>13}{'MB/s':>9}")
print(f"{'serde_json parse-only (baseline)':<34}{base_s:>9.2f}{recs/base_s:>13,.0f}{mb/base_s:>9.1f}")
print(f"{'azlog-hub map --format ecs':<34}{map_s:>9.2f}{recs/map_s:>13,.0f}{mb/map_s:>9.1f}")
print(f"map throughput = {base_s/map_s:.0%} of parse-only (target >= 50%)")
PY
cat "$work/map.err"
