//! A configurable sink plugin for the host tests and the call-overhead benchmark.
//!
//! Settings (all optional; `{}` is a no-op sink that accepts everything):
//! * `panic_on_field`: panic in `write_batch` when a record has this field;
//! * `reject_field`: permanently reject records that have this field;
//! * `retryable_failures`: fail the first N `write_batch` calls of each instance (retryable);
//! * `permanent_error`: fail every `write_batch` permanently with this message;
//! * `panic_in_open`: panic in `open`;
//! * `out`: append the `event.id` of each accepted record to this file, one per line.
use std::io::Write;

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

fn open(cfg: serde_json::Value) -> Result<TestSink, SinkError> {
    if cfg.get("panic_in_open").and_then(|v| v.as_bool()) == Some(true) {
        panic!("test: panic in open");
    }
    let s = |k: &str| cfg.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let out = match s("out") {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| SinkError::permanent(format!("test: open {p}: {e}")))?,
        ),
        None => None,
    };
    Ok(TestSink {
        panic_on_field: s("panic_on_field"),
        reject_field: s("reject_field"),
        retryable_failures: cfg
            .get("retryable_failures")
            .and_then(|v| v.as_u64())
            .unwrap_or(0),
        permanent_error: s("permanent_error"),
        out,
        checksum: 0,
    })
}

export_sink_plugin!(name: "test-sink", version: env!("CARGO_PKG_VERSION"), open: open);
