//! Proves the test receiver speaks HEC the way Splunk's own npm client expects: events sent
//! by `splunk-logging` (installed by scripts/setup.d/hec-splunk-logging.sh) are accepted,
//! batched bodies are split into events, and error answers reach the client's error handler
//! with Splunk's codes.
//!
//! Needs `node` and AZLOG_SPLUNK_LOGGING_DIR (or .tools/node/hec/node_modules); fails when
//! they are missing unless AZLOG_SKIP_SPLUNK_LOGGING=1.
use std::path::PathBuf;
use std::process::Command;

use azlog_hec_receiver::{HecReceiver, TokenConfig};
use serde_json::Value;

const TOKEN: &str = "5f2e1c7a-9d3b-4c1e-8a6f-1b2c3d4e5f60";

fn modules() -> Option<PathBuf> {
    if std::env::var("AZLOG_SKIP_SPLUNK_LOGGING").as_deref() == Ok("1") {
        return None;
    }
    let dir = std::env::var("AZLOG_SPLUNK_LOGGING_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../.tools/node/hec/node_modules"
            ))
        });
    assert!(
        dir.join("splunk-logging").is_dir(),
        "splunk-logging not found in {}: run scripts/setup.d/hec-splunk-logging.sh \
         (or set AZLOG_SKIP_SPLUNK_LOGGING=1)",
        dir.display()
    );
    Some(dir)
}

fn send(modules: &PathBuf, url: &str, token: &str, count: usize, index: Option<&str>) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/npm-check/send.js");
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .arg(modules)
        .arg(url)
        .arg(token)
        .arg(count.to_string());
    if let Some(i) = index {
        cmd.arg(i);
    }
    let out = cmd.output().expect("run node (is it installed?)");
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "no output; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(line).expect("JSON result line")
}

#[test]
fn splunk_logging_batch_is_accepted_event_by_event() {
    let Some(m) = modules() else { return };
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN)]).expect("receiver");
    let res = send(&m, &rx.url(), TOKEN, 5, Some("main"));
    assert_eq!(res["status"], 200, "{res}");
    assert_eq!(
        res["body"],
        serde_json::json!({"text": "Success", "code": 0})
    );
    assert_eq!(res["errors"], serde_json::json!([]));
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1, "one batched request: {reqs:?}");
    assert_eq!(reqs[0].path, "/services/collector/event/1.0");
    assert_eq!(reqs[0].accepted, 5);
    let evs = rx.events();
    assert_eq!(evs.len(), 5);
    for (i, e) in evs.iter().enumerate() {
        let env = &e.envelope;
        assert_eq!(env["event"]["message"]["n"], i as u64);
        assert_eq!(
            env["event"]["message"]["text"],
            format!("héllo \"hec\"\n{i}")
        );
        assert_eq!(env["event"]["severity"], "info");
        assert_eq!(env["sourcetype"], "npm:test");
        assert_eq!(env["host"], "node-host");
        assert_eq!(env["index"], "main");
        let t: f64 = env["time"]
            .as_str()
            .expect("time string")
            .parse()
            .expect("epoch");
        assert!(t > 1.6e9, "{t}");
    }
}

#[test]
fn splunk_logging_sees_splunks_error_codes() {
    let Some(m) = modules() else { return };
    let mut disabled = TokenConfig::new("00000000-0000-4000-8000-000000000001");
    disabled.enabled = false;
    let mut limited = TokenConfig::new("00000000-0000-4000-8000-000000000002");
    limited.indexes = vec!["azure".into()];
    let rx =
        HecReceiver::start(vec![TokenConfig::new(TOKEN), disabled, limited]).expect("receiver");
    let cases = [
        (
            "11111111-1111-4111-8111-111111111111",
            None,
            403,
            4,
            "Invalid token",
        ),
        (
            "00000000-0000-4000-8000-000000000001",
            None,
            403,
            1,
            "Token disabled",
        ),
        (
            "00000000-0000-4000-8000-000000000002",
            Some("main"),
            400,
            7,
            "Incorrect index",
        ),
    ];
    for (token, index, status, code, text) in cases {
        let res = send(&m, &rx.url(), token, 2, index);
        assert_eq!(res["status"], status, "{res}");
        assert_eq!(res["body"]["code"], code, "{res}");
        assert_eq!(res["body"]["text"], text, "{res}");
        assert_eq!(
            res["errors"][0]["code"], code,
            "client error handler: {res}"
        );
        assert_eq!(res["errors"][0]["message"], text, "{res}");
    }
    let res = send(
        &m,
        &rx.url(),
        "00000000-0000-4000-8000-000000000002",
        1,
        Some("main"),
    );
    assert_eq!(res["body"]["invalid-event-number"], 0, "{res}");
    assert!(
        rx.events().is_empty(),
        "nothing accepted from refused requests"
    );
}
