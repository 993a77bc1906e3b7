#!/usr/bin/env bash
# Installs (npm, into .tools/azurite) and starts Azurite with Blob on 127.0.0.1:10000 and Table on
# 127.0.0.1:10002, in memory. Idempotent: does nothing when it already answers. Writes the
# connection details to .tools/azurite/env.sh:
#   AZLOG_AZURITE_BLOB=http://127.0.0.1:10000/devstoreaccount1
#   AZLOG_AZURITE_TABLE=http://127.0.0.1:10002/devstoreaccount1
# Ports can be moved with AZURITE_BLOB_PORT / AZURITE_TABLE_PORT.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo/.tools/azurite"
blob_port="${AZURITE_BLOB_PORT:-10000}"
table_port="${AZURITE_TABLE_PORT:-10002}"
version=3.35.0   # declares node>=10; 3.37 declares node>=22 (see docs/testing.md)
mkdir -p "$dir"

answering() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_env() {
  cat > "$dir/env.sh" <<ENV
export AZLOG_AZURITE_BLOB=http://127.0.0.1:$blob_port/devstoreaccount1
export AZLOG_AZURITE_TABLE=http://127.0.0.1:$table_port/devstoreaccount1
ENV
}

if answering "$blob_port" && answering "$table_port"; then
  write_env
  echo "azurite: already answering on $blob_port (blob) and $table_port (table)"
  exit 0
fi

if ! command -v node >/dev/null 2>&1; then
  echo "azurite: node is missing; installing nodejs + npm (apt)" >&2
  apt-get update -qq && apt-get install -y -qq nodejs npm >&2
fi
if [ ! -f "$dir/node_modules/azurite/dist/src/azurite.js" ]; then
  echo "azurite: installing azurite@$version with npm" >&2
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "azurite@$version" >&2)
fi

nohup node "$dir/node_modules/azurite/dist/src/azurite.js" \
  --blobHost 127.0.0.1 --blobPort "$blob_port" \
  --queueHost 127.0.0.1 --queuePort "${AZURITE_QUEUE_PORT:-10001}" \
  --tableHost 127.0.0.1 --tablePort "$table_port" \
  --inMemoryPersistence --skipApiVersionCheck --loose --disableTelemetry \
  > "$dir/azurite.log" 2>&1 &
echo $! > "$dir/azurite.pid"
for _ in $(seq 1 100); do
  if answering "$blob_port" && answering "$table_port"; then
    write_env
    echo "azurite: started (pid $(cat "$dir/azurite.pid")), blob $blob_port, table $table_port"
    exit 0
  fi
  sleep 0.1
done
echo "azurite: did not start; log follows" >&2
cat "$dir/azurite.log" >&2
exit 1
