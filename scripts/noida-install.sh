#!/usr/bin/env bash
# Installs noida-db (PyPI noida-db==0.2.3, MIT): one binary speaking the Kafka protocol (among
# others) that keeps its data in a directory, so a broker restart keeps the topics. The Kafka
# bridge test "broker restart during the bridge -> 0 lost" uses it, because tansu (the main test
# broker) only has memory storage here (see ../shared/reference/infra.md §1). Tests start their
# own instance (`noida-db start --only kafka --kafka-port P --data-dir D`); nothing is started here.
# On Debian 12 it prints "weak version `GLIBC_2.39' not found" and then runs normally.
# Writes .tools/noida/env.sh: AZLOG_NOIDA_BIN=<path>.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${AZLOG_NOIDA_DIR:-$repo/.tools/noida}"
version=0.2.3
bin="$dir/bin/noida-db"
mkdir -p "$dir/bin" "$dir/dl"
if [ ! -x "$bin" ]; then
  echo "noida: fetching noida-db==$version from PyPI" >&2
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_17_x86_64 -d "$dir/dl" "noida-db==$version" >&2
  python3 - "$dir" "$version" <<'PY'
import glob, os, sys, zipfile
dest, version = sys.argv[1], sys.argv[2]
wheel = glob.glob(f"{dest}/dl/noida_db-{version}-*.whl")[0]
tmp = f"{dest}/bin/noida-db.part"
with zipfile.ZipFile(wheel) as z, open(tmp, "wb") as out:
    out.write(z.read("noida_db/noida-db"))
os.chmod(tmp, 0o755)
os.replace(tmp, f"{dest}/bin/noida-db")
PY
fi
echo "export AZLOG_NOIDA_BIN=$bin" > "$dir/env.sh"
echo "noida: $bin"
