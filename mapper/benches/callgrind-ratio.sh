#!/usr/bin/env bash
# Instruction-count ratio of the mapping bench (repeatable on a shared machine, unlike time):
# steady-state instructions per pass of serde_json parse-only and of map over the same records,
# each as (N passes + warm-up) - (warm-up only), divided by N.
# Usage: mapper/benches/callgrind-ratio.sh [N]   (needs valgrind; honours CARGO_TARGET_DIR and
# AZLOG_BENCH_FILTER, e.g. AZLOG_BENCH_FILTER=windows. for one family)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-5}"
bin=$(cargo bench -p azlog-mapper --bench map --no-run 2>&1 | sed -n 's/.*Executable benches\/map.rs (\(.*\))/\1/p' | tail -1)
[ -x "$bin" ] || { echo "bench binary not found" >&2; exit 1; }
ir() {
  AZLOG_BENCH_PASSES="$1:$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    --toggle-collect="*${1}_all*" "$bin" 2>&1 | sed -n 's/.*Collected : //p'
}
p0=$(ir parse 0); pn=$(ir parse "$n"); m0=$(ir map 0); mn=$(ir map "$n")
python3 - "$n" "$p0" "$pn" "$m0" "$mn" <<'PY'
import sys
n, p0, pn, m0, mn = (int(x) for x in sys.argv[1:])
p, m = (pn - p0) / n, (mn - m0) / n
print(f"parse-only {p:,.0f} Ir/pass   map {m:,.0f} Ir/pass   ratio parse/map {100 * p / m:.1f} %")
PY
