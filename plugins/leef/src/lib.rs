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
use azlog_syslog::{parse_transport, split_settings, SyslogLineSink, SyslogSender};

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

/// The sink's settings, parsed and validated (field map read, TLS files read), not connected.
struct Settings {
    cfg: LeefConfig,
    sender: SyslogSender,
}

/// Parses and checks the settings as both `check` and `open` see them; never connects.
fn settings(settings: serde_json::Value) -> Result<Settings, SinkError> {
    let (codec, transport) = split_settings(settings, CODEC_KEYS)
        .map_err(|e| SinkError::permanent(format!("leef sink: {e}")))?;
    let options: LeefOptions = azlog_plugin_api::settings::parse(codec)
        .map_err(|e| SinkError::permanent(format!("leef sink settings: {e}")))?;
    let cfg =
        LeefConfig::load(&options).map_err(|e| SinkError::permanent(format!("leef sink: {e}")))?;
    let sender = parse_transport("leef", transport, "LEEF")?;
    Ok(Settings { cfg, sender })
}

fn open(settings: Settings) -> Result<LeefSink, SinkError> {
    let Settings { cfg, sender } = settings;
    let encoder: Encoder = Box::new(move |r, out| {
        encode(r, &cfg, out);
    });
    Ok(SyslogLineSink::from_sender("leef", sender, encoder))
}

export_sink_plugin!(
    name: "leef",
    version: env!("CARGO_PKG_VERSION"),
    settings: settings,
    open: open,
    paths: ["field_map", "tls.ca_file", "tls.client_cert", "tls.client_key"],
);
