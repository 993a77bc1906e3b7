#!/usr/bin/env bash
# Creates/updates the test Python venv at $AZLOG_VENV (default <repo>/.tools/venv) with the
# packages in scripts/requirements-test.txt. Idempotent: fast when everything is installed.
# Prints the venv's python path on the last line of stdout.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${AZLOG_VENV:-$repo/.tools/venv}"
req="$repo/scripts/requirements-test.txt"
stamp="$venv/.requirements.sha256"

if ! command -v python3 >/dev/null 2>&1; then
  echo "python3 missing; installing via apt" >&2
  apt-get update -qq && apt-get install -y -qq python3 python3-venv >&2
fi
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$(dirname "$venv")"
  if ! python3 -m venv "$venv" >&2; then
    apt-get update -qq && apt-get install -y -qq python3-venv >&2
    python3 -m venv "$venv" >&2
  fi
fi
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
