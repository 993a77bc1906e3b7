#!/usr/bin/env bash
# Azurite (npm): Blob on 10000, Table on 10002, in memory.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$repo/scripts/azurite-start.sh"
cat "$repo/.tools/azurite/env.sh" >> "$1/env.sh"
