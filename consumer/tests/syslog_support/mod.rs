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

/// A private rsyslog (scripts/syslog-start.sh with its own directory and free ports), for a test
/// that stops and restarts its receiver without disturbing the shared one other tests use.
/// Stopped (scripts/syslog-stop.sh) when dropped.
pub struct OwnRsyslog {
    dir: PathBuf,
    /// The udp+tcp port (plain syslog).
    pub port: u16,
    tls_port: u16,
    mtls_port: u16,
}

impl OwnRsyslog {
    /// Starts rsyslog under `dir` (made world-readable: rsyslogd runs as `nobody`) on free ports.
    pub fn start(dir: &Path) -> OwnRsyslog {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).expect("rsyslog dir");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .expect("rsyslog dir permissions");
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port()
        };
        let s = OwnRsyslog {
            dir: dir.to_owned(),
            port: free(),
            tls_port: free(),
            mtls_port: free(),
        };
        s.script("syslog-start.sh");
        s
    }

    /// Starts it again (same directory, same ports, output appended).
    pub fn restart(&self) {
        self.script("syslog-start.sh");
    }

    /// Stops rsyslogd (SIGTERM, waits for it to exit).
    pub fn stop(&self) {
        self.script("syslog-stop.sh");
    }

    /// True while something accepts connections on the plain port.
    pub fn is_up(&self) -> bool {
        TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1))
            .is_ok()
    }

    /// Its output file (see [`received`]).
    pub fn out(&self) -> PathBuf {
        self.dir.join("out/messages.jsonl")
    }

    fn script(&self, name: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/");
        let out = std::process::Command::new("bash")
            .arg(format!("{script}{name}"))
            .env("AZLOG_SYSLOG_DIR", &self.dir)
            .env("AZLOG_SYSLOG_PORT", self.port.to_string())
            .env("AZLOG_SYSLOG_TLS_PORT", self.tls_port.to_string())
            .env("AZLOG_SYSLOG_MTLS_PORT", self.mtls_port.to_string())
            .output()
            .unwrap_or_else(|e| panic!("running scripts/{name}: {e}"));
        assert!(
            out.status.success(),
            "scripts/{name} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnRsyslog {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../scripts/syslog-stop.sh"
            ))
            .env("AZLOG_SYSLOG_DIR", &self.dir)
            .output();
    }
}
