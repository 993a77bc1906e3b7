//! The rsyslog receiver the test scripts start (scripts/syslog-start.sh): where it writes and
//! what it received.
#![allow(dead_code)]
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// rsyslog's output file, or `None` when rsyslog is down and `AZLOG_SKIP_SYSLOG=1`
/// (panics when it is down otherwise).
pub fn syslog_out() -> Option<PathBuf> {
    let dir = std::env::var("AZLOG_SYSLOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/syslog"))
        });
    let up =
        TcpStream::connect_timeout(&([127, 0, 0, 1], 15514).into(), Duration::from_secs(1)).is_ok();
    if up {
        return Some(dir.join("out/messages.jsonl"));
    }
    if std::env::var("AZLOG_SKIP_SYSLOG").as_deref() == Ok("1") {
        eprintln!("SKIPPED: rsyslog not running and AZLOG_SKIP_SYSLOG=1");
        return None;
    }
    panic!("rsyslog is required: run scripts/syslog-start.sh (or set AZLOG_SKIP_SYSLOG=1)");
}

/// Messages rsyslog wrote for APP-NAME `app`, in the order written.
pub fn received(out: &Path, app: &str) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|j| j["app"] == app)
        .collect()
}
