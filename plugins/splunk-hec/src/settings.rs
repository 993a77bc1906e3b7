//! The sink's settings (its `[[sink]]` table minus the host keys), and the encoder and
//! HTTP client they build.
use std::path::PathBuf;

use azlog_codecs::hec::{EventBody, HecEncoder, HostSource, OversizePolicy, SourcetypeTable};
use azlog_plugin_api::SinkError;
use serde::Deserialize;

/// Splunk HEC sink settings. See the crate docs for the table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Base URL of the HEC input, e.g. `https://splunk.example:8088`.
    pub url: String,
    /// The token itself (prefer `token_env` or `token_file`).
    #[serde(default)]
    pub token: Option<String>,
    /// Name of an environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// A file holding the token (trimmed).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// `index` of every event (must be allowed for the token).
    #[serde(default)]
    pub index: Option<String>,
    /// `source` of every event.
    #[serde(default = "default_source")]
    pub source: Option<String>,
    /// Fixed `host` of every event.
    #[serde(default)]
    pub host: Option<String>,
    /// Take `host` from this record field instead (e.g. `host.name`).
    #[serde(default)]
    pub host_field: Option<String>,
    /// Force one sourcetype (instead of the per-dataset table).
    #[serde(default)]
    pub sourcetype: Option<String>,
    /// A sourcetype table replacing the built-in `schemas/sinks/splunk.toml`.
    #[serde(default)]
    pub sourcetypes_file: Option<PathBuf>,
    /// `original` (default): the Azure record JSON; `ecs`: the ECS rendering.
    #[serde(default = "default_event")]
    pub event: String,
    /// With `event = "ecs"`: include `event.original`.
    #[serde(default)]
    pub include_original: bool,
    /// Gzip request bodies.
    #[serde(default = "default_true")]
    pub gzip: bool,
    /// Largest single event in bytes.
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
    /// `truncate` (default), `split` or `reject` for larger events.
    #[serde(default = "default_oversize")]
    pub oversize: String,
    /// Largest request body before compression, in bytes.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Most events per request.
    #[serde(default = "default_max_events")]
    pub max_events_per_request: usize,
    /// Use indexer acknowledgement (the token must have it enabled; Splunk Enterprise).
    #[serde(default)]
    pub ack: bool,
    /// The channel GUID; generated per sink instance when absent.
    #[serde(default)]
    pub channel: Option<String>,
    /// How long to wait for acks before resending, in milliseconds.
    #[serde(default = "default_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
    /// Ack polling interval, in milliseconds.
    #[serde(default = "default_ack_poll_ms")]
    pub ack_poll_interval_ms: u64,
    /// Resends of an unacknowledged request within one batch before reporting a retryable
    /// error to the host.
    #[serde(default = "default_ack_resends")]
    pub ack_resends: u32,
    /// Connect/read/write timeout per request, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// PEM file with the CA certificate(s) to trust instead of the built-in web roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_source() -> Option<String> {
    Some("azlog-hub".into())
}
fn default_event() -> String {
    "original".into()
}
fn default_true() -> bool {
    true
}
fn default_max_event_bytes() -> usize {
    1_000_000
}
fn default_oversize() -> String {
    "truncate".into()
}
fn default_max_request_bytes() -> usize {
    1_000_000
}
fn default_max_events() -> usize {
    500
}
fn default_ack_timeout_ms() -> u64 {
    30_000
}
fn default_ack_poll_ms() -> u64 {
    500
}
fn default_ack_resends() -> u32 {
    1
}
fn default_timeout_ms() -> u64 {
    30_000
}

fn bad(msg: impl Into<String>) -> SinkError {
    SinkError::permanent(format!("splunk-hec settings: {}", msg.into()))
}

impl Settings {
    /// Parses and checks the settings JSON.
    pub fn from_json(v: serde_json::Value) -> Result<Settings, SinkError> {
        let s: Settings = azlog_plugin_api::settings::parse(v).map_err(bad)?;
        if !(s.url.starts_with("http://") || s.url.starts_with("https://")) {
            return Err(bad("`url` must start with http:// or https://"));
        }
        if s.max_events_per_request == 0 {
            return Err(bad("`max_events_per_request` must be at least 1"));
        }
        if s.max_request_bytes < s.max_event_bytes {
            return Err(bad("`max_request_bytes` must be >= `max_event_bytes`"));
        }
        if let Some(c) = &s.channel {
            if !is_guid(c) {
                return Err(bad("`channel` must be a GUID"));
            }
        }
        Ok(s)
    }

    /// Parses the settings JSON and does every check that needs no connection: the keys
    /// ([`Settings::from_json`]), the token resolved ([`Settings::token`]), the encoder built
    /// (sourcetypes file read) and the TLS configuration built from `ca_file` (read). Both the
    /// plugin's `check` and its `open` start here.
    pub fn check(v: serde_json::Value) -> Result<Checked, SinkError> {
        let settings = Settings::from_json(v)?;
        let token = settings.token()?;
        let encoder = settings.encoder()?;
        let tls = match &settings.ca_file {
            Some(ca) => Some(std::sync::Arc::new(crate::client::tls_config(ca)?)),
            None => None,
        };
        Ok(Checked {
            settings,
            token,
            encoder,
            tls,
        })
    }

    /// Resolves the token from `token`, `token_env` or `token_file` (exactly one).
    pub fn token(&self) -> Result<String, SinkError> {
        let given = [
            self.token.is_some(),
            self.token_env.is_some(),
            self.token_file.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            return Err(bad("set exactly one of `token`, `token_env`, `token_file`"));
        }
        let token = if let Some(t) = &self.token {
            t.clone()
        } else if let Some(var) = &self.token_env {
            std::env::var(var).map_err(|_| bad(format!("environment variable {var} is not set")))?
        } else if let Some(path) = &self.token_file {
            std::fs::read_to_string(path)
                .map_err(|e| bad(format!("cannot read token_file {}: {e}", path.display())))?
        } else {
            String::new()
        };
        let token = token.trim().to_string();
        if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("the token is empty or contains whitespace"));
        }
        Ok(token)
    }

    /// Builds the HEC encoder.
    pub fn encoder(&self) -> Result<HecEncoder, SinkError> {
        let table = match &self.sourcetypes_file {
            None => SourcetypeTable::builtin(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| bad(format!("cannot read {}: {e}", p.display())))?;
                SourcetypeTable::from_toml(&text, &p.display().to_string())
            }
        }
        .map_err(|e| bad(e.to_string()))?;
        let body = match self.event.as_str() {
            "original" => EventBody::Original,
            "ecs" => EventBody::Ecs {
                include_original: self.include_original,
            },
            other => {
                return Err(bad(format!(
                    "`event` must be original or ecs, not {other:?}"
                )))
            }
        };
        let oversize = match self.oversize.as_str() {
            "truncate" => OversizePolicy::Truncate,
            "split" => OversizePolicy::Split,
            "reject" => OversizePolicy::Reject,
            other => {
                return Err(bad(format!(
                    "`oversize` must be truncate, split or reject, not {other:?}"
                )))
            }
        };
        let host = match (&self.host, &self.host_field) {
            (Some(_), Some(_)) => return Err(bad("set `host` or `host_field`, not both")),
            (Some(h), None) => HostSource::Fixed(h.clone()),
            (None, Some(f)) => HostSource::Field(f.clone()),
            (None, None) => HostSource::Omit,
        };
        let enc = HecEncoder {
            table,
            sourcetype: self.sourcetype.clone(),
            index: self.index.clone(),
            source: self.source.clone(),
            host,
            body,
            max_event_bytes: self.max_event_bytes,
            oversize,
        };
        enc.validate().map_err(|e| bad(e.to_string()))?;
        Ok(enc)
    }
}

/// Settings that passed [`Settings::check`], with what the checks built. No `Debug`: it
/// holds the token.
pub struct Checked {
    /// The parsed settings.
    pub settings: Settings,
    /// The resolved token (a secret).
    pub token: String,
    /// The event encoder.
    pub encoder: HecEncoder,
    /// TLS roots from `ca_file`, if set.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// True for `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex).
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A random (version 4) GUID for the channel.
pub fn new_guid() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    let hex = format!("{a:016x}{b:016x}");
    // Version 4, variant 10xx.
    let variant = ["8", "9", "a", "b"][fastrand::usize(..4)];
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        variant,
        &hex[17..20],
        &hex[20..32]
    )
}
