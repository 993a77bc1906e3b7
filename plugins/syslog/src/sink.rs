//! The [`Sink`] shared by the CEF and LEEF plugins: encode each record to one line with the
//! plugin's codec, send the batch over syslog, and report exactly what the socket accepted.
use azlog_plugin_api::{BatchReport, Health, Record, Rejection, Sink, SinkError};
use serde_json::{Map, Value as Json};

use crate::{severity_from_ecs, SyslogConfig, SyslogSender};

/// Splits a sink's settings into the codec's keys and the transport's keys.
pub fn split_settings(settings: Json, codec_keys: &[&str]) -> Result<(Json, Json), String> {
    let Json::Object(all) = settings else {
        return Err("settings must be a table".into());
    };
    let (mut codec, mut transport) = (Map::new(), Map::new());
    for (k, v) in all {
        if codec_keys.contains(&k.as_str()) {
            codec.insert(k, v);
        } else {
            transport.insert(k, v);
        }
    }
    Ok((Json::Object(codec), Json::Object(transport)))
}

/// A line-format sink over syslog.
pub struct SyslogLineSink<E> {
    plugin: &'static str,
    sender: SyslogSender,
    encode: E,
    line: String,
}

impl<E> SyslogLineSink<E>
where
    E: FnMut(&Record, &mut String) + Send + 'static,
{
    /// Builds the sink from transport settings (JSON) and an encoder; `msg_id` is the default
    /// RFC 5424 MSGID (`CEF`, `LEEF`). Same as [`parse_transport`] then [`Self::from_sender`].
    pub fn open(
        plugin: &'static str,
        transport: Json,
        msg_id: &str,
        encode: E,
    ) -> Result<Self, SinkError> {
        Ok(Self::from_sender(
            plugin,
            parse_transport(plugin, transport, msg_id)?,
            encode,
        ))
    }

    /// Builds the sink from a sender made by [`parse_transport`] and an encoder.
    pub fn from_sender(plugin: &'static str, sender: SyslogSender, encode: E) -> Self {
        SyslogLineSink {
            plugin,
            sender,
            encode,
            line: String::with_capacity(2048),
        }
    }
}

/// Parses and validates a CEF/LEEF sink's transport settings (unknown keys, types, ranges;
/// for TLS the CA, client certificate and key files are read) and builds the sender, without
/// connecting: the sender connects on its first batch. `plugin` prefixes the messages;
/// `msg_id` is the default RFC 5424 MSGID. The plugins' `open` and `check` both use it.
pub fn parse_transport(
    plugin: &'static str,
    transport: Json,
    msg_id: &str,
) -> Result<SyslogSender, SinkError> {
    let cfg: SyslogConfig = azlog_plugin_api::settings::parse(transport)
        .map_err(|e| SinkError::permanent(format!("{plugin} sink settings: {e}")))?;
    SyslogSender::new(&cfg, msg_id).map_err(|e| SinkError::permanent(format!("{plugin} sink: {e}")))
}

impl<E> Sink for SyslogLineSink<E>
where
    E: FnMut(&Record, &mut String) + Send + 'static,
{
    fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
        self.sender.clear();
        for (i, r) in records.iter().enumerate() {
            self.line.clear();
            (self.encode)(r, &mut self.line);
            let severity = severity_from_ecs(r.get_i64("event.severity"));
            self.sender.push(
                i,
                severity,
                r.timestamp_ns.div_euclid(1_000_000),
                &self.line,
            );
        }
        let out = self.sender.send(records.len());
        let rejected: Vec<Rejection> = out
            .rejected
            .into_iter()
            .map(|(i, why)| Rejection::new(i, why))
            .collect();
        Ok(match out.error {
            None => BatchReport::with_rejections(out.handled, rejected),
            Some(e) => {
                let msg = format!("{} sink: {e}", self.plugin);
                let err = if e.is_retryable() {
                    SinkError::retryable(msg)
                } else {
                    SinkError::permanent(msg)
                };
                BatchReport::partial(out.handled, rejected, err)
            }
        })
    }

    fn health(&self) -> Health {
        match self.sender.last_error() {
            Some(e) => Health::degraded(format!("{}: {e}", self.sender.target())),
            None => Health::healthy(),
        }
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.sender.close();
        Ok(())
    }
}
