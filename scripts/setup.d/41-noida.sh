#!/usr/bin/env bash
# noida-db (PyPI), a Kafka-protocol broker with on-disk data, for the broker-restart bridge test.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$repo/scripts/noida-install.sh"
cat "${AZLOG_NOIDA_DIR:-$repo/.tools/noida}/env.sh" >> "$1/env.sh"
