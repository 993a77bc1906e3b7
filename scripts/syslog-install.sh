#!/usr/bin/env bash
# Installs what the syslog / CEF / LEEF integration tests need, idempotently:
#   rsyslog (+ rsyslog-gnutls for RFC 5425 TLS), liblognorm-utils (lognormalizer, the strict CEF
#   parser) and openssl (throwaway CA for the TLS tests). Debian packages via apt; fast when present.
# Run as root. Python's `cefp` comes from scripts/python-venv.sh (scripts/requirements-test.txt).
set -euo pipefail

need=()
command -v rsyslogd >/dev/null 2>&1 || need+=(rsyslog)
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so ] || ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1 || need+=(rsyslog-gnutls)
command -v lognormalizer >/dev/null 2>&1 || need+=(liblognorm-utils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)

if [ ${#need[@]} -eq 0 ]; then
  echo "syslog-install: rsyslog, rsyslog-gnutls, lognormalizer, openssl already installed"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=600 -y --no-install-recommends)
# Only refresh the package lists when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin -1440 2>/dev/null | head -1)" ]; then
  apt-get -o DPkg::Lock::Timeout=600 update
fi
echo "syslog-install: installing ${need[*]}"
apt-get "${apt_opts[@]}" install "${need[@]}"
