//! End to end against a real rsyslog (Debian, started by scripts/syslog-start.sh): CEF and LEEF
//! lines over UDP, TCP (octet counting; LF framing with RFC 3164), TLS and TLS with a client
//! certificate. The tests read what the daemon wrote (out/messages.jsonl) and check exactly one
//! message per record, byte-identical to what the codec produced, accepted by the strict parsers,
//! lognormalizer and cefp. Fails when rsyslog is not running unless AZLOG_SKIP_SYSLOG=1.
#[path = "../../../codecs/tests/support/mod.rs"]
mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use azlog_codecs::{cef, leef};
use azlog_plugin_api::Record;
use azlog_syslog::{
    severity_from_ecs, Framing, HeaderFormat, Protocol, SyslogConfig, SyslogSender, TlsSettings,
};
use serde_json::Value as Json;
use support::parsers::{parse_cef, parse_leef};
use support::records::{hostile_values, realistic, rec, s, T0_NS};
use support::validators::{cefp, lognormalize, workspace_root};

const UDP_TCP_PORT: u16 = 15514;
const TLS_PORT: u16 = 16514;
const MTLS_PORT: u16 = 16515;

fn syslog_dir() -> Option<PathBuf> {
    let dir = std::env::var("AZLOG_SYSLOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".tools/syslog"));
    let up = TcpStream::connect_timeout(
        &([127, 0, 0, 1], UDP_TCP_PORT).into(),
        Duration::from_secs(1),
    )
    .is_ok();
    if up && dir.join("certs/ca.pem").exists() {
        return Some(dir);
    }
    if std::env::var("AZLOG_SKIP_SYSLOG").as_deref() == Ok("1") {
        eprintln!("rsyslog not running; skipped because AZLOG_SKIP_SYSLOG=1");
        return None;
    }
    panic!("rsyslog is required: run scripts/syslog-start.sh (or set AZLOG_SKIP_SYSLOG=1)");
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A unique APP-NAME per test case, to find our messages in the shared output file.
fn unique_app(tag: &str) -> String {
    format!(
        "azt{}{}{}",
        tag,
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// Waits until `n` messages with APP-NAME `app` were written, then a little longer to catch
/// extras (a record split into two events would show up as more than `n`).
fn received(dir: &Path, app: &str, n: usize) -> Vec<Json> {
    let file = dir.join("out/messages.jsonl");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut settled_at: Option<Instant> = None;
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let got: Vec<Json> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Json>(l).ok())
            .filter(|j| j["app"] == app)
            .collect();
        if got.len() >= n {
            let at = *settled_at.get_or_insert_with(Instant::now);
            if at.elapsed() > Duration::from_millis(300) || got.len() > n {
                return got;
            }
        }
        if Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn transports(dir: &Path) -> Vec<(&'static str, SyslogConfig)> {
    let certs = dir.join("certs");
    let c = |f: &str| Some(certs.join(f).display().to_string());
    let base = SyslogConfig {
        host: "127.0.0.1".into(),
        max_message_size: Some(60_000),
        ..Default::default()
    };
    vec![
        (
            "udp",
            SyslogConfig {
                protocol: Protocol::Udp,
                port: Some(UDP_TCP_PORT),
                ..base.clone()
            },
        ),
        (
            "tcp",
            SyslogConfig {
                protocol: Protocol::Tcp,
                port: Some(UDP_TCP_PORT),
                ..base.clone()
            },
        ),
        (
            "tcp",
            SyslogConfig {
                protocol: Protocol::Tcp,
                port: Some(UDP_TCP_PORT),
                framing: Framing::Newline,
                header: HeaderFormat::Rfc3164,
                ..base.clone()
            },
        ),
        (
            "tls",
            SyslogConfig {
                protocol: Protocol::Tls,
                port: Some(TLS_PORT),
                tls: TlsSettings {
                    ca_file: c("ca.pem"),
                    server_name: Some("localhost".into()),
                    ..Default::default()
                },
                ..base.clone()
            },
        ),
        (
            "mtls",
            SyslogConfig {
                protocol: Protocol::Tls,
                port: Some(MTLS_PORT),
                tls: TlsSettings {
                    ca_file: c("ca.pem"),
                    client_cert: c("client.pem"),
                    client_key: c("client.key"),
                    ..Default::default()
                },
                ..base
            },
        ),
    ]
}

fn corpus() -> Vec<Record> {
    let mut v = realistic();
    for h in hostile_values() {
        v.push(rec(
            T0_NS,
            vec![
                ("event.action", s(h)),
                ("user.name", s(h)),
                ("message", s(h)),
                ("url.original", s(h)),
                ("event.severity", azlog_plugin_api::Value::Int(9)),
            ],
        ));
    }
    v.push(rec(
        T0_NS,
        vec![
            ("user.name", s(&"Σωκράτης 諸葛亮 ".repeat(200))),
            (
                "url.original",
                s(&format!("https://x.example/?q={}", "a=b|c\\d ".repeat(800))),
            ),
        ],
    ));
    v
}

/// Sends `lines` (one per record) and returns what rsyslog wrote, checking the message count
/// and that each message body is byte-identical to the line sent.
fn roundtrip(
    dir: &Path,
    input: &str,
    mut cfg: SyslogConfig,
    records: &[Record],
    lines: &[String],
    msg_id: &str,
) -> Vec<String> {
    let app = unique_app(input);
    cfg.app_name = app.clone();
    let rfc3164 = cfg.header == HeaderFormat::Rfc3164;
    let mut sender = SyslogSender::new(&cfg, msg_id).expect("sender");
    sender.clear();
    for (i, (r, l)) in records.iter().zip(lines).enumerate() {
        sender.push(
            i,
            severity_from_ecs(r.get_i64("event.severity")),
            r.timestamp_ns / 1_000_000,
            l,
        );
    }
    let out = sender.send(records.len());
    assert!(out.error.is_none(), "{input}: {:?}", out.error);
    assert_eq!(
        (out.handled, out.rejected.len(), out.truncated),
        (records.len(), 0, 0)
    );
    sender.close();
    let got = received(dir, &app, records.len());
    assert_eq!(got.len(), records.len(), "{input}: one message per record");
    let mut msgs: Vec<String> = Vec::new();
    for j in &got {
        assert_eq!(j["input"], input);
        if !rfc3164 {
            assert_eq!(j["msgid"], msg_id);
        }
        let m = j["msg"].as_str().expect("msg");
        // RFC 3164: rsyslog keeps the space after "TAG:" in msg.
        let m = if rfc3164 {
            m.strip_prefix(' ').unwrap_or(m)
        } else {
            m
        };
        msgs.push(m.to_string());
    }
    // Messages of one connection arrive in order (UDP on loopback too).
    assert_eq!(msgs, lines, "{input}: daemon wrote exactly what was sent");
    msgs
}

#[test]
fn cef_over_udp_tcp_tls_reaches_rsyslog_intact() {
    let Some(dir) = syslog_dir() else { return };
    let cfg = cef::CefConfig::builtin().expect("cef map");
    let records = corpus();
    let lines: Vec<String> = records
        .iter()
        .map(|r| {
            let mut l = String::new();
            cef::encode(r, &cfg, &mut l);
            l
        })
        .collect();
    let mut all = Vec::new();
    for (input, t) in transports(&dir) {
        all.extend(roundtrip(&dir, input, t, &records, &lines, "CEF"));
    }
    for l in &all {
        parse_cef(l).unwrap_or_else(|e| panic!("strict parse of received {l:?}: {e}"));
    }
    if let Some(res) = lognormalize(&all) {
        for (l, r) in all.iter().zip(res) {
            let c = r.unwrap_or_else(|e| panic!("lognormalizer rejected received {l:?}: {e}"));
            let p = parse_cef(l).expect("parse");
            let ext = c["Extensions"].as_object().expect("ext");
            assert_eq!(ext.len(), p.ext.len());
            for (k, v) in &p.ext {
                assert_eq!(ext[k].as_str(), Some(v.as_str()), "{k}");
            }
        }
    }
    if let Some(res) = cefp(&all) {
        for (l, r) in all.iter().zip(res) {
            let c = r.unwrap_or_else(|e| panic!("cefp rejected received {l:?}: {e}"));
            let p = parse_cef(l).expect("parse");
            assert_eq!(c["name"], p.name.as_str());
            assert_eq!(c["extension"].as_object().expect("ext").len(), p.ext.len());
            for (k, v) in &p.ext {
                assert_eq!(c["extension"][k].as_str(), Some(v.as_str()), "{k}");
            }
        }
    }
}

#[test]
fn leef_over_udp_tcp_tls_reaches_rsyslog_intact() {
    let Some(dir) = syslog_dir() else { return };
    for delimiter in [None, Some("^")] {
        let cfg = leef::LeefConfig::load(&leef::LeefOptions {
            delimiter: delimiter.map(Into::into),
            ..Default::default()
        })
        .expect("leef map");
        let records = corpus();
        let lines: Vec<String> = records
            .iter()
            .map(|r| {
                let mut l = String::new();
                leef::encode(r, &cfg, &mut l);
                l
            })
            .collect();
        for (input, t) in transports(&dir) {
            for l in roundtrip(&dir, input, t, &records, &lines, "LEEF") {
                let p = parse_leef(&l)
                    .unwrap_or_else(|e| panic!("strict parse of received {l:?}: {e}"));
                assert!(p.attrs.contains_key("devTime"));
            }
        }
    }
}

#[test]
fn tls_refuses_a_server_not_signed_by_the_configured_ca() {
    let Some(dir) = syslog_dir() else { return };
    let cfg = SyslogConfig {
        host: "127.0.0.1".into(),
        port: Some(TLS_PORT),
        protocol: Protocol::Tls,
        tls: TlsSettings {
            ca_file: Some(dir.join("certs/rogue-ca.pem").display().to_string()),
            server_name: Some("localhost".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut s = SyslogSender::new(&cfg, "CEF").expect("sender");
    s.clear();
    s.push(0, 6, 0, "CEF:0|a|b|1|x|y|1|");
    let out = s.send(1);
    assert_eq!(out.handled, 0);
    let err = out.error.expect("must fail");
    assert!(
        !err.is_retryable(),
        "a certificate problem is permanent: {err}"
    );
    assert!(
        err.to_string().contains("certificate") || err.to_string().contains("Certificate"),
        "{err}"
    );

    // Wrong name: the server certificate is for localhost / 127.0.0.1 only.
    let cfg = SyslogConfig {
        tls: TlsSettings {
            ca_file: Some(dir.join("certs/ca.pem").display().to_string()),
            server_name: Some("not-the-server.example".into()),
            ..Default::default()
        },
        ..cfg
    };
    let mut s = SyslogSender::new(&cfg, "CEF").expect("sender");
    s.clear();
    s.push(0, 6, 0, "CEF:0|a|b|1|x|y|1|");
    let out = s.send(1);
    assert_eq!(out.handled, 0);
    assert!(out.error.is_some_and(|e| !e.is_retryable()));
}
