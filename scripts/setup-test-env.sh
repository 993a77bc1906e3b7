#!/usr/bin/env bash
# Installs and starts everything the tests need, then writes .tools/env.sh with the variables the
# tests read. Idempotent: a second run only checks. Each piece lives in its own script.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/.tools"
mkdir -p "$tools"
: > "$tools/env.sh"
for s in scripts/setup.d/*.sh; do
  [ -e "$s" ] || continue
  echo "--- $s"
  bash "$s" "$tools"
done
echo "test environment ready: $(wc -l < "$tools/env.sh") variables in $tools/env.sh"
