//! The built CEF and LEEF plugins (`libazlog_sink_cef.so`, `libazlog_sink_leef.so`) loaded as a
//! host loads them, opened from JSON settings, and fed a batch that rsyslog must receive.
//! Build them first: `cargo build -p azlog-sink-cef -p azlog-sink-leef` (same target dir).
#[path = "../../../codecs/tests/support/mod.rs"]
mod support;

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use abi_stable::library::lib_header_from_path;
use abi_stable::std_types::{RResult, RSlice, RStr};
use azlog_plugin_api::{SinkPluginRef, ABI_VERSION};
use serde_json::Value as Json;
use support::parsers::{parse_cef, parse_leef};
use support::records::realistic;
use support::validators::workspace_root;

fn plugin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = dir.join(format!("libazlog_sink_{name}.so"));
    assert!(
        p.exists(),
        "{} missing: run `cargo build -p azlog-sink-cef -p azlog-sink-leef` first",
        p.display()
    );
    p
}

fn rsyslog_up() -> bool {
    let up =
        TcpStream::connect_timeout(&([127, 0, 0, 1], 15514).into(), Duration::from_secs(1)).is_ok();
    if !up && std::env::var("AZLOG_SKIP_SYSLOG").as_deref() != Ok("1") {
        panic!("rsyslog is required: run scripts/syslog-start.sh (or set AZLOG_SKIP_SYSLOG=1)");
    }
    up
}

/// The rsyslog instance's folder (`AZLOG_SYSLOG_DIR`, default `.tools/syslog`).
fn syslog_dir() -> PathBuf {
    std::env::var("AZLOG_SYSLOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".tools/syslog"))
}

fn received(app: &str, n: usize) -> Vec<String> {
    let file = syslog_dir().join("out/messages.jsonl");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let got: Vec<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Json>(l).ok())
            .filter(|j| j["app"] == app)
            .map(|j| j["msg"].as_str().unwrap_or_default().to_string())
            .collect();
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(name: &str, settings: Json) -> Vec<String> {
    // Loaded the way the host's loader does it (`RootModule::load_from_file` would cache one
    // module per type for the whole process).
    let module = lib_header_from_path(&plugin_path(name))
        .and_then(|h| h.init_root_module::<SinkPluginRef>())
        .expect("load plugin");
    assert_eq!(module.name().as_str(), name);
    assert_eq!(module.abi_version().as_str(), ABI_VERSION);
    let bad = (module.open())(RStr::from_str(r#"{"protocol":"carrier-pigeon"}"#));
    assert!(
        matches!(bad, RResult::RErr(ref e) if !e.is_retryable()),
        "bad settings must be refused permanently"
    );
    let json = settings.to_string();
    let mut sink = match (module.open())(RStr::from_str(&json)) {
        RResult::ROk(s) => s,
        RResult::RErr(e) => panic!("open: {e}"),
    };
    let records = realistic();
    let report = match sink.write_batch(RSlice::from_slice(&records)) {
        RResult::ROk(r) => r,
        RResult::RErr(e) => panic!("write_batch: {e}"),
    };
    assert_eq!(report.accepted(), records.len() as u64, "{report:?}");
    assert!(matches!(sink.close(), RResult::ROk(())));
    let app = settings["app_name"].as_str().expect("app");
    let got = received(app, records.len());
    assert_eq!(got.len(), records.len());
    got
}

#[test]
fn cef_plugin_so_delivers_to_rsyslog_over_tls() {
    if !rsyslog_up() {
        return;
    }
    let ca = syslog_dir().join("certs/ca.pem");
    let app = format!("aztso{}", std::process::id());
    let got = run(
        "cef",
        serde_json::json!({
            "host": "127.0.0.1", "port": 16514, "protocol": "tls",
            "tls": {"ca_file": ca.display().to_string(), "server_name": "localhost"},
            "app_name": app, "truncation_marker": "[...]"
        }),
    );
    for l in got {
        parse_cef(&l).unwrap_or_else(|e| panic!("{l}: {e}"));
    }
}

#[test]
fn leef_plugin_so_delivers_to_rsyslog_over_udp() {
    if !rsyslog_up() {
        return;
    }
    let app = format!("aztsol{}", std::process::id());
    let got = run(
        "leef",
        serde_json::json!({
            "host": "127.0.0.1", "port": 15514, "protocol": "udp", "max_message_size": 8192,
            "app_name": app, "delimiter": "^", "version": "2.0"
        }),
    );
    for l in got {
        let p = parse_leef(&l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert_eq!(p.delimiter, '^');
    }
}
