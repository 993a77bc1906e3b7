#!/usr/bin/env bash
# Runs the emulator's tests: unit tests, protocol tests, the official Rust SDK tests and the
# official Python SDK (azure-eventhub) round trip. Each test starts its own emulator on an
# ephemeral port. Installs the Python venv first (idempotent).
# Env: CARGO_TARGET_DIR (optional), AZLOG_SKIP_PYTHON=1 to skip the Python SDK test.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
if [ "${AZLOG_SKIP_PYTHON:-0}" != "1" ]; then
  AZLOG_PYTHON="$("$repo/scripts/python-venv.sh" | tail -n1)"
  export AZLOG_PYTHON
fi
cargo test -p azlog-emulator --locked "$@"
