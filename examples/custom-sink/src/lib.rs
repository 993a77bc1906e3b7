//! A minimal custom sink plugin for azlog-hub: writes one line per record, to a file or to
//! stderr. Copy this crate to start your own sink (see README.md).
//!
//! Settings (the `[[sink]]` table's own keys, handed over as JSON):
//! * `path`: file to append to (default: stderr);
//! * `fields`: canonical fields to print, in order (default `event.dataset`, `event.action`,
//!   `event.outcome`, `user.name`, `source.ip`).
//!
//! Line format: `<partition>/<sequence> <field>=<value> ... (<n> fields)`; missing fields are
//! left out. The plugin only reads records (`get_str`, `get`, `fields`, `key.as_str()`), the part
//! of the record API that stays the same across plugin ABI versions.
use std::fs::File;
use std::io::Write;

use azlog_plugin_api::{export_sink_plugin, BatchReport, Record, Sink, SinkError};

const DEFAULT_FIELDS: [&str; 5] = [
    "event.dataset",
    "event.action",
    "event.outcome",
    "user.name",
    "source.ip",
];

/// Where the lines go.
enum Output {
    Stderr,
    File(File),
}

struct LineSink {
    out: Output,
    fields: Vec<String>,
}

impl LineSink {
    /// One record as one line (no newline inside: values are printed with `{:?}` quoting
    /// when they hold whitespace or control characters).
    fn render(&self, r: &Record, line: &mut String) {
        use std::fmt::Write as _;
        let _ = write!(
            line,
            "{}/{}",
            r.position.partition.as_str(),
            r.position.sequence
        );
        for key in &self.fields {
            // `get` finds any field; `to_text` renders strings, numbers, lists and JSON alike.
            if let Some(value) = r.get(key) {
                let text = value.to_text();
                if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    let _ = write!(line, " {key}={text:?}");
                } else {
                    let _ = write!(line, " {key}={text}");
                }
            }
        }
        // Iterating every field, e.g. to count the `azure.*` ones:
        let azure = r
            .fields
            .iter()
            .filter(|f| f.key.as_str().starts_with("azure."))
            .count();
        let _ = writeln!(line, " ({} fields, {azure} azure.*)", r.fields.len());
    }
}

impl Sink for LineSink {
    fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
        let mut text = String::new();
        for r in records {
            self.render(r, &mut text);
        }
        // Report failures as retryable (the host backs off and resends) or permanent (the host
        // stops the sink); accepted records are acknowledged and may be checkpointed.
        let written = match &mut self.out {
            Output::Stderr => std::io::stderr().write_all(text.as_bytes()),
            Output::File(f) => f.write_all(text.as_bytes()),
        };
        written.map_err(|e| SinkError::retryable(format!("example-sink: write: {e}")))?;
        Ok(BatchReport::all_accepted(records.len()))
    }

    /// Called before the host writes checkpoints: make what was accepted durable.
    fn flush(&mut self) -> Result<(), SinkError> {
        match &mut self.out {
            Output::Stderr => Ok(()),
            Output::File(f) => f
                .sync_data()
                .map_err(|e| SinkError::retryable(format!("example-sink: fsync: {e}"))),
        }
    }
}

/// Builds the sink from its settings; a bad setting is a permanent error naming the key.
fn open(settings: serde_json::Value) -> Result<LineSink, SinkError> {
    let out = match settings.get("path") {
        None => Output::Stderr,
        Some(p) => {
            let path = p
                .as_str()
                .ok_or_else(|| SinkError::permanent("example-sink: `path` must be a string"))?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| SinkError::permanent(format!("example-sink: open {path}: {e}")))?;
            Output::File(file)
        }
    };
    let fields = match settings.get("fields") {
        None => DEFAULT_FIELDS.iter().map(|s| s.to_string()).collect(),
        Some(v) => v
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| {
                SinkError::permanent("example-sink: `fields` must be a list of field names")
            })?,
    };
    Ok(LineSink { out, fields })
}

// The plugin's root module: `[[sink]] plugin = "example-sink"` selects it. The macro checks the
// ABI version at load time and keeps panics from crossing into the host.
export_sink_plugin!(name: "example-sink", version: env!("CARGO_PKG_VERSION"), open: open);
