#!/usr/bin/env bash
# Starts a loopback rsyslog receiver for the CEF/LEEF/syslog integration tests (idempotent: does
# nothing when it already runs with the current config). Installs packages first via
# scripts/syslog-install.sh. Everything lives under $AZLOG_SYSLOG_DIR (default
# /work/main/.tools/syslog, git-ignored):
#   certs/   throwaway CA, server cert (localhost, 127.0.0.1), client cert, and an unrelated
#            "rogue" CA for negative tests — all made by openssl here
#   out/messages.jsonl   one JSON object per received message:
#            {"input","hostname","app","procid","msgid","pri","msg","raw"}
# Listeners (127.0.0.1):
#   15514/udp  RFC 5424 / 3164 datagrams          (input "udp")
#   15514/tcp  octet counting or LF framing         (input "tcp")
#   16514/tcp  TLS (RFC 5425), no client cert needed (input "tls")
#   16515/tcp  TLS requiring a client cert from the CA (input "mtls")
# Tests find it through AZLOG_SYSLOG_DIR (or the default) and these fixed ports.
# A private instance (a test that stops and restarts its own receiver) sets AZLOG_SYSLOG_DIR to
# its own directory and moves the ports with AZLOG_SYSLOG_PORT (udp+tcp, default 15514),
# AZLOG_SYSLOG_TLS_PORT (16514) and AZLOG_SYSLOG_MTLS_PORT (16515); stop it with
# scripts/syslog-stop.sh and the same AZLOG_SYSLOG_DIR.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${AZLOG_SYSLOG_DIR:-$root/.tools/syslog}"
port="${AZLOG_SYSLOG_PORT:-15514}"
tls_port="${AZLOG_SYSLOG_TLS_PORT:-16514}"
mtls_port="${AZLOG_SYSLOG_MTLS_PORT:-16515}"
bash "$root/scripts/syslog-install.sh" >/dev/null

mkdir -p "$dir/certs" "$dir/out" "$dir/work"
certs="$dir/certs"
if [ ! -s "$certs/client.pem" ]; then
  (
    cd "$certs"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=azlog-test-ca" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=azlog-rogue-ca" \
      -keyout rogue-ca.key -out rogue-ca.pem 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.pem 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > client.ext
    openssl req -newkey rsa:2048 -nodes -subj "/CN=azlog-hub-client" -keyout client.key -out client.csr 2>/dev/null
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out client.pem 2>/dev/null
    rm -f ./*.csr ./*.ext
  )
fi

conf="$dir/rsyslog.conf"
cat > "$conf.new" <<CONF
global(
  workDirectory="$dir/work"
  maxMessageSize="256k"
  parser.escapeControlCharactersOnReceive="off"
  defaultNetstreamDriverCAFile="$certs/ca.pem"
  defaultNetstreamDriverCertFile="$certs/server.pem"
  defaultNetstreamDriverKeyFile="$certs/server.key"
)
module(load="imudp")
module(load="imtcp" maxSessions="200")
template(name="jsonl" type="string"
  string="{\"input\":\"%inputname%\",\"hostname\":\"%hostname:::json%\",\"app\":\"%app-name:::json%\",\"procid\":\"%procid:::json%\",\"msgid\":\"%msgid:::json%\",\"pri\":\"%pri%\",\"msg\":\"%msg:::json%\",\"raw\":\"%rawmsg:::json%\"}\n")
ruleset(name="out") {
  action(type="omfile" file="$dir/out/messages.jsonl" template="jsonl" fileCreateMode="0644")
}
input(type="imudp" address="127.0.0.1" port="$port" name="udp" ruleset="out")
input(type="imtcp" address="127.0.0.1" port="$port" name="tcp" ruleset="out")
input(type="imtcp" address="127.0.0.1" port="$tls_port" name="tls" ruleset="out"
  streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="$mtls_port" name="mtls" ruleset="out"
  streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
CONF

pidfile="$dir/rsyslogd.pid"
running() { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
if running && cmp -s "$conf" "$conf.new"; then
  rm -f "$conf.new"
  echo "syslog-start: rsyslogd already running (pid $(cat "$pidfile")), output $dir/out/messages.jsonl"
  exit 0
fi
if running; then
  bash "$root/scripts/syslog-stop.sh"
fi
# Our ports must be free: another receiver on them (a second checkout's rsyslog, say) would take
# the tests' messages while this one's output stays empty.
for p in "$port" "$tls_port" "$mtls_port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "syslog-start: 127.0.0.1:$p is already taken by another process; stop it first (the servers of another checkout: scripts/test-env-stop.sh there)" >&2
    command -v ss >/dev/null && ss -ltnp "sport = :$p" >&2 || true
    exit 1
  fi
done
mv "$conf.new" "$conf"
/usr/sbin/rsyslogd -N1 -f "$conf" >/dev/null 2>"$dir/validate.log" || { cat "$dir/validate.log"; exit 1; }

chown -R nobody:nogroup "$dir/out" "$dir/work"
chmod 0644 "$certs"/*.pem
chown nobody:nogroup "$certs/server.key"
# setpriv execs rsyslogd directly (no intermediate process), so $! is rsyslogd's pid.
nohup setpriv --reuid=nobody --regid=nogroup --clear-groups \
  /usr/sbin/rsyslogd -n -iNONE -f "$conf" >"$dir/rsyslogd.log" 2>&1 &
echo $! > "$pidfile"

for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$tls_port") 2>/dev/null \
     && (exec 3<>"/dev/tcp/127.0.0.1/$mtls_port") 2>/dev/null; then
    echo "syslog-start: rsyslogd running (pid $(cat "$pidfile")), output $dir/out/messages.jsonl"
    exit 0
  fi
  sleep 0.1
done
echo "syslog-start: rsyslogd did not open its ports; log:" >&2
cat "$dir/rsyslogd.log" >&2
exit 1
