//! azlog-sink-leef: IBM QRadar LEEF (2.0 by default, 1.0 selectable) over syslog.
//!
//! Settings (the `[[sink]]` table's own keys):
//! - codec: `version` (`"2.0"`|`"1.0"`), `delimiter` (tab default, `^`, or hex `x09`),
//!   `replacement` (what replaces the delimiter/CR/LF in values, default a space), `field_map`
//!   (path replacing the built-in `schemas/sinks/leef.toml`), `truncation_marker`;
//! - transport: as for the CEF plugin (see `azlog_syslog::SyslogConfig`); `msg_id` defaults to
//!   `LEEF`.
use azlog_codecs::leef::{encode, LeefConfig, LeefOptions};
use azlog_plugin_api::{export_sink_plugin, Record, SinkError};
use azlog_syslog::{split_settings, SyslogLineSink};

const CODEC_KEYS: &[&str] = &[
    "version",
    "delimiter",
    "replacement",
    "field_map",
    "truncation_marker",
];

/// The record → line encoder handed to the shared syslog sink.
type Encoder = Box<dyn FnMut(&Record, &mut String) + Send>;

type LeefSink = SyslogLineSink<Encoder>;

fn open(settings: serde_json::Value) -> Result<LeefSink, SinkError> {
    let (codec, transport) = split_settings(settings, CODEC_KEYS)
        .map_err(|e| SinkError::permanent(format!("leef sink: {e}")))?;
    let options: LeefOptions = serde_json::from_value(codec)
        .map_err(|e| SinkError::permanent(format!("leef sink settings: {e}")))?;
    let cfg =
        LeefConfig::load(&options).map_err(|e| SinkError::permanent(format!("leef sink: {e}")))?;
    let encoder: Encoder = Box::new(move |r, out| {
        encode(r, &cfg, out);
    });
    SyslogLineSink::open("leef", transport, "LEEF", encoder)
}

export_sink_plugin!(name: "leef", version: env!("CARGO_PKG_VERSION"), open: open);
