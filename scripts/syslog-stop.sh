#!/usr/bin/env bash
# Stops the rsyslog receiver started by scripts/syslog-start.sh (by its recorded pid only), and waits
# until it is gone.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${AZLOG_SYSLOG_DIR:-$root/.tools/syslog}"
exec bash "$root/scripts/stop-pid.sh" syslog-stop "$dir/rsyslogd.pid"
