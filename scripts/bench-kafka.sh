#!/usr/bin/env bash
# Kafka source benchmark: records/s and MB/s through Kafka (tansu, scripts/kafka-start.sh) →
# `azlog-hub run` ([source.kafka] → envelope → mapper → file sink, ECS) next to the mapping
# throughput of `azlog-hub map --format ecs` over the same records, in the same run.
# Usage: scripts/bench-kafka.sh [MB] [PARTITIONS] [PER_MESSAGE]   (defaults 20, 4, 10)
# Needs the broker: AZLOG_KAFKA_BROKERS (default 127.0.0.1:19092).
set -euo pipefail
cd "$(dirname "$0")/.."
mb="${1:-20}"
partitions="${2:-4}"
per="${3:-10}"
brokers="${AZLOG_KAFKA_BROKERS:-127.0.0.1:19092}"
work=.tools/bench/kafka
mkdir -p "$work"
cargo build --release --locked -q -p azlog-hub --bin azlog-hub --example kafka_produce
cargo build --release --locked -q -p azlog-sink-file
target="${CARGO_TARGET_DIR:-target}/release"

# Input: the fixture records (every family), one per line, repeated to the size asked for.
data="$work/records-${mb}mb.ndjson"
if [ ! -s "$data" ]; then
  "$target/azlog-hub" map --format ecs tests/fixtures/records/*.json 2>/dev/null \
    | python3 -c 'import sys,json; [print(json.loads(l)["event"]["original"]) for l in sys.stdin]' > "$work/one-round.ndjson"
  round=$(stat -c %s "$work/one-round.ndjson")
  n=$(( (mb * 1024 * 1024 + round - 1) / round ))
  for _ in $(seq 1 "$n"); do cat "$work/one-round.ndjson"; done > "$data"
fi
size=$(stat -c %s "$data")
records=$(grep -c . "$data")
echo "input: $data ($(( size / 1024 / 1024 )) MB, $records records, $per per Kafka message, $partitions partitions)"

# Mapping alone.
t0=$(date +%s.%N)
"$target/azlog-hub" map --dead-letter "$work/map-dead.ndjson" "$data" > /dev/null 2> "$work/map.err"
t1=$(date +%s.%N)

# Into Kafka (not timed against azlog-hub: produced before it starts).
topic="azbench-$$-$RANDOM"
"$target/examples/kafka_produce" "$brokers" "$topic" "$partitions" "$data" "$per" > /dev/null

# Kafka source → mapper → file sink.
run="$work/run-$topic"
mkdir -p "$run/plugins"
chmod 755 "$run/plugins"
cp "$target/libazlog_sink_file.so" "$run/plugins/"
chmod 644 "$run/plugins/libazlog_sink_file.so"
cat > "$run/azlog-hub.toml" <<EOF
state_dir = "$PWD/$run/state"
plugin_dir = "$PWD/$run/plugins"
[source.kafka]
bootstrap_servers = "$brokers"
topics = ["$topic"]
group_id = "$topic-g"
start_position = "earliest"
[source.kafka.properties]
"session.timeout.ms" = 3000
"heartbeat.interval.ms" = 500
[metrics]
log_interval_secs = 0
[[sink]]
name = "files"
plugin = "file"
path = "$PWD/$run/out.ndjson"
format = "ecs"
rotate_bytes = 0
[sink.batch]
max_records = 1000
linger_ms = 50
EOF
t2=$(date +%s.%N)
RUST_LOG=warn "$target/azlog-hub" run --config "$run/azlog-hub.toml" 2> "$run/run.err" &
pid=$!
first=""
while :; do
  n=$( [ -f "$run/out.ndjson" ] && wc -l < "$run/out.ndjson" || echo 0)
  if [ -z "$first" ] && [ "$n" -gt 0 ]; then first=$(date +%s.%N); first_n=$n; fi
  [ "$n" -ge "$records" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "azlog-hub run stopped early:"; tail -20 "$run/run.err"; exit 1; }
  sleep 0.05
done
t3=$(date +%s.%N)
kill -TERM "$pid"; wait "$pid" || true
rm -f "$run/out.ndjson"   # as large as the ECS output; the counts above are what matters

python3 - "$records" "$size" "$t0" "$t1" "$t2" "$first" "$first_n" "$t3" <<'PY'
import sys
recs, size = int(sys.argv[1]), int(sys.argv[2])
t0, t1, t2, first, first_n, t3 = map(float, sys.argv[3:9])
mb = size / 1e6
m = t1 - t0
w = t3 - t2
s = t3 - first
print(f"{'run':<52}{'seconds':>9}{'records/s':>13}{'MB/s':>9}")
print(f"{'azlog-hub map --format ecs (mapping only)':<52}{m:>9.2f}{recs/m:>13,.0f}{mb/m:>9.1f}")
print(f"{'kafka → run → file sink, wall (incl. start + group join)':<52}{w:>9.2f}{recs/w:>13,.0f}{mb/w:>9.1f}")
print(f"{'kafka → run → file sink, first → last record written':<52}{s:>9.2f}{(recs-first_n)/s:>13,.0f}{mb*(recs-first_n)/recs/s:>9.1f}")
print(f"kafka source pipeline = {m/s:.0%} of mapping-only throughput (steady state)")
PY
