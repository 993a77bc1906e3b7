//! A configurable sink plugin for the host tests and the call-overhead benchmark.
//!
//! Settings (all optional; `{}` is a no-op sink that accepts everything):
//! * `panic_on_field`: panic in `write_batch` when a record has this field;
//! * `reject_field`: permanently reject records that have this field;
//! * `retryable_failures`: fail the first N `write_batch` calls of each instance (retryable);
//! * `permanent_error`: fail every `write_batch` permanently with this message;
//! * `panic_in_open`: panic in `open`;
//! * `panic_in_check`: panic while parsing the settings (in `check` and in `open`);
//! * `out`: append the `event.id` of each accepted record to this file, one per line (its
//!   folder must exist).
//!
//! Unknown keys are refused, by `check` (check-config) and `open` alike.
use std::io::Write;
use std::path::PathBuf;

use serde::Deserialize;

use azlog_plugin_api::{export_sink_plugin, BatchReport, Record, Rejection, Sink, SinkError};

struct TestSink {
    panic_on_field: Option<String>,
    reject_field: Option<String>,
    retryable_failures: u64,
    permanent_error: Option<String>,
    out: Option<std::fs::File>,
    checksum: i64,
}

impl Sink for TestSink {
    fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
        if let Some(msg) = &self.permanent_error {
            return Err(SinkError::permanent(msg.clone()));
        }
        if self.retryable_failures > 0 {
            self.retryable_failures -= 1;
            return Err(SinkError::retryable("test: injected transient failure"));
        }
        let mut rejected = Vec::new();
        let mut lines = String::new();
        for (i, r) in records.iter().enumerate() {
            if let Some(f) = &self.panic_on_field {
                if r.get(f).is_some() {
                    panic!("test: poison record {:?}", r.get_str("event.id"));
                }
            }
            if let Some(f) = &self.reject_field {
                if r.get(f).is_some() {
                    rejected.push(Rejection::new(i, format!("test: record has `{f}`")));
                    continue;
                }
            }
            self.checksum = self
                .checksum
                .wrapping_add(r.timestamp_ns ^ r.fields.len() as i64);
            if self.out.is_some() {
                lines.push_str(r.get_str("event.id").unwrap_or("?"));
                lines.push('\n');
            }
        }
        if let Some(f) = self.out.as_mut() {
            f.write_all(lines.as_bytes())
                .map_err(|e| SinkError::retryable(format!("test: write: {e}")))?;
        }
        Ok(BatchReport::with_rejections(records.len(), rejected))
    }
}

/// The settings, as both `check` and `open` parse them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    panic_on_field: Option<String>,
    #[serde(default)]
    reject_field: Option<String>,
    #[serde(default)]
    retryable_failures: u64,
    #[serde(default)]
    permanent_error: Option<String>,
    #[serde(default)]
    panic_in_open: bool,
    #[serde(default)]
    panic_in_check: bool,
    #[serde(default)]
    out: Option<PathBuf>,
}

fn settings(cfg: serde_json::Value) -> Result<Settings, SinkError> {
    let s: Settings = azlog_plugin_api::settings::parse(cfg)
        .map_err(|e| SinkError::permanent(format!("test-sink settings: {e}")))?;
    if s.panic_in_check {
        panic!("test: panic while parsing the settings");
    }
    if let Some(dir) = s.out.as_deref().and_then(std::path::Path::parent) {
        if !dir.as_os_str().is_empty() && !dir.is_dir() {
            return Err(SinkError::permanent(format!(
                "test-sink settings: `out`: folder {} does not exist",
                dir.display()
            )));
        }
    }
    Ok(s)
}

fn open(s: Settings) -> Result<TestSink, SinkError> {
    if s.panic_in_open {
        panic!("test: panic in open");
    }
    let out = match &s.out {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| SinkError::permanent(format!("test: open {}: {e}", p.display())))?,
        ),
        None => None,
    };
    Ok(TestSink {
        panic_on_field: s.panic_on_field,
        reject_field: s.reject_field,
        retryable_failures: s.retryable_failures,
        permanent_error: s.permanent_error,
        out,
        checksum: 0,
    })
}

export_sink_plugin!(
    name: "test-sink",
    version: env!("CARGO_PKG_VERSION"),
    settings: settings,
    open: open,
);
