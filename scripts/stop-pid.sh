#!/usr/bin/env bash
# Stops the process whose pid is in a pid file, and says what happened.
# Usage: scripts/stop-pid.sh NAME PIDFILE
# SIGTERM first; SIGKILL if it is still there after 5 s. "stopped" is printed only once the
# process is gone (a zombie waiting for its parent counts as gone: it holds no port or file).
# Exit 0 when it is gone or was not running (the pid file is removed), 1 when it survived.
set -euo pipefail
name="$1"
pidfile="$2"
[ -s "$pidfile" ] || { rm -f "$pidfile"; exit 0; }
pid="$(cat "$pidfile")"
alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null || true)"
  [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}
if ! alive "$pid"; then
  rm -f "$pidfile"
  exit 0
fi
kill "$pid" 2>/dev/null || true
for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
if alive "$pid"; then
  echo "$name: pid $pid ignored SIGTERM for 5 s; sending SIGKILL" >&2
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do alive "$pid" || break; sleep 0.05; done
fi
if alive "$pid"; then
  echo "$name: pid $pid is still running" >&2
  exit 1
fi
rm -f "$pidfile"
echo "$name: stopped (pid $pid)"
