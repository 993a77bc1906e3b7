#!/usr/bin/env bash
# Stops the Azurite that scripts/azurite-start.sh started (by its pid file), and waits until it is gone.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo/.tools/azurite"
exec bash "$repo/scripts/stop-pid.sh" azurite "$dir/azurite.pid"
