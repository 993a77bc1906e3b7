#!/usr/bin/env bash
# Stops the broker scripts/kafka-start.sh started (by its pid file).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${AZLOG_KAFKA_DIR:-$repo/.tools/kafka}"
if [ -f "$dir/tansu.pid" ]; then
  kill "$(cat "$dir/tansu.pid")" 2>/dev/null || true
  rm -f "$dir/tansu.pid"
  echo "kafka: stopped"
fi
