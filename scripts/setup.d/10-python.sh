#!/usr/bin/env bash
# Python venv with the official azure-eventhub SDK, cefp, ... (scripts/requirements-test.txt).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="$(bash "$repo/scripts/python-venv.sh" | tail -n1)"
echo "export AZLOG_PYTHON=$py" >> "$1/env.sh"
