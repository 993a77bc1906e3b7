#!/usr/bin/env bash
# Stops the broker scripts/kafka-start.sh started (by its pid file), and waits until it is gone.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${AZLOG_KAFKA_DIR:-$repo/.tools/kafka}"
exec bash "$repo/scripts/stop-pid.sh" kafka "$dir/tansu.pid"
