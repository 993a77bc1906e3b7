#!/usr/bin/env bash
# Installs Splunk's own npm HEC client `splunk-logging` (used to prove the HEC test receiver
# in tests/hec-receiver follows Splunk's protocol). Idempotent; quick when installed.
# Usage: scripts/setup.d/hec-splunk-logging.sh [TOOLS_DIR]   (default: .tools)
# Writes AZLOG_SPLUNK_LOGGING_DIR (a node_modules dir) to TOOLS_DIR/env.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools="${1:-$PWD/.tools}"
prefix="$tools/node/hec"
version="0.11.1"
mkdir -p "$prefix"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "node and npm are required" >&2; exit 1
  fi
fi
installed=$(node -p "require('$prefix/node_modules/splunk-logging/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$version" ]; then
  npm install --silent --no-audit --no-fund --prefix "$prefix" "splunk-logging@$version"
fi
node -e "require('$prefix/node_modules/splunk-logging')" 
touch "$tools/env.sh"
grep -v '^export AZLOG_SPLUNK_LOGGING_DIR=' "$tools/env.sh" > "$tools/env.sh.tmp" || true
mv "$tools/env.sh.tmp" "$tools/env.sh"
echo "export AZLOG_SPLUNK_LOGGING_DIR=$prefix/node_modules" >> "$tools/env.sh"
echo "splunk-logging $version ready in $prefix/node_modules"
