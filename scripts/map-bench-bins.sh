# Sourced by the mapping benchmarks (scripts/bench-map.sh, mapper/benches/family-ratio.sh) from
# the repository root: builds the release `azlog-hub` and the `parse_only` baseline (unless
# AZLOG_BENCH_SKIP_BUILD is set) and sets `hub` and `parse` to their paths
# (AZLOG_BENCH_BIN_DIR=DIR: both taken from DIR; else $CARGO_TARGET_DIR or target/release).
if [ -z "${AZLOG_BENCH_SKIP_BUILD:-}" ]; then
  cargo build --release --locked -q -p azlog-hub --bin azlog-hub
  cargo build --release --locked -q -p azlog-mapper --example parse_only
fi
bench_target="${CARGO_TARGET_DIR:-target}/release"
hub="${AZLOG_BENCH_BIN_DIR:-$bench_target}/azlog-hub"
parse="${AZLOG_BENCH_BIN_DIR:-$bench_target/examples}/parse_only"
