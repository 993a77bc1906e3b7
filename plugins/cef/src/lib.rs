//! azlog-sink-cef: ArcSight CEF (`CEF:0`, CEF v27) over syslog.
//!
//! Settings (the `[[sink]]` table's own keys):
//! - codec: `field_map` (path replacing the built-in `schemas/sinks/cef.toml`),
//!   `truncation_marker` (default `…`);
//! - transport (see `azlog_syslog::SyslogConfig`): `host`, `port`, `protocol` (`udp`|`tcp`|`tls`),
//!   `framing` (`octet-counting`|`newline`), `header` (`rfc5424`|`rfc3164`|`none`), `facility`,
//!   `hostname`, `app_name`, `msg_id` (default `CEF`), `header_time`, `max_message_size`,
//!   `oversize` (`truncate`|`reject`), `connect_timeout_ms`, `write_timeout_ms`,
//!   `reconnect_initial_ms`, `reconnect_max_ms`, `tls = { ca_file, server_name, client_cert,
//!   client_key }`.
use azlog_codecs::cef::{encode, CefConfig, CefOptions};
use azlog_plugin_api::{export_sink_plugin, Record, SinkError};
use azlog_syslog::{parse_transport, split_settings, SyslogLineSink, SyslogSender};

const CODEC_KEYS: &[&str] = &["field_map", "truncation_marker"];

/// The record → line encoder handed to the shared syslog sink.
type Encoder = Box<dyn FnMut(&Record, &mut String) + Send>;

type CefSink = SyslogLineSink<Encoder>;

/// The sink's settings, parsed and validated (field map read, TLS files read), not connected.
struct Settings {
    cfg: CefConfig,
    sender: SyslogSender,
}

/// Parses and checks the settings as both `check` and `open` see them; never connects.
fn settings(settings: serde_json::Value) -> Result<Settings, SinkError> {
    let (codec, transport) = split_settings(settings, CODEC_KEYS)
        .map_err(|e| SinkError::permanent(format!("cef sink: {e}")))?;
    let options: CefOptions = azlog_plugin_api::settings::parse(codec)
        .map_err(|e| SinkError::permanent(format!("cef sink settings: {e}")))?;
    let cfg =
        CefConfig::load(&options).map_err(|e| SinkError::permanent(format!("cef sink: {e}")))?;
    let sender = parse_transport("cef", transport, "CEF")?;
    Ok(Settings { cfg, sender })
}

fn open(settings: Settings) -> Result<CefSink, SinkError> {
    let Settings { cfg, sender } = settings;
    let encoder: Encoder = Box::new(move |r, out| {
        encode(r, &cfg, out);
    });
    Ok(SyslogLineSink::from_sender("cef", sender, encoder))
}

export_sink_plugin!(
    name: "cef",
    version: env!("CARGO_PKG_VERSION"),
    settings: settings,
    open: open,
    paths: ["field_map", "tls.ca_file", "tls.client_cert", "tls.client_key"],
);
