#!/usr/bin/env bash
# Bridge benchmark (issue 6 "Speed"): Event Hubs emulator (in process) -> azlog-hub service ->
# kafka sink plugin -> the tansu broker, next to the read + map throughput of the same service
# on the same backlog in the same run. See bench_bridge_throughput in consumer/tests/kafka_bridge.rs.
# Usage: scripts/bench-bridge.sh [RECORDS]   (default 100000)
# Needs the broker: bash scripts/kafka-start.sh (AZLOG_KAFKA_BROKERS, default 127.0.0.1:19092).
# Knobs: AZLOG_BENCH_KAFKA_LINGER_MS (producer linger.ms, 5), AZLOG_BENCH_KAFKA_BATCH_RECORDS /
# AZLOG_BENCH_KAFKA_BATCH_BYTES (host batch, 2000 / 4194304), AZLOG_BENCH_KAFKA_COMPRESSION (none),
# AZLOG_BENCH_KAFKA_PROPS (librdkafka properties as TOML lines separated by ';').
# Figures and how to read them: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export AZLOG_BENCH_RECORDS="${1:-100000}"
if [ -f .tools/kafka/env.sh ]; then
  # shellcheck disable=SC1091
  source .tools/kafka/env.sh
fi
cargo build --release --locked -q -p azlog-sink-kafka
# The test stages the kafka plugin from here (no other plugin is needed).
export AZLOG_PLUGIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/release"
cargo test --release --locked -q -p azlog-hub --test kafka_bridge -- --ignored --nocapture \
  --exact bench_bridge_throughput
