#!/usr/bin/env bash
# End-to-end benchmark (issue 5 "Speed"), in one run against one emulator:
#   1. `azlog-hub emulator` (release) serves hub `bench` (4 partitions); the official Python SDK
#      publishes N records (examples/records/azure-sample.json replicated) as {"records":[...]}
#      events of K records.
#   2. Baseline: the official Python SDK consumer (azure-eventhub) receives every event and writes
#      one hand-written CEF line per record to a file.
#   3. `azlog-hub run` (release) with the file sink (ECS JSON), then with the cef plugin over TCP
#      to a local receiver that counts lines. Each starts from `earliest` with a fresh state dir.
# Every run is timed from its start (process/client creation) until all N records are delivered
# (N lines in the sink file / N lines at the TCP receiver). Prints records/s, MB/s (event-body
# JSON read) and the ratio to the baseline.
# Usage: scripts/bench-e2e.sh [RECORDS] [RECORDS_PER_EVENT]   (defaults 200000, 100)
# Needs the test venv (bash scripts/python-venv.sh). AZLOG_BENCH_SKIP_BUILD=1 skips cargo build;
# AZLOG_BENCH_BIN_DIR overrides the binaries dir (default $CARGO_TARGET_DIR/release);
# AZLOG_BENCH_KEEP=1 keeps the work dir (logs, configs, outputs).
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-200000}"
per_event="${2:-100}"
partitions=4
hub=bench
py="${AZLOG_PYTHON:-$PWD/.tools/venv/bin/python}"
[ -x "$py" ] || py="$(bash scripts/python-venv.sh | tail -1)"
target="${AZLOG_BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}"
if [ "${AZLOG_BENCH_SKIP_BUILD:-0}" != 1 ]; then
  # Separately: built together, cargo unifies the plugins' rustls features (ring) with the
  # service's (aws-lc-rs), and the service's rustls then panics without a process default provider.
  cargo build --release --locked -q -p azlog-hub
  cargo build --release --locked -q -p azlog-sink-file -p azlog-sink-cef
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/azlog-bench-e2e.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${AZLOG_BENCH_KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
helper() { "$py" scripts/bench-e2e.py "$@"; }
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# --- emulator + publish -------------------------------------------------------------------------
eh_port="$(free_port)"
"$target/azlog-hub" emulator --listen "127.0.0.1:$eh_port" --hub "$hub:$partitions" \
  --retention-max-bytes $((4 * 1024 * 1024 * 1024)) > "$work/emulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$eh_port") 2>/dev/null && break
  sleep 0.1
done
conn="Endpoint=sb://localhost:$eh_port;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
pub="$(helper publish --conn "$conn" --hub "$hub" --partitions "$partitions" --records "$records" \
  --per-event "$per_event" --sample examples/records/azure-sample.json)"
in_bytes="$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["bytes"])' "$pub")"
echo "published: $pub"

# --- baseline: official Python SDK consumer -> CEF lines in a file ------------------------------
base="$(helper baseline --conn "$conn" --hub "$hub" --records "$records" --out "$work/python.cef")"
echo "python baseline: $base"

# --- azlog-hub run ------------------------------------------------------------------------------
mkdir -p "$work/plugins" && chmod 755 "$work/plugins"
for lib in libazlog_sink_file.so libazlog_sink_cef.so; do
  install -m 644 "$target/$lib" "$work/plugins/$lib"
done
config() { # NAME SINK_TOML
  cat > "$work/$1.toml" <<EOF
state_dir = "$work/state-$1"
plugin_dir = "$work/plugins"

[source.eventhubs]
connection_string = "$conn;EntityPath=$hub"
start_position = "earliest"

[metrics]
log_interval_secs = 0

$2
EOF
}
# Runs azlog-hub with config NAME while WAITER (a helper command line) waits for delivery;
# prints "secs first_secs out_bytes" (first_secs: start to the first delivered bytes).
run_hub() { # NAME WAITER...
  local name="$1"; shift
  helper "$@" > "$work/$name.wait" &
  local waiter=$!
  sleep 0.3 # the TCP receiver is listening
  local t0; t0="$(now)"
  # AZLOG_BENCH_WRAP: a command prefix for the service, e.g. "perf record -g -o /tmp/hub.perf --".
  ${AZLOG_BENCH_WRAP:-} "$target/azlog-hub" run --config "$work/$name.toml" > "$work/$name.log" 2>&1 &
  local hubpid=$!
  pids+=("$hubpid")
  while kill -0 "$waiter" 2>/dev/null; do
    if ! kill -0 "$hubpid" 2>/dev/null; then
      echo "azlog-hub ($name) exited early:" >&2
      tail -20 "$work/$name.log" >&2
      exit 1
    fi
    sleep 0.05
  done
  if ! wait "$waiter"; then
    echo "azlog-hub ($name) did not deliver $records records: $(cat "$work/$name.wait")" >&2
    tail -20 "$work/$name.log" >&2
    exit 1
  fi
  kill -INT "$hubpid" 2>/dev/null || true
  wait "$hubpid" || true
  "$py" -c 'import json,sys; w=json.load(open(sys.argv[1])); t0=float(sys.argv[2]); print(w["last_at"]-t0, w["first_at"]-t0, w["bytes"])' \
    "$work/$name.wait" "$t0"
}

config file "[[sink]]
name = \"file\"
plugin = \"file\"
path = \"$work/out/hub.ecs.ndjson\"
rotate_bytes = 0"
read -r file_secs file_first file_out < <(run_hub file wait-lines --file "$work/out/hub.ecs.ndjson" --lines "$records")

cef_port="$(free_port)"
config cef "[[sink]]
name = \"siem\"
plugin = \"cef\"
host = \"127.0.0.1\"
port = $cef_port
protocol = \"tcp\"
framing = \"newline\"
header = \"none\""
read -r cef_secs cef_first cef_out < <(run_hub cef tcp-count --port "$cef_port" --lines "$records")

"$py" - "$records" "$in_bytes" "$base" "$file_secs" "$file_first" "$file_out" \
  "$cef_secs" "$cef_first" "$cef_out" <<'PY'
import json, sys
n, in_b = int(sys.argv[1]), int(sys.argv[2])
base = json.loads(sys.argv[3])
rows = [
    ("python SDK -> CEF file (baseline)", base["secs"], base["first_secs"], base["out_bytes"]),
    ("azlog-hub run -> file sink (ECS)", float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])),
    ("azlog-hub run -> cef over TCP", float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9])),
]
print(f"\n{n} records, {in_b / 1e6:.1f} MB of event bodies")
print("total: from process/client start to the last record delivered (startup included);")
print("steady: from the first delivered record to the last (startup excluded)")
print(f"{'run':34} {'total s':>8} {'rec/s':>8} {'MB/s in':>8} {'MB/s out':>8} {'x base':>7}"
      f" {'steady s':>9} {'rec/s':>8} {'MB/s in':>8} {'x base':>7}")
b_tot = n / base["secs"]
b_st = n / (base["secs"] - base["first_secs"])
for name, secs, first, out_b in rows:
    st = secs - first
    print(f"{name:34} {secs:8.2f} {n / secs:8.0f} {in_b / 1e6 / secs:8.1f} {out_b / 1e6 / secs:8.1f}"
          f" {n / secs / b_tot:7.1f} {st:9.2f} {n / st:8.0f} {in_b / 1e6 / st:8.1f} {n / st / b_st:7.1f}")
PY
