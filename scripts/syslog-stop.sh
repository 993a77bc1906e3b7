#!/usr/bin/env bash
# Stops the rsyslog receiver started by scripts/syslog-start.sh (by its recorded pid only).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${AZLOG_SYSLOG_DIR:-$root/.tools/syslog}"
pidfile="$dir/rsyslogd.pid"
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  echo "syslog-stop: stopped rsyslogd $(cat "$pidfile")"
fi
rm -f "$pidfile"
