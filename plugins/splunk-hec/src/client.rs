//! HTTP transport to a HEC input: posts event bodies, polls acks, reads health, and maps
//! HEC answers to what the sink does next.
//!
//! Client choice: `ureq` 2 (blocking HTTP/1.1 with keep-alive, rustls, no async runtime):
//! a plugin call is synchronous on the host's sink thread anyway, so an async stack would
//! only add a runtime to every plugin instance.
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use azlog_plugin_api::SinkError;
use serde_json::Value;

use crate::settings::Settings;

/// What a POST of events came back with.
#[derive(Debug)]
pub enum Reply {
    /// All events accepted; `ack_id` when indexer acknowledgement is on.
    Accepted {
        /// The ackId to poll.
        ack_id: Option<u64>,
    },
    /// Events before `index` (0-based, within the request) were accepted; event `index` was
    /// refused; events after it were not processed.
    InvalidEvent {
        /// 0-based index of the refused event in the request.
        index: usize,
        /// HEC code.
        code: u64,
        /// HEC text.
        text: String,
    },
}

/// A HEC endpoint with its token and channel.
pub struct HecClient {
    agent: ureq::Agent,
    event_url: String,
    ack_url: String,
    health_url: String,
    auth: String,
    channel: String,
    gzip: bool,
}

impl HecClient {
    /// Builds the client (TLS roots from `tls`, built by [`tls_config`] from `ca_file`, or
    /// the built-in web roots). Connects nothing.
    pub fn new(
        settings: &Settings,
        token: &str,
        channel: String,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Self, SinkError> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(timeout)
            .timeout_read(timeout)
            .timeout_write(timeout)
            .user_agent(concat!("azlog-hub-splunk-hec/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = tls {
            builder = builder.tls_config(tls);
        }
        let base = settings.url.trim_end_matches('/');
        Ok(HecClient {
            agent: builder.build(),
            event_url: format!("{base}/services/collector/event"),
            ack_url: format!("{base}/services/collector/ack?channel={channel}"),
            health_url: format!("{base}/services/collector/health"),
            auth: format!("Splunk {token}"),
            channel,
            gzip: settings.gzip,
        })
    }

    /// The channel GUID.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// POSTs concatenated events.
    pub fn post_events(&self, body: &[u8]) -> Result<Reply, SinkError> {
        let req = self
            .agent
            .post(&self.event_url)
            .set("Authorization", &self.auth)
            .set("X-Splunk-Request-Channel", &self.channel)
            .set("Content-Type", "application/json");
        let result = if self.gzip {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            let gz = enc
                .write_all(body)
                .and_then(|_| enc.finish())
                .map_err(|e| SinkError::retryable(format!("gzip: {e}")))?;
            req.set("Content-Encoding", "gzip").send_bytes(&gz)
        } else {
            req.send_bytes(body)
        };
        let (status, text) = read_result(result)?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = json.get("code").and_then(Value::as_u64);
        let htext = json
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if status == 200 && code.unwrap_or(0) == 0 {
            return Ok(Reply::Accepted {
                ack_id: json.get("ackId").and_then(Value::as_u64),
            });
        }
        let invalid = json.get("invalid-event-number").and_then(Value::as_u64);
        match (status, code, invalid) {
            (400, Some(c @ (6 | 12 | 13 | 15)), Some(i)) => Ok(Reply::InvalidEvent {
                index: i as usize,
                code: c,
                text: htext,
            }),
            _ => Err(classify(status, code, &htext)),
        }
    }

    /// Asks which of `ids` are indexed. Ids answered `true` are forgotten by Splunk.
    pub fn poll_acks(&self, ids: &[u64]) -> Result<Vec<u64>, SinkError> {
        let body = serde_json::json!({ "acks": ids }).to_string();
        let result = self
            .agent
            .post(&self.ack_url)
            .set("Authorization", &self.auth)
            .set("X-Splunk-Request-Channel", &self.channel)
            .set("Content-Type", "application/json")
            .send_string(&body);
        let (status, text) = read_result(result)?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status != 200 {
            let code = json.get("code").and_then(Value::as_u64);
            let htext = json.get("text").and_then(Value::as_str).unwrap_or("");
            return Err(classify(status, code, htext));
        }
        let acks = json
            .get("acks")
            .and_then(Value::as_object)
            .ok_or_else(|| SinkError::retryable("HEC ack answer without an `acks` object"))?;
        Ok(acks
            .iter()
            .filter(|(_, v)| v.as_bool() == Some(true))
            .filter_map(|(k, _)| k.parse().ok())
            .collect())
    }

    /// GET /services/collector/health: Ok when HEC says healthy (code 17).
    pub fn health(&self) -> Result<(), SinkError> {
        let result = self.agent.get(&self.health_url).call();
        let (status, text) = read_result(result)?;
        if status == 200 {
            return Ok(());
        }
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Err(classify(
            status,
            json.get("code").and_then(Value::as_u64),
            json.get("text").and_then(Value::as_str).unwrap_or(""),
        ))
    }
}

/// Status and body of a response, or a retryable transport error.
fn read_result(result: Result<ureq::Response, ureq::Error>) -> Result<(u16, String), SinkError> {
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => {
            return Err(SinkError::retryable(format!("HEC transport error: {t}")))
        }
    };
    let status = resp.status();
    let mut text = String::new();
    resp.into_reader()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| SinkError::retryable(format!("reading HEC answer: {e}")))?;
    Ok((status, text))
}

/// Maps a failed HEC answer to a retryable or permanent error. Never includes the token.
pub fn classify(status: u16, code: Option<u64>, text: &str) -> SinkError {
    let what = match code {
        Some(c) => format!("HTTP {status}, HEC code {c} {text:?}"),
        None => format!("HTTP {status}"),
    };
    match (status, code) {
        (_, Some(8 | 9 | 18 | 19 | 20)) | (429 | 500..=599, _) => {
            SinkError::retryable(format!("Splunk HEC is unavailable ({what}); retrying"))
        }
        (401 | 403, _) | (_, Some(1..=4 | 21 | 22)) => SinkError::permanent(format!(
            "Splunk HEC refused the token ({what}): check the sink's token/token_env/token_file \
             and that the token is enabled; not retrying"
        )),
        (_, Some(7)) => SinkError::permanent(format!(
            "Splunk HEC refused the index ({what}): the sink's `index` must be in the token's \
             allowed indexes"
        )),
        (_, Some(10 | 11 | 14)) => SinkError::permanent(format!(
            "Splunk HEC channel/ack mismatch ({what}): `ack` must match the token's indexer \
             acknowledgement setting"
        )),
        (413, _) => SinkError::permanent(format!(
            "Splunk HEC refused the request size ({what}): lower `max_request_bytes`"
        )),
        (404, _) => {
            SinkError::permanent(format!("no HEC endpoint at the configured `url` ({what})"))
        }
        _ => SinkError::permanent(format!("Splunk HEC refused the request ({what})")),
    }
}

/// The TLS client configuration trusting the certificates of `ca_file` (read here).
pub(crate) fn tls_config(ca_file: &std::path::Path) -> Result<rustls::ClientConfig, SinkError> {
    let bad =
        |m: String| SinkError::permanent(format!("splunk-hec ca_file {}: {m}", ca_file.display()));
    let pem = std::fs::read(ca_file).map_err(|e| bad(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificates found".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
