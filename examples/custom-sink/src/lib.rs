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
use std::path::{Path, PathBuf};

use azlog_plugin_api::{export_sink_plugin, BatchReport, Record, Sink, SinkError};
use serde::Deserialize;

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

/// The plugin's own settings. `deny_unknown_fields` turns a typo into an error naming the key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// File to append to (default: stderr).
    #[serde(default)]
    path: Option<PathBuf>,
    /// Canonical fields to print, in order.
    #[serde(default = "default_fields")]
    fields: Vec<String>,
}

fn default_fields() -> Vec<String> {
    DEFAULT_FIELDS.iter().map(|s| s.to_string()).collect()
}

/// Parses and checks the settings without side effects: `azlog-hub check-config` runs this
/// alone (through the root module's `check`), start-up runs it before `open`. Check here
/// whatever can be checked without connecting or creating anything; a bad setting is a
/// permanent error naming the key (and never quoting a secret).
fn settings(settings: serde_json::Value) -> Result<Settings, SinkError> {
    let s: Settings = azlog_plugin_api::settings::parse(settings)
        .map_err(|e| SinkError::permanent(format!("example-sink settings: {e}")))?;
    if let Some(dir) = s.path.as_deref().and_then(Path::parent) {
        if !dir.as_os_str().is_empty() && !dir.is_dir() {
            return Err(SinkError::permanent(format!(
                "example-sink settings: `path`: folder {} does not exist",
                dir.display()
            )));
        }
    }
    Ok(s)
}

/// Builds the sink from checked settings: this is where files are opened (or connections made).
fn open(settings: Settings) -> Result<LineSink, SinkError> {
    let out = match &settings.path {
        None => Output::Stderr,
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    SinkError::permanent(format!("example-sink: open {}: {e}", path.display()))
                })?;
            Output::File(file)
        }
    };
    Ok(LineSink {
        out,
        fields: settings.fields,
    })
}

// The plugin's root module: `[[sink]] plugin = "example-sink"` selects it. The macro checks the
// ABI version at load time, keeps panics from crossing into the host, and runs `settings` for
// both the root module's `check` (check-config) and `open` (start-up), so they never disagree.
// `paths` names the settings that hold file paths: the host makes a relative one absolute
// against the configuration file's folder before `settings` sees it.
export_sink_plugin!(
    name: "example-sink",
    version: env!("CARGO_PKG_VERSION"),
    settings: settings,
    open: open,
    paths: ["path"],
);
