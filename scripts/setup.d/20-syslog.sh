#!/usr/bin/env bash
# rsyslog receiver (UDP/TCP 15514, TLS 16514/16515), lognormalizer, openssl test CA.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$repo/scripts/syslog-start.sh"
echo "export AZLOG_SYSLOG_DIR=${AZLOG_SYSLOG_DIR:-$repo/.tools/syslog}" >> "$1/env.sh"
