#!/usr/bin/env bash
# Stops the servers scripts/test.sh (through scripts/setup-test-env.sh) left running: rsyslog,
# Azurite and tansu. scripts/test.sh leaves them up so that the next run starts at once; stop them
# before running the tests from a second checkout on the same machine (the ports are fixed).
# Each stop waits until its process is gone; exit 1 when one survived.
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
bash scripts/syslog-stop.sh || rc=1
bash scripts/azurite-stop.sh || rc=1
bash scripts/kafka-stop.sh || rc=1
exit $rc
